"""A redress run and its Prefect flow run find each other (issue 14, "Data engineers"):
the flow run is named after the run id (`R20251201-001`, the name of its report folder)
and tagged `policy:<policy id>` and `data:<data folder's name>`.

The run id is given under the data folder's lock, inside the flow (start_run). So that
Prefect's first log line ("Beginning flow run 'R20251201-001' ...") already names it,
`flow_run_name` reads the id the run will get before the flow starts (peek_run_id); once
the run holds its id, `name_and_tag` corrects the name if another run took that id in
between, and adds the tags (Prefect 3.9 has no tags parameter on a flow run's start).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from redress.errors import RedressError
from redress.policy import load_policy
from redress.warehouse.runs import peek_run_id


def flow_run_name() -> str:
    """`flow_run_name=` of the parent flow: the run id the run will get, read from the
    flow run's own parameters (data_dir, run_date); a Prefect-chosen name when it cannot
    be read (name_and_tag sets the right one)."""
    from prefect.runtime import flow_run

    parameters = flow_run.get_parameters()
    try:
        given = parameters.get("run_date")
        # none given: today where the policy pays, as the run will read it (flows/remediation.py)
        run_date = (date.fromisoformat(str(given)) if given is not None
                    else load_policy(Path(parameters["policy_path"])).today())
        peeked = peek_run_id(Path(parameters["data_dir"]), run_date)
    except (KeyError, TypeError, ValueError, RedressError):  # a run without them is refused by its own checks
        peeked = None
    return peeked or f"redress-{flow_run.get_id()}"


def approve_run_name() -> str:
    """`flow_run_name=` of the approve flow (flows/approval.py): `<run id> approve`, from
    the flow run's own `run_id` parameter, so its first log line names the run it decides."""
    from prefect.runtime import flow_run

    return f"{flow_run.get_parameters().get('run_id') or flow_run.get_id()} approve"


def run_tags(policy_id: str, data_dir: Path) -> list[str]:
    """The tags a run's flow run carries, sorted."""
    return sorted({f"policy:{policy_id}", f"data:{Path(data_dir).name}"})


def name_and_tag(run_id: str, policy_id: str | None, data_dir: Path) -> None:
    """Name the current flow run `run_id` (a run's id, or `<run id> approve`) and add the
    run's tags to those it has (`policy:` only when `policy_id` is known). Nothing outside
    a flow run."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    flow_run = context.flow_run
    wanted = run_tags(policy_id, data_dir) if policy_id else [f"data:{Path(data_dir).name}"]
    tags = sorted(set(flow_run.tags or ()) | set(wanted))
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.id, name=run_id, tags=tags)
    flow_run.name, flow_run.tags = run_id, tags
