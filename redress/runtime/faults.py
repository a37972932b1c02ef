"""A test hook for crash safety: REDRESS_FAIL_AT=<step> kills the process at that step,
the way a power cut or `kill -9` would (no clean-up, no finally blocks), so tests can
prove that a run killed anywhere and run again pays everyone exactly what is owed. The
variable is read once, with every other setting (redress/settings.py); the stages pass
their settings here."""

from __future__ import annotations

import os

from redress.settings import Settings

KILLED_EXIT_CODE = 86


def checkpoint(step: str, settings: Settings) -> None:
    """Kill the process (exit code KILLED_EXIT_CODE) when `settings.fail_at` names `step`."""
    if settings.fail_at == step:
        os._exit(KILLED_EXIT_CODE)
