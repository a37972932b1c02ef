"""Peak resident memory of a running child, interval by interval, and per stage.

A process's peak resident memory (ru_maxrss, or VmHWM in /proc/PID/status) is one
figure for its whole life: it cannot say which of redress's stages held the 9.9 GB, and
sampling the current resident size every few seconds misses a spike between two samples
(the 150 M run's samples every 30 s missed its peak: docs/scale-log.md, 2026-12-03).

`PeakWatch` asks the kernel instead. Every WATCH_SECONDS it reads the child's peak since
the last reading (VmHWM) and then resets it (writing 5 to /proc/PID/clear_refs, Linux
4.0 on: the peak becomes the current resident size). So each interval's figure is the
exact peak from its start (the resident size at the reset) to its end, whatever
happened between readings; only a rise and fall within the microseconds between a
reading and its reset is lost. `stage_peaks` then gives each stage the largest peak of
the intervals that touch it: never less than its own, and at most the interval that
straddles its start or end of its neighbours' memory (WATCH_SECONDS long, longer only
when the machine keeps the watching thread waiting).

Resetting the peak also resets what wait4 reports at exit (ru_maxrss: the peak since
the last reset, with the children the process waited for, and the peak of the image
before the process's exec: the forked parent's). `Peaks.total_mb` is the largest of
every interval and that exit figure: the process's peak, as before. The last interval,
from the last reading to the exit, carries that exit figure, so a stage that ends in
it may show the parent's or a child's memory (a redress run's flow ends seconds before
its process does).

Where the kernel offers no reset (not Linux, or /proc/PID/clear_refs not writable)
nothing is reset, `Peaks.per_interval` is False and no stage gets a figure (None), so
no stage is ever given the whole process's peak as its own.
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

WATCH_SECONDS = 0.1  # the length of one interval; the kernel, not the polling, finds each peak


class Interval(NamedTuple):
    start: float  # epoch seconds (time.time): the reading (and reset) that began it
    end: float  # epoch seconds: the next reading, or the exit
    peak_mb: float  # the process's peak resident memory from start to end, both included


class Peaks(NamedTuple):
    intervals: tuple[Interval, ...]  # contiguous, from the child's start to its exit
    per_interval: bool  # whether each interval's peak is its own (the reset worked every time)

    @property
    def total_mb(self) -> float:
        """The process's peak over its whole life."""
        return max((i.peak_mb for i in self.intervals), default=0.0)


def _peak_kb(pid: int) -> int | None:
    """VmHWM of `pid` in kB; None when the process is gone or a zombie (no memory left)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _reset(pid: int) -> bool:
    """Reset the peak of `pid` to its current resident size; False when the kernel
    refuses (or has no such file)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class PeakWatch:
    """Watches `pid` from `start` (epoch seconds, when it was started) in a thread of its
    own. Call `stop()` once the process has exited but before it is reaped (os.waitid
    with WNOWAIT): a reaped pid may be reused by another process, whose memory must
    never be read or reset. Then `peaks(exit_peak_mb, end)` with wait4's ru_maxrss.
    Usage:

        watch = PeakWatch(proc.pid, started)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        watch.stop()
        _, status, usage = os.wait4(proc.pid, 0)
        peaks = watch.peaks(usage.ru_maxrss / 1024, time.time())
    """

    def __init__(self, pid: int, start: float, every: float = WATCH_SECONDS, active: bool = True):
        """`active` False (no os.waitid to wait without reaping): nothing is read, and
        `peaks` gives the exit figure alone, per_interval False."""
        self._pid, self._every = pid, every
        self._start = self._last = start
        self._intervals: list[Interval] = []
        self._reset_works = active
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"peak-watch-{pid}", daemon=True)
        if active:
            self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(self._every):
            kb = _peak_kb(self._pid)
            if kb is None:
                return  # exited: the last interval is wait4's
            # The interval ends between the reading and the reset, which begins the next:
            # whatever the process does once the reset is done is in the next interval.
            now = time.time()
            if not _reset(self._pid):
                self._reset_works = False
                return  # nothing reset: only the exit figure, for the whole process
            self._intervals.append(Interval(self._last, now, kb / 1024))
            self._last = now

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def peaks(self, exit_peak_mb: float, end: float) -> Peaks:
        """The intervals read, then the last one (since the last reset, or the start, to
        `end`) with wait4's peak at exit: a child that lived less than one interval has
        that one, its whole life. Without a working reset, one interval for the whole
        life, the exit figure, and per_interval False."""
        if not self._reset_works:
            whole = max([exit_peak_mb, *(i.peak_mb for i in self._intervals)])
            return Peaks((Interval(self._start, end, whole),), per_interval=False)
        return Peaks((*self._intervals, Interval(self._last, end, exit_peak_mb)), per_interval=True)


def stage_peaks(peaks: Peaks, stages: list[tuple[float, float]]) -> list[float | None]:
    """For each stage (start, end: epoch seconds), the largest peak among the intervals
    that touch it (a <= end and b >= start for an interval from a to b: a stage ending or
    starting on a boundary gets both intervals, the larger figure); None when the peaks
    are not per interval, or no interval touches it (a stage outside the watched life)."""
    if not peaks.per_interval:
        return [None] * len(stages)
    found = []
    for start, end in stages:
        overlapping = [i.peak_mb for i in peaks.intervals if i.start <= end and i.end >= start]
        found.append(max(overlapping) if overlapping else None)
    return found
