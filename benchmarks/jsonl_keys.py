"""What keys no reader wants cost a JSON Lines scope file's reading
(redress/inbox/jsonl_reader.py): the same scope rows written with `--extra` keys beyond
the SPEC's on every line (`"extra_0": 0, ...`, as an export of a whole log record has),
and without them, the reference, each read and staged as ingest does (`scope_frame`,
then `stage`) in a child process of its own, measured in the same invocation.

    .venv/bin/python benchmarks/jsonl_keys.py [--lines 200000] [--extra 300] [--out DIR]

Prints each file's size, wall seconds and the child's peak resident memory (wait4's
ru_maxrss), and the wide file's ratio to the reference, after checking that both give
every row with the same values. Run `uptime` first: other work on the machine skews
every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from scratch import add_out_argument, files_folder  # benchmarks/scratch.py

ROOT = Path(__file__).resolve().parents[1]
# The child: read and stage one file as ingest does; prints its seconds, rows and a
# digest of the staged values (the same rows must give the same digest).
CHILD = """
import sys, time
from pathlib import Path
import polars as pl
from redress.inbox import scope_frame, stage
path, work = Path(sys.argv[1]), Path(sys.argv[2])
started = time.perf_counter()
rows = stage(scope_frame(path, work / "scratch"), work / "staged.parquet")
seconds = time.perf_counter() - started
staged = pl.read_parquet(work / "staged.parquet", glob=False).drop("row_number", strict=False)
print(seconds, rows, staged.hash_rows().sum())
"""


def write(path: Path, lines: int, extra: int) -> None:
    """`lines` scope rows as JSON Lines, each with `extra` keys beyond the SPEC's."""
    extras = ", ".join(f'"extra_{j}": {j}' for j in range(extra))
    with path.open("w", encoding="utf-8") as fh:
        for n in range(lines):
            row = json.dumps({"customer_id": f"C{n:09d}", "data_category": "name",
                              "accessed_at": "2025-07-01T10:00:00+09:00", "confidence": "confirmed",
                              "source": "waf log"})
            fh.write(row[:-1] + (", " + extras if extras else "") + "}\n")


def measured(path: Path, work: Path) -> tuple[float, int, int, float]:
    """(seconds, rows, digest, peak MB) of one child reading `path`."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(work)], cwd=ROOT, stdout=subprocess.PIPE,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)), text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"reading {path.name} failed (exit {child.returncode})")
    seconds, rows, digest = out.splitlines()[-1].split()  # its last line: anything printed before is not ours
    return float(seconds), int(rows), int(digest), usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--extra", type=int, default=300)
    add_out_argument(parser)
    args = parser.parse_args()
    with files_folder(args.out, "jsonl-keys-") as folder:
        figures = {}
        for name, extra in (("no extra key (reference)", 0), (f"{args.extra} extra keys a line", args.extra)):
            path = folder / f"scope_{extra}.jsonl"
            write(path, args.lines, extra)
            figures[name] = (path.stat().st_size, *measured(path, folder / f"work_{extra}"))
        (_, plain, rows, digest, _), (_, _, wide_rows, wide_digest, _) = figures.values()
        if (rows, wide_rows) != (args.lines, args.lines) or digest != wide_digest:
            print(f"rows {rows:,} and {wide_rows:,} of {args.lines:,}, or their values differ", file=sys.stderr)
            return 1
        print(f"{args.lines:,} scope lines of JSON Lines, read and staged as ingest does, each file in a child")
        for name, (size, seconds, _, _, peak) in figures.items():
            print(f"  {name:<28} {size / 1e6:9.1f} MB {seconds:8.2f} s {peak:9,.0f} MB peak   "
                  f"{seconds / plain:6.2f} x reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
