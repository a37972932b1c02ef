"""A served run pauses in the Prefect UI with its approval form (SPEC "Approval before
release"; flows/approval.py): approved through the API, the same flow run pays (and,
when its report page cannot be written, fails with the line that says how to finish
it); left alone past its timeout, the plan expires and nothing is paid. The served flow runs in a
thread of this process against the session's Prefect test server, as `redress serve`
would run it."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.flow_runs import resume_flow_run

from flows.alerts import WAITING_AUTOMATION, alert_on_waiting_plan
from flows.service import redress_run
from redress.generate import generate
from redress.policy import DEFAULT_POLICY  # the shipped policy: require_approval = true

WAIT_SECONDS = 240


def q(data: Path, sql: str):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def start(data: Path) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def target():
        try:
            out["result"] = redress_run(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
        except BaseException as exc:  # surfaced by the test, not lost in the thread
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def paused_run(data: Path):
    """The redress-run flow run of this folder once it is Paused (None meanwhile)."""
    with get_client(sync_client=True) as client:
        # Filtered by state on the server and newest first: a worker's test server may
        # hold hundreds of runs by now, more than one page (the API's default limit is 200).
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["redress-run"])),
                                     flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                                         type=FlowRunFilterStateType(any_=[StateType.PAUSED]))),
                                     sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=50)
    return next((r for r in runs if r.parameters.get("data_dir") == str(data) and r.state and r.state.is_paused()),
                None)


def recent_runs() -> list[tuple]:
    """The newest redress-run flow runs as the API has them (name, state, data folder):
    what a failed lookup is shown beside."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["redress-run"])),
                                     sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=10)
    return [(r.name, r.state.type.value if r.state else None, r.state.name if r.state else None,
             r.parameters.get("data_dir")) for r in runs]


def wait_until(check, thread):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and thread.is_alive():
        found = check()
        if found:
            return found
        time.sleep(0.5)
    return check()


def paused(data: Path, customers: int, seed: int):
    """A breach generated into `data` and served until its run pauses for approval:
    (data, the run's thread, its outcome dict, the paused flow run)."""
    generate(data, customers, seed=seed)
    thread, out = start(data)
    flow_run = wait_until(lambda: paused_run(data), thread)
    assert flow_run is not None, (out.get("error"), recent_runs())
    return data, thread, out, flow_run


def test_a_served_run_pauses_is_approved_through_the_api_and_pays(tmp_path):
    data, thread, out, flow_run = paused(tmp_path / "data", 200, seed=31)
    # nothing is paid while it waits
    assert q(data, "SELECT state FROM plans") == [("waiting",)]
    assert q(data, "SELECT count(*) FROM ledger") == [(0,)]
    assert not (data / "outbox" / "batches").exists() or not any((data / "outbox" / "batches").iterdir())
    # found by review: a placeholder name the UI let through failed the run, the pause used
    # up; the form is offered again, under a new pause key, and nothing is decided
    resume_flow_run(flow_run.id, run_input={"decision": "approve", "name": "YOUR_NAME", "note": ""})
    again = wait_until(lambda: (r := paused_run(data)) is not None
                       and r.state.state_details.pause_key.endswith("-1") and r, thread)
    assert again and again.id == flow_run.id, (out.get("error"), recent_runs())
    assert q(data, "SELECT state FROM plans") == [("waiting",)]
    resume_flow_run(flow_run.id, run_input={"decision": "approve", "name": "Kim Treasury", "note": "from the UI"})
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive() and "error" not in out, out.get("error")
    assert out["result"]["approval"]["decision"] == "approved"
    paid = q(data, "SELECT count(*), sum(amount) FROM ledger WHERE status = 'issued'")[0]
    assert paid == (out["result"]["disburse"]["payments"], out["result"]["disburse"]["amount_krw"]) and paid[0] > 0
    assert q(data, """
        WITH paid AS (SELECT customer_id, sum(amount) AS paid FROM ledger GROUP BY ALL)
        SELECT count(*) FROM entitlements e LEFT JOIN paid p USING (customer_id)
        WHERE e.reason = 'ELIGIBLE' AND coalesce(p.paid, 0) <> e.amount""") == [(0,)]
    assert q(data, "SELECT approved_by, approval_note FROM runs") == [("Kim Treasury", "from the UI")]
    assert q(data, "SELECT state, completed_at IS NOT NULL, completed_by FROM plans") == [
        ("approved", True, "Kim Treasury")]
    assert q(data, "SELECT count(*) FROM notifications")[0][0] > 0
    run_id = out["result"]["run_id"]
    assert "Approval: <strong>approved</strong>" in (data / "reports" / run_id / "report.html").read_text()
    assert pl.read_parquet(data / "exports" / "ledger" / f"{run_id}.parquet", glob=False).height == paid[0]


def test_a_served_approval_whose_page_cannot_be_written_fails_in_one_line_and_the_command_finishes_it(tmp_path):
    from flows.cli import main

    data, thread, out, flow_run = paused(tmp_path / "data", 120, seed=33)
    (run_id,), = q(data, "SELECT run_id FROM plans")
    page = data / "reports" / run_id / "report.html"
    page.unlink()
    page.mkdir()  # report.html cannot be written: a folder stands in its way
    resume_flow_run(flow_run.id, run_input={"decision": "approve", "name": "Kim Treasury", "note": ""})
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive() and "result" not in out
    # paid and told, and the flow run fails with the line that says how to finish it
    line = str(out["error"])
    assert "\n" not in line and line.startswith(f"plan {run_id} is released and its people told, but its report "
                                                  "page could not be written: ")
    assert line.endswith(f"approve {run_id} --by NAME` again finishes it")
    assert q(data, "SELECT state, completed_at IS NULL FROM plans") == [("approved", True)]
    assert q(data, "SELECT count(*) > 0 FROM ledger") == [(True,)]
    assert q(data, "SELECT count(*) > 0 FROM notifications") == [(True,)]
    page.rmdir()
    assert main(["--data-dir", str(data), "approve", run_id, "--by", "Lee"]) == 0
    assert q(data, "SELECT state, decided_by, completed_by, completed_at IS NOT NULL FROM plans") == [
        ("approved", "Kim Treasury", "Lee", True)]
    assert "Lee gave it again to finish it" in page.read_text(encoding="utf-8")


def test_a_served_run_left_alone_past_its_timeout_expires_its_plan(tmp_path, monkeypatch):
    monkeypatch.setenv("REDRESS_APPROVAL_TIMEOUT_SECONDS", "3")
    data = tmp_path / "data"
    generate(data, 100, seed=32)
    thread, out = start(data)
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive() and "error" not in out, out.get("error")
    assert out["result"]["approval"] == {"decision": "expired"}
    assert q(data, "SELECT state, completed_at IS NOT NULL FROM plans") == [("expired", True)]
    assert q(data, "SELECT count(*) FROM ledger") == [(0,)]
    page = (data / "reports" / out["result"]["run_id"] / "report.html").read_text()
    assert "Approval: <strong>expired</strong>" in page and "can be approved or rejected until" not in page


def test_finance_is_told_when_a_served_run_pauses():
    automation_id = alert_on_waiting_plan("http://127.0.0.1:9/redress")
    with get_client(sync_client=True) as client:
        (automation,) = client.read_automations_by_name(WAITING_AUTOMATION)
    assert automation.id == automation_id
    assert automation.trigger.expect == {"prefect.flow-run.Paused"}
    assert automation.trigger.match_related["prefect.resource.name"] == [
        "redress-run", "redress-inbox-watch", "redress-daily-disbursement"]


def test_an_answer_to_a_plan_decided_elsewhere_meanwhile_ends_the_run_quietly(tmp_path):
    """Found by review: the form stayed offered for a plan rejected (or superseded,
    approved) from the command line; answering it failed the flow run and rang the
    failure alert. It now changes nothing and says so."""
    from flows.cli import main

    data, thread, out, flow_run = paused(tmp_path / "data", 100, seed=34)
    (run_id,), = q(data, "SELECT run_id FROM plans")
    assert main(["--data-dir", str(data), "reject", run_id, "--by", "Lee"]) == 0
    resume_flow_run(flow_run.id, run_input={"decision": "approve", "name": "Kim Treasury", "note": ""})
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive() and "error" not in out, out.get("error")
    assert out["result"]["approval"] == {"decision": None}
    assert q(data, "SELECT state, decided_by FROM plans") == [("rejected", "Lee")]
    assert q(data, "SELECT count(*) FROM ledger") == [(0,)]
