"""former_addresses (redress/warehouse/customers.py replace_with_staging): over any
sequence of customer masters, it holds exactly the (customer, contact) pairs a customer
had in one master and not in the next, each once, tagged with the snapshot that dropped
it. What keeps a member from being told they are no member at an address that was theirs
(redress/rules/notifications.py MEMBER_BEFORE)."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from redress.warehouse.customers import replace_with_staging
from redress.warehouse.schema import create_statement

IDS = ["C1", "C2", "C3"]
EMAILS = [None, "a@example.com", "b@example.com"]
PHONES = [None, "+821011112222", "+821033334444"]
# one master: each customer present or not, with an email and a phone of a few
COLUMNS = "customer_id VARCHAR, email_norm VARCHAR, phone_e164 VARCHAR, bank_code VARCHAR, bank_account VARCHAR"
MASTERS = st.dictionaries(st.sampled_from(IDS), st.tuples(st.sampled_from(EMAILS), st.sampled_from(PHONES)))


def _addresses(master: dict) -> set[tuple[str, str]]:
    return {(c, a) for c, contacts in master.items() for a in contacts if a is not None}


@given(st.lists(MASTERS, min_size=1, max_size=5))
@settings(max_examples=30, deadline=None)
def test_every_contact_a_customer_lost_is_kept_once_with_the_snapshot_that_dropped_it(masters):
    con = duckdb.connect()
    con.execute(create_statement("former_addresses"))
    con.execute(create_statement("former_bank_accounts"))
    con.execute(f"CREATE TABLE customers ({COLUMNS})")
    expected: dict[tuple[str, str], str] = {}
    for i, master in enumerate(masters):
        con.execute(f"CREATE TABLE customers_staging ({COLUMNS})")
        for c, (e, p) in sorted(master.items()):
            con.execute("INSERT INTO customers_staging VALUES (?, ?, ?, NULL, NULL)", [c, e, p])
        replace_with_staging(con, f"sha-{i}")
        if i:
            for pair in sorted(_addresses(masters[i - 1]) - _addresses(master)):
                expected.setdefault(pair, f"sha-{i}")
    got = con.execute("SELECT customer_id, address, file_sha256 FROM former_addresses").fetchall()
    assert sorted(got) == sorted((c, a, sha) for (c, a), sha in expected.items())
    assert con.execute("SELECT count(*) FROM customers").fetchall()[0][0] == len(masters[-1])


def test_a_changed_email_and_a_customer_gone_are_kept_an_unchanged_phone_is_not():
    con = duckdb.connect()
    con.execute(create_statement("former_addresses"))
    con.execute(create_statement("former_bank_accounts"))
    con.execute("CREATE TABLE customers AS SELECT *, NULL AS bank_code, NULL AS bank_account FROM (VALUES "
                "('C1', 'a@example.com', '+821011112222'), ('C2', 'b@example.com', NULL)) t(customer_id, email_norm, phone_e164)")
    con.execute("CREATE TABLE customers_staging AS SELECT *, NULL AS bank_code, NULL AS bank_account FROM (VALUES "
                "('C1', 'new@example.com', '+821011112222')) t(customer_id, email_norm, phone_e164)")
    replace_with_staging(con, "second")
    assert con.execute("SELECT * FROM former_addresses ORDER BY 1").fetchall() == [
        ("a@example.com", "C1", "second"), ("b@example.com", "C2", "second")]
