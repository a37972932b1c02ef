"""What the tests read back from Prefect's API, waiting where Prefect records things
asynchronously.

Prefect 3 records task runs from the events a flow run emits, in the background: on a
loaded machine they reach the API a moment after the flow has returned, so a test that
reads them at once may find none.
"""

from __future__ import annotations

import time

from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

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
