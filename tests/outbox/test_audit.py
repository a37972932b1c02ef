"""redress/outbox/audit.py ledger_unlike_batches: a batch's ledger rows are written once
with it and never deleted nor re-priced, so any hand edit of the ledger that changes a
batch's count or sum, or names a batch the warehouse does not hold, is named."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from redress.errors import RedressError
from redress.outbox.audit import ledger_unlike_batches, refuse_ledger_unlike_batches

BATCHES = ["B-0001", "B-0002", "B-0003"]
# a batch's payments' amounts, then the edits: (kind, batch index, payment index, new amount)
LEDGERS = st.lists(st.lists(st.integers(1, 90_000), min_size=1, max_size=4), min_size=1, max_size=3)
EDITS = st.lists(st.tuples(st.sampled_from(["delete", "reprice", "add", "status"]), st.integers(0, 2),
                           st.integers(0, 3), st.integers(1, 90_000)), max_size=4)


def _warehouse(amounts: list[list[int]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE batches (batch_id VARCHAR, item_count BIGINT, control_sum BIGINT)")
    con.execute("CREATE TABLE ledger (payment_id VARCHAR, batch_id VARCHAR, amount BIGINT, status VARCHAR)")
    for batch, paid in zip(BATCHES, amounts):
        con.execute("INSERT INTO batches VALUES (?, ?, ?)", [batch, len(paid), sum(paid)])
        for i, amount in enumerate(paid):
            con.execute("INSERT INTO ledger VALUES (?, ?, ?, 'issued')", [f"{batch}-{i}", batch, amount])
    return con


@given(amounts=LEDGERS, edits=EDITS)
@settings(max_examples=30, deadline=None)
@example(amounts=[[1], [1]], edits=[("add", 1, 0, 1), ("delete", 1, 1, 1)]).via("found by hypothesis: a model bug")
@example(amounts=[[1]], edits=[("add", 1, 0, 1), ("delete", 1, 0, 1)]).via("found by hypothesis: a model bug")
def test_every_batch_whose_rows_an_edit_changed_is_named_and_only_those(amounts, edits):
    con = _warehouse(amounts)
    assert ledger_unlike_batches(con) == []
    refuse_ledger_unlike_batches(con)  # nothing to refuse
    # the model: each batch's rows as [payment id, amount or None once deleted], by the ids
    # the ledger holds (an added row has its own: found by hypothesis, a row added then
    # "deleted" by its place in the model was another id, deleted from nothing)
    rows = {batch: [[f"{batch}-{i}", a] for i, a in enumerate(paid)] for batch, paid in zip(BATCHES, amounts)}
    for n, (kind, b, i, amount) in enumerate(edits):
        batch = BATCHES[b]
        if kind == "add":  # a row for a batch, held or not
            con.execute("INSERT INTO ledger VALUES (?, ?, ?, 'issued')", [f"extra-{n}", batch, amount])
            rows.setdefault(batch, []).append([f"extra-{n}", amount])
        elif batch in rows and i < len(rows[batch]) and rows[batch][i][1] is not None:
            payment = rows[batch][i][0]
            if kind == "delete":
                con.execute("DELETE FROM ledger WHERE payment_id = ?", [payment])
                rows[batch][i][1] = None
            elif kind == "reprice":
                con.execute("UPDATE ledger SET amount = ? WHERE payment_id = ?", [amount, payment])
                rows[batch][i][1] = amount
            else:  # what returns and claims do: a status moves, the batch still holds the row
                con.execute("UPDATE ledger SET status = 'returned' WHERE payment_id = ?", [payment])
    held = {batch: (len(paid), sum(paid)) for batch, paid in zip(BATCHES, amounts)}
    # a batch the warehouse does not hold counts only while a ledger row names it
    now = {batch: (sum(a is not None for _, a in paid), sum(a for _, a in paid if a is not None))
           for batch, paid in rows.items() if batch in held or any(a is not None for _, a in paid)}
    expected = sorted(b for b in set(held) | set(now) if held.get(b) != now.get(b))
    named = ledger_unlike_batches(con)
    assert [line.split(":")[0].split()[-1] if line.startswith("batch ") else line.split(", which")[0].split()[-1]
            for line in named] == expected
    if expected:
        with pytest.raises(RedressError, match="^the ledger does not match the batches it was released in: "):
            refuse_ledger_unlike_batches(con)


def test_a_deleted_row_and_a_batch_the_warehouse_does_not_hold_are_said_with_their_counts():
    con = _warehouse([[50_000, 50_000], [40_000]])
    con.execute("DELETE FROM ledger WHERE payment_id = 'B-0001-0'")
    con.execute("INSERT INTO ledger VALUES ('x', 'B-9999', 70000, 'issued')")
    assert ledger_unlike_batches(con) == [
        "batch B-0001: the ledger holds 1 payment for 50,000, the batches table 2 payments for 100,000 (minor units)",
        "ledger rows name batch B-9999, which the batches table does not hold (1 payment for 70,000)"]
    assert ledger_unlike_batches(con, ["B-0002"]) == []
    with pytest.raises(RedressError, match=r"\(and 1 more batch\)\. The warehouse was changed outside redress"):
        refuse_ledger_unlike_batches(con)


def test_verify_reads_a_warehouse_no_run_of_this_version_has_migrated(tmp_path):
    """Found by the fix review: verify opens the warehouse read-only, so a warehouse of
    the version before batches.manifest_sha256 gave a traceback until a run migrated it."""
    from redress.outbox.audit import verify

    con = _warehouse([[50_000, 40_000]])
    con.execute("ALTER TABLE batches ADD COLUMN rail VARCHAR DEFAULT 'voucher'")
    for column in ("currency", "value_date", "policy_id", "run_id"):
        con.execute(f"ALTER TABLE batches ADD COLUMN {column} VARCHAR")
    found = verify(con, tmp_path, None)
    assert (found["batches"], found["payments"], found["amount"]) == (1, 2, 90_000)
    assert found["problems"] == ["batch B-0001: its folder outbox/batches/B-0001 is gone (finance copies batch folders "
                                 "out, never moves or deletes them)"]
