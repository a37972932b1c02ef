"""Progress of a run, as people watch it (issue 13 section 3): each stage starting and
ending with its elapsed time and counts, and progress within the long steps whose size
is known (files of N read, batches of N written).

The one interface the stages report through, so the rules stay pure: the parent flow
times each stage (`timed`), a stage reports a counted step (`step`). Where it goes:
- the console of `redress run` / `redress demo`, once the command installed a reporter
  (`reporting`): a rich bar on a terminal, plain lines when the output is a pipe or a
  file (no bar, no control character), never more than one step line every
  PLAIN_STEP_SECONDS per step so a log stays readable;
- Prefect progress artifacts, one per counted step of a run (key `<stage>-<step>`),
  which the UI shows beside the run; served runs have no console, only these.
Numbers are printed with thousands separators. No personal data: stage names, counts.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Protocol, TypeVar

from redress.runtime import interrupts
from redress.runtime.stage_counts import counts_text

T = TypeVar("T")
PLAIN_STEP_SECONDS = 5.0    # a pipe gets a step line at most this often (and always its first and last)
HEARTBEAT_SECONDS = 20.0    # a pipe silent this long during a stage gets a "still running" line
ARTIFACT_SECONDS = 2.0      # the Prefect API gets a progress update at most this often (and the last)
STAGE_WIDTH = 11            # `disburse` and `validate` line up under `ingest`


class Reporter(Protocol):
    """Where progress goes on a console."""

    def stage_started(self, stage: str) -> None: ...

    def stage_done(self, stage: str, seconds: float, counts: str) -> None: ...

    def step(self, stage: str, what: str, done: int, total: int) -> None: ...

    def note(self, text: str) -> None: ...

    def finish(self) -> None: ...


def stage_line(stage: str, seconds: float, counts: str) -> str:
    """`ingest      done in 12.4 s · 3,370,000 customers rows · ...` (seconds, one decimal)."""
    return f"{stage:<{STAGE_WIDTH}} done in {seconds:.1f} s" + (f" · {counts}" if counts else "")


class PlainReporter:
    """One line per event, for output that is not a terminal (a pipe, a file, CI). A
    stage with no counted step (validate or entitle at scale run for minutes) is never
    silence: after `heartbeat` seconds without a line, a background thread prints
    `validate    still running, 40 s so far` (0: no heartbeat)."""

    def __init__(self, file: IO[str], clock: Callable[[], float] = time.monotonic,
                 heartbeat: float = HEARTBEAT_SECONDS):
        self.file, self.clock, self.heartbeat = file, clock, heartbeat
        self._last: dict[tuple[str, str], float] = {}
        self._running: dict[str, float] = {}  # stage -> when it started
        self._printed = clock()
        self._write = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _line(self, text: str) -> None:
        with self._write:
            print(text, file=self.file, flush=True)
            self._printed = self.clock()

    def stage_started(self, stage: str) -> None:
        self._running[stage] = self.clock()
        self._line(f"{stage:<{STAGE_WIDTH}} started")
        if self.heartbeat > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat_until_finished, name="progress-heartbeat", daemon=True)
            self._thread.start()

    def stage_done(self, stage: str, seconds: float, counts: str) -> None:
        self._running.pop(stage, None)
        self._line(stage_line(stage, seconds, counts))

    def beat(self) -> None:
        """A "still running" line per running stage, if nothing was printed for `heartbeat` s."""
        now = self.clock()
        if now - self._printed < self.heartbeat:
            return
        for stage, started in sorted(self._running.items()):
            self._line(f"{stage:<{STAGE_WIDTH}} still running, {now - started:,.0f} s so far")

    def _beat_until_finished(self) -> None:
        while not self._stop.wait(min(self.heartbeat / 4, 5.0)):
            self.beat()

    def step(self, stage: str, what: str, done: int, total: int) -> None:
        now, key = self.clock(), (stage, what)
        if done < total and key in self._last and now - self._last[key] < PLAIN_STEP_SECONDS:
            return
        self._last[key] = now
        self._line(f"{stage:<{STAGE_WIDTH}} {what}: {done:,} of {total:,}")

    def note(self, text: str) -> None:
        self._line(text)

    def finish(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._running.clear()


class TerminalReporter:
    """A rich bar per counted step on a terminal; stage lines printed above it."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=console, transient=True)
        self._tasks: dict[tuple[str, str], int] = {}

    def stage_started(self, stage: str) -> None:
        self.console.print(f"{stage:<{STAGE_WIDTH}} started", markup=False, highlight=False)
        # A pulsing bar with the time so far: a stage without a count is not silence.
        self.bars.start()
        self._tasks[(stage, "")] = self.bars.add_task(f"{stage:<{STAGE_WIDTH}} running", total=None)

    def stage_done(self, stage: str, seconds: float, counts: str) -> None:
        for key in [k for k in self._tasks if k[0] == stage]:
            self.bars.remove_task(self._tasks.pop(key))
        if not self._tasks:
            self.bars.stop()
        self.console.print(stage_line(stage, seconds, counts), markup=False, highlight=False)

    def step(self, stage: str, what: str, done: int, total: int) -> None:
        key = (stage, what)
        if key not in self._tasks:
            self.bars.start()
            self._tasks[key] = self.bars.add_task(f"{stage:<{STAGE_WIDTH}} {what}", total=total)
        self.bars.update(self._tasks[key], completed=done, total=total)

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def finish(self) -> None:
        self.bars.stop()


def reporter_for(file: IO[str]) -> Reporter:
    """A rich bar when `file` is a terminal, plain lines otherwise."""
    if file.isatty():
        from rich.console import Console

        return TerminalReporter(Console(file=file))
    return PlainReporter(file)


_lock = threading.Lock()
_reporter: Reporter | None = None  # the process's console, if a command installed one


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Send the progress of what runs in this block to `reporter` (the command's console).
    Process-wide: Prefect runs the stage tasks of a flow on its own threads."""
    global _reporter
    with _lock:
        previous, _reporter = _reporter, reporter
    try:
        yield reporter
    finally:
        reporter.finish()  # a bar a failed stage left is taken down before the error is printed
        with _lock:
            _reporter = previous


def timed(stage: str, run: Callable[..., T], *args) -> T:
    """run(*args), reported as a stage: started, then done with the seconds it took and
    the counts of its result (redress/runtime/stage_counts.py). A failure is not
    reported as done: the command prints the error. Raises KeyboardInterrupt before
    or after the stage when Ctrl-C was pressed (redress/runtime/interrupts.py)."""
    interrupts.check()  # a Ctrl-C taken for an error and gone past ends the run here
    reporter = _reporter
    if reporter is not None:
        reporter.stage_started(stage)
    started = time.monotonic()
    result = run(*args)
    interrupts.check()
    if reporter is not None:
        reporter.stage_done(stage, time.monotonic() - started, counts_text(stage, result))
    return result


def note(text: str) -> None:
    """One line about the run that is not a stage (a server starting): console only."""
    reporter = _reporter
    if reporter is not None:
        reporter.note(text)


def step(stage: str, what: str, done: int, total: int) -> None:
    """`done` of `total` units of one counted step of a stage (e.g. "reading files",
    2, 7): on the console, and as the run's Prefect progress artifact for that step."""
    reporter = _reporter
    if reporter is not None:
        reporter.step(stage, what, done, total)
    _artifacts.update(stage, what, done, total)


class _Artifacts:
    """One Prefect progress artifact per (flow run, stage, step), updated at most every
    ARTIFACT_SECONDS; nothing outside a Prefect run."""

    def __init__(self):
        self._ids: dict[tuple[str, str, str], tuple[object, float]] = {}

    def update(self, stage: str, what: str, done: int, total: int) -> None:
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        if context is None or context.flow_run is None or total <= 0:
            return
        percent = 100.0 * min(done, total) / total
        description = f"{stage}: {what}, {done:,} of {total:,}"
        key = (str(context.flow_run.id), stage, what)
        now = time.monotonic()
        with _lock:
            known = self._ids.get(key)
        if known is not None and done < total and now - known[1] < ARTIFACT_SECONDS:
            return
        try:
            if known is None:
                from prefect.artifacts import create_progress_artifact

                slug = re.sub(r"[^a-z0-9]+", "-", f"{stage}-{what}".lower()).strip("-")
                artifact_id = create_progress_artifact(percent, key=slug, description=description)
            else:
                from prefect.artifacts import update_progress_artifact

                artifact_id = update_progress_artifact(known[0], percent, description=description)
        except Exception as exc:  # noqa: BLE001 - progress shown is never worth a failed payment run
            from prefect import get_run_logger

            get_run_logger().warning("progress of %s not shown in Prefect: %s", stage, type(exc).__name__)
            return
        with _lock:
            self._ids[key] = (artifact_id, now)


_artifacts = _Artifacts()
