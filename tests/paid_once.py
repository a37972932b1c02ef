"""What the kill-then-rerun tests share: running `redress` in a process killed at a
checkpoint (redress/runtime/faults.py), and the exactly-once assertions on the result."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb
import polars as pl

from forked import run_redress

ROOT = Path(__file__).resolve().parents[1]
LIVE = "('issued', 'settled')"  # redress.vocabulary.LIVE_STATUSES, written out as the tests read SQL


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def redress_killed_at(step: str, data: Path, *args: str) -> subprocess.CompletedProcess:
    """`redress --data-dir DATA ARGS...` in a child process that kills itself (exit
    KILLED_EXIT_CODE) when it reaches checkpoint `step`, against the test Prefect server."""
    from prefect.settings import get_current_settings

    env = dict(os.environ, REDRESS_FAIL_AT=step, PREFECT_API_URL=str(get_current_settings().api.url))
    return run_redress(["--data-dir", str(data), *args], env=env, cwd=ROOT, timeout=300)


def assert_paid_exactly_once(data: Path, *, notifications: bool = True) -> None:
    """Every eligible customer's live payments sum to the entitlement, no payment id twice;
    the outbox holds exactly the ledger's batches, each manifest with the ledger's totals,
    no leftover temporary folder; and (`notifications`) each published person once."""
    assert q(data, f"""
        WITH paid AS (SELECT customer_id, sum(amount) FILTER (status IN {LIVE}) AS paid FROM ledger GROUP BY ALL)
        SELECT count(*) FROM entitlements e LEFT JOIN paid p USING (customer_id)
        WHERE e.reason = 'ELIGIBLE' AND coalesce(p.paid, 0) <> e.amount""") == [(0,)]
    assert q(data, "SELECT count(*) - count(DISTINCT payment_id) FROM ledger") == [(0,)]
    batches_dir = data / "outbox" / "batches"
    assert not list(batches_dir.glob(".tmp-*"))
    folders = {p.name for p in batches_dir.iterdir()}
    assert folders == {r[0] for r in q(data, "SELECT batch_id FROM batches")}
    assert folders == {r[0] for r in q(data, "SELECT DISTINCT batch_id FROM ledger")}
    for batch_id, count, total in q(data, "SELECT batch_id, count(*), sum(amount) FROM ledger GROUP BY ALL"):
        manifest = json.loads((batches_dir / batch_id / "manifest.json").read_text())
        assert (manifest["item_count"], manifest["control_sum"]) == (count, total)
    if notifications:
        notes_dir = data / "outbox" / "notifications"
        assert not list(notes_dir.glob(".tmp-*"))
        codes = pl.concat([pl.read_parquet(p, columns=["reference_code"], glob=False)
                           for p in sorted(notes_dir.glob("*.parquet"))] or [pl.DataFrame({"reference_code": []})])
        assert codes.height == q(data, "SELECT count(*) FROM notifications")[0][0]
        assert codes["reference_code"].n_unique() == codes.height
