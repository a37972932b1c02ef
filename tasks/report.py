"""The run report: counts and totals only, never personal data.

reports/<run_id>/summary.md (printed by the CLI; redress/reports/summary.py), the
data-quality page beside it (redress/reports/data_quality.py, data_docs.py),
quarantine/<run_id>/quarantine.csv, the review list quarantine/<run_id>/review.csv
(redress/reports/review.py), and Prefect artifacts: the
summary as Markdown plus tables of quarantine reasons, suites, payments per rail and
value date, and the treasury schedule. A failed run gets the same report, as far as it
got (`write_failed_report`), so the suite that stopped it is on record.

The numbers come from the stages' typed results (redress/results.py), from the suite
records and from the warehouse rows stamped with this run's id (what a failed run had
already done). This module reads them, has them rendered, and writes the files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from dataclasses import asdict
from datetime import datetime, timezone

import logging

import polars as pl

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from redress import escape
from redress.context import RunContext
from redress.errors import RedressError
from redress.runtime import progress
from redress.runtime.machine_errors import RERUN, machine_error
from redress.warehouse import connect
from redress.outbox import files as outbox
from redress.reports.reconciliation import markdown as reconciliation_markdown
from redress.reports.reconciliation import past_claim_deadline, reconciliation
from redress.reports.plan import decided, plan_fund, plan_markdown
from redress.rules.fund_cap import LIVE_LEDGER_SQL
from redress.reports.data_docs import RecordGaps, records_since, suite_overview, validation_records
from redress.reports.data_quality import write_data_quality_html
from redress.reports.review import REVIEW_STEM, review_list
from redress.reports.summary import OVERPAYMENTS_STEM, report_files, schedule_rows, summary_markdown
from redress.results import Destinations, RunSummary, TreasuryDay
from redress.reports.facts import RunFacts, applied_facts, run_facts
from redress.reports import run_report
from redress.reports.report_facts import exposure_pairs, report_facts
from redress.warehouse import plans
from redress.warehouse.runs import STOPPED, record_exposures, recorded_exposures, run_context
from redress.vocabulary import WAITING


def _logger():
    try:
        return get_run_logger()
    except MissingContextError:  # called outside a flow, e.g. from a test
        return logging.getLogger(__name__)


def _write(ctx: RunContext, summary: RunSummary, error: str | None = None, *, killed: bool = False) -> str:
    """Every report file of the run, then the artifacts; returns the summary text. The
    summary is written last: it links the other files, by the paths they were written to.
    `killed`: the report of a run that stopped before writing its own, written by a later
    run (report_killed_runs): with what it applied to the ledger, and no artifacts (they
    would pass for the later run's)."""
    records = validation_records(ctx.report_dir)
    policy_id, policy_name = ctx.policy().id, ctx.policy_path.name
    with connect(ctx.warehouse) as con:
        applied = applied_facts(con, ctx.run_id) if killed else None
        if killed:  # the policy it ran under, as recorded, whatever its file holds now
            (policy_id, parameters), = con.execute("SELECT policy_id, parameters FROM runs WHERE run_id = ?",
                                                   [ctx.run_id]).fetchall()
            policy_name = Path(json.loads(parameters or "{}").get("policy") or policy_name).name
        facts = run_facts(con, ctx.run_id)
        exposures = exposure_pairs(con, ctx.run_id)
        more = report_facts(con, ctx.run_id, exposures)
        record_exposures(con, ctx.run_id, exposures)  # for the page written again at the approval
        rows = con.sql("""
            SELECT kind, file_name, row_number, reason, detail, row_json FROM quarantine
            WHERE run_id = ? ORDER BY kind, file_name, row_number NULLS FIRST, reason""", params=[ctx.run_id]).pl()
        recon = reconciliation(con, ctx.run_date, ctx.policy().claim_deadline,
                               max_attempts=ctx.policy().max_attempts)
        held = review_list(con)
    ctx.report_dir.mkdir(parents=True, exist_ok=True)
    written = [write_data_quality_html(ctx.report_dir, ctx.run_id, records, error)]
    # Finance's reconciliation of the whole ledger as it stands after this run.
    (ctx.report_dir / "reconciliation.md").write_text(
        reconciliation_markdown(recon, ctx.policy().currency, ctx.policy().total_cap), encoding="utf-8")
    outbox.spreadsheet_safe(recon).write_csv(ctx.report_dir / "reconciliation.csv")
    written += [ctx.report_dir / "reconciliation.md", ctx.report_dir / "reconciliation.csv"]
    if rows.height:
        written += outbox.write_run_list(rows, ctx.quarantine_dir, "quarantine", ctx.run_date, _logger())
    if held.height:  # the whole review table as it stands: what forensics still has to decide
        written += outbox.write_run_list(held, ctx.quarantine_dir, REVIEW_STEM, ctx.run_date, _logger())
    over = pl.scan_parquet(ctx.overpayments_file, glob=False).collect() if ctx.overpayments_file.is_file() else None
    if over is not None and over.height:
        # SPEC "Ledger": an overpayment is listed as an exception in the run report. Who,
        # by customer id, is personal data: beside the review list, not in reports/.
        # `above_entitlement`: held and paid out together; the summary's "overpaid" is the
        # paid-out part alone (`paid_out_above`), so the sum is not named the same
        written += outbox.write_run_list(over.rename({"overpaid": "above_entitlement"}), ctx.quarantine_dir,
                                         OVERPAYMENTS_STEM, ctx.run_date, _logger())
    page = _write_page(ctx, summary.validate.destinations if summary.validate else None,
                       summary.disburse.treasury if summary.disburse else (), facts, more, recon, records, error)
    written.append(ctx.report_dir / run_report.PAGE)
    text = summary_markdown(summary, run_date=ctx.run_date, policy_name=policy_name,
                            facts=facts, records=records, error=error,
                            outputs=report_files(ctx.data_dir, ctx.report_dir, written),
                            ledger=recon.row(recon.height - 1, named=True), claim_deadline=ctx.policy().claim_deadline,
                            total_cap=ctx.policy().total_cap, applied=applied, policy_id=policy_id,
                            earlier=[{"run_id": r, **report_files(ctx.data_dir, ctx.report_dir,
                                                                  [ctx.report_dir.parent / r / "summary.md"])[0]}
                                     for r in summary.earlier_reports])
    (ctx.report_dir / "summary.md").write_text(text + "\n", encoding="utf-8")
    if killed:
        return text
    publish_artifacts(ctx, text, summary, facts, records)
    publish_report_artifacts(ctx, page)
    create_table_artifact(key="reconciliation", table=escape.markdown_rows(recon.to_dicts()),
                          description=f"redress run {ctx.run_id}: ledger per rail and value date (KRW)")
    return text


def publish_artifacts(ctx: RunContext, text: str, summary: RunSummary, facts: RunFacts, records: list[dict]) -> None:
    """The summary and its key tables as Prefect artifacts. Every table is published,
    empty or not, so a key's latest version always belongs to the latest run."""
    about = f"redress run {ctx.run_id}"
    create_markdown_artifact(key="run-summary", markdown=text, description=about)
    # Prefect renders table cells as Markdown too: every text cell escaped.
    create_table_artifact(key="quarantine-by-reason", table=escape.markdown_rows(
                              [dict(asdict(q), file_names=", ".join(q.file_names)) for q in facts.quarantine]),
                          description=f"{about}: quarantined files and rows per kind and reason")
    create_table_artifact(key="data-quality-suites", table=escape.markdown_rows(suite_overview(records)),
                          description=f"{about}: every suite run, passed or failed")
    publish_money_tables(ctx, facts, summary.disburse.treasury if summary.disburse else ())


def publish_money_tables(ctx: RunContext, facts: RunFacts, treasury: tuple[TreasuryDay, ...],
                         released: str = "") -> None:
    """The payments-by-rail-and-value-date and treasury-schedule artifacts: what the run
    released, or, for a plan waiting for approval, what it plans (said so in the
    description); `released` (e.g. "released, approved by finance") heads the
    description of what an approval released (flows/approval.py). SPEC "Approval before release"."""
    planned = not facts.batches and bool(facts.planned_batches)
    state = "planned, waiting for approval: " if planned else (f"{released}: " if released else "")
    about = f"redress run {ctx.run_id}: {state}"
    batches = facts.planned_batches if planned else facts.batches
    create_table_artifact(key="payments-by-rail-and-value-date", table=escape.markdown_rows([asdict(b) for b in batches]),
                          description=f"{about}new batches, payments and amount (KRW) per rail and value date")
    create_table_artifact(key="treasury-schedule", table=escape.markdown_rows(schedule_rows(treasury, facts)),
                          description=f"{about}bank-transfer cash (KRW) per value date against the daily cap")


def publish_released_tables(ctx: RunContext) -> None:
    """After an approval released run `ctx.run_id`'s plan: its released figures as the
    two money artifacts, from the warehouse (the caps from its `runs.counts`). Called
    inside the approve flow run, so the artifacts belong to it."""
    with connect(ctx.warehouse) as con:
        (counts,), = con.execute("SELECT counts FROM runs WHERE run_id = ?", [ctx.run_id]).fetchall()
        facts = run_facts(con, ctx.run_id)
    disburse = json.loads(counts or "{}").get("disburse") or {}
    publish_money_tables(ctx, facts, tuple(TreasuryDay(**t) for t in disburse.get("treasury", ())),
                         released="released by the approval")


def _write_page(ctx: RunContext, destinations: Destinations | None, treasury: tuple[TreasuryDay, ...], facts: RunFacts,
                more, recon, records: list[dict], error: str | None, *,
                gaps: RecordGaps = RecordGaps()) -> run_report.Report:
    policy = ctx.policy()
    page = run_report.build(destinations, treasury, facts, more, recon, records, policy.daily_cash_cap, gaps=gaps,
                            run_date=ctx.run_date, claim_deadline=policy.claim_deadline, total_cap=policy.total_cap)
    (ctx.report_dir / run_report.PAGE).write_text(
        run_report.report_html(page, run_id=ctx.run_id, run_date=ctx.run_date, policy_id=policy.id, more=more,
                               error=error), encoding="utf-8")
    return page


def refresh_closed_pages(ctx: RunContext) -> list[tuple[str, str, str | None]]:
    """The report pages of the runs whose plan was superseded or expired and whose page
    does not show it yet (plans.pages_due): the plan run `ctx.run_id` has just
    superseded, and any whose page an earlier command was killed before writing, or
    could not write. Each is written again (refresh_report_page; nothing for a run
    whose report folder is gone) and then recorded as done. Returns
    (run id, state, None) for each done, (run id, state, why) for each that could not
    be: it is tried again by the next run, and the console says so in one line (a
    failure costs little: the policy file, the usual cause, is checked first). Never
    raises for one page, whatever went wrong with it: the run goes on. Cheap when there
    are none: one query."""
    with connect(ctx.warehouse) as con:
        due = plans.pages_due(con)
    done = []
    for run_id, state in due:
        try:
            why = close_page(run_context(ctx.data_dir, run_id, recorded_policy=True))
        except Exception as exc:  # one old page never stops the run (refresh_report_page itself never raises)
            why = machine_error(exc)
            if why is None:  # not an expected failure: a bug, whose traceback the log keeps
                _logger().warning("the report page of run %s", run_id, exc_info=True)
                why = f"{type(exc).__name__}: {exc}"
        if why is not None:
            why = " ".join(why.removesuffix(RERUN).split())  # one line, whatever the error's text
            line = (f"the report page of run {run_id} could not be written to show its plan {state}: {why} "
                    "(the next run tries again)")
            progress.note(line)  # the console of `redress run`
            _logger().warning(line)  # and the flow run's log: a served run has no console
        done.append((run_id, state, why))
    return done


def close_page(ctx: RunContext) -> str | None:
    """The report page of run `ctx.run_id`, whose plan is superseded or expired, written
    again (refresh_report_page), then recorded as done (plans.complete), so no later
    run's start writes it again. None when done, else why not (nothing recorded)."""
    why = refresh_report_page(ctx)
    if why is None:
        with connect(ctx.warehouse) as con:
            plans.complete(con, ctx.run_id, datetime.now(timezone.utc).replace(microsecond=0))
    return why


def report_folder_gone(ctx: RunContext) -> bool:
    """True when `reports/` is there and the run's folder in it is not, not even as a
    link: deleted by hand (a run with a plan always made it, in validate). Anything
    else there (a file, a broken link, `reports/` itself missing or a link to a share
    not mounted now) is not gone: writing the page fails with the reason, and it is
    tried again. OSError (say, a folder it may not read) propagates."""
    reports = ctx.report_dir.parent
    return reports.is_dir() and not reports.is_symlink() and not os.path.lexists(ctx.report_dir)


DECISION_NOTE = "**Since this run: its plan is "


def note_decision(summary_md: Path, state: str, decision: str) -> None:
    """Say at the top of a run's summary.md what became of its plan (`decision`:
    redress/reports/plan.py `decided`), in place of an earlier such note: the rest of the
    summary stays as the run stopped, "planned, waiting for approval". Found by review:
    the approved run's main report said it waited for ever. Nothing when the run wrote
    no summary."""
    if not summary_md.is_file():
        return
    lines, earlier = [], False
    for line in summary_md.read_text(encoding="utf-8").split("\n"):
        if line.startswith(DECISION_NOTE) or (earlier and line == ""):  # an earlier note, and its blank line
            earlier = line.startswith(DECISION_NOTE)
            continue
        earlier = False
        lines.append(line)
    # after the "Run date ..., policy ..." line and its blank line
    at = next((n + 2 for n, line in enumerate(lines) if line.startswith("Run date ")), 1)
    note = (f"{DECISION_NOTE}{escape.markdown(state)}**: {escape.markdown(decision)} (`plan.md`, `report.html`). "
            "The figures below are as the run stopped, before the decision.")
    lines[at:at] = [note, ""]
    summary_md.write_text("\n".join(lines), encoding="utf-8")


def refresh_report_page(ctx: RunContext) -> str | None:
    """report.html, the reconciliation and plan.md of run `ctx.run_id` written again from
    the warehouse, once its plan was approved, rejected, expired or superseded
    (flows/approval.py, refresh_closed_pages), so the page shows what became of it
    and what was released. The stage figures come from the run's `runs.counts`, its
    exposure counts from `runs.exposures` (counted again only when a run of an earlier
    version left none). Never raises: the page is a view, and the decision is already
    recorded. Returns None when written, else why not in one line (also a warning):
    a full disk, say, or the run's policy file changed or gone since the run. A run
    whose report folder is gone (deleted by hand) gets none: no page of it shows the
    plan as it was, and one made now would lack the run's suite records (validations/),
    which went with the folder; None then too, with a warning (`report_folder_gone`)."""
    try:
        if report_folder_gone(ctx):
            _logger().warning("run %s has no report folder (deleted?): no page written again", ctx.run_id)
            return None
        policy = ctx.policy()  # first: a changed or missing policy file costs no query
        with connect(ctx.warehouse) as con:
            (counts, error), = con.execute("SELECT counts, error FROM runs WHERE run_id = ?", [ctx.run_id]).fetchall()
            # The exposures as the run's report counted them: no scope row has changed since.
            facts = run_facts(con, ctx.run_id)
            more = report_facts(con, ctx.run_id, recorded_exposures(con, ctx.run_id))
            recon = reconciliation(con, ctx.run_date, policy.claim_deadline, max_attempts=policy.max_attempts)
            plan = plans.read(con, ctx.run_id)
            (live,), = con.execute(LIVE_LEDGER_SQL).fetchall()
        counts = json.loads(counts or "{}")
        validate, disburse = counts.get("validate") or {}, counts.get("disburse") or {}
        destinations = Destinations(**validate["destinations"]) if validate else None
        treasury = tuple(TreasuryDay(**t) for t in disburse.get("treasury", ()))
        # the run's suite records against the labels its row holds: some may be gone since
        records, gaps = records_since(ctx.report_dir, counts.get("suite_records"))
        _write_page(ctx, destinations, treasury, facts, more, recon, records, error, gaps=gaps)
        # the ledger after the release: what finance reconciles against the bank
        (ctx.report_dir / "reconciliation.md").write_text(
            reconciliation_markdown(recon, policy.currency, policy.total_cap), encoding="utf-8")
        outbox.spreadsheet_safe(recon).write_csv(ctx.report_dir / "reconciliation.csv")
        if plan is not None and plan["state"] != WAITING:  # what became of it, its commands gone
            note_decision(ctx.report_dir / "summary.md", plan["state"], decided(plan))
            (ctx.report_dir / "plan.md").write_text(plan_markdown(
                ctx.run_id, plan["policy_id"], plan["state"], plan["expires_at"], plan["summary"], [],
                decision=decided(plan), past_claim_deadline=past_claim_deadline(ctx.run_date, policy.claim_deadline),
                fund=plan_fund(int(live), policy.total_cap, plan["state"], plan["summary"])),
                encoding="utf-8")
    except Exception as exc:
        why = _reports_missing(ctx) or machine_error(exc) or f"{type(exc).__name__}: {exc}"
        _logger().warning("report.html of run %s not written again: %s", ctx.run_id, why)
        return why
    return None


def _reports_missing(ctx: RunContext) -> str | None:
    """Why no page can be written when `reports/` itself is not there (deleted, or a link
    to a share not mounted now), or is a link whose target lacks the run's folder (a
    share not mounted over its mount point, or the folder deleted: report_folder_gone
    cannot tell which), which repeating the decision cannot change (found by the recovery
    review: "FileNotFoundError", and the same again at every repeat); None otherwise."""
    reports = ctx.report_dir.parent
    if reports.is_dir():
        if reports.is_symlink() and not os.path.lexists(ctx.report_dir):  # found by the fix review
            return (f"the run's folder reports/{ctx.run_id} is not there, and reports/ is a link (to a share?): "
                    "mount the share if it is not, or, if that folder was deleted, create it empty")
        return None
    if reports.exists():
        return "the data folder's reports/ is not a folder: move that file away and create the folder"
    link = " is a link to a folder that is not there now (a share not mounted?)" if reports.is_symlink() else \
        " is not there (deleted, or a share not mounted?)"
    return f"the data folder's reports/{link}: mount it or create it"


def publish_report_artifacts(ctx: RunContext, page: run_report.Report) -> None:
    """report.html's charts as one Markdown artifact (run-report) and its tables that
    publish_artifacts does not already publish as table artifacts."""
    about = f"redress run {ctx.run_id}"
    create_markdown_artifact(key="run-report", markdown=run_report.report_markdown(page, ctx.run_id),
                             description=f"{about}: the charts of report.html")
    tables = {
        "run-funnel": (page.funnel, "scope rows, exposures, people and where rows were set aside"),
        "ledger-by-rail": (page.rails, "the whole ledger per rail and status (KRW); claim money is held, not paid"),
        "entitlements-by-reason": (page.reasons, "customers and amount (KRW) per entitlement reason"),
        "payments-by-kind": (page.changes, "this run's payments per kind: first, top-up, reissue, claim (KRW)"),
    }
    for key, (rows, what) in tables.items():
        create_table_artifact(key=key, table=escape.markdown_rows(rows), description=f"{about}: {what}")


@task(name="report", task_run_name="report", cache_policy=NO_CACHE, timeout_seconds=1800)
def write_report(ctx: RunContext, summary: RunSummary) -> str:
    """Every report file of the run and its artifacts; returns the text of summary.md."""
    return _write(ctx, summary)


def write_failed_report(ctx: RunContext, summary: RunSummary, error: str, *, killed: bool = False) -> bool:
    """The report of a run that failed, as far as it got (`killed`: see _write); False
    when it could not be written. Never raises: the run's own error is the one to
    surface."""
    try:
        _write(ctx, summary, error=error, killed=killed)
    except Exception as exc:
        _logger().warning("the report of failed run %s could not be written: %s", ctx.run_id,
                          machine_error(exc) or type(exc).__name__)
        return False
    return True


def report_killed_runs(ctx: RunContext) -> tuple[str, ...]:
    """Write the report of every earlier run that stopped before writing its own (killed,
    or its failure could not be recorded: redress/warehouse/runs.py STOPPED), from what
    the warehouse holds of it: the files it read (returns and claims applied, a
    customers snapshot or scope files taken in), the rows it quarantined, and what it
    applied to the ledger. Found by review: a returns file applied by a killed run was
    in no summary, the next run saying "no new files", so finance could not reconcile
    the bank's file. Returns the run ids written, oldest first; a report that cannot be
    written (its policy file gone) is a warning, tried again by the next run."""
    with connect(ctx.warehouse) as con:
        stopped = [r for (r,) in con.execute(
            "SELECT run_id FROM runs WHERE outcome = 'failed' AND error = ? AND run_id <> ? ORDER BY started_at, run_id",
            [STOPPED, ctx.run_id]).fetchall()]
    written = []
    for run_id in stopped:
        try:
            earlier = run_context(ctx.data_dir, run_id)
        except RedressError as exc:
            _logger().warning("the report of run %s, which stopped before the end, cannot be written: %s", run_id, exc)
            continue
        if (earlier.report_dir / "summary.md").is_file():
            continue
        why = f"{STOPPED}: it wrote no report, so run {ctx.run_id} wrote this one from what the warehouse holds of it"
        try:
            earlier.policy()
        except RedressError:  # its policy file changed or gone since: the report is still owed
            earlier = dataclasses.replace(earlier, policy_path=ctx.policy_path, policy_sha256=ctx.policy_sha256)
            why += (f"; its policy file is not as it was, so what depends on a policy (the reconciliation's claim "
                    f"deadline and fund cap) is read under run {ctx.run_id}'s")
        with connect(ctx.warehouse) as con:  # what it superseded as it started (found by the fix review)
            superseded = tuple(plans.superseded_by(con, run_id))
        if write_failed_report(earlier, RunSummary(run_id=run_id, superseded_plans=superseded), why, killed=True):
            written.append(run_id)
            with connect(ctx.warehouse) as con:
                plan = plans.read(con, run_id)
            if plan is not None and plan["state"] != WAITING:  # superseded by this run, say
                note_decision(earlier.report_dir / "summary.md", plan["state"], decided(plan))
    return tuple(written)
