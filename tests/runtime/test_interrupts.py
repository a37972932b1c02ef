"""Ctrl-C ends a command in its one line wherever it lands, a DuckDB query included
(redress/runtime/interrupts.py).

Found in CI on a loaded machine: DuckDB 2.0 turns a SIGINT during a query into
RuntimeError("Query interrupted"), and a Ctrl-C during ingest printed a traceback and
ended `redress run` with 1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Seconds long, and finite: range() is one task, which DuckDB cancels only once it ends
# (a range of 10^12 rows left a cancelled query running for good).
LONG_QUERY = "SELECT count(*) FROM range(1000000000) t(x) WHERE x % 7 = 3"

COMMAND = r"""
import sys
sys.path.insert(0, {root!r})
import duckdb
from flows import cli
from redress.runtime import progress

LONG_QUERY = {query!r}

def query():
    con = duckdb.connect()  # before the line: the press is meant for the query, not the opening
    print("querying", flush=True)
    con.execute(LONG_QUERY).fetchall()

def best_effort():  # as a page that never stops the run: any error is noted and gone past
    try:
        query()
    except Exception as exc:
        print("went past:", exc, flush=True)

def in_a_query(args, settings):
    query()
    print("the query ended", flush=True)
    return 0

def in_stages(args, settings):
    progress.timed("first", best_effort)
    print("the second stage started", flush=True)
    return 0

command = {{"query": in_a_query, "stages": in_stages}}[sys.argv[1]]
cli.parse = lambda argv: type("Args", (), {{"func": staticmethod(command), "verbose": False, "data_dir": None}})()
sys.exit(cli.main([]))
"""


def interrupt_while_querying(tmp_path: Path, how: str) -> tuple[int, list[str], str]:
    """Run the command `how` of COMMAND, press Ctrl-C (SIGINT) once its query runs; its
    exit code, stdout lines and stderr."""
    script = tmp_path / "command.py"
    script.write_text(COMMAND.format(root=str(ROOT), query=LONG_QUERY))
    env = {**os.environ, "REDRESS_HMAC_KEY": "0123456789abcdeffedcba98765432100f1e2d3c"}
    with subprocess.Popen([sys.executable, str(script), how], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, cwd=tmp_path, env=env) as command:
        assert command.stdout.readline() == "querying\n"
        time.sleep(0.5)  # inside DuckDB's execution, which checks for signals as it goes
        command.send_signal(signal.SIGINT)
        stdout, stderr = ended(command)
    return command.returncode, ["querying", *stdout.splitlines()], stderr


def ended(command: subprocess.Popen) -> tuple[str, str]:
    """Its stdout and stderr once it ends; killed if it does not within 120 s (a test
    fails, never hangs)."""
    try:
        return command.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        command.kill()
        raise


def test_a_ctrl_c_during_a_query_ends_the_command_in_its_one_line(tmp_path):
    code, stdout, stderr = interrupt_while_querying(tmp_path, "query")
    assert stderr.splitlines() == ["redress: interrupted"], stderr
    assert code == 130
    assert stdout == ["querying"]


def test_a_ctrl_c_a_stage_took_for_an_error_ends_the_run_after_that_stage(tmp_path):
    """A best-effort step that catches every error went past DuckDB's "Query interrupted",
    as if the press had not been: the run goes on to no further stage."""
    code, stdout, stderr = interrupt_while_querying(tmp_path, "stages")
    assert stdout == ["querying", "went past: Query interrupted"]
    assert stderr.splitlines() == ["redress: interrupted"], stderr
    assert code == 130


def test_watch_leaves_a_handler_it_did_not_install(tmp_path):
    """A program embedding redress that handles SIGINT itself keeps its handler."""
    probe = (f"import signal, sys; sys.path.insert(0, {str(ROOT)!r})\n"
             "from redress.runtime import interrupts\n"
             "mine = lambda signum, frame: None\n"
             "signal.signal(signal.SIGINT, mine)\n"
             "interrupts.watch()\n"
             "print(signal.getsignal(signal.SIGINT) is mine, interrupts.pressed())\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout == "True False\n", out.stderr


def test_without_watch_duckdb_would_take_the_press_for_an_error(tmp_path):
    """The failure the module exists for, shown on this DuckDB: with Python's own handler
    the press becomes RuntimeError, a traceback and exit 1 (if DuckDB one day raises
    KeyboardInterrupt itself, this fails and interrupts.py can go)."""
    script = tmp_path / "bare.py"
    script.write_text(f"import duckdb\nprint('querying', flush=True)\nduckdb.connect().execute({LONG_QUERY!r}).fetchall()\n")
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as bare:
        assert bare.stdout.readline() == "querying\n"
        time.sleep(0.5)
        bare.send_signal(signal.SIGINT)
        _, stderr = ended(bare)
    assert bare.returncode == 1
    assert stderr.splitlines()[-1] == "RuntimeError: Query interrupted"
