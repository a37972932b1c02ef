"""The disburse stage's stop under `disbursement.require_approval` (SPEC "Approval before
release"): the checked plan is kept in the warehouse, written to reports/<run_id>/plan.md
and published as the Prefect artifact `disbursement-plan`; nothing is issued, written to
the outbox or notified. `redress approve` (flows/approval.py) releases exactly it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect.artifacts import create_markdown_artifact

from redress.checks.emission_checks import drop_plan
from redress.context import RunContext
from redress.policy import Policy
from redress.reports.plan import plan_fund, plan_markdown
from redress.rules.plans import past_claim_deadline
from redress.rules.fund_cap import LIVE_LEDGER_SQL
from redress.runtime.commands import NAME_PLACEHOLDER, redress_line
from redress.runtime.faults import checkpoint
from redress.settings import Settings
from redress.vocabulary import WAITING
from redress.warehouse import connect
from redress.warehouse import plans as plans_table

ARTIFACT_KEY = "disbursement-plan"


def save_plan(ctx: RunContext, settings: Settings, policy: Policy, planned_at: datetime, plan: dict,
              gate: str) -> str:
    """Keep the staged plan (the emission suites passed it: its payments with bank
    details, redress/warehouse/plans.py PAYMENT_COLUMNS) as ctx.run_id's waiting plan,
    expiring settings.approval_timeout_seconds after `planned_at`; `plan` is
    redress.rules.plans.plan_summary's, `gate` the gate_fingerprint of what the suites
    passed (redress/checks/emission_checks.py). Returns the text of plan.md."""
    expires_at = planned_at + timedelta(seconds=settings.approval_timeout_seconds)
    with connect(ctx.warehouse) as con:
        con.execute("BEGIN")
        plans_table.save(con, run_id=ctx.run_id, policy_id=policy.id, policy_sha256=policy.sha256,
                         planned_at=planned_at, expires_at=expires_at, summary=plan, gate_fingerprint=gate)
        con.execute("COMMIT")
        drop_plan(con)
        (live,), = con.execute(LIVE_LEDGER_SQL).fetchall()
    checkpoint("disburse:plan-saved", settings)
    commands = [redress_line(ctx.data_dir, verb, ctx.run_id, "--by", NAME_PLACEHOLDER) for verb in ("approve", "reject")]
    text = plan_markdown(ctx.run_id, policy.id, WAITING, expires_at, plan, commands,
                         past_claim_deadline=past_claim_deadline(ctx.run_date, policy.claim_deadline),
                         fund=plan_fund(int(live), policy.total_cap, WAITING, plan))
    ctx.report_dir.mkdir(parents=True, exist_ok=True)
    (ctx.report_dir / "plan.md").write_text(text, encoding="utf-8")
    create_markdown_artifact(key=ARTIFACT_KEY, markdown=text,
                             description=f"redress run {ctx.run_id}: the disbursement plan waiting for approval")
    return text
