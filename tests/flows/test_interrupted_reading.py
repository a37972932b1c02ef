"""A Ctrl-C that lands while a file is read is no verdict on the file
(redress/runtime/interrupts.py, redress/inbox/new_files.py).

DuckDB turns a press during its read of a Python object into its own error ("reading
the Python object ... as Arrow data failed: KeyboardInterrupt", an InvalidInputException),
which a reader takes for an unreadable file. Recorded as refused, the file's content
would be passed over by every later run: its people never paid."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
from prefect.settings import get_current_settings

from forked import run_redress
from redress.generate import generate

ROOT = Path(__file__).resolve().parents[2]

PRESSED_WHILE_READING = """
import sys
import tasks.ingest
from redress import inbox as io
from redress.runtime import interrupts
from redress.vocabulary import UNREADABLE_FILE
from flows.cli import main

def pressed_while_reading(con, f, *rest):
    interrupts._pressed.set()  # as the handler a command installs (flows/cli.py) notes a press
    # DuckDB, reading a Python object, made an error of it, which a reader turns into:
    raise io.FileRejected(UNREADABLE_FILE, "cannot be read as csv: reading the Python object 'frame' as "
                                           "Arrow data failed: KeyboardInterrupt")

tasks.ingest._ingest_scope = pressed_while_reading
sys.exit(main(sys.argv[1:]))
"""


def files(data: Path) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("SELECT kind, status, count(*) FROM ingested_files GROUP BY ALL ORDER BY ALL").fetchall()


def test_a_file_whose_reading_was_interrupted_is_read_whole_by_the_next_run(tmp_path):
    data = tmp_path / "data"
    generate(data, 200, seed=3)
    (tmp_path / "pressed.py").write_text(PRESSED_WHILE_READING)
    env = dict(os.environ, PREFECT_API_URL=str(get_current_settings().api.url))
    args = ["--data-dir", str(data), "run"]

    interrupted = run_redress(args, env=env, cwd=tmp_path, module="pressed", timeout=300)
    # (Prefect's console lines come first here: this module imports it before the command
    # sets Prefect's defaults.)
    assert interrupted.stderr.strip().splitlines()[-1] == "redress: interrupted", interrupted.stderr[-2000:]
    assert "Traceback" not in interrupted.stderr
    assert interrupted.returncode == 130
    # Only the customers snapshot was recorded; no scope file is marked refused.
    assert [row for row in files(data) if row[0] == "scope"] == []

    again = run_redress(args, env=env, cwd=ROOT, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    scope = {status: n for kind, status, n in files(data) if kind == "scope"}
    # The three scope files read whole; the generator's resent copy and corrupt file as ever.
    assert scope == {"accepted": 3, "duplicate_file": 1, "unreadable_file": 1}
