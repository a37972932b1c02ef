"""The parent flow: ingest -> validate -> entitle -> disburse -> notify."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow

from redress.permissions import private_files
from redress.policy import load_policy
from redress.settings import load_settings
from tasks.runs import data_dir_lock, finish_run, start_run
from tasks.report import write_failed_report, write_report
from tasks.stage_disburse import disburse
from tasks.stage_entitle import compute_entitlements
from tasks.stage_ingest import ingest_inbox
from tasks.stage_returns import apply_returns
from tasks.stage_notify import notify
from tasks.stage_validate import validate_scope


@flow(name="redress-remediation", log_prints=False)
def remediation(data_dir: Path, policy_path: Path, run_date: date) -> dict:
    """One run over what is in the inbox; returns the run summary (counts, no personal data)."""
    policy = load_policy(policy_path)
    # Every file the run creates is its owner's (and the share group's) only.
    with private_files(data_dir, load_settings().share_group), data_dir_lock(data_dir):
        ctx = start_run(data_dir, policy, run_date, {"data_dir": str(data_dir), "policy": str(policy_path), "run_date": str(run_date)})
        summary: dict = {"run_id": ctx.run_id}
        try:
            summary["ingest"] = ingest_inbox(ctx)
            summary["returns"] = apply_returns(ctx)
            summary["validate"] = validate_scope(ctx)
            summary["entitle"] = compute_entitlements(ctx)
            summary["disburse"] = disburse(ctx)
            summary["notify"] = notify(ctx)
            summary["report"] = write_report(ctx, summary)
        except BaseException as exc:
            error = str(exc) or type(exc).__name__
            write_failed_report(ctx, summary, error)  # what was done, and the suite that stopped it
            finish_run(ctx, "failed", summary, error=error)
            raise
        finish_run(ctx, "succeeded", summary)
    return summary
