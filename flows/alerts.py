"""A failed served run calls a webhook: a Prefect automation on the redress flows.

    .venv/bin/python -m flows.alerts https://hooks.example.com/redress

(against the server in PREFECT_API_URL) saves the URL as a Webhook block and creates
the automation "redress run failed": whenever a run of a served deployment ends Failed,
Crashed or TimedOut, the webhook receives its flow, run name and state message, which
for an expected error is the error itself. Run it again to change the URL.

It watches the served flows (flows/service.py), not the pipeline flow they start: a
pipeline failure fails the served run that started it, so each failure rings once.
"""

from __future__ import annotations

import sys
from uuid import UUID

SERVED_FLOWS = ["redress-run", "redress-inbox-watch", "redress-daily-disbursement"]
AUTOMATION = "redress run failed"
BLOCK = "redress-alerts"
PAYLOAD = ('{"flow": "{{ flow.name }}", "flow_run": "{{ flow_run.name }}", '
           '"state": "{{ flow_run.state.name }}", "message": {{ flow_run.state.message | tojson }}}')


def alert_on_failure(webhook_url: str) -> UUID:
    """Create (or replace) the automation; returns its id."""
    from prefect import get_client
    from prefect.automations import Automation, CallWebhook, EventTrigger, Posture
    from prefect.blocks.webhook import Webhook

    hook_id = Webhook(method="POST", url=webhook_url).save(BLOCK, overwrite=True)
    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(AUTOMATION):
            client.delete_automation(old.id)
    automation = Automation(
        name=AUTOMATION,
        description="A served redress run ended Failed, Crashed or TimedOut",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": SERVED_FLOWS},
            posture=Posture.Reactive, threshold=1,
        ),
        actions=[CallWebhook(block_document_id=hook_id, payload=PAYLOAD)],
    ).create()
    return automation.id


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m flows.alerts WEBHOOK_URL")
    print(f"automation {AUTOMATION!r}: {alert_on_failure(sys.argv[1])}")
