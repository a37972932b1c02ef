"""A disbursement plan, reports/<run_id>/plan.md (SPEC "Approval before release"), as it
waits for approval and, written again once decided, as it was decided: counts and totals
per rail and value date against the daily cash cap, and per kind (first payments,
top-ups, reissues, claims); nothing about the people paid (the decider's name, as in
report.html). Rendered from templates/plan.md.j2 and the summary redress/rules/plans.py
builds."""

from __future__ import annotations

from datetime import datetime

from redress.reports.rendering import Markdown, markdown_environment
from redress.rules.fund_cap import FundCap, fund_cap
from redress.rules.plans import kind_labels
from redress.vocabulary import APPROVED, EXPIRED, REJECTED, SUPERSEDED, WAITING


def plan_markdown(run_id: str, policy_id: str, state: str, expires_at: datetime, summary: dict,
                  commands: list[str], decision: str | None = None, past_claim_deadline: bool = False,
                  fund: FundCap | None = None) -> str:
    """The plan as Markdown text (ends with one newline); `summary` as plan_summary gives it,
    money in whole won; `commands`: the approve and reject lines, shell text already quoted
    (redress/runtime/commands.py), shown as a code block so they paste as they are;
    `decision`: for a plan no longer waiting, what became of it (`decided`), shown in
    place of its expiry (then `commands` is empty); `past_claim_deadline`: the run date
    is past payout.claim_deadline, so money put on claim is labelled unclaimed, not held;
    `fund` (plan_fund; None without a cap): what is paid or held in all against the
    fund cap, for a waiting plan once it is released (finance review: a plan finance
    approved took the fund 17.7 M KRW over its cap with no word).
    Raises jinja2.UndefinedError if the template names a value not given."""
    # A plan an earlier version saved may lack a kind added since (`claimed`): none of it.
    kinds = [dict(summary["kinds"].get(k, {"payments": 0, "amount_krw": 0}), label=label)
             for k, label in kind_labels(past_claim_deadline).items()]
    return markdown_environment().get_template("plan.md.j2").render(
        run_id=run_id, policy_id=policy_id, state=state,
        expires_at=expires_at.isoformat(), decision=decision,
        totals=summary["totals"], days=summary["days"], kinds=kinds,
        # a plan an earlier version saved has no such figure: none was shown then
        shared=summary.get("shared_claim_accounts", {"payments": 0, "amount_krw": 0}),
        payees_sharing=summary.get("shared_payee_accounts", {"accounts": 0, "payees": 0, "amount_krw": 0}),
        changed=summary.get("changed_payee_accounts", {"payees": 0, "amount_krw": 0}),
        past=summary.get("dated_before_today", {"payments": 0}),
        commands=[Markdown(c) for c in commands],  # verbatim in a code block: not Markdown-escaped
        fund=fund.lines() if fund is not None else [])


def plan_fund(live_krw: int, total_cap: int, state: str, summary: dict) -> FundCap | None:
    """The fund cap (redress/rules/fund_cap.py) against what would be paid or held in all:
    for a waiting plan, `live_krw` (the ledger's issued and settled money, held claim
    money included: fund_cap.LIVE_LEDGER_SQL) plus the plan's amount; for a decided one,
    the ledger as it is (an approved plan's payments are in it, any other paid nothing).
    None without a cap (total_cap 0)."""
    if state == WAITING:
        return fund_cap(live_krw + int(summary["totals"]["amount_krw"]), total_cap,
                        "once this plan is released, the ledger now plus this plan")
    return fund_cap(live_krw, total_cap, "the whole ledger now")


def decided(plan: dict) -> str:
    """What became of a plan no longer waiting, in one sentence without its final stop, from
    its `plans` row (redress/warehouse/plans.py `read`): who decided and when, and what
    was paid of it. ValueError for a waiting plan."""
    state, by, at = plan["state"], plan["decided_by"], plan["decided_at"]
    when = at.replace(microsecond=0).isoformat() if at is not None else "an unrecorded time"  # to the second, as shown elsewhere
    account = plan.get("decided_os_user")
    if state in (APPROVED, REJECTED) and account:  # found by review: only the name typed was recorded
        by = f"{by} (operating-system account {account})"
    if state == APPROVED:
        return f"approved by {by} at {when}; its batches are released to outbox/batches/"
    if state == REJECTED:
        return f"rejected by {by} at {when}; nothing of it is paid, and the next run plans what is owed afresh"
    if state == SUPERSEDED:
        return f"superseded by run {by} at {when}, which planned what is owed afresh; nothing of it is paid"
    if state == EXPIRED:  # at its expiry, whenever it was found so
        return (f"expired at {plan['expires_at'].isoformat()}, neither approved nor rejected; nothing of it is paid, "
                "and the next run plans afresh")
    raise ValueError(f"plan {plan['run_id']} is {state}: nothing decided")
