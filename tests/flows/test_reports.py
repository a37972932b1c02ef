"""What people see of a run: reports/<run_id>/ and the Prefect artifacts, for a run that
succeeds and for one stopped by a failing gate suite, with no personal data in any."""

from __future__ import annotations

import html
import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

import redress.checks.suites
from flows.remediation import remediation
from redress import escape, vocabulary
from redress.generate import SNAPSHOT, generate
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

RUN_DATE = date(2025, 12, 1)
TABLE_KEYS = {"quarantine-by-reason", "data-quality-suites", "payments-by-rail-and-value-date", "treasury-schedule"}


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def personal_values(data: Path) -> set[str]:
    """Every name, email, phone, bank account and customer id the run read, as given and
    normalised (short malformed fragments like '12345' left out: they are not a person)."""
    values = set()
    for (v,) in q(data, """
            SELECT unnest([email, phone, email_norm, phone_e164, bank_account, customer_id]) FROM customers
            UNION SELECT unnest([email, phone, customer_id]) FROM scope_rows"""):
        if v and (len(v) >= 8 or not v.isascii()):
            values.add(v)
    # names are checked at the door and not kept in the warehouse: read them from the snapshots
    for snapshot in sorted((data / "inbox" / "customers").glob("*.parquet")):
        values.update(v for v in pl.read_parquet(snapshot, columns=["name"])["name"].to_list() if v)
    assert len(values) > 1000
    return values


def artifacts_of(flow_run_id) -> dict[str, str]:
    """key -> everything the API holds of the artifact (data and description), as text."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: (a.data if isinstance(a.data, str) else json.dumps(a.data)) + "\n" + (a.description or "")
            for a in found}


def leaks(values: set[str], texts: dict[str, str]) -> list[tuple[str, str]]:
    return [(name, v) for name, text in texts.items() for v in values if v in text]


def report_texts(report: Path) -> dict[str, str]:
    """Every file of reports/<run_id>/ a person reads or a tool shows (not GX's static assets)."""
    paths = [p for p in report.rglob("*") if p.suffix in (".md", ".html", ".json") and "static" not in p.parts]
    return {str(p.relative_to(report)): p.read_text(encoding="utf-8") for p in paths}


# --------------------------------------------------------------------------- a run that succeeds


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = tmp_path_factory.mktemp("reports")
    generate(data, 500, seed=5)
    state = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=RUN_DATE, return_state=True)
    summary = state.result()
    return data, summary, data / "reports" / summary["run_id"], state.state_details.flow_run_id


def test_report_files_exist_and_list_the_suites(run):
    data, summary, report, _ = run
    assert {p.name for p in report.iterdir()} >= {"summary.md", "data_quality.html", "validations"}
    text = (report / "summary.md").read_text(encoding="utf-8")
    assert text.strip() == summary["report"].strip()
    records = list((report / "validations").glob("*.json"))
    assert len(records) >= 2 and f"{len(records)} suite runs: " in text
    assert f"| customers_staging-{SNAPSHOT} | customers_staging | customers_staging | passed |" in text
    assert "| scope_exposures | scope_exposures | scope_exposures | passed |" in text
    page = (report / "data_quality.html").read_text(encoding="utf-8")
    assert page.count("<section id=\"run-") == len(records) and "<section id=\"reasons\">" in page
    assert 'scope_exposures: <span class="passed">passed</span>' in page
    assert "gate_failed_unknown_matched_by" in page and f"customers_staging-{SNAPSHOT}" in page


def test_defects_quarantined_as_designed_read_as_handled_not_failed(run):
    """The generated breach has defective scope rows, all quarantined or held in review:
    the scope_rows suite is "defects found and handled", in amber, with the rows counted."""
    data, summary, report, _ = run
    page = (report / "data_quality.html").read_text(encoding="utf-8")
    assert 'scope_rows: <span class="handled">defects found and handled</span>' in page
    assert 'class="stopped"' not in page and "FAILED" not in page
    held = sum(summary["validate"]["quarantine_reasons"].values()) + summary["validate"]["destinations"]["review"]
    record = json.loads((report / "validations" / "scope_rows.json").read_text(encoding="utf-8"))
    assert sum(r["unexpected_count"] for r in record["results"] if not r["success"]) == held > 0
    assert f'<td class="n">{held:,}</td>' in page
    for reason in summary["validate"]["quarantine_reasons"]:
        assert f"<dt>{reason}</dt><dd>{html.escape(vocabulary.SCOPE_ROW_REASONS[reason])}</dd>" in page
    text = (report / "summary.md").read_text(encoding="utf-8")
    assert "| scope_rows | scope_rows | scope_rows_checked | defects found and handled |" in text


def test_gx_data_docs_are_not_built(run):
    """GX's Data Docs needed eight CDN hosts to show anything: no longer built or pointed at."""
    data, summary, report, _ = run
    assert not (report / "data_docs").exists() and not (report / "validations" / "gx").exists()
    assert "data_docs" not in (report / "summary.md").read_text(encoding="utf-8")


def test_summary_has_every_figure_people_asked_for(run):
    data, summary, report, _ = run
    text = (report / "summary.md").read_text(encoding="utf-8")
    for heading in ("Files read", "Scope rows", "Quarantine by reason", "Data quality", "Entitlements by reason",
                    "New payments by rail", "Batches by rail and value date", "Notifications"):
        assert f"# {heading}" in text, heading
    for reason, rows in summary["validate"]["quarantine_reasons"].items():
        names = ", ".join(n for (n,) in q(data, "SELECT DISTINCT file_name FROM quarantine "
                                                "WHERE kind = 'scope' AND reason = ? ORDER BY 1", [reason]))
        assert f"| scope | {reason} | {vocabulary.SCOPE_ROW_REASONS[reason]} | 0 | {rows:,} | {escape.markdown(names)} |" in text
    for rail, value_date, n, amount in q(data, "SELECT rail, value_date, sum(item_count), sum(control_sum) FROM batches GROUP BY ALL"):
        assert f"| {rail} | {value_date} | " in text and f"| {n:,} | {amount:,} |" in text
    if summary["disburse"]["treasury"]:
        assert "## Treasury schedule" in text
    assert "No figures" not in text and "failed**" not in text


def test_artifacts_hold_the_summary_and_its_tables(run):
    data, summary, report, flow_run_id = run
    artifacts = artifacts_of(flow_run_id)
    assert set(artifacts) >= {"run-summary"} | TABLE_KEYS
    assert summary["report"].strip() in artifacts["run-summary"]
    assert "scope_exposures" in artifacts["data-quality-suites"]
    quarantine = json.loads(artifacts["quarantine-by-reason"].split("\n")[0])
    # Headers in words, numbers with separators (redress/escape.py markdown_rows).
    assert {r["Reason"]: int(r["Rows"].replace(",", "")) for r in quarantine
            if r["Kind"] == "scope" and r["Rows"] != "0"} == summary["validate"]["quarantine_reasons"]
    batches = json.loads(artifacts["payments-by-rail-and-value-date"].split("\n")[0])
    assert sum(int(b["Payments"].replace(",", "")) for b in batches) == summary["disburse"]["payments"]
    assert all("_" not in header for table in (quarantine, batches) for header in table[0])


def test_no_personal_data_in_the_report_or_the_artifacts(run):
    data, summary, report, flow_run_id = run
    values = personal_values(data)
    # the quarantine file is meant to hold rows as given: a sign the values are findable
    assert leaks(values, {"quarantine": (data / "quarantine" / summary["run_id"] / "quarantine.csv").read_text()})
    assert leaks(values, report_texts(report)) == []
    assert leaks(values, artifacts_of(flow_run_id)) == []


# --------------------------------------------------------------------------- a run a gate stops


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """The scope_exposures gate, changed to refuse rows matched by email or phone, stops
    the run after ingest and classification."""
    expectations = tmp_path_factory.mktemp("expectations")
    shutil.copytree(redress.checks.suites.EXPECTATIONS_DIR, expectations, dirs_exist_ok=True)
    suite = json.loads((expectations / "scope_exposures.json").read_text())
    for e in suite["expectations"]:
        if e["kwargs"].get("column") == "matched_by":
            e["kwargs"]["value_set"] = ["customer_id"]
    (expectations / "scope_exposures.json").write_text(json.dumps(suite))
    data = tmp_path_factory.mktemp("failed")
    generate(data, 500, seed=5)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(redress.checks.suites, "EXPECTATIONS_DIR", expectations)
        state = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=RUN_DATE, return_state=True)
    assert state.is_failed()
    (run_id, outcome, error), = q(data, "SELECT run_id, outcome, error FROM runs")
    assert outcome == "failed" and error.startswith("suite scope_exposures failed")
    return data, run_id, error, data / "reports" / run_id, state.state_details.flow_run_id


def test_a_failed_run_still_writes_what_it_did_and_the_failed_suite(failed_run):
    data, run_id, error, report, _ = failed_run
    text = (report / "summary.md").read_text(encoding="utf-8")
    # the error may name a file: Markdown-escaped (its [reason] brackets too)
    assert f"**The run failed**: {escape.markdown(error)}" in text and "\\[gate_failed_unknown_matched_by\\]" in text
    assert f"| customers | {SNAPSHOT} | accepted |" in text  # done before the failure
    assert f"{len(list((report / 'validations').glob('*.json')))} suite runs: " in text
    assert f"| customers_staging-{SNAPSHOT} | customers_staging | customers_staging | passed |" in text
    assert "| scope_exposures | scope_exposures | scope_exposures | **gate stopped the run** | 11 | 1 | gate_failed_unknown_matched_by |" in text
    assert "| scope_rows | scope_rows | scope_rows_checked | defects found and handled |" in text
    assert "## Entitlements by reason\n\nNo figures" in text and "## Notifications\n\nNo figures" in text
    page = (report / "data_quality.html").read_text(encoding="utf-8")
    assert 'scope_exposures: <span class="stopped">gate stopped the run</span>' in page
    assert 'scope_rows: <span class="handled">defects found and handled</span>' in page
    assert f"<dt>gate_failed_unknown_matched_by</dt><dd>{vocabulary.GATE_REASONS['gate_failed_unknown_matched_by']}</dd>" in page
    assert q(data, "SELECT count(*) FROM ledger") == [(0,)]


def test_a_failed_run_is_visible_in_prefect_without_personal_data(failed_run):
    data, run_id, error, report, flow_run_id = failed_run
    artifacts = artifacts_of(flow_run_id)
    assert set(artifacts) >= {"run-summary"} | TABLE_KEYS
    assert "The run failed" in artifacts["run-summary"]
    suites = json.loads(artifacts["data-quality-suites"].split("\n")[0])
    passed = {s["Suite"]: s["Passed"] for s in suites}
    assert passed["customers_staging"] == "yes" and passed["scope_exposures"] == "no"
    assert suites[-1]["Suite"] == "scope_exposures"  # the gate that stopped the run ran last
    values = personal_values(data)
    assert leaks(values, report_texts(report)) == []
    assert leaks(values, artifacts) == []


def test_the_reconciliation_shows_claim_money_held_apart_from_what_was_paid_out(run):
    data, summary, report, _ = run
    text = (report / "reconciliation.md").read_text(encoding="utf-8")
    (paid_n, paid), = q(data, "SELECT count(*), sum(amount) FROM ledger WHERE status IN ('issued', 'settled') "
                              "AND rail <> 'claim'")
    (held_n, held), = q(data, "SELECT count(*), coalesce(sum(amount), 0) FROM ledger WHERE status = 'issued' "
                              "AND rail = 'claim'")
    assert held > 0  # the generated breach has closed accounts without valid bank details
    assert f"Paid out: {paid_n:,} payments, {paid:,} KRW" in text
    assert f"Held, not paid out: {held_n:,} payments, {held:,} KRW held on the `claim` rail" in text
    summary_text = (report / "summary.md").read_text(encoding="utf-8")
    assert f"**{held_n:,} payments, {held:,} KRW held** on the `claim` rail" in summary_text
    (n,), = q(data, "SELECT count(*) FROM ledger")
    assert f"| **TOTAL** | **{n:,}** | **{paid:,}** | **{held:,}** |" in summary_text
