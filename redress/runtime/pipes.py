"""A command whose stdout is closed early (`redress explain X | head -1`) ends quietly;
one that changes the data folder (`redress run | head -1`) goes on (`stdout_may_close`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


class _ReaderMayLeave:
    """A text stream's stand-in that, once the stream's reader has left (BrokenPipeError
    on a write or a flush), points its file descriptor at devnull, says so once on
    stderr, and takes whatever is written after without error."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.left = False

    def write(self, text: str) -> int:
        if not self.left:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.left:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.left = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())  # what the stream still buffers goes nowhere, quietly
        os.close(devnull)
        print("redress: stdout was closed by its reader; the command goes on without printing", file=sys.stderr)

    def __getattr__(self, name: str):  # isatty, fileno, encoding, ...: the stream's
        return getattr(self._stream, name)


@contextmanager
def stdout_may_close() -> Iterator[None]:
    """For a command that changes the data folder (run, approve, reject,
    recover-ledger): while it works, a reader that leaves its stdout early (`redress run |
    head -1`) ends the printing, never the command. Found by review: the run failed with
    `[Errno 32] Broken pipe` at its next progress line, nobody paid and nothing said."""
    stream = sys.stdout
    sys.stdout = _ReaderMayLeave(stream)
    try:
        yield
    finally:
        sys.stdout = stream


def streams_that_exist() -> None:
    """A command started with stdout or stderr closed (`redress run >&-`, as some cron
    and daemon wrappers start it) has None for that stream in Python: what it would print
    there goes to devnull instead. Found by review: `run >&-` stopped with an
    AttributeError traceback before anything ran, `approve` and `explain` too.
    The closed file descriptor is given devnull too, so that a child inherits a stream
    it can write (found by the platform review: the temporary Prefect server, started
    with fd 1 closed, failed in uvicorn's logging set-up, and `run >&-` with it)."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:  # closed: the lowest free descriptor, this one, or moved onto it
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)  # os.open's descriptors are closed on exec (PEP 446)
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - for the process's life
            _CLOSED.add(name)


# The standard streams the command was started without (streams_that_exist).
_CLOSED: set[str] = set()


def child_streams() -> dict:
    """Popen's stdout and stderr for a child of the command: devnull for a stream the
    command was started without, else inherited. A closed descriptor may have been taken
    by a file the command opened before streams_that_exist ran, which a child must not
    write to (found by the fix-review test: with both streams closed the child had none)."""
    return {name: subprocess.DEVNULL for name in ("stdout", "stderr") if name in _CLOSED}
