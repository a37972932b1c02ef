"""reports/<run_id>/report.html of real small runs (issue 13 section 2): opened in headless
Chromium as a person would, its figures against the warehouse, no personal data, the
same bytes for the same inputs, the approval state and what a revision changed, and the
charts as Prefect artifacts."""

from __future__ import annotations

import base64
import json
import os
import pwd
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false
from browser import png_pixels, visit
from flows.approval import approve_plan, reject
from flows.remediation import remediation
from redress.generate import generate
from redress.policy import DEFAULT_POLICY as APPROVAL_POLICY  # require_approval = true
from redress.reports.data_docs import suite_state, validation_records
from redress.vocabulary import HANDLED, PASSED, STOPPED

RUN_DATE = date(2025, 12, 1)
SECTIONS = ("funnel", "treasury", "payments", "data-quality", "approval")
CHART_KEYS = ("funnel", "treasury-schedule", "ledger-by-rail", "entitlements-by-reason", "suite-states",
              "quarantine-by-reason", "payments-by-kind")


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def page_of(data: Path, run_id: str) -> str:
    return (data / "reports" / run_id / "report.html").read_text(encoding="utf-8")


def row(*cells) -> str:
    """A table row of the page: the first cell text, the rest right-aligned numbers."""
    first, *numbers = cells
    return f"<tr><td>{first}</td>" + "".join(f'<td class="n">{n:,}</td>' for n in numbers) + "</tr>"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = tmp_path_factory.mktemp("run-report")
    generate(data, 500, seed=5)
    state = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=RUN_DATE, return_state=True)
    summary = state.result()
    return data, summary, state.state_details.flow_run_id


def test_the_page_opens_in_chromium_with_no_error_and_no_request_but_itself(run, tmp_path):
    data, summary, _ = run
    page = data / "reports" / summary["run_id"] / "report.html"
    seen = visit(page)
    assert seen.errors == []
    assert seen.requests == [page.resolve().as_uri()]
    (tmp_path / "report.png").write_bytes(seen.png)
    width, height, colours = png_pixels(seen.png)
    assert (width, height) == (1280, 2400) and len(seen.png) > 50_000
    assert len(colours) > 20, "the screenshot is (nearly) one colour: nothing was drawn"


def test_the_browser_check_sees_requests_and_console_errors(tmp_path):
    """The check above can fail: a page that fetches and logs an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="http://192.0.2.1/x.png"><script>console.error("boom")</script>'
                   "</body></html>", encoding="utf-8")
    seen = visit(bad, height=400)
    assert "http://192.0.2.1/x.png" in seen.requests
    assert any("boom" in e for e in seen.errors)


def test_the_page_is_self_contained_with_a_chart_in_every_section(run):
    data, summary, _ = run
    text = page_of(data, summary["run_id"])
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert "<script" not in text.lower() and "<link" not in text.lower() and "@import" not in text
    assert "url(" not in text and "src=" not in text
    sections = re.findall(r'<section id="([a-z-]+)">(.*?)</section>', text, flags=re.S)
    assert [name for name, _ in sections] == list(SECTIONS)
    for name, body in sections:
        assert body.count("<svg") >= 1, name
    for key in CHART_KEYS:
        assert re.search(rf'<figure class="chart" id="chart-{key}" aria-hidden="true"><svg ', text), key
    assert text.count("<svg") == len(CHART_KEYS)


def test_the_funnel_and_money_equal_the_warehouse(run):
    data, summary, _ = run
    text = page_of(data, summary["run_id"])
    d = summary["validate"]["destinations"]
    (exposures,), = q(data, "SELECT count(*) FROM (SELECT DISTINCT customer_id, data_category FROM scope_exposures)")
    (people,), = q(data, "SELECT count(DISTINCT customer_id) FROM scope_exposures")
    (eligible, entitled), = q(data, "SELECT count(*) FILTER (reason = 'ELIGIBLE'), sum(amount) FROM entitlements")
    (paid, held, held_n), = q(data, """
        SELECT sum(amount) FILTER (rail <> 'claim'), sum(amount) FILTER (rail = 'claim'), count(*) FILTER (rail = 'claim')
        FROM ledger WHERE status IN ('issued', 'settled')""")
    assert eligible > 100 and held > 0  # the generated case has closed accounts held on claim
    for label, n in [("scope rows read", d["rows_read"]), ("exposures: rows naming a customer", d["exposure"]),
                     ("distinct (customer, category) pairs", exposures), ("customers exposed", people),
                     ("eligible customers", eligible), ("rows quarantined", d["quarantine"]),
                     ("rows in review", d["review"]), ("non-member rows (never paid; each address told once)", d["non_member"])]:
        assert row(label, n) in text, label
    assert row("entitled (every eligible customer)", entitled) in text
    assert row("paid out (issued or settled, off the claim rail)", paid) in text
    assert row(f"held on the claim rail until claimed (not paid out): {held_n} payments", held) in text
    assert "unclaimed, the claim deadline" not in text  # the shipped policy has no deadline


def test_per_rail_totals_equal_the_ledger_and_claim_money_is_held_not_paid(run):
    data, summary, _ = run
    text = page_of(data, summary["run_id"])
    rails = q(data, """
        SELECT rail, count(*), coalesce(sum(amount) FILTER (status = 'issued' AND rail <> 'claim'), 0),
               coalesce(sum(amount) FILTER (status = 'settled'), 0), coalesce(sum(amount) FILTER (status = 'returned'), 0),
               coalesce(sum(amount) FILTER (status = 'issued' AND rail = 'claim'), 0),
               coalesce(sum(amount) FILTER (status = 'cancelled'), 0)
        FROM ledger GROUP BY ALL ORDER BY rail""")
    assert {r[0] for r in rails} == {"bank_transfer", "claim", "voucher"}
    for rail, n, issued, settled, returned, held, claimed in rails:
        assert row(rail, n, issued, settled, returned, held, claimed, 0, 0, 0, 0) in text, rail
    (n, total), = q(data, "SELECT count(*), sum(amount) FROM ledger")
    assert row("TOTAL", n, *[sum(r[i] for r in rails) for i in range(2, 7)], 0, 0, 0, 0) in text
    assert sum(r[2] + r[5] for r in rails) == total  # every won of a fresh ledger: issued or held


def test_the_treasury_schedule_has_the_cap_rule_and_the_days(run):
    data, summary, _ = run
    text = page_of(data, summary["run_id"])
    days = q(data, "SELECT value_date, sum(control_sum) FROM batches WHERE rail = 'bank_transfer' GROUP BY ALL ORDER BY 1")
    assert days
    cap = 20_000_000_000
    chart = re.search(r'id="chart-treasury-schedule" aria-hidden="true">(.*?)</figure>', text, flags=re.S).group(1)
    assert f"daily cash cap {cap:,} won" in chart
    for value_date, amount in days:
        assert row(value_date.isoformat(), amount, 0, cap, cap - amount) in text
        assert value_date.isoformat() in chart


def test_quarantine_and_suites_are_on_the_page(run):
    data, summary, _ = run
    text = page_of(data, summary["run_id"])
    for reason, rows in summary["validate"]["quarantine_reasons"].items():
        assert f'<tr><td>scope</td><td>{reason}</td><td class="n">0</td><td class="n">{rows:,}</td></tr>' in text
        assert f"scope: {reason}" in text  # the chart's label
    records = list((data / "reports" / summary["run_id"] / "validations").glob("*.json"))
    assert f"{len(records)} suite runs: " in text


def test_defects_found_and_handled_read_as_data_quality_html_says_never_failed(run):
    """Defective rows quarantined as designed are "defects found and handled", in the
    words and counts of data_quality.html and summary.md, in the table and the chart."""
    data, summary, _ = run
    report_dir = data / "reports" / summary["run_id"]
    text = page_of(data, summary["run_id"])
    states = {r["label"]: suite_state(r) for r in validation_records(report_dir)}
    assert states["scope_rows"] == HANDLED  # the generated case has defective scope rows
    counts = [list(states.values()).count(s) for s in (PASSED, HANDLED, STOPPED)]
    line = (f"{len(states)} suite runs: {counts[0]} passed, {counts[1]} with defects found and handled, "
            f"{counts[2]} stopped the run.")
    assert line in text
    assert line in (report_dir / "data_quality.html").read_text(encoding="utf-8")
    assert '<tr><td>scope_rows</td><td><span class="handled">defects found and handled</span></td>' in text
    assert "FAILED" not in text and "failed</span>" not in text
    chart = re.search(r'id="chart-suite-states" aria-hidden="true">(.*?)</figure>', text, flags=re.S).group(1)
    bars = dict((w, int(n)) for n, w in re.findall(r'aria-label="suite runs: (\d+); words: ([a-z ]+)"', chart))
    assert bars == {"passed": counts[0], "defects found and handled": counts[1], "gate stopped the run": counts[2]}


def test_no_customer_data_on_the_page(run):
    data, summary, _ = run
    text = page_of(data, summary["run_id"])
    customers = pl.concat([pl.read_parquet(p) for p in sorted((data / "inbox" / "customers").glob("*.parquet"))],
                          how="diagonal_relaxed")
    values = set()
    for column in ("name", "email", "phone", "bank_account", "customer_id"):
        values.update(str(v) for v in customers[column].to_list() if v and len(str(v)) >= 6)
    assert len(values) > 1000
    assert [v for v in values if v in text] == []


def test_the_same_inputs_give_the_same_bytes(run, tmp_path):
    data, summary, _ = run
    twin = tmp_path / "twin"
    generate(twin, 500, seed=5)
    again = remediation(data_dir=twin, policy_path=DEFAULT_POLICY, run_date=RUN_DATE)
    assert again["run_id"] == summary["run_id"]
    assert page_of(twin, again["run_id"]).encode() == page_of(data, summary["run_id"]).encode()


def test_a_run_that_planned_nothing_says_there_was_nothing_to_approve(run, tmp_path):
    """Found by the accessibility review: a run that planned no payment, under a policy
    asking for approval, said "not required: the policy releases payments without
    approval"."""
    data, _, _ = run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    again = remediation(data_dir=copy, policy_path=APPROVAL_POLICY, run_date=RUN_DATE + timedelta(days=1))
    assert again["disburse"]["payments"] == 0
    text = page_of(copy, again["run_id"])
    assert "Approval: <strong>nothing_planned</strong>, nothing to approve: this run planned no payments." in text
    assert "releases payments without approval" not in text and "The plan:" not in text


def test_a_first_run_says_everything_is_new_and_approval_was_not_required(run):
    data, summary, _ = run
    text = page_of(data, summary["run_id"])
    (exposures,), = q(data, "SELECT count(*) FROM (SELECT DISTINCT customer_id, data_category FROM scope_exposures)")
    (customers, others), = q(data, "SELECT count(customer_id), count(*) - count(customer_id) FROM notifications")
    assert "Approval: <strong>not_required</strong>" in text
    assert (f"This is the first run: everything is new: {exposures:,} new (customer, category) pairs from this "
            f"run's scope files, {customers:,} customers and {others:,} non-members told for the first time.") in text
    (n, amount), = q(data, "SELECT count(*), sum(amount) FROM ledger WHERE rail <> 'claim'")
    assert row("first payments", n, amount) in text
    assert row("top-ups after a scope or policy revision", 0, 0) in text


def test_a_revision_shows_its_new_exposures_and_people(run, tmp_path):
    data, summary, _ = run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    unexposed = q(copy, """
        SELECT customer_id FROM customers WHERE status = 'active' AND NOT is_test
          AND created_at < TIMESTAMPTZ '2025-06-01 00:00:00+09'
          AND customer_id NOT IN (SELECT customer_id FROM scope_exposures)
        ORDER BY customer_id LIMIT 3""")
    assert len(unexposed) == 3
    lines = ["customer_id,data_category,accessed_at,confidence"]
    lines += [f"{c},email,2025-07-01T10:00:00+09:00,confirmed" for (c,) in unexposed]
    lines += [f"{unexposed[0][0]},phone,2025-07-01T10:00:00+09:00,confirmed"]
    # an exposure earlier files already hold, named again: evidence, but not a new exposure
    (held,), = q(copy, "SELECT customer_id || ',' || data_category FROM scope_exposures ORDER BY ALL LIMIT 1")
    lines += [f"{held},2025-07-02T10:00:00+09:00,confirmed"]
    (copy / "inbox" / "scope" / "zz-revision.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # an earlier scope file sent again under another name: a duplicate, not read, adds nothing
    resent = sorted((copy / "inbox" / "scope").glob("*.csv"))[0]
    shutil.copyfile(resent, copy / "inbox" / "scope" / "zz-resent.csv")
    second = remediation(data_dir=copy, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    text = page_of(copy, second["run_id"])
    assert ("Since the previous run: 4 new (customer, category) pairs from this run's scope files, "
            "3 customers and 0 non-members told for the first time.") in text
    assert row("first payments", 3, 150_000) in text or row("first payments", 2, 100_000) in text


def test_a_plan_waiting_for_approval_shows_its_state_and_what_it_would_pay(tmp_path):
    generate(tmp_path, 300, seed=3)
    summary = remediation(data_dir=tmp_path, policy_path=APPROVAL_POLICY, run_date=RUN_DATE)
    text = page_of(tmp_path, summary["run_id"])
    (payments, amount, plan), = q(tmp_path, "SELECT payments, amount, summary FROM plans WHERE run_id = ?",
                                  [summary["run_id"]])
    assert "Approval: <strong>waiting</strong>, planned and checked" in text
    assert f"The plan: {payments:,} payments, {amount:,} won." in text
    first = json.loads(plan)["kinds"]["first"]
    assert row("first payments", first["payments"], first["amount_krw"]) in text
    assert q(tmp_path, "SELECT count(*) FROM ledger") == [(0,)]

    approve_plan(data_dir=tmp_path, run_id=summary["run_id"], by="finance.kim")
    text = page_of(tmp_path, summary["run_id"])
    (at,), = q(tmp_path, "SELECT decided_at FROM plans WHERE run_id = ?", [summary["run_id"]])
    assert "Approval: <strong>approved</strong>, approved: its payments" in text
    account = pwd.getpwuid(os.getuid()).pw_name  # found by the fix review: the page named no account
    assert f"Decided by finance.kim (operating-system account {account}) at {at.isoformat()}." in text
    (n, issued), = q(tmp_path, "SELECT count(*), sum(amount) FROM ledger WHERE rail <> 'claim'")
    assert n == first["payments"] and row("first payments", n, issued) in text
    assert row("paid out (issued or settled, off the claim rail)", issued) in text


def test_a_rejected_plan_shows_no_outflow_and_an_approved_one_its_released_outflow(tmp_path):
    """Copies of one folder whose plan waits: approved, the treasury shows what was
    released; rejected, this run's outflow is 0 (no day, no bar), as its payments are."""
    waiting = tmp_path / "waiting"
    generate(waiting, 300, seed=3)
    run_id = remediation(data_dir=waiting, policy_path=APPROVAL_POLICY, run_date=RUN_DATE)["run_id"]
    approved, rejected = tmp_path / "approved", tmp_path / "rejected"
    shutil.copytree(waiting, approved)
    shutil.copytree(waiting, rejected)

    text = page_of(waiting, run_id)  # while it waits: the planned days, labelled planned
    planned = json.loads(q(waiting, "SELECT counts FROM runs WHERE run_id = ?", [run_id])[0][0])["disburse"]["treasury"]
    assert planned and "<th>this run (planned, awaiting approval)</th>" in text
    chart = re.search(r'id="chart-treasury-schedule" aria-hidden="true">(.*?)</figure>', text, flags=re.S).group(1)
    assert re.findall(r'won: ([0-9,]+); part: this run \(planned\)', chart) == [f"{d['amount_krw']:,}" for d in planned]

    approve_plan(data_dir=approved, run_id=run_id, by="finance.kim")
    days = q(approved, "SELECT value_date, sum(control_sum) FROM batches WHERE rail = 'bank_transfer' "
                       "GROUP BY ALL ORDER BY 1")
    assert days and sum(a for _, a in days) > 0
    text = page_of(approved, run_id)
    chart = re.search(r'id="chart-treasury-schedule" aria-hidden="true">(.*?)</figure>', text, flags=re.S).group(1)
    for value_date, amount in days:
        assert row(value_date.isoformat(), amount, 0, 20_000_000_000, 20_000_000_000 - amount) in text
    assert re.findall(r'won: ([0-9,]+); part: this run"', chart) == [f"{a:,}" for _, a in days]

    reject(data_dir=rejected, run_id=run_id, by="finance.kim")
    assert q(rejected, "SELECT count(*) FROM batches") == [(0,)]
    text = page_of(rejected, run_id)
    chart = re.search(r'id="chart-treasury-schedule" aria-hidden="true">(.*?)</figure>', text, flags=re.S).group(1)
    assert "No bank-transfer outflow: the plan was rejected, nothing of it was paid." in chart
    assert "part: this run" not in chart and "mark-rect" not in chart
    treasury = re.search(r'<section id="treasury">(.*?)</section>', text, flags=re.S).group(1)
    assert '<td colspan="5">No bank-transfer outflow: the plan was rejected, nothing of it was paid.</td>' in treasury
    for value_date, _ in days:
        assert value_date.isoformat() not in treasury
    assert row("first payments", 0, 0) in text


def test_the_charts_are_a_markdown_artifact_and_the_tables_table_artifacts(run):
    data, summary, flow_run_id = run
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    artifacts = {a.key: a for a in found}
    assert set(artifacts) >= {"run-report", "run-funnel", "ledger-by-rail", "entitlements-by-reason", "payments-by-kind",
                              "quarantine-by-reason", "treasury-schedule", "data-quality-suites"}
    for key in artifacts:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", key), key
    images = re.findall(r"!\[[^\]]+\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", artifacts["run-report"].data)
    assert len(images) == len(CHART_KEYS)
    svgs = [base64.b64decode(i).decode("utf-8") for i in images]
    page = page_of(data, summary["run_id"])
    assert all(s.startswith("<svg") and s in page for s in svgs)  # the same charts as the page
    rails = json.loads(artifacts["ledger-by-rail"].data)
    (total,), = q(data, "SELECT sum(amount) FROM ledger")
    won = lambda cell: int(str(cell).replace(",", ""))  # noqa: E731 - headers in words, numbers separated
    assert sum(won(r["Issued"]) + won(r["Held"]) for r in rails if r["Rail"] != "TOTAL") == total


def _funnel(text: str) -> tuple[str, str]:
    exposures = re.search(r"<tr><td>distinct \(customer, category\) pairs</td><td class=\"n\">([0-9,]+)</td>", text)
    people = re.search(r"<tr><td>customers exposed</td><td class=\"n\">([0-9,]+)</td>", text)
    return exposures.group(1), people.group(1)


def test_the_approval_page_takes_the_exposure_counts_the_run_recorded(tmp_path, monkeypatch):
    """Issue 10: the run's report records its exposure counts in `runs.exposures`; the
    page written again at the approval reads them there and does not group every scope
    row again (20 s at 33.7 M customers), and shows the same figures as the warehouse."""
    import tasks.report

    generate(tmp_path, 300, seed=3)
    run_id = remediation(data_dir=tmp_path, policy_path=APPROVAL_POLICY, run_date=RUN_DATE)["run_id"]
    (exposures,), = q(tmp_path, "SELECT count(*) FROM (SELECT DISTINCT customer_id, data_category FROM scope_exposures)")
    (people,), = q(tmp_path, "SELECT count(DISTINCT customer_id) FROM scope_exposures")
    (stored,), = q(tmp_path, "SELECT exposures FROM runs WHERE run_id = ?", [run_id])
    assert json.loads(stored) == [exposures, people, exposures]  # a first run: every exposure is new

    def counted_again(*_):
        raise AssertionError("the scope rows were grouped again")

    monkeypatch.setattr(tasks.report, "exposure_pairs", counted_again)
    approve_plan(data_dir=tmp_path, run_id=run_id, by="finance.kim")
    text = page_of(tmp_path, run_id)
    assert "Approval: <strong>approved</strong>" in text  # written again, not the waiting page left as it was
    assert _funnel(text) == (f"{exposures:,}", f"{people:,}")


def test_a_run_without_usable_recorded_counts_has_them_counted_again(tmp_path):
    """A run recorded by an earlier version (NULL), or anything else than three counts
    in `runs.exposures`: the page written again counts them from the scope rows, to the
    same bytes as a page from the recorded counts."""
    from redress.context import RunContext
    from redress.policy import load_policy
    from tasks.report import refresh_report_page

    generate(tmp_path / "data", 300, seed=3)
    data = tmp_path / "data"
    run_id = remediation(data_dir=data, policy_path=APPROVAL_POLICY, run_date=RUN_DATE)["run_id"]
    policy = load_policy(APPROVAL_POLICY)
    ctx = RunContext(data, run_id, RUN_DATE, policy.path, policy.sha256)
    refresh_report_page(ctx)
    recorded = page_of(data, run_id)
    for left in (None, "not json", "[1, 2]", '[1, 2, "3"]', "[-1, 2, 3]", '{"a": 1}'):
        with duckdb.connect(str(data / "warehouse.duckdb")) as con:
            con.execute("UPDATE runs SET exposures = ? WHERE run_id = ?", [left, run_id])
        (data / "reports" / run_id / "report.html").unlink()
        refresh_report_page(ctx)
        assert page_of(data, run_id) == recorded, left
