"""`redress whatif` and `redress explain` beside a run (issue 13 section 1): while a run
holds the data folder they are refused in one line and the run goes on to pay everyone
once; what-if describes only a finished run.

The run is a real `redress run` process held at a checkpoint (redress/runtime/faults.py)
by a test-only wrapper: at HOLD_AT it writes a marker file and waits for a release
file, with the warehouse closed, the gap in which a what-if used to slip in, hold the
warehouse and make the run fail when it next opened it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false
from forked import run_redress
from paid_once import assert_paid_exactly_once, redress_killed_at
from redress.generate import generate
from redress.runtime.faults import KILLED_EXIT_CODE

ROOT = Path(__file__).resolve().parents[2]
RUN = ("run", "--run-date", "2025-12-01", "--policy", str(DEFAULT_POLICY))
HOLD_AT = "disburse:planned"  # the plan checked, its connection closed, the payments not yet issued

# The child: checkpoint() wrapped before any stage imports it, then the command line.
HELD = """
import sys, time
from pathlib import Path
import redress.runtime.faults as faults

step, marker, release = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
original = faults.checkpoint

def held(name, settings):
    if name == step:
        marker.touch()
        while not release.exists():
            time.sleep(0.05)
    original(name, settings)

faults.checkpoint = held
# The warehouse closed in that gap, as a run has it past HOLD_MAX_BYTES: a run holds a
# small one open throughout (redress.warehouse.held_open), and then no other process can
# open it at all (tests/flows/test_machine_failures.py); here the test reads it meanwhile.
import redress.warehouse
redress.warehouse.HOLD_MAX_BYTES = -1
from flows.cli import main
sys.exit(main(sys.argv[4:]))
"""


def q(data: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def env() -> dict:
    from prefect.settings import get_current_settings

    return dict(os.environ, PREFECT_API_URL=str(get_current_settings().api.url))


def redress(data: Path, *args: str) -> subprocess.CompletedProcess:
    return run_redress(["--data-dir", str(data), *args], env=env(), cwd=ROOT, timeout=300)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, (done.stdout[-2000:], done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "data"
    generate(folder, 600, seed=13)
    return folder


def test_whatif_and_explain_during_a_run_are_refused_and_the_run_pays_everyone_once(data, tmp_path):
    marker, release = tmp_path / "held", tmp_path / "release"
    run = subprocess.Popen([sys.executable, "-c", HELD, HOLD_AT, str(marker), str(release), "--data-dir", str(data), *RUN],
                           env=env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the run never reached its checkpoint"
            time.sleep(0.2)
        (run_id, outcome), = q(data, "SELECT run_id, outcome FROM runs")
        assert outcome == "running"
        customer = q(data, "SELECT customer_id FROM entitlements WHERE reason = 'ELIGIBLE' ORDER BY 1 LIMIT 1")[0][0]
        whatif = one_line_error(redress(data, "whatif", str(DEFAULT_POLICY)))
        assert whatif == f"redress: a run is using {data}: try again when it ends"
        explain = one_line_error(redress(data, "explain", customer))
        assert explain == f"redress: a run is using {data}: explain again when it ends"
        assert not (data / "reports").exists() or not list((data / "reports").glob("whatif-*"))
    finally:
        release.touch()
        out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    assert q(data, "SELECT run_id, outcome FROM runs") == [(run_id, "succeeded")]
    assert_paid_exactly_once(data)
    # after the run, what-if describes it, and explain answers
    done = redress(data, "whatif", str(DEFAULT_POLICY), "--run-date", "2025-12-01")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"redress whatif over run {run_id} (the last finished run): nothing paid"
    assert redress(data, "explain", customer).returncode == 0


def test_whatif_refuses_a_warehouse_whose_last_run_did_not_finish(data):
    killed = redress_killed_at(HOLD_AT, data, *RUN)
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    (run_id, outcome), = q(data, "SELECT run_id, outcome FROM runs")
    assert outcome == "running"  # killed: no one marked it
    line = one_line_error(redress(data, "whatif", str(DEFAULT_POLICY)))
    assert line == (f"redress: the last run {run_id} in {data} did not finish (it is running): what-if "
                    "describes a finished run only; run `redress run` again first")
    assert not (data / "reports").exists() or not list((data / "reports").glob("whatif-*"))
