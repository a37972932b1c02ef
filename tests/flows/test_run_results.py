"""The typed stage results end to end: `runs.counts` holds every stage's result, returns
included, and the report's "Files read" lists the returns files (issue 11)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.remediation import remediation
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

CUSTOMERS = """customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account
B1,Kim,b1@example.com,010-2000-0001,active,2020-01-01,,false,bank_transfer,004,1234567890
B2,Lee,b2@example.com,010-2000-0002,active,2020-01-01,,false,bank_transfer,088,2234567890
V1,Park,v1@example.com,010-2000-0003,active,2020-01-01,,false,,,
"""
SCOPE = """customer_id,email,phone,data_category,accessed_at,confidence,source
B1,,,name,2025-07-01,,log
B2,,,name,2025-07-01,,log
V1,,,name,2025-07-01,,log
"""


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def returned(tmp_path_factory):
    """Day 1 pays everyone; day 2 reads a returns file: B1 returned, B2 settled, one
    unknown payment id. Returns (data folder, day-2 summary)."""
    data = tmp_path_factory.mktemp("results") / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS)
    (data / "inbox" / "scope" / "scope.csv").write_text(SCOPE)
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    ids = dict(q(data, "SELECT customer_id, payment_id FROM ledger"))
    (data / "inbox" / "returns" / "returns_*day2*.csv").write_text(
        "payment_id,status,reason\n"
        f"{ids['B1']},returned,account closed\n{ids['B2']},settled,\nP-NOPE-1,settled,\n")
    return data, remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))


def test_runs_counts_hold_the_returns_counts_as_the_warehouse_has_them(returned):
    data, summary = returned
    run_id = summary["run_id"]
    (counts,), = q(data, "SELECT counts FROM runs WHERE run_id = ?", [run_id])
    counts = json.loads(counts)
    moved = q(data, "SELECT status, count(*) FROM ledger WHERE updated_run_id = ? AND attempt = 1 GROUP BY ALL",
              [run_id])
    (quarantined,), = q(data, "SELECT count(*) FROM quarantine WHERE run_id = ? AND kind = 'returns'", [run_id])
    assert dict(moved) == {"returned": 1, "settled": 1} and quarantined == 1
    assert {k: counts["returns"][k] for k in ("payments_applied", "already_settled", "rows_quarantined")} == {
        "payments_applied": 2, "already_settled": 0, "rows_quarantined": 1}
    (entry,) = counts["returns"]["files"]
    assert (entry["file_name"], entry["status"], entry["rows_read"]) == ("returns_*day2*.csv", "accepted", 3)
    # The reissue of B1's returned transfer is this run's only payment: its amount as the ledger has it.
    (paid,), = q(data, "SELECT sum(amount) FROM ledger WHERE run_id = ?", [run_id])
    assert (counts["disburse"]["payments"], counts["disburse"]["amount_krw"]) == (1, paid)
    # beside the stages' results, the labels of the run's suite records (the page written again compares them)
    labels = sorted(json.loads(p.read_text())["label"] for p in (data / "reports" / run_id / "validations").glob("*.json"))
    assert counts.pop("suite_records") == labels and "returns_staging-returns_*day2*.csv" in labels
    assert counts == {k: summary[k] for k in ("ingest", "returns", "claims", "validate", "entitle", "disburse", "notify")}


def test_files_read_in_the_report_list_the_returns_file(returned):
    data, summary = returned
    text = (data / "reports" / summary["run_id"] / "summary.md").read_text(encoding="utf-8")
    files = text.split("## Files read\n\n")[1].split("\n\n")[0]
    assert "| returns | returns\\_\\*day2\\*.csv | accepted | 3 |" in files.splitlines()
