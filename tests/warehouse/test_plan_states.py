"""The plan's state changes in the warehouse (redress/warehouse/plans.py; SPEC "Approval
before release"): saved waiting, then left once, to approved, rejected, superseded or
expired; a plan that is not waiting never moves again."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import duckdb
import polars as pl
import pytest

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
    got = pl.read_parquet(plans.export_payments(con, "R1", tmp_path / "plan.parquet"))
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
