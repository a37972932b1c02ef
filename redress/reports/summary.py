"""The run summary, reports/<run_id>/summary.md: counts and totals only, never personal
data (SPEC "The data folder", reports/<run_id>/), rendered from templates/summary.md.j2.

Its figures come from the stages' typed results (redress/results.py) and from `facts`,
what the warehouse holds of the run (tasks/report.py `run_facts`: files, quarantine,
batches and cash per value date, all rows stamped with the run id), and the suite
records (redress/reports/data_docs.py). A stage that did not finish shows "No figures".
"""

from __future__ import annotations

from dataclasses import asdict

from datetime import date

from redress.reports.data_docs import PAGE, SUITES_NOTE, suite_overview
from redress.reports.rendering import Markdown, markdown_environment
from redress.reports.facts import RunFacts
from redress.results import DisburseResult, RunSummary

NO_FIGURES = Markdown("No figures: the run stopped before this stage finished.")


def treasury_schedule(disburse: DisburseResult | None, facts: RunFacts) -> list[dict]:
    """Bank-transfer cash (won) per value date this run released on, against the daily
    cap the disburse stage applied: value_date, this_run, all_runs, daily_cash_cap,
    headroom (cap - all runs; None without a cap). `facts.cash` gives the days."""
    caps = {t.value_date: t.daily_cash_cap_krw for t in (disburse.treasury if disburse else ())}
    cap = next(iter(caps.values()), None)
    rows = []
    for day in facts.cash:
        day_cap = caps.get(day.value_date, cap)
        rows.append(dict(asdict(day), daily_cash_cap=day_cap,
                         headroom=None if day_cap is None else day_cap - day.all_runs))
    return rows


def _schedule(disburse: DisburseResult, facts: RunFacts | None) -> list[dict]:
    """The treasury schedule; without warehouse facts, this run's days from the stage
    result alone (all runs and headroom unknown)."""
    if facts is not None and facts.cash:
        return treasury_schedule(disburse, facts)
    return [{"value_date": t.value_date, "this_run": t.amount_krw, "all_runs": None,
             "daily_cash_cap": t.daily_cash_cap_krw, "headroom": None} for t in disburse.treasury]


def summary_markdown(summary: RunSummary, *, run_date: date, policy_name: str, facts: RunFacts | None = None,
                     records: list[dict] | None = None, error: str | None = None) -> str:
    """The run summary as Markdown text (ends with one newline). `facts` (run_facts) and
    `records` (the suite records) fill the sections the stage results do not hold;
    `error` (one line) marks a failed run. Every text from input is Markdown-escaped.
    Raises jinja2.UndefinedError if the template names a value not given."""
    suites = suite_overview(records or [])
    if summary.ingest is not None:
        files = [{"kind": f.kind, "file_name": f.file_name, "status": f.status, "rows": f.rows_read}
                 for f in summary.files_read()]
    else:
        files = [asdict(f) for f in facts.files] if facts is not None else []
    quarantine = facts.quarantine if facts is not None else None
    if quarantine is None:  # no warehouse facts: the scope rows' reasons from the stage result
        reasons = summary.validate.quarantine_reasons if summary.validate else {}
        quarantine = [{"kind": "scope", "reason": r, "files": 0, "rows": n} for r, n in sorted(reasons.items())]
    return markdown_environment().get_template("summary.md.j2").render(
        run_id=summary.run_id, run_date=run_date, policy_name=policy_name, error=error,
        files=files, validate=summary.validate, quarantine=quarantine,
        suites=suites, suites_passed=sum(s["passed"] for s in suites),
        page=Markdown(PAGE), suites_note=Markdown(SUITES_NOTE),
        entitle=summary.entitle, disburse=summary.disburse, notify=summary.notify,
        batches=facts.batches if facts is not None else None,
        schedule=_schedule(summary.disburse, facts) if summary.disburse else [],
        no_figures=NO_FIGURES,
    )
