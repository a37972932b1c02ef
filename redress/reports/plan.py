"""A disbursement plan waiting for approval, reports/<run_id>/plan.md (SPEC "Approval
before release"): counts and totals per rail and value date against the daily cash cap,
and per kind (first payments, top-ups, reissues, claims); no personal data. Rendered from
templates/plan.md.j2 and the summary redress/rules/plans.py builds."""

from __future__ import annotations

from datetime import datetime

from redress.reports.rendering import Markdown, markdown_environment
from redress.rules.plans import KINDS


def plan_markdown(run_id: str, policy_id: str, state: str, expires_at: datetime, summary: dict,
                  commands: list[str]) -> str:
    """The plan as Markdown text (ends with one newline); `summary` as plan_summary gives it,
    money in whole won; `commands`: the approve and reject lines, shell text already quoted
    (redress/runtime/commands.py), shown as a code block so they paste as they are.
    Raises jinja2.UndefinedError if the template names a value not given."""
    kinds = [dict(summary["kinds"][k], label=label) for k, label in KINDS.items()]
    return markdown_environment().get_template("plan.md.j2").render(
        run_id=run_id, policy_id=policy_id, state=state,
        expires_at=expires_at.isoformat(),
        totals=summary["totals"], days=summary["days"], kinds=kinds,
        commands=[Markdown(c) for c in commands])  # verbatim in a code block: not Markdown-escaped
