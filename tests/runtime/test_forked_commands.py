"""The tests' forked commands (tests/forked.py) behave as `subprocess.run` of a new
interpreter would: exit code, output, environment, working folder, umask, a kill."""

from __future__ import annotations

import os
import subprocess

import pytest

from forked import run_redress

PROBE = """
import os, sys
print("out", os.getcwd(), os.environ.get("PROBE"), "REDRESS_X" in os.environ, oct(os.umask(0)), sys.argv[1:])
print("err", file=sys.stderr)
how = sys.argv[1]
if how == "kill":
    os._exit(77)
if how == "signal":
    os.kill(os.getpid(), 9)
if how == "raise":
    raise ValueError("boom")
if how == "sleep":
    import time; time.sleep(60)
sys.exit(int(how))
"""


@pytest.fixture
def probe(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    return tmp_path


@pytest.mark.parametrize("how, code", [("0", 0), ("3", 3), ("kill", 77), ("signal", -9), ("raise", 1)])
def test_a_forked_command_ends_as_a_new_process_would(probe, how, code):
    old = os.umask(0o027)
    try:
        done = run_redress([how], env={"PROBE": "yes", "PATH": os.environ["PATH"]}, cwd=probe, module="probe")
    finally:
        os.umask(old)
    assert done.returncode == code
    if how != "signal":
        assert done.stdout == f"out {probe} yes False 0o27 ['{how}']\n"
    assert done.stderr.startswith("err\n")
    assert ("ValueError: boom" in done.stderr) == (how == "raise")


def test_a_forked_command_past_its_timeout_is_killed(probe):
    with pytest.raises(subprocess.TimeoutExpired):
        run_redress(["sleep"], cwd=probe, module="probe", timeout=1)
    assert run_redress(["0"], cwd=probe, module="probe").returncode == 0  # the parent serves the next one
