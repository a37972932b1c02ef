"""Bank accounts that several claimants' latest claims name (redress/warehouse/claims.py
`shared_accounts_sql`): found by review, a claim is checked against the person, never
the account, so finance is shown several people's money claimed to one account."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from redress.warehouse.claims import shared_accounts_sql

T0 = datetime(2025, 12, 2, tzinfo=timezone.utc)
CLAIMS = """CREATE TABLE claims (customer_id VARCHAR, bank_code VARCHAR, bank_account VARCHAR,
            claimed_at TIMESTAMPTZ, run_id VARCHAR, file_sha256 VARCHAR, row_number BIGINT)"""


def shared(rows: list[tuple]) -> set[tuple]:
    with duckdb.connect() as con:
        con.execute(CLAIMS)
        if rows:
            con.executemany("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return set(con.execute(shared_accounts_sql()).fetchall())


def test_the_latest_claim_of_each_person_decides_which_account_they_share():
    rows = [("C1", "004", "111", T0, "R1", "f1", 1),
            ("C2", "004", "111", T0, "R1", "f1", 2),  # C1 and C2 name one account
            ("C3", "088", "111", T0, "R1", "f1", 3),  # the same digits at another bank: not the same account
            ("C4", "004", "222", T0, "R1", "f1", 4),
            ("C4", "004", "111", T0 + timedelta(days=1), "R2", "f2", 1)]  # C4 later claimed to it too
    assert shared(rows) == {("C1", "004", "111", 3), ("C2", "004", "111", 3), ("C4", "004", "111", 3)}
    # C2 claims again to an account of their own: C1 and C4 still share
    moved = rows + [("C2", "004", "333", T0 + timedelta(days=2), "R3", "f3", 1)]
    assert shared(moved) == {("C1", "004", "111", 2), ("C4", "004", "111", 2)}
    # one person naming one account twice shares it with nobody
    assert shared([("C1", "004", "111", T0, "R1", "f1", 1), ("C1", "004", "111", T0, "R2", "f2", 1)]) == set()


CLAIM = st.tuples(st.sampled_from(["C1", "C2", "C3", "C4"]), st.sampled_from(["004", "088"]),
                  st.sampled_from(["111", "222", "333"]), st.integers(0, 3), st.sampled_from(["R1", "R2"]),
                  st.sampled_from(["f1", "f2"]), st.integers(1, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(CLAIM, max_size=10, unique_by=lambda c: (c[4], c[5], c[6])))
def test_shared_accounts_are_those_two_or_more_peoples_latest_claims_name(claims):
    rows = [(c, bank, account, T0 + timedelta(days=day), run, sha, n) for c, bank, account, day, run, sha, n in claims]
    latest = {}
    for c, bank, account, at, run, sha, n in sorted(rows, key=lambda r: (r[3], r[4], r[5], r[6])):
        latest[c] = (bank, account)
    people = {}
    for c, account in latest.items():
        people.setdefault(account, set()).add(c)
    expected = {(c, *account, len(people[account])) for c, account in latest.items() if len(people[account]) > 1}
    assert shared(rows) == expected
