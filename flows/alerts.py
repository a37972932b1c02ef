"""A failed served run, and a plan waiting for approval, call a webhook: Prefect
automations on the redress flows.

    .venv/bin/python -m flows.alerts https://hooks.example.com/redress

(against the server in PREFECT_API_URL) saves the URL as a Webhook block and creates
two automations: "redress run failed": whenever a run of a served deployment ends Failed,
Crashed or TimedOut, the webhook receives its flow, run name and state message, which
for an expected error is the error itself; "redress plan waiting": whenever one pauses
for approval (SPEC "Approval before release", flows/approval.py), finance is told
which run to approve, in its form in the UI or with `redress approve`. Run it again to
change the URL.

It watches the served flows (flows/service.py), not the pipeline flow they start: a
pipeline failure fails the served run that started it, so each failure rings once.
"""

from __future__ import annotations

import sys
from uuid import UUID

SERVED_FLOWS = ["redress-run", "redress-inbox-watch", "redress-daily-disbursement"]
AUTOMATION = "redress run failed"
WAITING_AUTOMATION = "redress plan waiting"
BLOCK = "redress-alerts"
PAYLOAD = ('{"flow": "{{ flow.name }}", "flow_run": "{{ flow_run.name }}", '
           '"state": "{{ flow_run.state.name }}", "message": {{ flow_run.state.message | tojson }}}')


WAITING_PAYLOAD = ('{"flow": "{{ flow.name }}", "flow_run": "{{ flow_run.name }}", "state": "{{ flow_run.state.name }}", '
                   '"message": "a disbursement plan waits for approval: approve or reject it in the form of this '
                   'flow run in the Prefect UI, or with redress approve RUN_ID --by NAME"}')


def _webhook_automation(name: str, description: str, events: set[str], payload: str, hook_id: UUID) -> UUID:
    """Create (or replace) automation `name`: `events` of a served flow's run call the
    webhook block `hook_id` with `payload`; returns its id."""
    from prefect import get_client
    from prefect.automations import Automation, CallWebhook, EventTrigger, Posture

    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(name):
            client.delete_automation(old.id)
    automation = Automation(
        name=name, description=description,
        trigger=EventTrigger(
            expect=events,
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": SERVED_FLOWS},
            posture=Posture.Reactive, threshold=1,
        ),
        actions=[CallWebhook(block_document_id=hook_id, payload=payload)],
    ).create()
    return automation.id


def _hook(webhook_url: str) -> UUID:
    from prefect.blocks.webhook import Webhook

    return Webhook(method="POST", url=webhook_url).save(BLOCK, overwrite=True)


def alert_on_failure(webhook_url: str) -> UUID:
    """Create (or replace) the failure automation; returns its id."""
    return _webhook_automation(
        AUTOMATION, "A served redress run ended Failed, Crashed or TimedOut",
        {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}, PAYLOAD,
        _hook(webhook_url))


def alert_on_waiting_plan(webhook_url: str) -> UUID:
    """Create (or replace) the automation that tells finance a served run paused with a
    plan waiting for approval (its flow run entered Paused); returns its id."""
    return _webhook_automation(
        WAITING_AUTOMATION, "A served redress run paused: its disbursement plan waits for approval",
        {"prefect.flow-run.Paused"}, WAITING_PAYLOAD, _hook(webhook_url))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m flows.alerts WEBHOOK_URL")
    print(f"automation {AUTOMATION!r}: {alert_on_failure(sys.argv[1])}")
    print(f"automation {WAITING_AUTOMATION!r}: {alert_on_waiting_plan(sys.argv[1])}")
