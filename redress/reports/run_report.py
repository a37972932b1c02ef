"""The run report page, reports/<run_id>/report.html (issue 13 section 2), and the same
charts as a Prefect Markdown artifact.

One self-contained page rendered from templates/report.html.j2: inline CSS, no script,
no URL of any kind (a CSP forbids fetching anything), charts as static SVG
(redress/reports/charts.py) with a table beside each. Sections: the funnel from scope
rows to eligible people and money; the treasury schedule against the daily cash cap
(SPEC "Disbursement batches"); payments per rail and the reconciliation (claim money as
held, never as paid out; money held above the entitlement apart from overpaid); the
fund cap against what is paid or held in all, when the policy has one; entitlements per reason (SPEC "Eligibility"); data quality;
the approval state (SPEC "Approval before release") and what changed since the last
run. Aggregates only: rails, reason codes, dates, counts and whole won.

The figures are what the report stage gathered: the stage results (RunSummary),
RunFacts, ReportFacts, the reconciliation frame and the suite records. The same inputs
give the same bytes: the only times shown are the run's own: its date and, under a
policy that asks for approval, its plan's expiry (when it was planned, plus the
approval timeout, as plan.md shows it) and the decision's time. Those are the clock's,
so two runs of the same inputs then differ in them and nowhere else.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from datetime import date

import polars as pl
from markupsafe import Markup

from redress.reports import run_charts
from redress.reports.charts import svg
from redress.reports.data_docs import RecordGaps, suite_overview
from redress.reports.facts import RunFacts
from redress.reports.reconciliation import COLUMNS, past_claim_deadline
from redress.reports.rendering import STATE_WORDS, html_environment
from redress.reports.report_facts import NOT_REQUIRED, NOTHING_PLANNED, People, ReportFacts
from redress.reports.summary import fund_lines, treasury_schedule
from redress.results import Destinations, TreasuryDay
from redress.rules.plans import kind_labels
from redress.runtime.stage_counts import counted
from redress.vocabulary import ENTITLEMENT_REASONS, EXPIRED, PLAN_STATES, REJECTED, SUITE_STATES, SUPERSEDED, WAITING

PAGE = "report.html"
# The reconciliation's money columns a chart stacks per rail, as the page labels them.
LEDGER_PARTS = [("issued", "issued"), ("settled", "settled"), ("returned", "returned"),
                ("held", "held on claim"), ("claimed", "claimed (cancelled)"), ("unclaimed", "unclaimed")]
APPROVAL_TEXT = {**PLAN_STATES, NOT_REQUIRED: "not required: the policy releases payments without approval",
                 NOTHING_PLANNED: "nothing to approve: this run planned no payments"}
# The words summary.md and data_quality.html give each suite state (without Markdown's bold).
SUITE_WORDS = {state: str(STATE_WORDS[state]).strip("*") for state in SUITE_STATES}


@dataclass(frozen=True)
class Chart:
    """One chart of a section: its key (stable, lower-case-hyphenated), title and SVG."""
    key: str
    title: str
    svg: str


@dataclass(frozen=True)
class Report:
    """What the page and the artifacts show, charts rendered; tables as lists of dicts.
    `planned`: the schedule is a waiting plan's, nothing released; `suites`: suite_overview
    rows with `words` (SUITE_WORDS); `suite_counts`: state, words, runs, one per state in
    SUITE_STATES order (passed, handled, stopped); `suite_gaps`: the run's records no
    longer there (data_docs.RecordGaps), and `suites_gone` when none is left to list: a
    page written again after records were removed says so, never that no suite ran."""
    funnel: list[dict]
    money: list[dict]
    schedule: list[dict]
    planned: bool
    cap: int | None
    rails: list[dict]
    new_batches: list[dict]
    reasons: list[dict]
    suites: list[dict]
    suite_counts: list[dict]
    suite_gaps: RecordGaps
    suites_gone: bool
    quarantine: list[dict]
    approval: dict
    changes: list[dict]
    revision: bool
    charts: dict[str, Chart]
    # The fund cap against what is paid or held in all (summary.fund_lines); empty without a cap.
    fund: list[str] = field(default_factory=list)


def _funnel(d: Destinations | None, facts: ReportFacts) -> list[dict]:
    p = facts.people
    steps = []
    if d is not None:
        steps += [("scope rows read", d.rows_read, False), ("exposures: rows naming a customer", d.exposure, False)]
    steps += [("distinct (customer, category) pairs", p.exposures, False), ("customers exposed", p.exposed_customers, False),
              ("eligible customers", p.eligible_customers, False)]
    if d is not None:
        steps += [("rows quarantined", d.quarantine, True), ("rows in review", d.review, True),
                  ("non-member rows (never paid; each address told once)", d.non_member, True)]
    return [{"label": label, "count": count, "side": side} for label, count, side in steps]


def _per_rail(recon: pl.DataFrame) -> list[dict]:
    """The reconciliation summed per rail (its per-date and per-customer rows), then TOTAL."""
    return recon.group_by("rail", maintain_order=True).agg(pl.col(c).sum() for c in COLUMNS[2:]).to_dicts()


def _schedule(treasury: tuple[TreasuryDay, ...], facts: RunFacts, cap: int | None, state: str) -> list[dict]:
    """This run's bank-transfer outflow per value date (SPEC "Disbursement batches"):
    what it released (its batches); while its plan waits (`state` WAITING), the days the
    disburse stage planned; a rejected, superseded or expired plan released nothing, so
    no day (its stage result still holds the days it had planned)."""
    if facts.cash or (state == WAITING and facts.planned_cash):  # released, or a waiting plan on top of what was released before
        rows = treasury_schedule(None, facts)
        rows = [dict(r, daily_cash_cap=cap, headroom=None if cap is None else cap - r["all_runs"]) for r in rows]
    elif state == WAITING:  # nothing released yet: the stage's own days, labelled planned
        rows = [{"value_date": t.value_date, "this_run": t.amount_krw, "all_runs": t.amount_krw,
                 "daily_cash_cap": t.daily_cash_cap_krw, "headroom": t.daily_cash_cap_krw - t.amount_krw}
                for t in treasury]
    else:
        rows = []
    return [dict(r, earlier=r["all_runs"] - r["this_run"]) for r in rows]


def _no_outflow(state: str) -> str:
    """What the treasury section says when this run has no outflow (state: a plan state)."""
    if state in (REJECTED, SUPERSEDED, EXPIRED):
        return f"No bank-transfer outflow: the plan was {state}, nothing of it was paid."
    return "No bank transfer on any value date of this run."


def _money(people: People, recon: pl.DataFrame, claim_deadline: date | None, past: bool) -> list[dict]:
    """The money box: entitled, paid out, and the claim rail's money as the
    reconciliation (its TOTAL row) has it, held and, once the claim deadline has
    passed, unclaimed, each with its payments (finance review: the box called
    unclaimed money held while the table beside it said unclaimed)."""
    total = recon.row(recon.height - 1, named=True)
    money = [{"what": "entitled (every eligible customer)", "krw": people.entitled_krw},
             {"what": "paid out (issued or settled, off the claim rail)", "krw": people.paid_krw},
             {"what": f"held on the claim rail until claimed (not paid out): {counted(total['held_payments'], 'payment')}",
              "krw": total["held"]}]
    if past:
        money.append({"what": f"unclaimed, the claim deadline {claim_deadline} passed (not paid out, for finance "
                              f"to decide): {counted(total['unclaimed_payments'], 'payment')}",
                      "krw": total["unclaimed"]})
    return money


def build(destinations: Destinations | None, treasury: tuple[TreasuryDay, ...], facts: RunFacts, more: ReportFacts,
          recon: pl.DataFrame, records: list[dict], daily_cash_cap: int | None, *,
          gaps: RecordGaps = RecordGaps(), run_date: date | None = None,
          claim_deadline: date | None = None, total_cap: int = 0) -> Report:
    """Every table and chart of the report. `destinations` and `treasury`: the validate
    and disburse stages' results (None and () when the stage did not finish);
    `recon`: reconciliation() of the ledger (with the same run date and deadline);
    `records`: the suite records; `daily_cash_cap`: the policy's (won); `gaps`: for a
    page written again, the run's records no longer there (data_docs.records_since);
    `run_date` past `claim_deadline` (the policy's): money on claim is unclaimed;
    `total_cap` (the policy's budget.total_cap; 0: none): the whole ledger against the
    fund cap, and a waiting plan's too once released."""
    funnel = _funnel(destinations, more)
    past = past_claim_deadline(run_date, claim_deadline)
    money = _money(more.people, recon, claim_deadline, past)
    state = more.approval.state
    schedule = _schedule(treasury, facts, daily_cash_cap, state)
    planned = state == WAITING and not facts.cash
    rails = _per_rail(recon)
    reasons = [dict(asdict(r), text=ENTITLEMENT_REASONS.get(r.reason, "")) for r in more.reasons]
    suites = [dict(s, words=SUITE_WORDS[s["state"]]) for s in suite_overview(records)]
    suite_counts = [{"state": code, "words": words, "runs": sum(s["state"] == code for s in suites)}
                    for code, words in SUITE_WORDS.items()]
    suites_gone = gaps.all_gone(len(suites))  # none of the run's records left to list
    quarantine = [dict(asdict(q), label=f"{q.kind}: {q.reason}") for q in facts.quarantine]
    a = more.approval
    approval = dict(asdict(a), text=APPROVAL_TEXT.get(a.state, a.state))
    labels = kind_labels(past)  # this run's money put on claim past the deadline is unclaimed
    changes = [dict(asdict(k), label=labels[k.kind]) for k in more.changes.kinds]
    c = run_charts
    charts = [
        ("funnel", "The funnel", c.funnel(funnel)),
        ("treasury-schedule", "Treasury schedule",
         c.treasury(schedule, daily_cash_cap, planned=planned, empty=_no_outflow(state))),
        ("ledger-by-rail", "The ledger per rail",
         c.stacked("The ledger per rail and status (won)", [r for r in rails if r["rail"] != "TOTAL"], "rail",
                   LEDGER_PARTS, "won")),
        ("entitlements-by-reason", "Entitlements per reason",
         c.bars("Customers per entitlement reason", reasons, "reason", "customers", "customers",
                "No entitlement yet.")),
        ("suite-states", "Suite runs per state",
         c.suite_states(suite_counts, gone=suites_gone)),
        ("quarantine-by-reason", "Quarantine per reason",
         c.bars("Quarantined rows and files per reason", [dict(q, n=q["rows"] + q["files"]) for q in quarantine],
                "label", "n", "rows and files", "Nothing was quarantined in this run.")),
        ("payments-by-kind", "Payments per kind",
         c.bars("This run's payments per kind (won)", changes, "label", "amount_krw", "won",
                "No payment in this run.")),
    ]
    return Report(funnel=funnel, money=money, schedule=schedule, planned=planned, cap=daily_cash_cap, rails=rails,
                  new_batches=[asdict(b) for b in facts.batches], reasons=reasons, suites=suites, suite_counts=suite_counts,
                  suite_gaps=gaps, suites_gone=suites_gone,
                  quarantine=quarantine, approval=approval, changes=changes, revision=more.changes.revision,
                  charts={key: Chart(key, title, svg(chart)) for key, title, chart in charts},
                  fund=fund_lines(recon.row(recon.height - 1, named=True), total_cap,
                                  a.amount_krw if a.state == WAITING else None))


def report_html(report: Report, *, run_id: str, run_date: date, policy_id: str, more: ReportFacts,
                error: str | None = None) -> str:
    """The page as HTML text (ends with one newline); every value escaped, the charts'
    SVG (ours, from vl-convert) embedded as it is."""
    charts = {k: Markup(c.svg) for k, c in report.charts.items()}
    return html_environment().get_template("report.html.j2").render(
        r=report, charts=charts, run_id=run_id, run_date=run_date.isoformat(), policy_id=policy_id,
        changes=more.changes, error=error, no_outflow=_no_outflow(more.approval.state))


def report_markdown(report: Report, run_id: str) -> str:
    """The charts as Markdown for a Prefect artifact. Prefect's UI draws a Markdown
    image as an `<img>` without sanitising it but passes raw HTML (an inline `<svg>`)
    through DOMPurify, which drops its styling; so each chart is an image whose source
    is its SVG as a data: URI (an SVG in an `<img>` runs no script and fetches nothing)."""
    lines = [f"# Run report {run_id}", "",
             "The same charts as reports/{0}/report.html; their tables are the table artifacts "
             "of this run.".format(run_id), ""]
    for chart in report.charts.values():
        data = base64.b64encode(chart.svg.encode("utf-8")).decode("ascii")
        lines += [f"## {chart.title}", "", f"![{chart.title}](data:image/svg+xml;base64,{data})", ""]
    return "\n".join(lines)
