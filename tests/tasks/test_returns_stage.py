"""tasks/returns.py: finance's results move a payment's status once (SPEC "Input:
returns from finance", "Ledger"). The checks run as SQL booleans here (their Great
Expectations suite is tested in test_returns_checks.py); every warehouse is temporary."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redress.policy import DEFAULT_POLICY, load_policy
from redress.warehouse import connect
from redress import inbox as io
from redress.checks.returns_checks import RETURN_RULES, create_returns_staging
from redress.rules.payments import new_payments
from redress.vocabulary import LIVE_STATUSES as LIVE
from redress.warehouse.ledger import apply_results

ENTITLED = 50_000
POLICY = load_policy(DEFAULT_POLICY)
ENTITLEMENTS = pl.LazyFrame({"customer_id": ["c1"], "reason": ["ELIGIBLE"], "amount": [ENTITLED],
                             "rail": ["bank_transfer"]})


def add_payment(con, payment_id: str, amount: int, rail: str, attempt: int, status: str = "issued") -> None:
    con.execute("INSERT INTO ledger VALUES (?, 'c1', ?, 'KRW', ?, 'B1', 'pol', 'R1', ?, ?, NULL, 'R1')",
                [payment_id, amount, rail, attempt, status])


def failures_of(con) -> pl.DataFrame:
    """row_number, reason of every failing row, from the rule booleans the suite checks."""
    rows = con.execute(" UNION ALL ".join(
        f"SELECT row_number, '{reason}' AS reason FROM returns_staging WHERE {rule}"
        for rule, reason in RETURN_RULES.items()) + " ORDER BY row_number").fetchall()
    return pl.DataFrame(rows, schema={"row_number": pl.Int64, "reason": pl.String}, orient="row")


def apply_file(warehouse: Path, folder: Path, name: str, rows: list[tuple[str, str]]) -> tuple[int, int, pl.DataFrame]:
    """One results file through the reader, the checks and apply_results, committed."""
    csv = folder / name
    csv.write_text("payment_id,status,reason\n" + "".join(f"{p},{s},bank\n" for p, s in rows), encoding="utf-8")
    staged = folder / (name + ".parquet")
    io.stage(io.returns_frame(csv), staged)
    with connect(warehouse) as con:
        create_returns_staging(con, staged)
        failures = failures_of(con)
        con.register("failures", failures)
        con.execute("BEGIN")
        applied, already = apply_results(con, "R2")
        con.execute("COMMIT")
    return applied, already, failures


def statuses(warehouse: Path) -> dict[str, str]:
    with connect(warehouse, read_only=True) as con:
        return dict(con.execute("SELECT payment_id, status FROM ledger ORDER BY payment_id").fetchall())


def live_sum(warehouse: Path) -> int:
    with connect(warehouse, read_only=True) as con:
        return con.execute(f"SELECT coalesce(sum(amount), 0) FROM ledger WHERE status IN {LIVE}").fetchall()[0][0]


def reissue(warehouse: Path) -> int:
    """The disburse stage's owed rule: a new payment for whatever is owed now."""
    with connect(warehouse) as con:
        ledger = con.sql("SELECT customer_id, amount, status, rail, attempt FROM ledger").pl().lazy()
        count = con.execute("SELECT count(*) FROM ledger").fetchall()[0][0]
        for n, p in enumerate(new_payments(ENTITLEMENTS, ledger, POLICY).iter_rows(named=True), start=count + 1):
            add_payment(con, f"P{n:03d}", p["amount"], p["rail"], p["attempt"])
        return count


def test_only_an_issued_payment_moves_and_a_repeated_settled_is_counted(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with connect(warehouse) as con:
        for payment_id, status in (("P1", "issued"), ("P2", "settled"), ("P3", "returned"), ("P4", "issued")):
            add_payment(con, payment_id, 1000, "bank_transfer", 1, status)
    applied, already, failures = apply_file(warehouse, tmp_path, "r.csv", [
        ("P1", "settled"), ("P2", "settled"), ("P3", "settled"), ("P4", "returned")])
    assert (applied, already) == (2, 1)
    assert failures.rows() == [(3, "result_after_return")]
    assert statuses(warehouse) == {"P1": "settled", "P2": "settled", "P3": "returned", "P4": "returned"}


def checked(warehouse: Path, folder: Path, rows: str):
    (folder / "r.csv").write_text("payment_id,status,reason\n" + rows, encoding="utf-8")
    io.stage(io.returns_frame(folder / "r.csv"),
             folder / "r.parquet")
    con = connect(warehouse)
    create_returns_staging(con, folder / "r.parquet")
    return con


def test_the_guard_holds_when_the_ledger_moved_after_the_checks(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with connect(warehouse) as con:
        add_payment(con, "P1", 1000, "bank_transfer", 1)
    with checked(warehouse, tmp_path, "P1,settled,\n") as con:  # checked while P1 was issued
        con.execute("UPDATE ledger SET status = 'returned'")  # then returned by someone else
        con.register("failures", failures_of(con))
        assert apply_results(con, "R2") == (0, 0)
    assert statuses(warehouse) == {"P1": "returned"}


def test_a_file_failing_whole_applies_nothing(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with connect(warehouse) as con:
        add_payment(con, "P1", 1000, "bank_transfer", 1)
        add_payment(con, "P2", 1000, "bank_transfer", 1, "settled")
    with checked(warehouse, tmp_path, "P1,settled,\nP2,settled,\n") as con:
        con.register("failures", pl.DataFrame({"row_number": [None], "reason": ["missing_column"]},
                                               schema={"row_number": pl.Int64, "reason": pl.String}))
        assert apply_results(con, "R2") == (0, 0)
    assert statuses(warehouse) == {"P1": "issued", "P2": "settled"}


RESULTS = st.lists(  # files; each row names a payment by its index in the ledger (mod its length)
    st.lists(st.tuples(st.integers(0, 9), st.sampled_from(["settled", "returned"])), min_size=1, max_size=3),
    min_size=1, max_size=6)


@settings(max_examples=12, deadline=None)
@given(files=RESULTS)
def test_any_sequence_of_results_moves_each_status_once_and_never_pays_twice(scratch_root, files):
    with tempfile.TemporaryDirectory(dir=scratch_root) as tmp:
        folder = Path(tmp)
        warehouse = folder / "w.duckdb"
        with connect(warehouse) as con:
            add_payment(con, "P001", ENTITLED, "bank_transfer", 1)
        moved: dict[str, list[tuple[str, str]]] = {}
        for n, rows in enumerate(files):
            before = statuses(warehouse)
            ids = sorted(before)
            named = [(ids[i % len(ids)], status) for i, status in rows]
            applied, already, failures = apply_file(warehouse, folder, f"r{n}.csv", named)
            after = statuses(warehouse)
            for payment_id in ids:
                if after[payment_id] != before[payment_id]:
                    moved.setdefault(payment_id, []).append((before[payment_id], after[payment_id]))
            assert applied == sum(after[p] != before[p] for p in ids)
            # every row naming a payment returned before the file is quarantined as such
            bad = dict(failures.rows())
            for row_number, (payment_id, _) in enumerate(named, start=1):
                if before[payment_id] == "returned":
                    assert bad[row_number] == "result_after_return"
            assert live_sum(warehouse) <= ENTITLED
            reissue(warehouse)
            assert live_sum(warehouse) == ENTITLED  # paid exactly once, whatever finance said
        for payment_id, moves in moved.items():
            assert len(moves) == 1 and moves[0][0] == "issued", (payment_id, moves)


def test_the_guard_never_moves_a_payment_held_on_claim_even_unchecked(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with connect(warehouse) as con:
        add_payment(con, "P1", 1000, "claim", 1)
        add_payment(con, "P2", 1000, "bank_transfer", 1)
    with checked(warehouse, tmp_path, "P1,settled,\nP2,returned,\n") as con:
        # as if the checks had passed every row: the UPDATE itself refuses the claim rail
        con.register("failures", pl.DataFrame(schema={"row_number": pl.Int64, "reason": pl.String}))
        assert apply_results(con, "R2") == (1, 0)
    assert statuses(warehouse) == {"P1": "issued", "P2": "returned"}


@settings(max_examples=12, deadline=None)
@given(files=RESULTS)
def test_no_result_moves_a_payment_held_on_claim(scratch_root, files):
    with tempfile.TemporaryDirectory(dir=scratch_root) as tmp:
        folder = Path(tmp)
        warehouse = folder / "w.duckdb"
        rails = {"P1": "bank_transfer", "P2": "claim", "P3": "voucher"}
        with connect(warehouse) as con:
            for payment_id, rail in rails.items():
                add_payment(con, payment_id, 1000, rail, 1)
        for n, rows in enumerate(files):
            before = statuses(warehouse)
            named = [(sorted(rails)[i % len(rails)], status) for i, status in rows]
            applied, _, failures = apply_file(warehouse, folder, f"r{n}.csv", named)
            after = statuses(warehouse)
            bad = dict(failures.rows())
            for row_number, (payment_id, _) in enumerate(named, start=1):
                if rails[payment_id] == "claim":
                    assert bad[row_number] == "result_for_unsent_payment"
            assert after["P2"] == "issued"
            assert applied == sum(after[p] != before[p] for p in rails)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledger=st.lists(st.tuples(st.sampled_from(["issued", "settled", "returned"]), st.integers(1, 90_000),
                                 st.sampled_from(["bank_transfer", "voucher", "claim"])), min_size=1, max_size=5),
       rows=st.lists(st.tuples(st.sampled_from(["P1", "P2", "P3", "P4", "P5", "P9"]),
                               st.sampled_from(["settled", "returned", "bogus"])), min_size=1, max_size=7))
def test_the_money_a_returns_file_moves_is_what_the_ledger_shows_after_it(tmp_path_factory, ledger, rows):
    """results_money, read before apply_results: the KRW it returns and settles is the
    KRW of the payments whose status it moves, and the KRW still issued is that of the
    payments a quarantined row names that are still issued after it (found by review:
    the summary gave row counts only)."""
    from redress.warehouse.ledger import results_money
    folder = tmp_path_factory.mktemp("money")
    warehouse = folder / "w.duckdb"
    with connect(warehouse) as con:
        for n, (status, amount, rail) in enumerate(ledger, start=1):
            add_payment(con, f"P{n}", amount, rail, 1, status)
    before = statuses(warehouse)
    csv = folder / "r.csv"
    csv.write_text("payment_id,status,reason\n" + "".join(f"{p},{s},bank\n" for p, s in rows), encoding="utf-8")
    io.stage(io.returns_frame(csv), folder / "r.parquet")
    with connect(warehouse) as con:
        create_returns_staging(con, folder / "r.parquet")
        failures = failures_of(con)
        con.register("failures", failures)
        con.execute("BEGIN")
        money = results_money(con)
        apply_results(con, "R2")
        con.execute("COMMIT")
    after = statuses(warehouse)
    amount = {f"P{n}": a for n, (_, a, _) in enumerate(ledger, start=1)}
    sent = {f"P{n}" for n, (_, _, rail) in enumerate(ledger, start=1) if rail != "claim"}  # FINANCE_RAILS
    moved = {p: after[p] for p in after if before[p] != after[p]}
    named = {rows[n - 1][0] for n in failures["row_number"].to_list()}
    assert money == {
        "returned_krw": sum(amount[p] for p, s in moved.items() if s == "returned"),
        "settled_krw": sum(amount[p] for p, s in moved.items() if s == "settled"),
        "not_applied_krw": sum(amount[p] for p in named if p in sent and after[p] == "issued"),
    }
