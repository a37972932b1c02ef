"""payments.xlsx: the old xlsxwriter writer (one Python call per cell) against
redress/outbox/xlsx.py (sheet XML built column-wise by Polars), on the same frame.

    .venv/bin/python benchmarks/xlsx_benchmark.py [--rows 50000] [--repeat 3]

Prints the best of --repeat wall seconds for each writer and old / new. The frame is
shaped like a bank batch's payments.parquet (8 columns: 6 text, 2 integer; 16-digit
accounts with leading zeros), seeded, so every run writes the same bytes. Both writers
are also read back with openpyxl on the first 100 rows, so the figures compare writers
that produce the same cells. Run `uptime` first: other work on the machine skews both.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import openpyxl
import polars as pl
import xlsxwriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from redress.outbox.xlsx import IDENTIFIERS, _INTEGERS, write_xlsx  # noqa: E402
from redress.outbox.xlsx_parts import SHEET  # noqa: E402
from redress.runtime.arguments import at_least_one  # noqa: E402

CREATED = datetime(2025, 12, 1, 9, 30, tzinfo=timezone.utc)


def payments(rows: int) -> pl.DataFrame:
    """A bank batch's columns, `rows` long, from a fixed seed."""
    index = pl.int_range(rows, eager=True)
    accounts = (index * 7919 + 12345).hash(seed=7) % 10**16
    return pl.DataFrame({
        "payment_id": "20251201-B0001-" + index.cast(pl.String).str.zfill(6),
        "customer_id": "C" + (index * 31 + 7).cast(pl.String).str.zfill(9),
        "amount": ((index % 50) + 1) * 10_000,
        "currency": pl.repeat("KRW", rows, eager=True),
        "rail": pl.repeat("bank_transfer", rows, eager=True),
        "attempt": (index % 3 + 1),
        "bank_code": (index % 90 + 2).cast(pl.String).str.zfill(3),
        "bank_account": accounts.cast(pl.String).str.zfill(16),
    })


def write_with_xlsxwriter(frame: pl.DataFrame, path: Path, created: datetime) -> None:
    """redress/outbox/xlsx.py before issue 10, verbatim but for its checks of dtypes."""
    kinds = {n: "text" if n in IDENTIFIERS or d == pl.String else "number" for n, d in frame.schema.items()
             if n in IDENTIFIERS or d == pl.String or d in _INTEGERS}
    workbook = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
        "strings_to_urls": False,
    })
    try:
        workbook.set_properties({"created": created.astimezone(timezone.utc).replace(tzinfo=None),
                                 "title": "payments"})
        sheet = workbook.add_worksheet(SHEET)
        header = workbook.add_format({"bold": True})
        text = workbook.add_format({"num_format": "@"})
        for col, name in enumerate(frame.columns):
            sheet.write_string(0, col, name, header)
            sheet.set_column(col, col, max(len(name), 12) + 2, text if kinds[name] == "text" else None)
        writers = [(sheet.write_string, text) if kinds[name] == "text" else (sheet.write_number, None)
                   for name in frame.columns]
        cells = frame.with_columns(pl.col(n).cast(pl.String) for n, k in kinds.items() if k == "text")
        for row, values in enumerate(cells.iter_rows(), start=1):
            for col, (value, (write, fmt)) in enumerate(zip(values, writers)):
                if value is not None:
                    write(row, col, value, fmt)
    finally:
        workbook.close()


def best_seconds(write, frame: pl.DataFrame, path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        write(frame, path, CREATED)
        times.append(time.perf_counter() - start)
    return min(times)


def first_rows(path: Path, rows: int) -> list:
    sheet = openpyxl.load_workbook(path, read_only=True)[SHEET]
    return [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows(max_row=rows + 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=at_least_one, default=50_000)
    parser.add_argument("--repeat", type=at_least_one, default=3)
    args = parser.parse_args()
    frame = payments(args.rows)
    with tempfile.TemporaryDirectory() as folder:
        old, new = Path(folder) / "old.xlsx", Path(folder) / "new.xlsx"
        old_s = best_seconds(write_with_xlsxwriter, frame, old, args.repeat)
        new_s = best_seconds(write_xlsx, frame, new, args.repeat)
        if first_rows(old, 100) != first_rows(new, 100):
            print("the two writers disagree on the first 100 rows", file=sys.stderr)
            return 1
        sizes = old.stat().st_size, new.stat().st_size
    print(f"rows: {args.rows:,} x {frame.width} columns, best of {args.repeat}")
    print(f"xlsxwriter (per cell): {old_s:8.3f} s  {sizes[0]:>12,} bytes")
    print(f"polars (column-wise):  {new_s:8.3f} s  {sizes[1]:>12,} bytes")
    print(f"old / new:             {old_s / new_s:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
