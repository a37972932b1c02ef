"""A command whose stdout is closed early (`redress explain X | head -1`) ends quietly."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left


def quiet_when_stdout_closes(command: Callable[[], int]) -> int:
    """`command()`'s exit code, or SIGPIPE_EXIT with no traceback when its reader closed
    stdout (BrokenPipeError while it writes, or at the flush of what it wrote). stdout is
    then pointed at devnull, so that Python's own flush at exit cannot raise again: the
    recipe of the Python docs ("Note on SIGPIPE", library/signal)."""
    try:
        try:
            return command()
        finally:  # here, not at interpreter exit, where a closed pipe is a traceback
            sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return SIGPIPE_EXIT
