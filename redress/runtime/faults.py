"""A test hook for crash safety: REDRESS_FAIL_AT=<step> kills the process at that step,
the way a power cut or `kill -9` would (no clean-up, no finally blocks), so tests can
prove that a run killed anywhere and run again pays everyone exactly what is owed. The
variable is read once, with every other setting (redress/settings.py); the stages pass
their settings here."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redress.settings import Settings

# Every step a crash test may kill the run at, in run order. checkpoint() refuses any
# other name, and the settings refuse a REDRESS_FAIL_AT naming none of them, so a typo
# in a crash test fails loudly instead of letting the run pass untouched.
CHECKPOINTS = (
    "run:started", "ingest:customers-before-commit", "ingest:before-commit", "returns:before-commit",
    "claims:before-commit", "claims:committed",
    "validate:before-commit", "entitle:before-commit",
    "disburse:planned", "disburse:plan-saved", "disburse:folder-written", "disburse:folders-written", "disburse:committed",
    "disburse:published-one", "notify:files-written", "notify:committed",
    "approve:report-written", "approve:exports-written", "reject:decided",
)

KILLED_EXIT_CODE = 86


def checkpoint(step: str, settings: Settings) -> None:
    """Kill the process (exit code KILLED_EXIT_CODE) when `settings.fail_at` names `step`.
    ValueError for a step not in CHECKPOINTS (a programming error)."""
    if step not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint {step!r}: add it to CHECKPOINTS")
    if settings.fail_at == step:
        os._exit(KILLED_EXIT_CODE)
