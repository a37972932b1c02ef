"""The plan's state changes in the warehouse (redress/warehouse/plans.py; SPEC "Approval
before release"): saved waiting, then left once, to approved, rejected, superseded or
expired; a plan that is not waiting never moves again."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import tempfile
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from redress.vocabulary import APPROVED, EXPIRED, REJECTED, SUPERSEDED, WAITING
from redress.warehouse import connect
from redress.warehouse import plans

AT = datetime(2025, 12, 1, 0, 0, tzinfo=timezone.utc)
DAY = date(2025, 12, 1)
SUMMARY = {"totals": {"batches": 1, "payments": 2, "amount_krw": 70000}, "days": [], "kinds": {}}


def planned(run_id: str) -> pl.DataFrame:
    return pl.DataFrame({
        "payment_id": [f"{run_id}-P1", f"{run_id}-P2"], "customer_id": ["A", "B"], "amount": [50000, 20000],
        "rail": ["bank_transfer"] * 2, "attempt": [1, 2], "batch_id": [f"{run_id}-B"] * 2, "value_date": [DAY] * 2,
        "bank_code": ["004", "020"], "bank_account": ["1234567890", "12345678901234"],
    }, schema_overrides={"attempt": pl.Int32})


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "warehouse.duckdb") as con:
        yield con


def save(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    con.register("plan_frame", planned(run_id))
    con.execute("CREATE OR REPLACE TABLE planned_payments AS SELECT * FROM plan_frame")
    con.unregister("plan_frame")
    con.execute("CREATE OR REPLACE TABLE planned_batches AS SELECT ? AS batch_id, 'bank_transfer' AS rail, "
                "?::DATE AS value_date, 2 AS item_count, 70000 AS control_sum", [f"{run_id}-B", DAY])
    plans.save(con, run_id=run_id, policy_id="p", policy_sha256="s", planned_at=AT,
               expires_at=AT + timedelta(days=1), summary=SUMMARY)


def state(con, run_id):
    return con.execute("SELECT state FROM plans WHERE run_id = ?", [run_id]).fetchone()[0]


def test_a_saved_plan_waits_with_its_payments_and_bank_details(con, tmp_path):
    save(con, "R1")
    plan = plans.read(con, "R1")
    assert (plan["state"], plan["payments"], plan["amount"], plan["batches"]) == (WAITING, 2, 70000, 1)
    assert plan["summary"] == SUMMARY and plan["gate_fingerprint"] is None
    con.execute("UPDATE plans SET state = 'superseded'")
    plans.save(con, run_id="R3", policy_id="p", policy_sha256="s", planned_at=AT, expires_at=AT + timedelta(days=1),
               summary=SUMMARY, gate_fingerprint="ab" * 32)  # what the emission suites passed
    kept = plans.read(con, "R3")
    assert kept["summary"] == SUMMARY and kept["gate_fingerprint"] == "ab" * 32
    got = pl.read_parquet(plans.export_payments(con, "R1", tmp_path / "plan"))
    assert got.equals(planned("R1"))
    assert plans.read(con, "R2") is None


@pytest.mark.parametrize("decision", [APPROVED, REJECTED, EXPIRED])
def test_a_waiting_plan_is_decided_once_and_never_again(con, decision):
    save(con, "R1")
    assert plans.decide(con, "R1", decision, by="Kim", note="n", at=AT)
    assert state(con, "R1") == decision
    for other in (APPROVED, REJECTED, EXPIRED):
        assert not plans.decide(con, "R1", other, by="Lee", note=None, at=AT)
    assert con.execute("SELECT decided_by, note FROM plans").fetchall() == [("Kim", "n")]


def test_a_later_run_supersedes_only_waiting_plans_and_not_its_own(con):
    for run_id in ("R1", "R2", "R3"):
        save(con, run_id)
    plans.decide(con, "R1", REJECTED, by="Kim", note=None, at=AT)
    assert plans.supersede_waiting(con, "R3", AT) == ["R2"]
    assert [state(con, r) for r in ("R1", "R2", "R3")] == [REJECTED, SUPERSEDED, WAITING]
    assert not plans.decide(con, "R2", APPROVED, by="Kim", note=None, at=AT)


def test_superseding_is_not_a_decision(con):
    with pytest.raises(ValueError):
        plans.decide(con, "R1", SUPERSEDED, by="Kim", note=None, at=AT)


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=0, max_size=10), part=st.integers(1, 12),
       orphans=st.lists(st.sampled_from(["B00", "B05x", "B99"]), max_size=3), seed=st.integers(0, 2**16))
def test_the_plan_is_exported_in_whole_batches_and_in_order_whatever_its_parts(sizes, part, orphans, seed):
    """export_payments cuts its files at batch ids, each at most `part` payments unless one
    batch alone holds more: read one after the other they are every payment of the run by
    batch_id and payment_id, even one whose batch plan_batches lacks, and no other run's."""
    batch_ids = [f"B{n:02d}" for n in range(1, len(sizes) + 1)]
    rows = [(f"{b}-{k:03d}", b) for b, size in zip(batch_ids, sizes) for k in range(size, 0, -1)]
    rows += [(f"{b}-{n:03d}", b) for n, b in enumerate(orphans)]
    frame = pl.DataFrame({"payment_id": [r[0] for r in rows], "batch_id": [r[1] for r in rows]}).with_columns(
        customer_id=pl.col("payment_id"), amount=pl.lit(1000, pl.Int64), rail=pl.lit("voucher"),
        attempt=pl.lit(1, pl.Int32), value_date=pl.lit(DAY), bank_code=pl.lit(None, pl.String),
        bank_account=pl.lit(None, pl.String)).sample(fraction=1.0, shuffle=True, seed=seed)
    with tempfile.TemporaryDirectory() as folder, connect(Path(folder) / "warehouse.duckdb") as con:
        con.register("rows_frame", frame)
        for run_id in ("R1", "R0"):  # another run's payments are never exported with R1's
            con.execute("INSERT INTO plan_payments BY NAME SELECT ? AS run_id, * FROM rows_frame", [run_id])
        for b, size in zip(batch_ids, sizes):
            con.execute("INSERT INTO plan_batches VALUES ('R1', ?, 'voucher', ?, ?, ?)", [b, DAY, size, size * 1000])
        parts = plans.export_payments(con, "R1", Path(folder) / "plan", part_payments=part)
        got = [pl.read_parquet(path) for path in parts]
        assert all(path.parent == Path(folder) / "plan" for path in parts)
    whole = pl.concat(got)
    assert whole.columns == list(plans.PAYMENT_COLUMNS)
    assert whole.equals(frame.select(plans.PAYMENT_COLUMNS).sort("batch_id", "payment_id"))
    seen: set[str] = set()
    for piece in got:
        in_piece = set(piece["batch_id"])
        assert not in_piece & seen  # a batch is never split between files
        seen |= in_piece
        planned_rows = piece.filter(pl.col("batch_id").is_in(batch_ids)).height
        assert planned_rows <= part or piece.filter(pl.col("batch_id").is_in(batch_ids))["batch_id"].n_unique() == 1
    # cut only where the next batch would not fit: as few files as whole batches allow
    expected, held = 1, 0
    for size in sizes:
        if held and held + size > part:
            expected, held = expected + 1, 0
        held += size
    assert len(got) == expected
