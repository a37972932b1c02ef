"""The benchmark's peak memory per stage (benchmarks/peaks.py): each interval's peak is
the kernel's (VmHWM, reset after every reading), so a stage gets the memory it held,
even for a spike shorter than one reading's interval, and never a neighbour's farther
than one interval away."""

from __future__ import annotations

import json
import sys

from hypothesis import given, strategies as st

import peaks
import run_benchmark

MB = 1024 * 1024

# A child in three phases, each boundary written down (epoch seconds): a spike of 400 MB
# held for no time (allocated, every page touched, freed at once), a pause, then 40 MB
# held for half a second. Python gives an allocation this large back to the system on
# free. With "wait", the pause lasts until the watch has read and reset the child's peak
# after the spike (its own VmHWM below 200 MB again), however late a busy machine runs
# the watch: the held phase then starts in an interval of its own, the claim under test.
PHASES = """
import json, sys, time
def peak_mb():
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]) // 1024
marks = [time.time()]
spike = bytearray(400 * 1024 * 1024)
for i in range(0, len(spike), 4096):
    spike[i] = 1
del spike
marks.append(time.time())
if sys.argv[2] == "wait":
    waited = time.time() + 60
    while peak_mb() >= 200 and time.time() < waited:
        time.sleep(0.01)
marks.append(time.time())
held = bytearray(40 * 1024 * 1024)
for i in range(0, len(held), 4096):
    held[i] = 1
time.sleep(0.5)
marks.append(time.time())
json.dump(marks, open(sys.argv[1], "w"))
"""


def test_each_phase_of_a_child_gets_its_own_peak_and_a_brief_spike_is_caught(tmp_path):
    env = run_benchmark.child_env(tmp_path / "home")
    child = run_benchmark.run_child([sys.executable, "-c", PHASES, str(tmp_path / "marks.json"), "wait"], env,
                                    tmp_path / "child.log")
    assert child.peaks.per_interval, "this kernel resets a process's peak (Linux /proc/PID/clear_refs)"
    spike_start, spike_end, held_start, held_end = json.loads((tmp_path / "marks.json").read_text())
    spike, pause_and_held = peaks.stage_peaks(child.peaks, [(spike_start, spike_end), (held_start, held_end)])
    assert spike >= 400, "the 400 MB spike, caught by the kernel whatever the reading times"
    assert 40 <= pause_and_held < 200, "the held phase, in intervals after the spike's: its 40 MB and the interpreter"
    assert child.peak_mb == child.peaks.total_mb >= 400  # the whole life's peak, as wait4 gave before
    # the intervals are contiguous, from the start to the exit
    bounds = [(i.start, i.end) for i in child.peaks.intervals]
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:])) and len(bounds) >= 3


def test_without_a_reset_no_stage_gets_a_figure_and_the_total_stays(tmp_path, monkeypatch):
    """Where the kernel refuses the reset, a stage would otherwise be given the whole
    process's peak as its own: n/a instead, and the total is wait4's as before."""
    monkeypatch.setattr(peaks, "_reset", lambda pid: False)
    env = run_benchmark.child_env(tmp_path / "home")
    child = run_benchmark.run_child([sys.executable, "-c", PHASES, str(tmp_path / "marks.json"), "no"], env,
                                    tmp_path / "child.log")
    assert not child.peaks.per_interval and child.peaks.intervals == ()
    assert child.peak_mb >= 400
    marks = json.loads((tmp_path / "marks.json").read_text())
    assert peaks.stage_peaks(child.peaks, [(marks[0], marks[1]), (marks[2], marks[3])]) == [None, None]
    run = {"stages": [("ingest inbox", 1.0, None)], "flow_seconds": 1.0, "seconds": 2.0, "peak_mb": child.peak_mb,
           "cpu_seconds": 1.0}
    assert "  ingest inbox                   1.0       n/a" in run_benchmark.table("full run", None, run)


@st.composite
def watched(draw):
    """Contiguous intervals with peaks, and stages anywhere within their span."""
    lengths = draw(st.lists(st.integers(1, 50), min_size=1, max_size=30))
    values = draw(st.lists(st.integers(1, 10_000), min_size=len(lengths), max_size=len(lengths)))
    edges = [0]
    for length in lengths:
        edges.append(edges[-1] + length)
    intervals = tuple(peaks.Interval(float(a), float(b), float(v)) for a, b, v in zip(edges, edges[1:], values))
    stages = draw(st.lists(st.tuples(st.integers(0, edges[-1]), st.integers(0, edges[-1]))
                           .map(lambda t: (float(min(t)), float(max(t)))), max_size=8))
    return peaks.Peaks(intervals, per_interval=True), stages


@given(watched())
def test_a_stage_gets_the_largest_peak_of_the_intervals_it_overlaps(case):
    watched_peaks, stages = case
    found = peaks.stage_peaks(watched_peaks, stages)
    assert len(found) == len(stages)
    for (start, end), peak in zip(stages, found):
        inside = [i.peak_mb for i in watched_peaks.intervals if start <= i.start and i.end <= end]
        touching = [i.peak_mb for i in watched_peaks.intervals if i.start <= end and i.end >= start]
        assert peak == max(touching)  # every stage within the watched span touches an interval
        assert all(peak >= p for p in inside)  # never less than what it held itself
    whole = peaks.stage_peaks(watched_peaks, [(watched_peaks.intervals[0].start, watched_peaks.intervals[-1].end)])
    assert whole == [watched_peaks.total_mb]


def test_a_stage_outside_the_watched_life_gets_none():
    watched_peaks = peaks.Peaks((peaks.Interval(10.0, 20.0, 5.0),), per_interval=True)
    assert peaks.stage_peaks(watched_peaks, [(30.0, 40.0), (0.0, 5.0), (15.0, 16.0)]) == [None, None, 5.0]


def test_a_process_that_is_gone_is_never_read_or_reset():
    """_peak_kb answers None for a pid without memory (none at all here; a zombie has no
    VmHWM either), which ends the watch: a reaped pid may be another process's."""
    assert peaks._peak_kb(2**22 + 12345) is None


def test_where_a_child_cannot_be_awaited_unreaped_nothing_is_read(tmp_path, monkeypatch):
    """Without os.waitid (some systems) the watch cannot know the pid is still the child's:
    it reads nothing, the stages print n/a, and the total is wait4's."""
    monkeypatch.delattr(run_benchmark.os, "waitid")
    read = []
    monkeypatch.setattr(peaks, "_peak_kb", lambda pid: read.append(pid))
    child = run_benchmark.run_child([sys.executable, "-c", "import time; time.sleep(0.5)"],
                                    run_benchmark.child_env(tmp_path / "home"), tmp_path / "child.log")
    assert read == [] and not child.peaks.per_interval and child.peak_mb > 1


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 30)), max_size=8), st.integers(0, 100),
       st.integers(0, 100))
def test_the_flow_outside_its_tasks_is_what_no_task_covers(tasks, a, b):
    """The table's OUTSIDE_TASKS row: the flow run's span minus its task runs' spans
    (sequential in redress, any here), with nothing counted twice or left out."""
    flow = (float(min(a, b)), float(max(a, b)))
    spans = [(float(start), float(start + length)) for start, length in tasks]
    gaps = run_benchmark.outside_tasks(flow, spans)
    covered = lambda t: any(s <= t <= e for s, e in spans)  # noqa: E731
    for step in range(int(flow[0]) * 4, int(flow[1]) * 4):
        t = step / 4 + 0.125  # points between the integer bounds
        in_gap = any(s < t < e for s, e in gaps)
        assert in_gap == (not covered(t))
    assert all(flow[0] <= s < e <= flow[1] for s, e in gaps)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(gaps, gaps[1:]))


def test_without_a_reading_no_stage_gets_a_figure(tmp_path, monkeypatch):
    """os.waitid but no /proc to read (another system): nothing was counted per interval,
    so no stage is given the whole process's peak (n/a), and the total is wait4's."""
    monkeypatch.setattr(peaks, "_peak_kb", lambda pid: None)
    child = run_benchmark.run_child([sys.executable, "-c", PHASES, str(tmp_path / "marks.json"), "no"],
                                    run_benchmark.child_env(tmp_path / "home"), tmp_path / "child.log")
    marks = json.loads((tmp_path / "marks.json").read_text())
    assert not child.peaks.per_interval and child.peak_mb >= 400
    assert peaks.stage_peaks(child.peaks, [(marks[0], marks[1]), (marks[2], marks[3])]) == [None, None]


def _resident_mb() -> float:
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS:")).split()[1]) / 1024


def test_the_benchmark_s_own_peak_is_not_a_child_s(tmp_path):
    """A child starts as an image of the benchmark (vfork) and wait4 counts that image's
    peak: the benchmark resets its own before each start, and the child's readings are
    its own alone."""
    before = _resident_mb()
    ours = bytearray(800 * MB)
    for i in range(0, len(ours), 4096):
        ours[i] = 1
    del ours
    child = run_benchmark.run_child([sys.executable, "-c", "import time; time.sleep(0.5)"],
                                    run_benchmark.child_env(tmp_path / "home"), tmp_path / "child.log")
    assert child.peaks.per_interval and child.peaks.intervals
    own, = peaks.stage_peaks(child.peaks, [(float("-inf"), float("inf"))])
    assert own < 100, "a sleeping interpreter"
    assert child.peak_mb < before + 400, "our 800 MB, freed before the start, are not the child's"


def test_time_between_tasks_gets_only_the_intervals_lying_mostly_in_it():
    """A few milliseconds between two tasks only touch their neighbours' intervals: no
    figure of theirs; a long stretch after the tasks (the exports) gets its own."""
    intervals = tuple(peaks.Interval(t / 10, (t + 1) / 10, 9_000.0 if t == 9 else 100.0) for t in range(30))
    watched_peaks = peaks.Peaks(intervals, per_interval=True)
    gaps = run_benchmark.outside_tasks((0.0, 3.0), [(0.05, 1.0), (1.004, 2.9)])
    assert gaps == [(0.0, 0.05), (1.0, 1.004), (2.9, 3.0)]
    assert peaks.gap_peak(watched_peaks, gaps) == 100.0  # (2.9, 3.0]: inside the last gap; not the 9,000 MB
    assert peaks.gap_peak(watched_peaks, gaps[:2]) is None  # nothing lies mostly in 0.05 s and 4 ms
    exports = run_benchmark.outside_tasks((0.0, 3.0), [(0.0, 0.5)])
    assert peaks.gap_peak(watched_peaks, exports) == 9_000.0
    assert peaks.gap_peak(peaks.Peaks(intervals, per_interval=False), exports) is None


def test_run_redress_gives_each_stage_its_own_interval_s_peak(monkeypatch, tmp_path):
    """How the readings become the table's rows: each task its own, the flow's time
    outside the tasks, approve's readings (not its exit figure), the flow run's whole."""
    def readings(*peak_per_second):
        return peaks.Peaks(tuple(peaks.Interval(float(t), t + 1.0, mb) for t, mb in enumerate(peak_per_second)),
                           True, exit_mb=7_777.0)

    run = run_benchmark.Child(20.0, 7_777.0, 30.0, "", readings(100, 200, 300, 400, 500, 600, 700, 800, 900, 50))
    approve = run_benchmark.Child(5.0, 9_999.0, 6.0, "", readings(1_000, 1_100))
    children = iter([run, approve])
    monkeypatch.setattr(run_benchmark, "run_child", lambda *a, **k: next(children))
    monkeypatch.setattr(run_benchmark, "stage_seconds", lambda home: {
        "flow_seconds": 8.0, "flow_span": (1.0, 9.0),
        "stages": [("ingest inbox", 1.5, 1.2, 2.7), ("validate scope", 2.0, 4.2, 6.2)]})
    monkeypatch.setattr(run_benchmark, "waiting_plan", lambda data: "R20251201-001")
    result = run_benchmark.run_redress(tmp_path, tmp_path / "policy.toml", {"PREFECT_HOME": str(tmp_path)},
                                       tmp_path / "redress.log")
    assert result["stages"] == [
        ("ingest inbox", 1.5, 300.0),  # intervals (1, 2] and (2, 3]
        ("validate scope", 2.0, 700.0),  # (4, 5] to (6, 7]
        (run_benchmark.OUTSIDE_TASKS, 8.0 - 1.5 - 2.0 + 0.0, 900.0),  # 1-1.2, 2.7-4.2, 6.2-9: (7, 8] and (8, 9] inside
        ("approve", 5.0, 1_100.0),
    ]
    assert result["flow_peak_mb"] == 900.0 and result["peak_mb"] == 9_999.0
    assert result["seconds"] == 25.0 and result["cpu_seconds"] == 36.0
