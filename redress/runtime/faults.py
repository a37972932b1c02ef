"""A test hook for crash safety: REDRESS_FAIL_AT=<step> kills the process at that step,
the way a power cut or `kill -9` would (no clean-up, no finally blocks), so tests can
prove that a run killed anywhere and run again pays everyone exactly what is owed."""

from __future__ import annotations

import os

KILLED_EXIT_CODE = 86


def checkpoint(step: str) -> None:
    if os.environ.get("REDRESS_FAIL_AT") == step:
        os._exit(KILLED_EXIT_CODE)
