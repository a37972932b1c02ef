"""A run as a data engineer finds it in Prefect (issue 14): the flow run named after the
run id and tagged with the policy id and the data folder's name, task runs without
random suffixes, the run id in the first log line, logs without Python reprs, the
duplicate file logged like every other file, and a progress artifact per counted step."""

from __future__ import annotations

import re
from datetime import date

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId

from flows.remediation import remediation
from prefect_records import flow_run_logs, task_runs
from redress.generate import RESENT, generate
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false


@pytest.fixture(scope="module", autouse=True)
def _logs_sent(logs_to_prefect):
    """These tests read the runs' logs back from Prefect (tests/conftest.py)."""
    yield


RUN_DATE = date(2025, 12, 1)
STAGE_TASKS = {"ingest inbox", "apply returns", "apply claims", "validate scope", "compute entitlements",
               "disburse", "notify", "report"}
REPR = re.compile(r"\{'|\{\"|': |\[\(|\(\{|[A-Za-z]+\([a-z_]+=")  # a dict, list of tuples or dataclass repr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one folder: the first reads the generated breach, the second nothing new."""
    data = tmp_path_factory.mktemp("named-folder")
    generate(data, 300, seed=14)
    states = [remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=RUN_DATE, return_state=True)
              for _ in range(2)]
    return data, [(s.result()["run_id"], s.state_details.flow_run_id) for s in states]


def _logs(flow_run_id) -> list[str]:
    with get_client(sync_client=True) as client:
        return [log.message for log in flow_run_logs(client, flow_run_id)]


def test_the_flow_run_is_named_after_the_run_id_and_tagged(runs):
    data, named = runs
    assert [run_id for run_id, _ in named] == ["R20251201-001", "R20251201-002"]
    with get_client(sync_client=True) as client:
        for run_id, flow_run_id in named:
            flow_run = client.read_flow_run(flow_run_id)
            assert flow_run.name == run_id
            assert {"policy:coupang-2025-v1", f"data:{data.name}"} <= set(flow_run.tags)
        found = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[named[1][1]])))
        assert [r.name for r in found] == ["R20251201-002"]


def test_task_runs_have_stable_names(runs):
    _, named = runs
    with get_client(sync_client=True) as client:
        for _, flow_run_id in named:
            tasks = task_runs(client, flow_run_id, STAGE_TASKS)
            assert {t.name for t in tasks} == STAGE_TASKS


def test_the_first_log_line_names_the_run_id(runs):
    _, named = runs
    for run_id, flow_run_id in named:
        messages = _logs(flow_run_id)
        assert run_id in messages[0], messages[:3]
        assert any(m.startswith(f"run {run_id}: policy coupang-2025-v1") for m in messages)


def test_no_log_message_holds_a_python_repr_and_numbers_have_separators(runs):
    _, named = runs
    messages = [m for _, flow_run_id in named for m in _logs(flow_run_id)]
    assert len(messages) > 20
    assert [m for m in messages if REPR.search(m)] == []
    scope = [m for m in messages if m.startswith("scope rows: ")]
    assert scope and all(re.fullmatch(r"scope rows: [\d,]+ read, [\d,]+ exposures, [\d,]+ non-member, "
                                      r"[\d,]+ in review, [\d,]+ quarantined", m) for m in scope)
    assert any(re.search(r"\d,\d{3} ", m) for m in messages), "counts over 999 are written with separators"


def test_the_duplicate_file_is_logged_like_the_others(runs):
    _, named = runs
    files = [m for m in _logs(named[0][1]) if re.match(r"(customers|scope)/", m)]
    # and says which file it repeats (found by review: the reason was in the warehouse only)
    assert (f"scope/{RESENT}: duplicate_file (no rows read): same content as scope_01_initial.csv (accepted), "
            "seen before") in files
    assert all(re.fullmatch(r"(customers|scope)/\S+: [a-z_]+ \((no rows read|[\d,]+ rows)\)(: same content as .*)?", m)
               for m in files), files


def test_the_ingest_step_is_a_progress_artifact_at_100_percent(runs):
    _, named = runs
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[named[0][1]])))
    progress = {a.key: a for a in found if a.type == "progress"}
    assert float(progress["ingest-reading-files"].data) == 100.0
    assert re.fullmatch(r"ingest: reading files, (\d+) of \1", progress["ingest-reading-files"].description)
    assert float(progress["disburse-batches-written"].data) == 100.0
