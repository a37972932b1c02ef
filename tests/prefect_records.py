"""What the tests read back from Prefect's API, waiting where Prefect records things
asynchronously.

Prefect 3 records task runs from the events a flow run emits, in the background: on a
loaded machine they reach the API a moment after the flow has returned, so a test that
reads them at once may find none. Logs are sent in batches by a worker thread of the
process that wrote them: read at once, the last lines of a flow run may be missing.
"""

from __future__ import annotations

import time

from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.client.schemas.sorting import LogSort
from prefect.logging.handlers import APILogWorker

WAIT_SECONDS = 60


def task_runs(client, flow_run_id, names: set[str] | None = None, wait: float = WAIT_SECONDS) -> list:
    """The task runs of one flow run as the API has them, read again every half second
    for at most `wait` seconds until there is at least one, or until their names
    include every one of `names`; then whatever the API has (the test's assertion says
    what is missing)."""
    deadline = time.monotonic() + wait
    while True:
        found = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        complete = names <= {t.name for t in found} if names else bool(found)
        if complete or time.monotonic() >= deadline:
            return found
        time.sleep(0.5)


def flow_run_logs(client, flow_run_id) -> list:
    """The logs of one flow run this process ran, oldest first, read once every log this
    process has queued is sent (APILogWorker.drain_all). Refuses to read where this
    process sends none (the tests' default: tests/conftest.py `logs_to_prefect`), so
    that no test passes on logs that were never sent."""
    from prefect.settings import get_current_settings

    assert get_current_settings().logging.to_api.enabled, "logs are not sent to Prefect here: use logs_to_prefect"
    APILogWorker.drain_all()
    return client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                            sort=LogSort.TIMESTAMP_ASC)
