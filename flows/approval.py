"""Approval before release (SPEC "Approval before release"): a waiting plan released or
discarded, from the command line or from the approval form of a served run paused in
the Prefect UI.

    approve_plan  (flow)  `redress approve RUN_ID --by NAME [--note TEXT]`
    reject_plan           `redress reject RUN_ID --by NAME [--note TEXT]` (no Prefect needed)
    await_approval        a served run, once its plan is saved: paused with ApprovalForm

Approving releases exactly the plan's payments and batches in the disburse stage's
crash-safe order (redress/disbursement/release.py: folders written, ledger rows committed with the
approval, folders published, each with its checkpoint), then tells the people of the run
(the notify stage: nobody is told about a payment before it is released). Each works
under the data folder's lock; only a `waiting` plan before its expiry is decided, anything
else is refused in one line (redress/rules/plans.py `refusal`).

A killed approval is finished by approving again: one killed before its release
committed is released afresh; one killed after it has its committed folders published,
then whatever of its last steps is left done: its people told (unless its notify
committed), its report page, Prefect artifacts and exports written again. Only then is
the plan `completed` (plans.completed_at), and approving it again refused. A killed
rejection is finished the same way by rejecting again (its report page).
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import polars as pl
from prefect import flow, get_run_logger
from prefect.input import RunInput
from pydantic import Field, field_validator

from redress.checks.emission_checks import (check_plan, gate_fingerprint, stage_batches, stage_checked,
                                             stage_payments)
from redress.context import RunContext
from redress.errors import RedressError, RunPolicyUnreadable
from redress.policy import load_policy
from redress.rules.batches import batch_summary
from redress.rules.notifications import refuse_unsafe_policy
from redress.rules.plans import dated_in_the_past, past_claim_deadline, refusal
from redress.results import ReleaseResult
from redress.rules.vouchers import with_voucher_parts
from redress.runtime.commands import MAX_DECIDER_CHARS, MAX_NOTE_CHARS, decider_name, decision_note, os_user, redress_line
from redress.runtime.machine_errors import drop_expected_tracebacks
from redress.runtime import progress
from redress.runtime.faults import checkpoint
from redress.runtime.permissions import private_files
from redress.runtime.run_naming import approve_run_name, name_and_tag
from redress.runtime.start_checks import check_outbox_known
from redress.settings import Settings, check_fail_at, for_run
from redress.vocabulary import APPROVED, BANK_TRANSFER, CLAIM, EXPIRED, REJECTED, WAITING
from redress.warehouse import connect, held_open
from redress.warehouse import path as warehouse_path
from redress.warehouse import plans as plans_table
from redress.warehouse.exports import write_exports
from redress.warehouse.runs import data_dir_lock, run_context
from tasks.disburse import recover_outbox
from tasks.notify import notify, recover_notifications
from tasks.report import close_page, publish_released_tables, refresh_report_page, report_folder_gone
from redress.disbursement.release import Approval, release
from redress.outbox.audit import refuse_ledger_unlike_batches

POLL_SECONDS = 5  # how often a paused run asks the server whether it was resumed
drop_expected_tracebacks()  # in Prefect's logs too, an expected failure is its one line


class ApprovalForm(RunInput):
    """The form a paused served run shows in the Prefect UI. The name and note are
    checked as the command line checks --by and --note (redress/runtime/commands.py).
    The UI checks only the form's schema (lengths), so an answer these validators refuse
    reaches the run, which says so in its log and offers the form again (`_ask`; found
    by review: a placeholder or blank name failed the flow run after the pause was used
    up, in words about --by)."""
    decision: Literal["approve", "reject"] = Field(description="approve: release the plan; reject: discard it")
    name: str = Field(min_length=1, max_length=MAX_DECIDER_CHARS, description="who decides (recorded in runs and manifests)")
    note: str = Field(default="", max_length=MAX_NOTE_CHARS, description="why, for the record")

    @field_validator("name")
    @classmethod
    def _a_decider(cls, name: str) -> str:
        try:
            return decider_name(name)
        except RedressError as exc:
            raise ValueError(str(exc).replace("--by", "the name")) from None

    @field_validator("note")
    @classmethod
    def _a_note(cls, note: str) -> str:
        try:
            return decision_note(note) or ""
        except RedressError as exc:
            raise ValueError(str(exc).replace("--note", "the note")) from None


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _waiting(ctx: RunContext, decision: str, now: datetime) -> dict:
    """The plan, if it can take `decision` now; else RedressError (one line), after
    recording that a waiting plan past its expiry has expired."""
    with connect(ctx.warehouse) as con:
        plan = plans_table.read(con, ctx.run_id)
        why = refusal(ctx.run_id, plan and plan["state"], plan and plan["expires_at"], now, decision,
                      completed=not plan or plan["completed_at"] is not None)
        expired = bool(why) and bool(plan) and plan["state"] == WAITING
        if expired:
            plans_table.decide(con, ctx.run_id, EXPIRED, by=None, note=None, at=now)
        elif not why and decision == APPROVED:  # still waiting: not with bank files dated in the past
            (run_date, started_at), = con.execute("SELECT run_date, started_at FROM runs WHERE run_id = ?",
                                                  [ctx.run_id]).fetchall()
            (first_bank_day,), = con.execute("SELECT min(value_date) FROM plan_batches WHERE run_id = ? AND rail = ?",
                                             [ctx.run_id, BANK_TRANSFER]).fetchall()
            zone = ZoneInfo(ctx.policy().timezone)
            why = dated_in_the_past(ctx.run_id, run_date, started_at.astimezone(zone).date(),
                                    now.astimezone(zone).date(), first_bank_day, zone.key)
    if expired:
        _discard_scratch(ctx)
        close_page(ctx)  # report.html shows the plan expired (else the next run's start writes it)
    if why:
        raise RedressError(why)
    return plan


def release_plan(data_dir: Path, run_id: str, by: str, note: str | None, settings: Settings) -> dict:
    """Release plan `run_id` (inside a flow run, under the folder lock and `held_open`),
    then its last steps (`_complete`). Returns run_id, batches, payments, amount_krw,
    notifications, recovered_batches, `unwritten` (None, or why the report page could
    not be written: the approval is then left to finish) and `page_gone` (True when the
    run's report folder was deleted by hand, so no page was written:
    tasks/report.py report_folder_gone); with `finished` (True) and `told_before` when
    it finished an approval that was killed after its release committed (batches,
    payments and amount_krw 0: released then; told_before: its notify had committed too).
    RedressError (one line) for a plan it may not release (redress/rules/plans.py)."""
    by, now = decider_name(by), _now()
    check_outbox_known(data_dir, "nothing was released")  # a restored warehouse's plan pays its people again
    ctx = run_context(data_dir, run_id)
    recovered = recover_outbox(ctx)  # a killed approval's committed folders, published first
    if _unfinished(ctx, APPROVED):
        # An approval killed after its release committed: the payments are issued and their
        # folders now published. Given again, `approve` does what is left: tells the run's
        # people unless its notify committed (then its files are published), and writes the
        # report page, artifacts and exports again. So repeating a killed approval completes it.
        told = None if _told(ctx) else progress.timed("notify", _notify, ctx, settings)
        if told is None:
            recover_notifications(ctx)  # a notify killed after its commit: its files published
            _discard_scratch(ctx)  # and its scratch files (people's contacts) gone
        unwritten = progress.timed("report", partial(_complete, released=True), ctx, settings, by)
        get_run_logger().info("finished the interrupted approval of plan %s", run_id)
        return {"run_id": run_id, "batches": 0, "payments": 0, "amount_krw": 0,
                "notifications": told.notifications if told else 0, "told_before": told is None,
                "recovered_batches": recovered, "finished": True, "unwritten": unwritten,
                "page_gone": report_folder_gone(ctx)}
    afresh = "or run again to plan afresh (the new run supersedes this plan)"
    try:  # found by the recovery review: a policy file moved with its folder, and no way on was said
        plan = _waiting(ctx, APPROVED, now)
    except RunPolicyUnreadable as exc:
        raise RedressError(f"{exc}, {afresh}") from None
    try:
        policy = load_policy(ctx.policy_path)
    except RedressError as exc:
        raise RedressError(f"{exc} (run {run_id} read its policy there: put the file back as the run read it), "
                           f"{afresh}") from None
    if policy.sha256 != ctx.policy_sha256:
        raise RedressError(f"policy {ctx.policy_path.name} changed since run {run_id} planned: run again to plan "
                           "afresh (the new run supersedes this plan)")
    refuse_unsafe_policy(policy)  # notify would refuse its messages after the release: refused before it
    approval = Approval(by=by, at=now, note=decision_note(note), os_user=os_user())
    released = progress.timed("release", _release, ctx, settings, policy, plan, approval)
    told = progress.timed("notify", _notify, ctx, settings)
    unwritten = progress.timed("report", partial(_complete, released=True), ctx, settings, by)
    get_run_logger().info("released plan %s: %s payments (%s KRW) in %s batches", run_id, f"{released.payments:,}",
                          f"{released.amount_krw:,}", f"{released.batches:,}")
    return {"run_id": run_id, "batches": released.batches, "payments": released.payments,
            "amount_krw": released.amount_krw, "held_payments": released.held_payments,
            "held_krw": released.held_krw, "claim_deadline_passed": released.claim_deadline_passed,
            "notifications": told.notifications,
            "recovered_batches": recovered, "unwritten": unwritten, "page_gone": report_folder_gone(ctx)}


def _release(ctx: RunContext, settings: Settings, policy, plan: dict, approval: Approval) -> ReleaseResult:
    """The waiting plan `plan` released under `approval`: its payments checked again
    unless nothing moved since they were planned, then issued in their batch folders
    (tasks/disburse.py release). Returns its batches, payments and amount (won)."""
    run_id, now = ctx.run_id, approval.at
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    planned = ctx.work_dir / "planned.parquet"
    try:
        with connect(ctx.warehouse) as con:
            refuse_ledger_unlike_batches(con, ctx.data_dir)  # edited by hand since the plan: it could pay someone twice
            stored = plans_table.export_payments(con, run_id, ctx.work_dir / "plan_payments")
        # Streamed file to file: the plan of 33.7M customers is 30M payments.
        with_voucher_parts(pl.scan_parquet(stored, glob=False), policy).sink_parquet(planned)
        shutil.rmtree(ctx.work_dir / "plan_payments")  # read: its disk is for the batch folders and ledger
        # The batches as planned and shown to finance, not as the payments sum up now: a
        # payment edited by hand since (a value date, an amount, one deleted) then
        # disagrees with its batch, and the gate refuses (found by review: batches
        # rebuilt from edited payments released a bank file dated 2020).
        with connect(ctx.warehouse) as con:
            summary = plans_table.batches(con, run_id).cast(
                dict(batch_summary(pl.scan_parquet(planned, glob=False)).collect_schema()))
        _refuse_unlike_shown(run_id, plan, summary)
        # The gate again, on exactly what is released: nothing may have moved since the
        # plan. When nothing did (the same fingerprint as when the suites passed it), the
        # suites would read the same rows: they are not run again, and the payments are
        # committed from the file the fingerprint read, not staged as a table first.
        with connect(ctx.warehouse) as con:
            stage_batches(con, summary)
            unchanged = plan["gate_fingerprint"] == gate_fingerprint(con, policy, planned)
            if not unchanged:
                stage_payments(con, planned, summary, policy.voucher_products)
                stage_checked(con, policy.voucher_products, policy_id=policy.id, run_date=ctx.run_date)
        if unchanged:
            get_run_logger().info("plan %s: the plan, entitlements, ledger and batches are those the emission "
                                  "suites passed when it was planned; not checked again", run_id)
        else:
            check_plan(ctx, policy)
        release(ctx, settings, policy, planned, summary, created_at=now, approval=approval,
                payments_staged=not unchanged, stage="release")
    finally:
        _discard_scratch(ctx)  # the plan's files hold bank details; notify makes its own
    held = summary.filter(pl.col("rail") == CLAIM)
    return ReleaseResult(batches=summary.height, payments=int(summary["item_count"].sum() or 0),
                         amount_krw=int(summary["control_sum"].sum() or 0),
                         held_payments=int(held["item_count"].sum() or 0), held_krw=int(held["control_sum"].sum() or 0),
                         # judged on the day it releases, as its messages are (tasks/notify.py: found by
                         # the fix review, approve said "held" while the messages said the deadline passed)
                         claim_deadline_passed=past_claim_deadline(max(ctx.run_date, policy.today()),
                                                                   policy.claim_deadline))


def _refuse_unlike_shown(run_id: str, plan: dict, summary: pl.DataFrame) -> None:
    """RedressError (one line) when the stored batches `summary` are not, per rail and
    value date, the batches, payments and won of the plan finance was shown (`plan`'s
    summary, as plan.md printed it): the plan's tables were edited after it was made
    (found by review: payments and batches moved to 2020 together were released)."""
    shown = sorted((d["rail"], d["value_date"], d["batches"], d["payments"], d["amount_krw"])
                   for d in plan["summary"]["days"])
    stored = sorted((r["rail"], r["value_date"].isoformat(), r["batches"], r["payments"], r["amount_krw"])
                    for r in summary.group_by("rail", "value_date").agg(
                        pl.len().alias("batches"), pl.col("item_count").sum().alias("payments"),
                        pl.col("control_sum").sum().alias("amount_krw")).to_dicts())
    if stored != shown:
        raise RedressError(f"plan {run_id} is not the plan it showed: its stored batches differ from plan.md's days "
                           "(batches, payments or won per rail and value date), so it was edited after it was made; "
                           "reject it and run again")


def _complete(ctx: RunContext, settings: Settings, by: str, *, released: bool) -> str | None:
    """A decision's last steps, then its record that they are done (plans.completed_at):
    the run's report.html and reconciliation show the decision (and what was released);
    for a release also the Prefect artifacts of this flow run and `exports/` (the
    analysts' ledger, batches and runs). A kill before the record leaves the plan
    unfinished, and repeating the decision does these steps again; so does a page that
    could not be written: then nothing is recorded, and why is returned (else None).
    `by` (who gives the decision now) is recorded first as whose command does these
    steps (plans.completed_by), so the page names who finished a decision that did not
    finish at first."""
    with connect(ctx.warehouse) as con:
        plans_table.finishing(con, ctx.run_id, by)
    unwritten = refresh_report_page(ctx)
    if released:
        publish_released_tables(ctx)
        checkpoint("approve:report-written", settings)
        write_exports(ctx.data_dir, settings.share_group)
        checkpoint("approve:exports-written", settings)
    if unwritten is None:
        with connect(ctx.warehouse) as con:
            plans_table.complete(con, ctx.run_id, _now())
    return unwritten


def unfinished_line(run_id: str, decided: str, why: str, command: str) -> str:
    """The one line for a decision whose report page could not be written (`why`): it is
    recorded, and `command` given again finishes it once the cause is mended."""
    return f"plan {run_id} is {decided}, but its report page could not be written: {why}; `{command}` again finishes it"


def _discard_scratch(ctx: RunContext) -> None:
    """Remove the run's scratch folder, with any plan files a killed approval left in it
    (they hold bank details): once a plan is released, rejected or expired nothing reads them."""
    shutil.rmtree(ctx.work_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        ctx.work_dir.parent.rmdir()  # `work/` goes when empty, as after a run


def _unfinished(ctx: RunContext, state: str) -> dict | None:
    """Plan `ctx.run_id` (plans_table.read's dict) when it is in `state` (approved or
    rejected) but the decision's last steps were never recorded as done (`_complete`):
    a decision killed part way. None otherwise."""
    with connect(ctx.warehouse) as con:
        plan = plans_table.read(con, ctx.run_id)
    return plan if plan and plan["state"] == state and plan["completed_at"] is None else None


def _told(ctx: RunContext) -> bool:
    """The run's notify stage committed: a notification row of this run, or its published
    notification file (a run with nobody new to tell has the file and no row)."""
    with connect(ctx.warehouse) as con:
        told = con.execute("SELECT count(*) FROM notifications WHERE run_id = ?", [ctx.run_id]).fetchall()[0][0]
    return told > 0 or (ctx.notifications_dir / f"{ctx.run_id}.parquet").exists()


def _notify(ctx: RunContext, settings: Settings):
    """The notify stage for the run whose plan was released, in its own scratch folder."""
    ctx.work_dir.mkdir(parents=True, exist_ok=True)  # notify's scratch files; the run's own were removed
    try:
        return notify(ctx, settings)
    finally:
        _discard_scratch(ctx)


def reject(data_dir: Path, run_id: str, by: str, note: str | None = None) -> dict:
    """Discard plan `run_id` under the folder lock: nothing of it is ever paid (its
    payments are planned afresh by the next run); its report page shows the rejection.
    Returns run_id, payments, amount_krw, `unwritten` and `page_gone` (as release_plan's), with
    `finished` (True) when it finished a rejection that was killed before its page was
    written. RedressError (one line) for a plan it may not reject."""
    by, now = decider_name(by), _now()
    settings = for_run(data_dir)
    check_fail_at(settings)
    with private_files(data_dir, settings.share_group), data_dir_lock(data_dir):  # the files it writes: as a run's
        # found by the fix review: on a warehouse restored from before the plan's release,
        # a rejection recorded "nothing of it is paid" beside the paid batches
        check_outbox_known(data_dir, "nothing was rejected")
        ctx = run_context(data_dir, run_id)
        plan = _unfinished(ctx, REJECTED)
        finished = plan is not None
        if not finished:
            plan = _waiting(ctx, REJECTED, now)
            with connect(ctx.warehouse) as con:
                plans_table.decide(con, run_id, REJECTED, by=by, note=decision_note(note), at=now, os_user=os_user())
            checkpoint("reject:decided", settings)
        _discard_scratch(ctx)
        unwritten = _complete(ctx, settings, by, released=False)  # report.html shows the plan was rejected
    return {"run_id": run_id, "payments": plan["payments"], "amount_krw": plan["amount"], "finished": finished,
            "unwritten": unwritten, "page_gone": report_folder_gone(ctx)}


@flow(name="redress-approve", log_prints=False, flow_run_name=approve_run_name)
def approve_plan(data_dir: Path, run_id: str, by: str, note: str | None = None) -> dict:
    """`redress approve`: release plan `run_id` (release_plan), under the folder lock. The
    flow run is named `<run id> approve` and tagged like the run (policy:, data:), so a data
    engineer finds it beside the run's own flow run (issue 14)."""
    data_dir = Path(data_dir).absolute()  # a caller's `~x` is ./~x, never the home folder (redress/sql.py)
    settings = for_run(data_dir)
    with private_files(data_dir, settings.share_group), data_dir_lock(data_dir):
        with connect(warehouse_path(data_dir)) as con:
            plan = plans_table.read(con, run_id)
        name_and_tag(f"{run_id} approve", plan and plan["policy_id"], data_dir)
        with held_open(warehouse_path(data_dir)):  # one instance for its opens (redress.warehouse.held_open)
            return release_plan(data_dir, run_id, by, note, settings)  # exports too: the analysts' copy


def _ask(run_id: str, expires_at: datetime, logger) -> ApprovalForm:
    """The form's answer, asked until the plan's expiry (FlowPauseTimeout then). An
    answer the form's own checks refuse (a placeholder or unprintable name or note:
    ApprovalForm's validators, which the Prefect UI does not run) is said in the log and
    the form offered again, under a new pause key (found by review: it failed the run
    after the pause was used up)."""
    from prefect.flow_runs import pause_flow_run
    from prefect.exceptions import FlowPauseTimeout
    from pydantic import ValidationError

    for attempt in itertools.count():
        timeout = int((expires_at - _now()).total_seconds())
        if timeout < 1:
            raise FlowPauseTimeout(f"plan {run_id} expired")
        key = f"approval-{run_id.lower()}" + (f"-{attempt}" if attempt else "")  # Prefect: lowercase, digits, dashes
        try:
            return pause_flow_run(wait_for_input=ApprovalForm, timeout=timeout,
                                  poll_interval=min(POLL_SECONDS, timeout), key=key)
        except ValidationError as exc:
            why = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            logger.warning("the form's answer was refused (%s): it is offered again", why)
    raise AssertionError("unreachable")


def await_approval(data_dir: Path, summary: dict) -> dict:
    """In a served flow run, after the run whose `summary` (remediation's) saved a plan:
    pause with ApprovalForm until the plan's expiry, then release or reject it; a pause
    that times out expires the plan. Returns the summary with `approval`: the decision's
    outcome. Called outside the folder slot and lock, so that other runs go on (a later
    run supersedes the plan, and approving it is then refused)."""
    from prefect.exceptions import FlowPauseTimeout

    if not (summary.get("disburse") or {}).get("awaiting_approval"):
        return summary
    run_id, logger = summary["run_id"], get_run_logger()
    with connect(warehouse_path(data_dir)) as con:
        plan = plans_table.read(con, run_id)
    logger.info("plan %s waits for approval: approve or reject it in this form, or with `%s`", run_id,
                redress_line(data_dir, "approve", run_id, "--by", "NAME"))
    try:
        form = _ask(run_id, plan["expires_at"], logger)
    except FlowPauseTimeout:
        with data_dir_lock(data_dir):
            with connect(warehouse_path(data_dir)) as con:
                expired = plans_table.decide(con, run_id, EXPIRED, by=None, note=None, at=_now())
            if expired:
                ctx = run_context(data_dir, run_id)
                _discard_scratch(ctx)
                close_page(ctx)  # report.html shows the plan expired (else the next run's start writes it)
        logger.warning("plan %s %s", run_id, "expired: nobody decided in time" if expired else "was decided elsewhere")
        return dict(summary, approval={"decision": EXPIRED if expired else None})
    with connect(warehouse_path(data_dir)) as con:
        state = plans_table.read(con, run_id)["state"]
    if state != WAITING:  # found by review: decided elsewhere meanwhile, the run failed and the alert rang
        logger.warning("plan %s is %s already: the form's answer changes nothing", run_id, state)
        return dict(summary, approval={"decision": None})
    if form.decision == "reject":
        outcome = reject(data_dir, run_id, form.name, form.note)
        if outcome["unwritten"]:
            raise RedressError(unfinished_line(run_id, REJECTED, outcome["unwritten"],
                                               redress_line(data_dir, "reject", run_id, "--by", "NAME")))
        return dict(summary, approval={"decision": REJECTED, **outcome})
    settings = for_run(data_dir)
    with private_files(data_dir, settings.share_group), data_dir_lock(data_dir), \
            held_open(warehouse_path(data_dir)):
        outcome = release_plan(data_dir, run_id, form.name, form.note, settings)
    if outcome["unwritten"]:  # paid and told: the flow run fails, saying how to finish it
        raise RedressError(unfinished_line(run_id, "released and its people told", outcome["unwritten"],
                                           redress_line(data_dir, "approve", run_id, "--by", "NAME")))
    return dict(summary, approval={"decision": APPROVED, **outcome})
