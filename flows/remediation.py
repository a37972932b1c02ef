"""The parent flow: ingest -> returns -> claims -> validate -> entitle -> disburse -> notify -> report."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger

from redress.rules.notifications import refuse_unsafe_policy, unlabelled
from redress.errors import RedressError
from redress.runtime.faults import checkpoint
from redress.runtime.machine_errors import drop_expected_tracebacks, machine_error
from redress.runtime.permissions import private_files
from redress.runtime import interrupts, progress
from redress.runtime.run_naming import flow_run_name, name_and_tag
from redress.policy import load_policy
from redress.results import RunSummary
from redress.settings import Settings, for_run
from redress.warehouse import connect, held_open, plans
from redress.warehouse import path as warehouse_path
from redress.warehouse.exports import write_exports
from redress.warehouse.runs import data_dir_lock, finish_run, start_run
from tasks.report import refresh_closed_pages, report_killed_runs, write_failed_report, write_report
from tasks.disburse import disburse
from tasks.entitle import compute_entitlements
from tasks.ingest import ingest_inbox
from tasks.returns import apply_returns
from tasks.claims import apply_claims
from tasks.notify import notify
from tasks.validate import validate_scope
from redress.runtime.start_checks import check_before_run


drop_expected_tracebacks()  # in Prefect's logs too, an expected failure is its one line


@flow(name="redress-remediation", log_prints=False, flow_run_name=flow_run_name)
def remediation(data_dir: Path, policy_path: Path, run_date: date | None = None) -> dict:
    """One run over what is in the inbox; returns the run summary (counts, no personal
    data) as plain JSON values: run_id, each stage's result (redress/results.py) and the
    report text (RunSummary.as_dict). `run_date` None: today where the policy pays, read
    from the clock the run's start is recorded by (redress/warehouse/runs.py start_run),
    so a run for its own day is never taken for a catch-up (found by the fix review: a
    date read before Prefect's server started, then midnight, made it one).

    Raises RedressError (one line) for every expected failure, data or machine (disk
    full, read-only folder, warehouse held by another process or not DuckDB's): checked
    at the start before anything is written where possible, else recorded as a failed
    run, which a rerun after the fix completes, paying exactly once. The settings are
    built once at the start (redress.settings.for_run: the environment's, or those the
    caller in this process gave) and handed to each task; never a parameter, which
    Prefect would store with the HMAC key in it.
    """
    policy = load_policy(policy_path)
    refuse_unsafe_policy(policy)  # a message it would render that notify must refuse: refused before anything is paid
    if unlabelled(policy):  # the run goes on: the key is what the person reads, not a wrong word
        get_run_logger().warning("messages will name %s as written in the policy, not in Korean: give each a word "
                                 "in notice.category_labels or notice.product_labels", ", ".join(unlabelled(policy)))
    data_dir = Path(data_dir).absolute()  # a caller's `~x` is ./~x, never the home folder (redress/sql.py)
    try:
        settings = for_run(data_dir)  # built once, here: a served run has no CLI; never a parameter
        # Every file the run creates is its owner's (and the share group's) only.
        with private_files(data_dir, settings.share_group), data_dir_lock(data_dir):
            check_before_run(data_dir, settings)  # settings, warehouse, outbox: nothing written yet
            # One DuckDB instance for the run's many opens while the warehouse is small
            # (redress.warehouse.held_open).
            with held_open(warehouse_path(data_dir)):
                summary = _stages(data_dir, policy, run_date, policy_path, settings)
                try:
                    write_exports(data_dir, settings.share_group)
                except Exception as exc:
                    line = machine_error(exc)
                    if line is None:
                        raise
                    raise RedressError(f"run {summary.run_id} succeeded, but the analyst exports were not "
                                       f"written: {line}") from exc
    except Exception as exc:
        line = machine_error(exc)
        if line is None or isinstance(exc, RedressError):
            raise
        raise RedressError(line) from exc
    return summary.as_dict()


def _stages(data_dir: Path, policy, run_date: date | None, policy_path: Path, settings: Settings) -> RunSummary:
    ctx = start_run(data_dir, policy, run_date, {"data_dir": str(data_dir), "policy": str(policy_path)})
    checkpoint("run:started", settings)  # registered, a waiting plan superseded; no page written again yet
    summary = RunSummary(run_id=ctx.run_id)
    with connect(ctx.warehouse) as con:  # found by the lifecycle review: nothing said so
        summary.superseded_plans = tuple(plans.superseded_by(con, ctx.run_id))
    try:
        name_and_tag(ctx.run_id, policy.id, data_dir)  # the flow run is found by the run id
        get_run_logger().info("run %s: policy %s, data folder %s, run date %s",
                              ctx.run_id, policy.id, data_dir.name, ctx.run_date.isoformat())
        for closed, state, why in refresh_closed_pages(ctx):  # their pages no longer show a plan waiting
            if why is None:
                get_run_logger().info("run %s: the report page of run %s written again, its plan %s", ctx.run_id,
                                      closed, state)
        summary.earlier_reports = report_killed_runs(ctx)
        for earlier in summary.earlier_reports:
            get_run_logger().info("run %s: run %s stopped before the end and wrote no report; its report is written "
                                  "from what the warehouse holds of it", ctx.run_id, earlier)
        # Each stage timed and counted on the console (redress/runtime/progress.py).
        summary.ingest = progress.timed("ingest", ingest_inbox, ctx, settings)
        summary.returns = progress.timed("returns", apply_returns, ctx, settings)
        summary.claims = progress.timed("claims", apply_claims, ctx, settings)
        summary.validate = progress.timed("validate", validate_scope, ctx, settings)
        summary.entitle = progress.timed("entitle", compute_entitlements, ctx, settings)
        summary.disburse = progress.timed("disburse", disburse, ctx, settings)
        if not summary.disburse.awaiting_approval:  # else told once approved (flows/approval.py)
            summary.notify = progress.timed("notify", notify, ctx, settings)
        summary.report = progress.timed("report", write_report, ctx, summary)
    except BaseException as exc:
        # A Ctrl-C during a query reaches here as DuckDB's RuntimeError("Query interrupted").
        error = "interrupted (Ctrl-C)" if interrupts.pressed() else machine_error(exc) or str(exc) or type(exc).__name__
        # Recording the failure needs the disk and the warehouse, which may be what
        # failed: when it cannot be recorded, the next run marks this one failed.
        for record in (lambda: write_failed_report(ctx, summary, error),  # what was done, and what stopped it
                       lambda: finish_run(ctx, "failed", summary, error=error)):
            try:
                record()
            except Exception as also:
                get_run_logger().warning("could not record the failure: %s", machine_error(also) or type(also).__name__)
        raise
    finish_run(ctx, "succeeded", summary)
    return summary
