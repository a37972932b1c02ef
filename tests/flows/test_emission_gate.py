"""The emission gate end to end: a plan that fails its suites stops the run before any
batch folder or ledger row exists; the same inbox then runs clean and pays."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

import tasks.disburse
from flows.remediation import remediation
from redress.errors import RedressError
from redress.generate import generate
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

RUN_DATE = date(2025, 12, 1)
ITEM_CAP = 50


def q(data: Path, sql: str):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def planner_ignoring_the_item_cap():
    real = tasks.disburse.plan_payments

    def plan(con, due, policy, *args, **kwargs):
        return real(con, due, dataclasses.replace(policy, max_batch_items=1_000_000), *args, **kwargs)

    return plan


def summary_with_a_wrong_control_sum():
    real = tasks.disburse.batch_summary

    def summary(planned):
        out = real(planned)
        return out.with_columns(
            pl.when(pl.int_range(pl.len()) == 0).then(pl.col("control_sum") + 1)
            .otherwise(pl.col("control_sum")).alias("control_sum")
        )

    return summary


@pytest.mark.parametrize("target, corrupt, failure", [
    pytest.param("plan_payments", planner_ignoring_the_item_cap,
                 "suite batches failed: expect_column_values_to_be_between on item_count", id="over-item-cap"),
    pytest.param("batch_summary", summary_with_a_wrong_control_sum,
                 "suite batches failed: expect_column_values_to_be_in_set on sum_ok", id="wrong-control-sum"),
])
def test_a_plan_failing_its_suites_emits_nothing_then_a_clean_run_pays(tmp_path, monkeypatch, target, corrupt, failure):
    data = tmp_path / "data"
    generate(data, 500, seed=3)
    policy_path = tmp_path / "small-batches.toml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert "max_batch_items  = 50000" in text
    policy_path.write_text(text.replace("max_batch_items  = 50000", f"max_batch_items  = {ITEM_CAP}"), encoding="utf-8")

    monkeypatch.setattr(tasks.disburse, target, corrupt())
    with pytest.raises(RedressError) as raised:
        remediation(data_dir=data, policy_path=policy_path, run_date=RUN_DATE)
    message = str(raised.value)
    assert message.startswith(failure)
    reason = "batch_over_item_cap" if target == "plan_payments" else "control_sum_mismatch"
    assert f"[{reason}]" in message
    batches_dir = data / "outbox" / "batches"
    assert not batches_dir.exists() or list(batches_dir.iterdir()) == []  # not even a .tmp- folder
    assert q(data, "SELECT count(*) FROM ledger") == [(0,)]
    assert q(data, "SELECT count(*) FROM batches") == [(0,)]
    assert q(data, "SELECT outcome, error FROM runs") == [("failed", message)]

    monkeypatch.undo()
    summary = remediation(data_dir=data, policy_path=policy_path, run_date=RUN_DATE)
    eligible = q(data, "SELECT count(*), sum(amount) FROM entitlements WHERE reason = 'ELIGIBLE'")[0]
    assert eligible[0] > ITEM_CAP
    assert (summary["disburse"]["payments"], summary["disburse"]["amount_krw"]) == eligible
    assert q(data, "SELECT count(*), sum(amount) FROM ledger") == [eligible]
    folders = sorted(p.name for p in batches_dir.iterdir())
    assert folders == [b for (b,) in q(data, "SELECT batch_id FROM batches ORDER BY batch_id")]
    assert q(data, "SELECT max(item_count) FROM batches") <= [(ITEM_CAP,)]
    assert q(data, "SELECT outcome FROM runs ORDER BY run_id") == [("failed",), ("succeeded",)]
    assert q(data, "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'planned%'") == [(0,)]
