"""The run summary, from hand-made stage summaries and suite records: what it lists,
that it escapes, and that no row value can reach it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from redress.context import RunContext
from tasks.report import summary_markdown, treasury_schedule

# Values a careless renderer could copy from stray keys of a record: none may appear.
PERSONAL = ["kim.minjun@naver.com", "010-9876-5432", "+821098765432", "김민준"]


def expectation(expectation, column, reason, unexpected=0, rows=100, **extra) -> dict:
    return {"expectation": expectation, "column": column, "reason": reason, "success": unexpected == 0,
            "unexpected_count": unexpected, "element_count": rows, "error": None, **extra}


def record(label, suite, table, *results) -> dict:
    return {"label": label, "suite": suite, "table": table, "index_column": "row_number",
            "success": all(r["success"] for r in results), "results": list(results)}


@pytest.fixture
def records() -> list[dict]:
    passed = record(
        "customers_staging-customers_2025-11-29.parquet", "customers_staging", "customers_staging",
        expectation("expect_column_values_to_not_be_null", "customer_id", "missing_customer_id"),
        expectation("expect_column_values_to_be_unique", "customer_id", "duplicate_customer_id"),
    )
    failed = record(
        "scope_exposures", "scope_exposures", "scope_exposures",
        expectation("expect_column_values_to_not_be_null", "customer_id", "gate_failed_null_customer_id"),
        expectation("expect_column_values_to_be_in_set", "matched_by", "gate_failed_unknown_matched_by",
                    unexpected=37, rows=1234,
                    # stray row-level keys (an older or careless record): never rendered
                    partial_unexpected_list=PERSONAL,
                    unexpected_index_query="SELECT * FROM customers WHERE email = 'kim.minjun@naver.com'"),
    )
    return [passed, failed]


def context(tmp_path: Path) -> RunContext:
    return RunContext(tmp_path, "R20251201-001", date(2025, 12, 1), Path("policies/coupang-2025-v1.toml"), "0" * 64)


# --------------------------------------------------------------------------- summary.md

SUMMARY = {
    "run_id": "R20251201-001",
    "ingest": [{"kind": "scope", "file_name": "scope_01.csv", "status": "accepted", "rows": 1200},
               {"kind": "scope", "file_name": "scope_04.parquet", "status": "unreadable_file", "rows": None}],
    "validate": {"destinations": {"rows_read": 1200, "exposure": 1100, "non_member": 50, "review": 20, "quarantine": 30},
                 "quarantine_reasons": {"unknown_category": 30}},
    "entitle": {"mode": "full", "why": "full: nothing classified yet", "customers_recomputed": 903,
               "by_reason": {"ELIGIBLE": {"customers": 900, "amount": 45_000_000}, "TEST_ACCOUNT": {"customers": 3, "amount": 0}}},
    "disburse": {"batches": 2, "payments": 900, "amount": 45_000_000,
                 "per_rail": {"voucher": {"payments": 880, "amount": 44_000_000},
                              "bank_transfer": {"payments": 20, "amount": 1_000_000}},
                 "treasury": [{"value_date": "2025-12-01", "amount": 1_000_000, "daily_cash_cap": 1_500_000}],
                 "overpayments": {"customers": 2, "amount": 100_000}},
    "notify": {"notifications": 950, "per_channel": {"sms": 900, "email": 50}},
}
FACTS = {
    "files": [],
    "quarantine": [{"kind": "scope", "reason": "unknown_category", "files": 0, "rows": 30},
                   {"kind": "scope", "reason": "unreadable_file", "files": 1, "rows": 0}],
    "batches": [{"rail": "bank_transfer", "value_date": "2025-12-01", "batches": 1, "payments": 20, "amount": 1_000_000},
                {"rail": "voucher", "value_date": "2025-12-01", "batches": 1, "payments": 880, "amount": 44_000_000}],
    "cash": [{"value_date": "2025-12-01", "this_run": 1_000_000, "all_runs": 1_200_000}],
}


def test_summary_lists_every_section(tmp_path, records):
    text = summary_markdown(context(tmp_path), SUMMARY, facts=FACTS, records=records)
    for heading in ("Files read", "Scope rows", "Quarantine by reason", "Data quality", "Entitlements by reason",
                    "New payments by rail", "Batches by rail and value date", "Treasury schedule",
                    "Overpayment exceptions", "Notifications"):
        assert f"# {heading}" in text, heading
    assert "| scope | scope_04.parquet | unreadable_file |  |" in text
    assert "| scope | unreadable_file | 1 | 0 |" in text
    assert "| bank_transfer | 2025-12-01 | 1 | 20 | 1,000,000 |" in text
    assert "| 2025-12-01 | 1,000,000 | 1,200,000 | 1,500,000 | 300,000 |" in text  # headroom under the cap
    assert "| sms | 900 |" in text and "| ELIGIBLE | 900 | 45,000,000 |" in text
    assert "failed" not in text.split("## Data quality")[0]


def test_summary_lists_suites_passed_and_failed(tmp_path, records):
    text = summary_markdown(context(tmp_path), SUMMARY, facts=FACTS, records=records)
    assert "2 suite runs: 1 passed, 1 failed" in text and "data_quality.html" in text
    assert "| customers_staging-customers_2025-11-29.parquet | customers_staging | customers_staging | passed | 2 | 0 |  |" in text
    assert "| scope_exposures | scope_exposures | scope_exposures | **FAILED** | 2 | 1 | gate_failed_unknown_matched_by |" in text
    assert not [v for v in PERSONAL if v in text]


def test_a_failed_run_shows_the_error_what_was_done_and_what_was_not(tmp_path, records):
    partial = {"run_id": "R20251201-001", "ingest": SUMMARY["ingest"]}
    error = "suite scope_exposures failed: expect_column_values_to_be_in_set on matched_by, 37 rows"
    text = summary_markdown(context(tmp_path), partial, facts=dict(FACTS, batches=[], cash=[]), records=records, error=error)
    assert f"**The run failed**: {error}" in text
    assert "scope_01.csv" in text and "**FAILED**" in text
    for heading in ("Scope rows", "Entitlements by reason", "New payments by rail", "Notifications"):
        assert f"## {heading} (all accepted files)\n\nNo figures" in text or f"## {heading}\n\nNo figures" in text


def test_summary_without_warehouse_facts_falls_back_to_the_stage_summaries(tmp_path):
    text = summary_markdown(context(tmp_path), SUMMARY)
    assert "| scope | unknown_category | 0 | 30 |" in text
    assert "| 2025-12-01 | 1,000,000 |  | 1,500,000 |  |" in text
    assert "No suite ran." in text


def test_rows_the_checks_disagree_on_are_named_by_file_and_row_only(tmp_path):
    held = {"rows": 3, "listed": [
        {"file_name": "scope_01.csv", "row_number": 7, "classified_as": "invalid_identifier", "checked_as": "exposure"},
        {"file_name": "scope_01.csv", "row_number": 9, "classified_as": "non_member",
         "checked_as": "exposure_before_account_created"}]}
    summary = dict(SUMMARY, validate=dict(SUMMARY["validate"], checks_disagree=held))
    text = summary_markdown(context(tmp_path), summary, facts=FACTS)
    section = text.split("### Rows the input checks disagree on (held in review, not paid)")[1].split("##")[0]
    assert "| scope_01.csv | 7 | invalid_identifier | exposure |" in section
    assert "| scope_01.csv | 9 | non_member | exposure_before_account_created |" in section
    assert "... and 1 more in the `review` table" in section
    quiet = summary_markdown(context(tmp_path), dict(SUMMARY, validate=dict(SUMMARY["validate"],
                                                                             checks_disagree={"rows": 0, "listed": []})))
    assert "disagree" not in quiet


def test_a_table_cell_cannot_break_the_markdown_table(tmp_path):
    odd = dict(SUMMARY, ingest=[{"kind": "scope", "file_name": "a|b\nc.csv", "status": "accepted", "rows": 1}])
    # the newline shown as \x0a (redress/escape.py), its backslash escaped for Markdown
    assert "| scope | a\\|b\\\\x0ac.csv | accepted | 1 |" in summary_markdown(context(tmp_path), odd)


def test_treasury_schedule_uses_the_cap_disburse_applied():
    assert treasury_schedule(SUMMARY, FACTS) == [{"value_date": "2025-12-01", "this_run": 1_000_000,
                                                  "all_runs": 1_200_000, "daily_cash_cap": 1_500_000,
                                                  "headroom": 300_000}]
