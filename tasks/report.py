"""The run report: counts and totals only, never personal data.

reports/<run_id>/summary.md (printed by the CLI), the data-quality docs beside it
(redress/reports/data_docs.py), quarantine/<run_id>/quarantine.csv, and Prefect artifacts: the
summary as Markdown plus tables of quarantine reasons, suites, payments per rail and
value date, and the treasury schedule. A failed run gets the same report, as far as it
got (`write_failed_report`), so the suite that stopped it is on record.

The numbers come from the stages' own summaries, from the suite records and from the
warehouse rows stamped with this run's id (what a failed run had already done).
"""

from __future__ import annotations

import logging
from datetime import date

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from redress import escape
from redress.context import RunContext
from redress.warehouse import connect
from redress.outbox import files as outbox
from redress.reports.reconciliation import markdown as reconciliation_markdown
from redress.reports.reconciliation import reconciliation
from redress.reports.data_docs import PAGE, SUITES_NOTE, build_gx_data_docs, suite_overview, validation_records
from redress.reports.data_quality import write_data_quality_html


def _logger():
    try:
        return get_run_logger()
    except MissingContextError:  # called outside a flow, e.g. from a test
        return logging.getLogger(__name__)


NO_FIGURES = ["No figures: the run stopped before this stage finished.", ""]


def _table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


class _Markdown(str):
    """A cell that is Markdown of ours (emphasis on a verdict), not text to escape."""


FAILED = _Markdown("**FAILED**")


def _cell(value) -> str:
    if isinstance(value, _Markdown):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    # File names and error texts come from outside: escaped for Markdown, which
    # Prefect renders as HTML (redress/escape.py).
    return "" if value is None else escape.markdown(value)


def run_facts(ctx: RunContext) -> dict:
    """What the warehouse holds of this run: files, quarantine, batches, and the cash
    released per value date this run released on (all runs, against the daily cap)."""
    with connect(ctx.warehouse) as con:
        files = con.execute("""
            SELECT kind, file_name, status, rows_read FROM ingested_files WHERE run_id = ?
            ORDER BY ingested_at, kind, file_name""", [ctx.run_id]).fetchall()
        quarantine = con.execute("""
            SELECT kind, reason, count(*) FILTER (row_number IS NULL), count(*) FILTER (row_number IS NOT NULL)
            FROM quarantine WHERE run_id = ? GROUP BY ALL ORDER BY kind, reason""", [ctx.run_id]).fetchall()
        batches = con.execute("""
            SELECT rail, value_date, count(*), sum(item_count), sum(control_sum) FROM batches
            WHERE run_id = ? GROUP BY ALL ORDER BY rail, value_date""", [ctx.run_id]).fetchall()
        cash = con.execute("""
            SELECT value_date, sum(control_sum) FILTER (run_id = ?), sum(control_sum) FROM batches
            WHERE rail = 'bank_transfer' AND value_date IN (
                SELECT value_date FROM batches WHERE run_id = ? AND rail = 'bank_transfer')
            GROUP BY ALL ORDER BY value_date""", [ctx.run_id, ctx.run_id]).fetchall()
    return {
        "files": [{"kind": k, "file_name": f, "status": s, "rows": r} for k, f, s, r in files],
        "quarantine": [{"kind": k, "reason": r, "files": int(f), "rows": int(n)} for k, r, f, n in quarantine],
        "batches": [{"rail": r, "value_date": _iso(d), "batches": int(b), "payments": int(p), "amount": int(a)}
                    for r, d, b, p, a in batches],
        "cash": [{"value_date": _iso(d), "this_run": int(t or 0), "all_runs": int(a)} for d, t, a in cash],
    }


def _iso(value) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def treasury_schedule(summary: dict, facts: dict) -> list[dict]:
    """Bank-transfer cash per value date this run released on, against the daily cap
    (the cap the disburse stage applied)."""
    caps = {t["value_date"]: t["daily_cash_cap"] for t in summary.get("disburse", {}).get("treasury", [])}
    cap = next(iter(caps.values()), None)
    rows = []
    for day in facts.get("cash", []):
        day_cap = caps.get(day["value_date"], cap)
        rows.append(dict(day, daily_cash_cap=day_cap,
                         headroom=None if day_cap is None else day_cap - day["all_runs"]))
    return rows


def _disagreements(held: dict) -> list[str]:
    """Rows held in review as checks_disagree, by file and row number, with both answers
    (reason codes only: SPEC "Nothing is lost")."""
    if not held.get("rows"):
        return []
    listed = held.get("listed", [])
    out = ["### Rows the input checks disagree on (held in review, not paid)", "",
           f"{held['rows']:,} rows: the SQL restatement of the rules and the classification gave different "
           "answers. Each is in the `review` table with both answers.", ""]
    out += _table(["file", "row", "classified as", "checked as"],
                  [[r["file_name"], r["row_number"], r["classified_as"], r["checked_as"]] for r in listed])
    if held["rows"] > len(listed):
        out += [f"... and {held['rows'] - len(listed):,} more in the `review` table (reason `checks_disagree`).", ""]
    return out


def summary_markdown(ctx: RunContext, summary: dict, *, facts: dict | None = None,
                     records: list[dict] | None = None, error: str | None = None) -> str:
    """The run summary as Markdown. `facts` (run_facts) and `records` (the suite records)
    fill the sections the stage summaries do not hold; `error` marks a failed run."""
    facts = facts or {}
    suites = suite_overview(records or [])
    out = [f"# redress run {ctx.run_id}", "", f"Run date {ctx.run_date}, policy {_cell(ctx.policy_path.name)}.", ""]
    if error is not None:
        out += [f"**The run failed**: {_cell(error)}", "",
                "What it did before it stopped is below; nothing after the failure was paid or sent.", ""]

    files = summary["ingest"] if "ingest" in summary else facts.get("files", [])
    out += ["## Files read", ""]
    out += _table(["kind", "file", "status", "rows"],
                  [[f["kind"], f["file_name"], f["status"], f["rows"]] for f in files]) if files else ["No new files.", ""]

    out += ["## Scope rows (all accepted files)", ""]
    if "validate" in summary:
        d = summary["validate"].get("destinations", {})
        out += _table(["rows read", "exposures", "non-member", "review", "quarantine"],
                      [[d.get("rows_read", 0), d.get("exposure", 0), d.get("non_member", 0), d.get("review", 0), d.get("quarantine", 0)]])
        out += _disagreements(summary["validate"].get("checks_disagree", {}))
    else:
        out += NO_FIGURES

    out += ["## Quarantine by reason", ""]
    quarantine = facts.get("quarantine")
    if quarantine is None:  # no warehouse facts: the scope rows' reasons from the stage summary
        quarantine = [{"kind": "scope", "reason": r, "files": 0, "rows": n}
                      for r, n in sorted(summary.get("validate", {}).get("quarantine_reasons", {}).items())]
    out += _table(["kind", "reason", "files", "rows"], [[q["kind"], q["reason"], q["files"], q["rows"]] for q in quarantine]) \
        if quarantine else ["Nothing quarantined in this run.", ""]

    out += ["## Data quality", ""]
    if suites:
        passed = sum(s["passed"] for s in suites)
        out += [f"{len(suites)} suite runs: {passed} passed, {len(suites) - passed} failed "
                f"(details in `{PAGE}` beside this file). {SUITES_NOTE}", ""]
        out += _table(["suite run", "suite", "table", "result", "expectations", "failed", "failed reasons"],
                      [[s["suite_run"], s["suite"], s["table"], "passed" if s["passed"] else FAILED,
                        s["expectations"], s["failed_expectations"], s["failed_reasons"]] for s in suites])
    else:
        out += ["No suite ran.", ""]

    out += ["## Entitlements by reason", ""]
    if "entitle" in summary:
        out += _table(["reason", "customers", "amount (KRW)"],
                      [[k, x["customers"], x["amount"]] for k, x in sorted(summary["entitle"].get("by_reason", {}).items())])
    else:
        out += NO_FIGURES

    out += ["## New payments by rail", ""]
    p = summary.get("disburse")
    if p is not None:
        out += _table(["rail", "payments", "amount (KRW)"],
                      [[k, x["payments"], x["amount"]] for k, x in sorted(p.get("per_rail", {}).items())])
        out += [f"{p.get('batches', 0):,} batches in `outbox/batches/`.", ""]
        if facts.get("batches"):
            out += ["### Batches by rail and value date", ""]
            out += _table(["rail", "value date", "batches", "payments", "amount (KRW)"],
                          [[b["rail"], b["value_date"], b["batches"], b["payments"], b["amount"]] for b in facts["batches"]])
        schedule = treasury_schedule(summary, facts) if facts.get("cash") else [
            {"value_date": t["value_date"], "this_run": t["amount"], "all_runs": None,
             "daily_cash_cap": t["daily_cash_cap"], "headroom": None} for t in p.get("treasury", [])]
        if schedule:
            out += ["## Treasury schedule (bank transfers)", ""]
            out += _table(["value date", "this run (KRW)", "all runs (KRW)", "daily cap (KRW)", "headroom (KRW)"],
                          [[t["value_date"], t["this_run"], t["all_runs"], t["daily_cash_cap"], t["headroom"]] for t in schedule])
        over = p.get("overpayments", {})
        if over.get("customers"):
            out += ["## Overpayment exceptions (no clawback)", ""]
            out += _table(["customers", "overpaid (KRW)"], [[over["customers"], over["amount"]]])
    else:
        out += NO_FIGURES

    out += ["## Notifications", ""]
    if "notify" in summary:
        out += _table(["channel", "people"], [[k, c] for k, c in sorted(summary["notify"].get("per_channel", {}).items())])
    else:
        out += NO_FIGURES
    return "\n".join(out)


def _write(ctx: RunContext, summary: dict, error: str | None = None) -> str:
    """Every report file of the run, then the artifacts; returns the summary text."""
    logger = _logger()
    facts = run_facts(ctx)
    records = validation_records(ctx.report_dir)
    text = summary_markdown(ctx, summary, facts=facts, records=records, error=error)
    ctx.report_dir.mkdir(parents=True, exist_ok=True)
    (ctx.report_dir / "summary.md").write_text(text + "\n", encoding="utf-8")
    write_data_quality_html(ctx.report_dir, ctx.run_id, records)
    try:
        build_gx_data_docs(ctx.report_dir, ctx.run_id)
    except Exception as exc:  # an extra view: never worth failing a run that has paid
        logger.warning("GX Data Docs not built: %s", exc)
    with connect(ctx.warehouse) as con:
        rows = con.sql("""
            SELECT kind, file_name, row_number, reason, detail, row_json FROM quarantine
            WHERE run_id = ? ORDER BY kind, file_name, row_number NULLS FIRST, reason""", params=[ctx.run_id]).pl()
        recon = reconciliation(con)
    if rows.height:
        ctx.quarantine_dir.mkdir(parents=True, exist_ok=True)
        outbox.write_table(rows, ctx.quarantine_dir, "quarantine")
    # Finance's reconciliation of the whole ledger as it stands after this run.
    (ctx.report_dir / "reconciliation.md").write_text(reconciliation_markdown(recon, ctx.policy().currency), encoding="utf-8")
    outbox.spreadsheet_safe(recon).write_csv(ctx.report_dir / "reconciliation.csv")
    publish_artifacts(ctx, text, summary, facts, records)
    create_table_artifact(key="reconciliation", table=escape.markdown_rows(recon.to_dicts()),
                          description=f"redress run {ctx.run_id}: ledger per rail and value date (KRW)")
    return text


def publish_artifacts(ctx: RunContext, text: str, summary: dict, facts: dict, records: list[dict]) -> None:
    """The summary and its key tables as Prefect artifacts. Every table is published,
    empty or not, so a key's latest version always belongs to the latest run."""
    about = f"redress run {ctx.run_id}"
    create_markdown_artifact(key="run-summary", markdown=text, description=about)
    # Prefect renders table cells as Markdown too: every text cell escaped.
    create_table_artifact(key="quarantine-by-reason", table=escape.markdown_rows(facts["quarantine"]),
                          description=f"{about}: quarantined files and rows per kind and reason")
    create_table_artifact(key="data-quality-suites", table=escape.markdown_rows(suite_overview(records)),
                          description=f"{about}: every suite run, passed or failed")
    create_table_artifact(key="payments-by-rail-and-value-date", table=escape.markdown_rows(facts["batches"]),
                          description=f"{about}: new batches, payments and amount (KRW) per rail and value date")
    create_table_artifact(key="treasury-schedule", table=escape.markdown_rows(treasury_schedule(summary, facts)),
                          description=f"{about}: bank-transfer cash (KRW) per value date against the daily cap")


@task(name="report", cache_policy=NO_CACHE, timeout_seconds=1800)
def write_report(ctx: RunContext, summary: dict) -> str:
    return _write(ctx, summary)


def write_failed_report(ctx: RunContext, summary: dict, error: str) -> None:
    """The report of a run that failed, as far as it got. Never raises: the run's own
    error is the one to surface."""
    try:
        _write(ctx, summary, error=error)
    except Exception as exc:
        _logger().warning("the report of failed run %s could not be written: %s", ctx.run_id, exc)
