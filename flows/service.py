"""redress as a service: the three deployments `redress serve` serves.

Each is a thin door into the same pipeline (flows/remediation.py), entered only while
holding the data folder (redress/runtime/folder_slot.py): one pipeline run per folder at a time,
a second one waits its turn.

| deployment         | flow                       | starts                                         |
| ------------------ | -------------------------- | ---------------------------------------------- |
| remediation        | redress-run                | by hand: the UI or `prefect deployment run`    |
| inbox-watch        | redress-inbox-watch        | every minute; the pipeline only if new content |
| daily-disbursement | redress-daily-disbursement | every day at a set hour, policy's timezone     |

Under `disbursement.require_approval`, a served run whose plan waits pauses in the
Prefect UI with the approval form (flows/approval.py), after leaving the folder: only
served runs pause, since a paused process is what a served deployment keeps alive,
while `redress run` from a terminal must end (it prints how to approve instead).

The inbox watch is a schedule, not an event trigger: the Prefect server cannot see the
folder, and a check every minute needs nothing running but the served process itself.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Annotated

from prefect import flow, get_run_logger
from pydantic import BeforeValidator

from redress.inbox import require_inbox
from redress.policy import load_policy
from redress.policy.tables import calendar_date
from redress.runtime.folder_slot import ensure_slot, folder_slot
from redress.settings import for_run, given
from tasks.watch import new_inbox_files, should_run

WAIT_SECONDS = 6 * 3600  # how long a run started while another goes on waits for its turn
WATCH_CRON = "* * * * *"
DEPLOYMENTS = ("remediation", "inbox-watch", "daily-disbursement")


def _pipeline():
    """The pipeline flow and the approval step after it, imported when a run is due, not
    when this module is: the watch's process starts every minute and mostly finds nothing
    new, and these imports (Great Expectations among them) were 3.6 s of the module's
    4.9 s, which a watch run waited through before it started (`python -X importtime -c
    'import flows.service'`)."""
    from flows.approval import await_approval
    from flows.remediation import remediation

    return remediation, await_approval


def _run_date(value: object) -> date | None:
    """A hand-started run's run_date as the command line takes it: YYYY-MM-DD, or none
    (today). Pydantic alone would read an integer as seconds since 1970 (`1764547200`
    is 2025-12-01; found by review), which `redress run --run-date` refuses."""
    if value is None or isinstance(value, date):
        return value
    try:
        return calendar_date(value)
    except ValueError:
        raise ValueError(f"run_date must be YYYY-MM-DD, got {value!r}") from None


# Prefect validates a flow's parameters by its signature: this one for run_date.
RunDate = Annotated[date | None, BeforeValidator(_run_date)]


@flow(name="redress-run", log_prints=False)
def redress_run(data_dir: Path, policy_path: Path, run_date: RunDate = None) -> dict:
    """The pipeline once, started by hand (run_date: default today); waits its turn."""
    require_inbox(data_dir)
    remediation, await_approval = _pipeline()
    with folder_slot(data_dir, wait_seconds=WAIT_SECONDS):
        # none given: today where the policy pays, read as the run starts (flows/remediation.py)
        summary = remediation(data_dir=data_dir, policy_path=policy_path, run_date=run_date)
    return await_approval(data_dir, summary)  # outside the slot: other runs go on meanwhile


@flow(name="redress-inbox-watch", log_prints=False)
def inbox_watch(data_dir: Path, policy_path: Path) -> str:
    """Every minute: the pipeline, if the inbox holds content no run has recorded yet."""
    logger = get_run_logger()
    settings = for_run(data_dir)  # built once for the check and the run it starts
    with folder_slot(data_dir, wait_seconds=0) as free:
        if not free:
            logger.info("another run is using the folder; the next check looks again")
            return "busy"
        new = new_inbox_files(data_dir, settings)
        if not new:
            return "nothing new"
        if not should_run(data_dir, new):
            logger.warning("the last run started for these %s new file(s) failed before recording them; "
                           "the watch tries them again hourly, or start the remediation deployment", f"{len(new):,}")
            return "waiting after a failed run"
        remediation, await_approval = _pipeline()
        with given(settings):
            summary = remediation(data_dir=data_dir, policy_path=policy_path, run_date=None)  # today, as it starts
    decided = await_approval(data_dir, summary).get("approval")  # outside the slot: the watch goes on
    return f"run {summary['run_id']} on {len(new)} new file(s)" + (f"; plan {decided['decision']}" if decided else "")


@flow(name="redress-daily-disbursement", log_prints=False)
def daily_disbursement(data_dir: Path, policy_path: Path) -> dict:
    """Every day: the pipeline whatever the inbox holds, so that what is owed (a reissue
    after a return, a top-up after a policy revision) is paid the same day."""
    require_inbox(data_dir)
    remediation, await_approval = _pipeline()
    with folder_slot(data_dir, wait_seconds=WAIT_SECONDS):
        summary = remediation(data_dir=data_dir, policy_path=policy_path, run_date=None)  # today, as it starts
    return await_approval(data_dir, summary)


def daily_cron(at: time) -> str:
    return f"{at.minute} {at.hour} * * *"


def deployments(data_dir: Path, policy_path: Path, daily_at: time, timezone: str) -> list:
    """The three deployments of one data folder and policy."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    common = dict(parameters={"data_dir": str(data_dir), "policy_path": str(policy_path)},
                  tags=["redress"], entrypoint_type=EntrypointType.MODULE_PATH)
    return [
        redress_run.to_deployment("remediation", **common),
        inbox_watch.to_deployment("inbox-watch", schedule=Cron(WATCH_CRON, timezone=timezone), **common),
        daily_disbursement.to_deployment("daily-disbursement", schedule=Cron(daily_cron(daily_at), timezone=timezone),
                                         **common),
    ]


def server_error() -> str | None:
    """Why the Prefect server in PREFECT_API_URL cannot be used, or None."""
    from prefect.settings import PREFECT_API_URL

    from redress.runtime.prefect_server import configured_server_refusal

    url = PREFECT_API_URL.value()
    if not url:
        return ("serve needs a Prefect server and PREFECT_API_URL is not set: start one with `prefect server start`, "
                "then `export PREFECT_API_URL=http://127.0.0.1:4200/api`")
    return configured_server_refusal(url)


# A deployment polled by its runner within this many seconds is being served now (a
# runner polls every 10 s by default).
LIVE_POLL_SECONDS = 60


def served_elsewhere() -> str | None:
    """Why this process may not serve now, as one line: another `redress serve` (any data
    folder: the deployment names are fixed) polled one of DEPLOYMENTS, unpaused, within
    LIVE_POLL_SECONDS. Found by review: a second serve started beside the first (a
    restart that brings the new one up first) lost every schedule when the first
    stopped, since a stopping serve pauses the schedules of its deployments, which are
    the second's too; the second went on printing that it was polling, and nothing ran.
    None when none is, or no deployment is registered yet."""
    from datetime import datetime, timedelta, timezone

    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    now = datetime.now(timezone.utc)
    with get_client(sync_client=True) as client:
        for flow_name, name in zip((f.name for f in (redress_run, inbox_watch, daily_disbursement)), DEPLOYMENTS):
            try:
                found = client.read_deployment_by_name(f"{flow_name}/{name}")
            except ObjectNotFound:
                continue
            polled = found.last_polled
            if not found.paused and polled is not None and now - polled < timedelta(seconds=LIVE_POLL_SECONDS):
                return (f"another `redress serve` is serving the deployments on this Prefect server (it polled "
                        f"{flow_name}/{name} {max(0, int((now - polled).total_seconds()))} s ago): stop it first "
                        "(Ctrl-C), then start this one; a serve that stops pauses the schedules, so two at once "
                        "end with none running")
    return None


def serve(data_dir: Path, policy_path: Path, daily_at: time) -> None:
    """Register the deployments and run their flow runs here until interrupted."""
    from prefect import serve as prefect_serve

    timezone = load_policy(policy_path).timezone
    ensure_slot(data_dir)  # visible in the UI (Concurrency) before the first run
    prefect_serve(*deployments(data_dir, policy_path, daily_at, timezone))
