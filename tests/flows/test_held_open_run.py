"""A run holds its warehouse's DuckDB instance open while the file is small
(redress.warehouse.held_open) and opens the file at every step past that: both give the
same outcomes (the same inputs, two runs each): the tables row for row, the outbox's
files by name, its Parquet and CSV files byte for byte."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

import redress.warehouse
from flows.remediation import remediation
from redress.generate import generate
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

TABLES = {
    "entitlements": "SELECT * FROM entitlements ORDER BY customer_id",
    "ledger": "SELECT * FROM ledger ORDER BY payment_id",
    "batches": "SELECT * EXCLUDE (created_at, manifest_sha256) FROM batches ORDER BY batch_id",
    "notifications": "SELECT * FROM notifications ORDER BY person_key",
    "scope_exposures": "SELECT * FROM scope_exposures ORDER BY ALL",
    "quarantine": "SELECT * FROM quarantine ORDER BY ALL",
}


def outcome(data: Path) -> tuple[dict, list, dict]:
    """Rows of the tables; the outbox's file names; the bytes of its Parquet and CSV
    files (the bank file, the workbook and the manifest carry the clock's time)."""
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        rows = {table: con.execute(sql).fetchall() for table, sql in TABLES.items()}
    files = sorted(str(p.relative_to(data)) for p in (data / "outbox").rglob("*") if p.is_file())
    data_files = {name: (data / name).read_bytes() for name in files if name.endswith((".parquet", ".csv"))}
    return rows, files, data_files


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    data = tmp_path_factory.mktemp("held") / "data"
    generate(data, 300, seed=31)
    return data


def test_a_run_holding_its_warehouse_open_pays_and_writes_what_opening_it_every_step_does(
        generated, tmp_path, monkeypatch):
    connections = {"held": 0}
    held_connection = redress.warehouse.held_connection

    def counted(path):
        con = held_connection(path)
        connections["held"] += con is not None
        return con

    monkeypatch.setattr(redress.warehouse, "held_connection", counted)
    outcomes = {}
    for bound in (redress.warehouse.HOLD_MAX_BYTES, -1):  # held; never held
        monkeypatch.setattr(redress.warehouse, "HOLD_MAX_BYTES", bound)
        data = tmp_path / f"bound{bound}"
        shutil.copytree(generated, data)
        connections["held"] = 0
        for day in (1, 2):
            remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, day))
        outcomes[bound] = outcome(data), connections["held"]
    (held, held_connections), (opened, opened_connections) = outcomes.values()
    assert held_connections > 20 and opened_connections == 0
    rows, files, data_files = held
    assert rows["ledger"] and rows["notifications"] and any(name.endswith("pain.001.xml") for name in files)
    assert any("notifications" in name for name in data_files)
    assert held == opened
