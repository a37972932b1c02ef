"""The run summary, reports/<run_id>/summary.md: counts and totals only, never personal
data (SPEC "The data folder", reports/<run_id>/), rendered from templates/summary.md.j2.

Its figures come from the stages' typed results (redress/results.py) and from `facts`,
what the warehouse holds of the run (tasks/report.py `run_facts`: files, quarantine,
batches and cash per value date, all rows stamped with the run id), and the suite
records (redress/reports/data_docs.py). A stage that did not finish shows "No figures".
"""

from __future__ import annotations

import os
from dataclasses import asdict
from datetime import date
from pathlib import Path

from redress.reports.data_docs import PAGE, SUITES_NOTE, suite_overview
from redress.reports.rendering import Markdown, markdown_environment
from redress.reports.facts import Applied, RunFacts
from redress.reports.reconciliation import live_krw, past_claim_deadline
from redress.rules.fund_cap import fund_cap
from redress.results import DisburseResult, RunSummary, TreasuryDay
from redress.vocabulary import ACCEPTED, CLAIM, DUPLICATE_FILE, HANDLED, NOT_READ, PASSED, STOPPED, reason_text

NO_FIGURES = Markdown("No figures: the run stopped before this stage finished.")

# quarantine/<run_id>/overpayments.csv and .parquet: customer_id, entitled, paid,
# above_entitlement, held_above, paid_out_above (KRW), by customer_id
# (redress/rules/payments.py `overpayments`, whose `overpaid` is above_entitlement).
OVERPAYMENTS_STEM = "overpayments"
# quarantine/<run_id>/told_otherwise.csv and .parquet, written by notify: customer_id,
# reference_code, told_template, told_in_run, rail, amount (KRW): those the run pays or
# holds money for whose one message said otherwise (redress/rules/notifications.py
# TOLD_OTHERWISE).
TOLD_OTHERWISE_STEM = "told_otherwise"

# What each file a run writes beside or for its summary is, by its name.
FILE_ROLES = {
    "report.html": "the run at a glance, with charts: funnel, treasury, ledger per rail, data quality, approval",
    "data_quality.html": "data quality: every suite run, passed, defects handled or stopped, and what each reason means",
    "reconciliation.md": "reconciliation: the whole ledger per rail and value date, paid out apart from held",
    "reconciliation.csv": "reconciliation as CSV",
    "quarantine.csv": "quarantine: files and rows rejected this run, with reasons",
    "quarantine.parquet": "quarantine as Parquet",
    "quarantine.xlsx": "quarantine as a workbook of text cells (what a spreadsheet would change in the CSV kept as written)",
    "review.csv": "review list for forensics: rows held, never paid automatically, with candidates and what to do",
    "review.parquet": "review list as Parquet",
    "review.xlsx": "review list as a workbook of text cells (phones keep their leading 0)",
    "overpayments.csv": "overpayment exceptions for finance: each customer paid above their entitlement, what of it "
                        "went out (no clawback) and what is still held on claim",
    "overpayments.parquet": "overpayment exceptions as Parquet",
    "overpayments.xlsx": "overpayment exceptions as a workbook of text cells",
}


def report_files(data_dir: Path, report_dir: Path, written: list[Path]) -> list[dict]:
    """The files a run's report wrote, for summary.md to list and link: `what` (FILE_ROLES),
    `path` (from the data folder, as a reader finds it), `link` (from report_dir, where
    summary.md is). Sorted by path; only those written."""
    rows = [{"what": FILE_ROLES.get(p.name, p.name), "path": p.relative_to(data_dir).as_posix(),
             "link": Path(os.path.relpath(p, report_dir)).as_posix()} for p in written]
    return sorted(rows, key=lambda r: r["path"])


def payments_by_rail(disburse: DisburseResult) -> list[dict]:
    """New payments per rail, then a TOTAL row: payments, paid (won sent to be paid)
    and held (won on the claim rail, held until the person claims it: not paid out)."""
    rows = [{"rail": rail, "payments": t.payments, "paid": 0 if rail == CLAIM else t.amount_krw,
             "held": t.amount_krw if rail == CLAIM else 0}
            for rail, t in sorted(disburse.per_rail.items())]
    total = {"rail": "TOTAL", **{k: sum(r[k] for r in rows) for k in ("payments", "paid", "held")}}
    return rows + [total]


def treasury_schedule(disburse: DisburseResult | None, facts: RunFacts) -> list[dict]:
    """Bank-transfer cash (won) per value date this run released on, against the daily
    cap the disburse stage applied: value_date, this_run, all_runs, daily_cash_cap,
    headroom (cap - all runs; None without a cap). `facts.cash` gives the days; for a
    plan waiting for approval, `facts.planned_cash` (this run = the plan, all runs =
    released before + the plan: SPEC "Approval before release")."""
    return schedule_rows(disburse.treasury if disburse else (), facts)


def schedule_rows(treasury: tuple[TreasuryDay, ...], facts: RunFacts) -> list[dict]:
    """treasury_schedule from the stage's treasury days (the caps it applied), e.g. as
    `runs.counts` keeps them for a run decided later (flows/approval.py)."""
    caps = {t.value_date: t.daily_cash_cap_krw for t in treasury}
    cap = next(iter(caps.values()), None)
    rows = []
    for day in facts.cash or facts.planned_cash:
        day_cap = caps.get(day.value_date, cap)
        rows.append(dict(asdict(day), daily_cash_cap=day_cap,
                         headroom=None if day_cap is None else day_cap - day.all_runs))
    return rows


def _schedule(disburse: DisburseResult, facts: RunFacts | None) -> list[dict]:
    """The treasury schedule; without warehouse facts, this run's days from the stage
    result alone (all runs and headroom unknown)."""
    if facts is not None and (facts.cash or facts.planned_cash):
        return treasury_schedule(disburse, facts)
    return [{"value_date": t.value_date, "this_run": t.amount_krw, "all_runs": None,
             "daily_cash_cap": t.daily_cash_cap_krw, "headroom": None} for t in disburse.treasury]


def summary_markdown(summary: RunSummary, *, run_date: date, policy_name: str, facts: RunFacts | None = None,
                     records: list[dict] | None = None, error: str | None = None,
                     outputs: list[dict] | None = None, ledger: dict | None = None,
                     claim_deadline: date | None = None, total_cap: int = 0,
                     applied: Applied | None = None, earlier: list[dict] | None = None,
                     policy_id: str | None = None) -> str:
    """The run summary as Markdown text (ends with one newline). `facts` (run_facts) and
    `records` (the suite records) fill the sections the stage results do not hold;
    `error` (one line) marks a failed run; `outputs` (report_files) are listed and linked;
    `ledger`: the reconciliation's TOTAL row, for the money held on claim (payments and
    won), or unclaimed once the run date is past `claim_deadline` (the policy's
    payout.claim_deadline; finance review: the summary never said so). Claim money of
    this run's new payments is labelled unclaimed, not held, past the deadline.
    `total_cap` (the policy's budget.total_cap; 0: no cap, no word of it): the whole
    ledger (`ledger`) against the fund cap, and for a plan waiting for approval the
    ledger once it is released (fund_lines; finance review: overspent with no word).
    `policy_id`: shown before the file's name (`policy_name`) when given.
    `applied` (facts.applied_facts): for the report of a run that stopped before writing
    its own, what it applied from returns and claims files. `earlier`: the reports this
    run wrote of such runs (run_id, path, link: as report_files gives them).
    Every text from input is Markdown-escaped.
    Raises jinja2.UndefinedError if the template names a value not given."""
    suites = suite_overview(records or [])
    if summary.ingest is not None:
        # a file not read says why (a link, still being copied in): no other line of the summary does
        files = [{"kind": f.kind, "file_name": f.file_name, "rows": f.rows_read,
                  "status": f"{f.status}: {f.detail}" if f.detail and (f.status in (NOT_READ, DUPLICATE_FILE)
                                                                       or f.kind == "customers" and f.status == ACCEPTED)
                  else f.status}
                 for f in summary.files_read()]
    else:
        files = [asdict(f) for f in facts.files] if facts is not None else []
    quarantine = facts.quarantine if facts is not None else None
    if quarantine is None:  # no warehouse facts: the scope rows' reasons from the stage result
        reasons = summary.validate.quarantine_reasons if summary.validate else {}
        quarantine = [{"kind": "scope", "reason": r, "files": 0, "rows": n, "file_names": ()}
                      for r, n in sorted(reasons.items())]
    quarantine = [dict(q if isinstance(q, dict) else asdict(q)) for q in quarantine]
    for q in quarantine:
        q["text"] = reason_text(q["reason"], q["kind"])
    return markdown_environment().get_template("summary.md.j2").render(
        run_id=summary.run_id, run_date=run_date, policy_name=policy_name, policy_id=policy_id, error=error,
        files=files, retimed=summary.ingest.retimed if summary.ingest is not None else "",
        gone=summary.ingest.gone if summary.ingest is not None else (),
        validate=summary.validate, quarantine=quarantine,
        suites=suites, suites_passed=sum(s["state"] == PASSED for s in suites),
        suites_handled=sum(s["state"] == HANDLED for s in suites),
        suites_stopped=sum(s["state"] == STOPPED for s in suites),
        page=Markdown(PAGE), suites_note=Markdown(SUITES_NOTE),
        entitle=summary.entitle, disburse=summary.disburse, notify=summary.notify,
        batches=facts.batches if facts is not None else None,
        schedule=_schedule(summary.disburse, facts) if summary.disburse else [],
        schedule_planned=facts is not None and not facts.cash and bool(facts.planned_cash),
        no_figures=NO_FIGURES, outputs=outputs or [], ledger=ledger, claim_deadline=claim_deadline,
        past_deadline=past_claim_deadline(run_date, claim_deadline),
        per_rail=payments_by_rail(summary.disburse) if summary.disburse else [],
        results_files=[f for f in (summary.returns.files if summary.returns else ()) if f.status != NOT_READ],
        claims_files=[f for f in (summary.claims.files if summary.claims else ()) if f.status != NOT_READ],
        claims=summary.claims, applied=applied, earlier=earlier or [], superseded=summary.superseded_plans,
        told_otherwise_path=f"quarantine/{summary.run_id}/{TOLD_OTHERWISE_STEM}.csv",
        fund=fund_lines(ledger, total_cap, summary.disburse.amount_krw
                        if summary.disburse is not None and summary.disburse.awaiting_approval else None),
    )


def fund_lines(ledger: dict | None, total_cap: int, planned_krw: int | None = None) -> list[str]:
    """The fund cap's lines (redress/rules/fund_cap.py) for the whole ledger (`ledger`:
    the reconciliation's TOTAL row) and, when a plan waits for approval (`planned_krw`,
    its amount), for the ledger once it is released. None without a cap or a ledger."""
    if ledger is None or total_cap <= 0:
        return []
    now = fund_cap(live_krw(ledger), total_cap, "the whole ledger")
    lines = now.lines()
    if planned_krw is not None:
        lines += fund_cap(now.paid_krw + planned_krw, total_cap,
                          "once the plan waiting for approval is released").lines(with_cap=False)
    return lines
