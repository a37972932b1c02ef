"""The command line's approval commands (SPEC "The command line": `approve` / `reject`;
"Approval before release"), kept beside flows/cli.py, which adds them to its parser.

    redress approve RUN_ID --by NAME [--note TEXT]   release exactly that run's plan
    redress reject RUN_ID --by NAME [--note TEXT]    discard it

A refusal (no such plan; rejected, superseded, expired or already approved) is one line
on stderr and exit status 1, like every expected error of flows/cli.py. Repeating a
decision that was killed part way finishes it (flows/approval.py) and says so.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from redress.errors import RedressError
from redress.runtime.arguments import Once
from redress.runtime.commands import NAME_PLACEHOLDER, decider_name, decision_note, redress_line
from redress.vocabulary import APPROVED
from redress.runtime.stage_counts import counted


def _data_dir(settings) -> Path:
    data_dir = settings.data_dir.resolve()
    if not (data_dir / "warehouse.duckdb").is_file():
        raise RedressError(f"data folder {data_dir} has no warehouse.duckdb: no run, so no plan to decide")
    return data_dir


def _written_again(done: dict, *, exports: bool) -> str:
    """What a finished decision (`done`: release_plan's or reject's result) wrote again:
    the run's report page (none when its report folder was deleted by hand), and for an
    approval the exports."""
    if not done["page_gone"]:
        return "its report page and exports written again" if exports else "its report page written again"
    gone = "no report page: its report folder is gone"
    return f"its exports written again; {gone}" if exports else gone


def check_decidable(data_dir: Path, run_id: str, decision: str) -> None:
    """RedressError (one line, redress/rules/plans.py refusal) when plan `run_id` cannot
    take `decision` now, read without writing, before a Prefect server starts (seconds:
    found by review, a superseded plan was refused only after them). A plan waiting past
    its expiry, a decision that did not finish (given again to finish it) and a warehouse
    that cannot be read now go on to the decision itself, which records, finishes or
    says so, under the folder's lock."""
    from datetime import datetime, timezone

    import duckdb

    from redress.rules.plans import refusal
    from redress.vocabulary import WAITING
    from redress.warehouse import connect, plans

    try:
        with connect(data_dir / "warehouse.duckdb", read_only=True) as con:
            plan = plans.read(con, run_id)
            known = con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0] > 0
    except (RedressError, duckdb.Error):
        return
    if not known:  # as redress/warehouse/runs.py run_context says it
        raise RedressError(f"no run {run_id} in {data_dir}: nothing to decide")
    if plan is not None and (plan["state"] == WAITING or (plan["state"] == decision and plan["completed_at"] is None)):
        return
    why = refusal(run_id, plan and plan["state"], plan and plan["expires_at"], datetime.now(timezone.utc), decision,
                  completed=plan is None or plan["completed_at"] is not None)
    if why is not None:
        raise RedressError(why)


def approve(data_dir: Path, run_id: str, by: str, note: str | None, settings) -> dict:
    """The approve_plan flow (flows/approval.py) with these settings, under a Prefect
    server that cannot outlive this process (as `redress run` starts its flow)."""
    from redress.runtime.prefect_server import temporary_server
    from redress.runtime.start_checks import check_outbox_known
    from redress.settings import check_settings, given
    from redress.warehouse.runs import refuse_if_busy

    check_settings(settings)  # the bank files need the payer, the notifications the key
    decider_name(by)  # a placeholder pasted from plan.md, refused at once
    decision_note(note)
    refuse_if_busy(data_dir)  # before the server starts; the flow then takes the lock
    check_decidable(data_dir, run_id, APPROVED)
    check_outbox_known(data_dir, "nothing was released")  # and again in the flow, under the lock
    from redress.runtime import progress

    # the flow's modules are imported while the server starts; a line per stage on stdout
    # (the demo has installed its own reporter, which this one stands in for meanwhile)
    with progress.reporting(progress.reporter_for(sys.stdout)), \
            temporary_server(meanwhile=lambda: importlib.import_module("flows.approval")), given(settings):
        from flows.approval import approve_plan

        return approve_plan(data_dir=data_dir, run_id=run_id, by=by, note=note)


def cmd_approve(args, settings, say) -> int:
    from flows.approval import unfinished_line

    done = approve(_data_dir(settings), args.run_id, args.by, args.note, settings)
    if done["unwritten"]:
        raise RedressError(unfinished_line(done["run_id"], "released and its people told", done["unwritten"],
                                           redress_line(settings.data_dir, "approve", done["run_id"], "--by",
                                                        args.by)))
    if done.get("finished"):
        told = ("its people had been told" if done["told_before"]
                else f"{done['notifications']:,} people notified")
        say(f"plan {done['run_id']} was already released by an approval that did not finish, now finished: its "
            f"{len(done['recovered_batches'])} leftover batch folder(s) published, {told}, "
            f"{_written_again(done, exports=True)}")
        return 0
    say(approved_line(done, args.by, settings.data_dir / "outbox" / "batches"))
    return 0


def approved_line(done: dict, by: str, batches_dir: Path) -> str:
    """What `approve` prints once a plan is released (`done`: flows/approval.py
    release_plan's answer): who, what, where, and the money held on the claim rail apart,
    called unclaimed past the policy's claim deadline as every report calls it (found by
    the lifecycle review: approve said "held on claim until claimed" of money that can no
    longer be claimed)."""
    held = ""
    if done["held_krw"]:
        state = ("unclaimed on claim, deadline passed" if done.get("claim_deadline_passed")
                 else "held on claim until claimed")
        held = f": {done['amount_krw'] - done['held_krw']:,} to pay out, {done['held_krw']:,} {state}"
    return (f"approved by {' '.join(by.split())}: released plan {done['run_id']}, "
            f"{counted(done['payments'], 'payment')} ({done['amount_krw']:,} KRW{held}) in "
            f"{counted(done['batches'], 'batch')} to {batches_dir}/; {done['notifications']:,} people notified")


def cmd_reject(args, settings, say) -> int:
    from flows.approval import reject, unfinished_line

    done = reject(_data_dir(settings), args.run_id, args.by, args.note)
    if done["unwritten"]:
        raise RedressError(unfinished_line(done["run_id"], "rejected", done["unwritten"],
                                           redress_line(settings.data_dir, "reject", done["run_id"], "--by", args.by)))
    if done["finished"]:
        say(f"plan {done['run_id']} was already rejected by a rejection that did not finish, now finished: "
            f"{_written_again(done, exports=False)}")
        return 0
    say(f"rejected plan {done['run_id']}: its {counted(done['payments'], 'payment')} ({done['amount_krw']:,} KRW) will not "
        "be paid; the next run plans what is owed afresh")
    return 0


def plan_lines(data_dir: Path, summary: dict) -> list[str]:
    """What `redress run` prints after a run that stopped with its plan: the plan, and
    how to approve or reject it; nothing for a run that released its payments."""
    if not (summary.get("disburse") or {}).get("awaiting_approval"):
        return []
    run_id = summary["run_id"]
    plan = data_dir / "reports" / run_id / "plan.md"
    return [plan.read_text(encoding="utf-8"),
            f"plan:           {plan}",
            "the plan waits for approval (nothing is paid or notified yet); approve or reject it with:",
            f"  {redress_line(data_dir, 'approve', run_id, '--by', NAME_PLACEHOLDER)}",
            f"  {redress_line(data_dir, 'reject', run_id, '--by', NAME_PLACEHOLDER)}"]


def add_parsers(sub, common, cmd: dict) -> None:
    """The approve and reject subcommands; `cmd` maps each name to its function."""
    for name, what in (("approve", "release a run's disbursement plan"), ("reject", "discard a run's disbursement plan")):
        p = sub.add_parser(name, parents=common, help=what)
        p.add_argument("run_id", metavar="RUN_ID", help="the run whose plan it is, e.g. R20251201-001")
        # Two different deciders or notes are refused: the record would name only the last.
        p.add_argument("--by", required=True, metavar="NAME", help="who decides (recorded in runs and manifests)",
                       action=Once, what="names")
        p.add_argument("--note", help="why, for the record", action=Once, what="notes")
        p.set_defaults(func=cmd[name], changes_state=True)  # a closed stdout never stops it
