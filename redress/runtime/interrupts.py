"""Ctrl-C told apart from a failure, wherever it lands.

DuckDB 2.0's Python client turns a SIGINT that arrives during a query into
`RuntimeError("Query interrupted")`: the KeyboardInterrupt is gone, and what reaches the
command, or a library's or a stage's own `except Exception`, looks like a failure (a
traceback and exit 1 in CI, on a Ctrl-C during ingest). A command installs `watch`; its
handler notes the press before raising KeyboardInterrupt as Python's own does, so the
command reports any error that follows a press as the interruption it is, and a press
that something took for an error and went past is raised again at the next stage
(`check`)."""

from __future__ import annotations

import signal
import threading

_pressed = threading.Event()


def _on_sigint(signum, frame) -> None:
    _pressed.set()
    raise KeyboardInterrupt


def watch() -> None:
    """Note every Ctrl-C (SIGINT) from now on, and raise KeyboardInterrupt for it as
    Python's default handler does. Main thread only (Python's rule for signal
    handlers); a no-op where SIGINT is not Python's default handler (ignored, or a
    program embedding redress handles it). Not for a command whose main thread runs an
    asyncio loop to the end (`serve`): asyncio.run and anyio install their own SIGINT
    handler, which cancels the loop's main task so that it can clean up, only over
    Python's default one."""
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def pressed() -> bool:
    """Whether Ctrl-C was pressed since `watch`."""
    return _pressed.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed: a press that DuckDB turned into an
    error that something caught and went past (a best-effort page, GX recording a failed
    metric) still ends the run."""
    if _pressed.is_set():
        raise KeyboardInterrupt
