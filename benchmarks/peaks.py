"""Peak resident memory of a running child, interval by interval, and per stage.

A process's peak resident memory (ru_maxrss, or VmHWM in /proc/PID/status) is one
figure for its whole life: it cannot say which of redress's stages held the 9.9 GB,
and sampling the current resident size every few seconds misses a spike between two
samples (the 150 M run's samples every 30 s missed its peak: docs/scale-log.md,
2026-12-03).

`PeakWatch` asks the kernel instead. Every WATCH_SECONDS it reads the child's peak since
the last reading (VmHWM) and then resets it (writing 5 to /proc/PID/clear_refs, Linux
4.0 on: the peak becomes the current resident size). So each interval's figure is the
kernel's count of the peak from its start (the resident size at the reset) to its end,
whatever happened between readings; lost are only a rise and fall within the
microseconds between a reading and its reset, and pages the kernel reclaims (swaps
out) before it has counted them into the peak. `stage_peaks` gives each stage the
largest peak of the intervals that touch it: never less than its own, and at most the
interval that straddles its start or end of its neighbours' memory (WATCH_SECONDS long,
longer only when the machine keeps the watching thread waiting); a stage shorter than
one interval shows the memory around it. `gap_peak` gives time between stages the
intervals lying mostly inside it, so a few milliseconds between two tasks get no
figure of their neighbours'.

The figure wait4 reports at exit (ru_maxrss) is kept apart (`Peaks.exit_mb`) and given
to no stage: it is the peak since the last reset, but also that of the children the
process waited for (redress's Prefect server) and of the image the process had before
its exec, the parent's (Python starts a child with vfork: the benchmark's own peak, which
`run_child` resets just before each start to its current size). `Peaks.total_mb`, the
process's peak as the benchmark printed it before, is the largest of the readings and
that exit figure.

Where the kernel offers no reading or no reset (not Linux, or /proc/PID/clear_refs not
writable) nothing is counted per interval: `Peaks.per_interval` is False and no stage
gets a figure (None), so no stage is ever given the whole process's peak as its own.
"""

from __future__ import annotations

import os
import threading
import time
from typing import NamedTuple

WATCH_SECONDS = 0.1  # the length of one interval; the kernel, not the polling, finds each peak


class Interval(NamedTuple):
    start: float  # epoch seconds (time.time): the reading (and reset) that began it
    end: float  # epoch seconds: the next reading
    peak_mb: float  # the process's peak resident memory from start to end, both included


class Peaks(NamedTuple):
    intervals: tuple[Interval, ...]  # the readings: contiguous, from the child's start to the last one
    per_interval: bool  # whether every reading was followed by a reset (each interval its own)
    exit_mb: float = 0.0  # wait4's ru_maxrss at exit: see the module docstring

    @property
    def total_mb(self) -> float:
        """The process's peak over its whole life, with its children and its image
        before exec (the figure wait4 gives, and every reading)."""
        return max([self.exit_mb, *(i.peak_mb for i in self.intervals)])


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


def reset_own_peak() -> None:
    """Reset this process's own peak to its current resident size, where the kernel
    allows it: a child started next counts our peak in its exit figure (Peaks.exit_mb)."""
    _reset(os.getpid())


class PeakWatch:
    """Watches `pid` from `start` (epoch seconds, when it was started) in a thread of its
    own. Call `stop()` once the process has exited but before it is reaped (os.waitid
    with WNOWAIT): a reaped pid may be reused by another process, whose memory must
    never be read or reset. Then `peaks(exit_peak_mb)` with wait4's ru_maxrss.
    Usage:

        reset_own_peak()  # the child's image before exec is ours: our current size, not our peak
        proc = subprocess.Popen(argv)
        watch = PeakWatch(proc.pid, started)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        watch.stop()
        _, status, usage = os.wait4(proc.pid, 0)
        peaks = watch.peaks(usage.ru_maxrss / 1024)
    """

    def __init__(self, pid: int, start: float, every: float = WATCH_SECONDS, active: bool = True):
        """`active` False (no os.waitid to wait without reaping): nothing is read, and
        `peaks` gives the exit figure alone, per_interval False."""
        self._pid, self._every = pid, every
        self._last = start
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
                # exited (a zombie has no memory line), or no /proc to read: nothing reset yet
                # means nothing was ever counted per interval
                self._reset_works = self._reset_works and bool(self._intervals)
                return
            # The interval ends between the reading and the reset, which begins the next:
            # whatever the process does once the reset is done is in the next interval.
            now = time.time()
            if not _reset(self._pid):
                self._reset_works = False
                return
            self._intervals.append(Interval(self._last, now, kb / 1024))
            self._last = now

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def peaks(self, exit_peak_mb: float) -> Peaks:
        """The intervals read (none for a child that lived less than one) and wait4's
        figure at exit. Without a reading and a reset that worked every time: no
        interval, per_interval False, the whole life's peak in exit_mb."""
        if not self._reset_works:
            return Peaks((), False, max([exit_peak_mb, *(i.peak_mb for i in self._intervals)]))
        return Peaks(tuple(self._intervals), True, exit_peak_mb)


def stage_peaks(peaks: Peaks, stages: list[tuple[float, float]]) -> list[float | None]:
    """For each stage (start, end: epoch seconds), the largest peak among the intervals
    that touch it (a <= end and b >= start for an interval from a to b: a stage ending or
    starting on a boundary gets both intervals, the larger figure); None when the peaks
    are not per interval, or no interval touches it (a stage outside the readings)."""
    if not peaks.per_interval:
        return [None] * len(stages)
    found = []
    for start, end in stages:
        touching = [i.peak_mb for i in peaks.intervals if i.start <= end and i.end >= start]
        found.append(max(touching) if touching else None)
    return found


def gap_peak(peaks: Peaks, gaps: list[tuple[float, float]]) -> float | None:
    """The largest peak among the intervals lying mostly (more than half their length)
    inside `gaps` (start, end: epoch seconds, not overlapping each other): the time
    between stages, without the intervals a gap of a few milliseconds only touches,
    which are its neighbours'. None when no interval lies mostly inside, or the peaks
    are not per interval."""
    if not peaks.per_interval:
        return None
    inside = [i.peak_mb for i in peaks.intervals
              if sum(max(0.0, min(i.end, end) - max(i.start, start)) for start, end in gaps) * 2
              > i.end - i.start]
    return max(inside) if inside else None
