"""What quotes cost a scope CSV's reading (redress/inbox/csv_reader.py): the same rows
written four ways, each staged to Parquet as ingest does (`scope_frame`, then `stage`),
against the same rows without a quote, measured in the same invocation.

    .venv/bin/python benchmarks/csv_quotes.py [--rows 2000000] [--repeat 2] [--out DIR]

The files: every source quoted (`"waf log, server 3"`: the quotes are checked, the
file read as it is); the same with one stray quote (`"printer" tray`) in the middle
(read through the copy, that row quarantined); every source with a quote inside it
(`printer 5" tray`, Polars cannot read it alone: each line re-quoted in the copy); two
worst cases for the reading of records over lines, every row quarantined (a stray
record of two lines in each row; a value closed and reopened on every line, never
closed); and every source plain (`waf log server 3`), the reference. The worst cases
show the reading is linear: their ratio stays the same at 10x the rows. Prints the best of --repeat wall
seconds for each and its ratio to the plain file, after checking each file's row count
and malformed rows. Run `uptime` first: other work on the machine skews every figure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from redress.inbox import scope_frame, stage  # noqa: E402
from scratch import add_out_argument, files_folder  # noqa: E402  (benchmarks/scratch.py)

# name: (every row's source as written, one row's instead, the rows quarantined: None for all)
SOURCES = {
    "plain (reference)": ("waf log server 3", None, 0),
    "every source quoted": ('"waf log, server 3"', None, 0),
    "quoted, one stray quote": ('"waf log, server 3"', '"printer" tray', 1),
    "a quote inside every source": ('printer 5" tray', None, 0),
    # the reading's worst cases: a stray record over two lines in every row, and a value
    # closed and reopened on every line (never closed: each line its own stray row)
    "a stray over 2 lines each row": ('"p" x,"q\nnote"', None, None),
    "a value reopened on each line": ('z","b', None, None),
}


def write(path: Path, rows: int, source: str, stray: str | None) -> None:
    """`rows` scope rows whose source is written `source`, one of them `stray` if given."""
    ids = pl.int_range(0, rows, eager=True)
    lines = pl.DataFrame({"n": ids}).select(
        pl.format("C{},,,name,2025-07-01T10:00:00,confirmed,", pl.col("n")) + pl.lit(source))
    if stray is not None:
        lines[rows // 2, 0] = f"C{rows // 2},,,name,2025-07-01T10:00:00,confirmed,{stray}"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("customer_id,email,phone,data_category,accessed_at,confidence,source\n")
        fh.write("\n".join(lines.to_series().to_list()))
        fh.write("\n")


def best_seconds(path: Path, work: Path, repeat: int) -> tuple[float, int, int]:
    best, rows, malformed = float("inf"), 0, 0
    for _ in range(repeat):
        shutil.rmtree(work, ignore_errors=True)
        started = time.perf_counter()
        rows = stage(scope_frame(path, work / "scratch"), work / "staged.parquet")
        best = min(best, time.perf_counter() - started)
        malformed = pl.scan_parquet(work / "staged.parquet", glob=False).select(pl.col("malformed").is_not_null().sum()).collect().item()
    return best, rows, malformed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    add_out_argument(parser)
    args = parser.parse_args()
    with files_folder(args.out, "csv-quotes-") as folder:
        figures = {}
        for n, (name, (source, stray, quarantined)) in enumerate(SOURCES.items()):
            path = folder / f"scope_{n}.csv"
            write(path, args.rows, source, stray)
            seconds, rows, malformed = best_seconds(path, folder / f"work_{n}", args.repeat)
            expected = args.rows if quarantined is None else quarantined
            if rows != args.rows or malformed != expected:
                print(f"{name}: {rows:,} rows, {malformed:,} malformed; expected {args.rows:,} and {expected:,}",
                      file=sys.stderr)
                return 1
            figures[name] = (seconds, path.stat().st_size)
        plain = figures["plain (reference)"][0]
        print(f"{args.rows:,} scope rows, best of {args.repeat}; read and staged as ingest does")
        for name, (seconds, size) in figures.items():
            print(f"  {name:<30} {size / 1e6:8.1f} MB {seconds:8.2f} s   {seconds / plain:5.2f} x plain")
    return 0


if __name__ == "__main__":
    sys.exit(main())
