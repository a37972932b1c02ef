"""A plan waiting for approval, and its approval, as a data engineer and a newcomer meet
them (issue 14 review): the approve flow run named `<run id> approve` and tagged like the
run, its log numbers with separators; the money artifacts filled with the planned figures
while waiting and with the released ones by the approval; the summary's treasury cells
filled; every printed command pastes into bash from anywhere, folder `p 1'c` included.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey, FlowRunFilter,
                                            FlowRunFilterName, FlowRunFilterTags)
from prefect.client.schemas.sorting import FlowRunSort

from prefect_records import flow_run_logs, task_runs
from flows.remediation import remediation
from redress.generate import generate
from redress.policy import DEFAULT_POLICY  # the shipped policy: require_approval = true
from redress.runtime.commands import redress_line
from test_approval import RUN_ID, cli, q


@pytest.fixture(scope="module", autouse=True)
def _logs_sent(logs_to_prefect):
    """These tests read the runs' logs back from Prefect (tests/conftest.py)."""
    yield


FOLDER = "p 1'c"  # a space and a quote: every printed command must quote it
MONEY_KEYS = ("payments-by-rail-and-value-date", "treasury-schedule")
BARE_NUMBER = re.compile(r"(?<![\w.,:/-])\d{4,}(?![\w,-])")  # a count or amount over 999 without separators


@pytest.fixture(scope="module")
def waiting(tmp_path_factory):
    """One run under the shipped policy into a folder named FOLDER: its plan waits.
    Returns the folder and the run's flow run id."""
    data = tmp_path_factory.mktemp("approval-prefect") / FOLDER
    generate(data, 400, seed=21)
    state = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1), return_state=True)
    assert state.result()["disburse"]["awaiting_approval"]
    return data, state.state_details.flow_run_id


@pytest.fixture
def copy(waiting, tmp_path):
    data = tmp_path / FOLDER
    shutil.copytree(waiting[0], data)
    return data


def artifacts(flow_run_id) -> dict:
    """key -> (rows, description) of the table artifacts of one flow run."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=list(MONEY_KEYS))))
    return {a.key: (json.loads(a.data) if isinstance(a.data, str) else a.data, a.description) for a in found}


def logs(flow_run_id) -> list[str]:
    with get_client(sync_client=True) as client:
        return [log.message for log in flow_run_logs(client, flow_run_id)]


def plan_days(data: Path) -> list[tuple]:
    return q(data, "SELECT rail, value_date::VARCHAR, count(*), sum(item_count), sum(control_sum) FROM plan_batches "
                   "GROUP BY ALL ORDER BY ALL")


def n(cell) -> int:
    """A number cell of a table artifact (`1,234`: redress/escape.py markdown_rows)."""
    return int(str(cell).replace(",", ""))


def as_tuples(rows: list[dict]) -> list[tuple]:
    return sorted((r["Rail"].replace("\\", ""), r["Value date"], n(r["Batches"]), n(r["Payments"]), n(r["Amount"]))
                  for r in rows)


def assert_schedule_filled(rows: list[dict], data: Path, cap: int) -> None:
    assert rows, "the plan has bank transfers"
    for r in rows:
        released_before = q(data, "SELECT coalesce(sum(control_sum), 0) FROM batches WHERE rail = 'bank_transfer' "
                                  "AND value_date = ? AND run_id <> ?", [r["Value date"], RUN_ID])[0][0]
        assert n(r["All runs"]) == int(released_before) + n(r["This run"]) > 0
        assert n(r["Daily cash cap"]) == cap and n(r["Headroom"]) == cap - n(r["All runs"])


def cap_of(data: Path) -> int:
    counts = json.loads(q(data, "SELECT counts FROM runs WHERE run_id = ?", [RUN_ID])[0][0])
    caps = {t["daily_cash_cap_krw"] for t in counts["disburse"]["treasury"]}
    assert len(caps) == 1
    return caps.pop()


def test_a_waiting_run_publishes_its_planned_figures(waiting):
    data, flow_run_id = waiting
    found = artifacts(flow_run_id)
    rows, about = found["payments-by-rail-and-value-date"]
    assert "planned, waiting for approval" in about
    assert as_tuples(rows) == plan_days(data) and plan_days(data)
    rows, about = found["treasury-schedule"]
    assert "planned, waiting for approval" in about
    assert_schedule_filled(rows, data, cap_of(data))
    assert sum(n(r["This run"]) for r in rows) == q(
        data, "SELECT sum(control_sum) FROM plan_batches WHERE rail = 'bank_transfer'")[0][0]


def test_the_summary_of_a_waiting_run_fills_the_treasury_cells(waiting):
    data, _ = waiting
    text = (data / "reports" / RUN_ID / "summary.md").read_text()
    section = text.split("## Treasury schedule (bank transfers; planned, waiting for approval)")[1].split("\n\n")[1]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()[2:]]
    cap = cap_of(data)
    assert cells and all(len(row) == 5 and all(row) for row in cells), section
    for day, this_run, all_runs, day_cap, headroom in cells:
        assert int(day_cap.replace(",", "")) == cap
        assert int(headroom.replace(",", "")) == cap - int(all_runs.replace(",", ""))
        assert int(all_runs.replace(",", "")) >= int(this_run.replace(",", "")) > 0


def test_the_approve_flow_run_is_named_tagged_logged_and_publishes_what_it_released(copy):
    code, out, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim Treasury")
    assert code == 0, err
    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[f"{RUN_ID} approve"]), tags=FlowRunFilterTags(all_=[f"data:{FOLDER}"])),
            sort=FlowRunSort.START_TIME_DESC, limit=1)
        assert found, "no flow run named after the run it approves"
        flow_run = found[0]
        assert set(flow_run.tags) == {"policy:coupang-2025-v1", f"data:{FOLDER}"}
        tasks = task_runs(client, flow_run.id, {"notify"})
        assert {t.name for t in tasks} == {"notify"}
    messages = logs(flow_run.id)
    assert f"'{RUN_ID} approve'" in messages[0]
    released = [m for m in messages if m.startswith(f"released plan {RUN_ID}: ")]
    assert len(released) == 1 and re.fullmatch(
        rf"released plan {RUN_ID}: [\d,]+ payments \(\d{{1,3}}(,\d{{3}})+ KRW\) in [\d,]+ batches", released[0])
    assert [m for m in messages if BARE_NUMBER.search(m)] == []
    by_key = artifacts(flow_run.id)
    rows, about = by_key["payments-by-rail-and-value-date"]
    assert "released by the approval" in about and "planned" not in about
    assert as_tuples(rows) == q(copy, "SELECT rail, value_date::VARCHAR, count(*), sum(item_count), sum(control_sum) "
                                      "FROM batches WHERE run_id = ? GROUP BY ALL ORDER BY ALL", [RUN_ID])
    assert as_tuples(rows) == plan_days(copy)
    rows, about = by_key["treasury-schedule"]
    assert "released by the approval" in about
    assert_schedule_filled(rows, copy, cap_of(copy))


def test_the_run_logs_have_no_bare_numbers(waiting):
    _, flow_run_id = waiting
    messages = logs(flow_run_id)
    assert len(messages) > 10
    assert [m for m in messages if BARE_NUMBER.search(m)] == []


def test_the_printed_reject_command_pastes_into_bash_from_another_folder(waiting, tmp_path):
    data = tmp_path / FOLDER
    shutil.copytree(waiting[0] / "inbox", data / "inbox")
    code, out, err = cli("--data-dir", data, "run", "--run-date", "2025-12-01")
    assert code == 0, err
    printed = [line.strip() for line in out.splitlines() if re.search(rf" reject {RUN_ID} --by YOUR_NAME$", line)]
    in_plan = [line.strip() for line in (data / "reports" / RUN_ID / "plan.md").read_text().splitlines()
               if line.startswith("    ") and " reject " in line]
    assert len(in_plan) == 1 and in_plan[0] in printed  # plan.md's commands are printed as they are
    assert len(set(printed)) == 1 and shlex.split(printed[0])[1:] == [
        "--data-dir", str(data.absolute()), "reject", RUN_ID, "--by", "YOUR_NAME"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # pasted as it is, the placeholder is refused (nobody decides as YOUR_NAME) ...
    done = subprocess.run(["bash", "-c", printed[0]], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "placeholder" in done.stderr and len(done.stderr.splitlines()) == 1
    # ... and with a name typed in its place, the line works from any folder
    named = printed[0].replace(" --by YOUR_NAME", " --by 'Kim Treasury'")
    done = subprocess.run(["bash", "-c", named], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"rejected plan {RUN_ID}" in done.stdout
    assert q(data, "SELECT state, decided_by FROM plans") == [("rejected", "Kim Treasury")]


def test_every_printed_command_quotes_the_folder_and_makes_it_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = redress_line(Path("a b'c"), "approve", RUN_ID, "--by", "NAME", command="'/opt/my env/bin/redress'")
    assert shlex.split(line) == ["/opt/my env/bin/redress", "--data-dir", str(tmp_path / "a b'c"), "approve", RUN_ID,
                                 "--by", "NAME"]
