"""Settings built once at the entry point and handed down (issue 11, item 4): a typo in
the environment stops a run at its start in one line; the HMAC key reaches the tasks as
an argument but never Prefect's stored flow-run parameters, task runs or logs; a caller
in this process (the CLI, the demo) hands its settings to the flow without writing the
environment (redress.settings.given)."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import date

import duckdb
import pytest
from pydantic import SecretStr

from flows.remediation import remediation
from redress.errors import RedressError
from redress.generate import generate
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false
from redress.settings import given, load_settings


@pytest.fixture(scope="module", autouse=True)
def _logs_sent(logs_to_prefect):
    """These tests read the runs' logs back from Prefect (tests/conftest.py)."""
    yield


RUN_DATE = date(2025, 12, 1)


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    generate(folder, 200, seed=5)
    return folder


def run(folder, **options):
    return remediation(data_dir=folder, policy_path=DEFAULT_POLICY, run_date=RUN_DATE, **options)


def test_a_setting_typed_wrong_in_the_environment_stops_the_run_at_its_start(data, monkeypatch):
    monkeypatch.setenv("REDRESS_HMAC_KY", "0123456789abcdeffedcba98765432100f1e2d3c4b5a6978")
    with pytest.raises(RedressError) as refused:
        run(data)
    line = str(refused.value)
    assert line.startswith("unknown setting REDRESS_HMAC_KY (known: ") and "\n" not in line
    assert not (data / "warehouse.duckdb").exists() and not (data / "outbox").exists()


def stored_text(flow_run_id) -> tuple[dict, str]:
    """The flow run's parameters, and everything Prefect's API keeps of the run (flow
    run, task runs, logs) as one JSON text."""
    from prefect import get_client
    from prefect_records import flow_run_logs, task_runs as recorded_task_runs

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = recorded_task_runs(client, flow_run_id)  # recorded asynchronously: waits for them
        logs = flow_run_logs(client, flow_run_id)  # sent in batches: what is queued is sent first
    text = "\n".join([flow_run.model_dump_json(), *(t.model_dump_json() for t in task_runs),
                      *(entry.model_dump_json() for entry in logs)])
    names = sorted({t.name.rsplit("-", 1)[0] for t in task_runs})
    return {"parameters": flow_run.parameters, "tasks": names}, text


def test_the_hmac_key_given_by_the_caller_is_used_and_never_stored_by_prefect(data, monkeypatch):
    key = "given-key-" + secrets.token_hex(24)
    monkeypatch.delenv("REDRESS_HMAC_KEY", raising=False)
    with pytest.raises(RedressError, match="REDRESS_HMAC_KEY is not set"):
        run(data)  # the environment has no key: the flow reads none
    settings = dataclasses.replace(load_settings(data_dir=data), hmac_key=SecretStr(key))
    assert key not in repr(settings) and key not in str(settings)
    with given(settings):
        state = run(data, return_state=True)
    summary = state.result()
    assert summary["notify"]["notifications"] > 0  # coded with the key handed over, not the environment's
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM notifications").fetchall() == [(summary["notify"]["notifications"],)]
    seen, text = stored_text(state.state_details.flow_run_id)
    assert seen["parameters"] == {"data_dir": str(data), "policy_path": str(DEFAULT_POLICY),
                                  "run_date": RUN_DATE.isoformat()}
    assert {"ingest inbox", "notify", "disburse"} <= set(seen["tasks"])  # the task runs of this run were read
    assert key not in text
