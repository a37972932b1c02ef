"""The entitle stage's rule alone on a copy of a warehouse, in slices of N customers:
seconds, peak memory and a digest of the entitlements, so two slice sizes (or two
versions) can be compared on the same data. Opens the warehouse read-only; its work files
go to a temporary folder beside it, removed at the end. A path that is not a file stops
it in one line.

    .venv/bin/python benchmarks/entitle_slices.py DATA/warehouse.duckdb [--slice-customers N]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's redress, as the others
from redress.entitling import SLICE_CUSTOMERS, entitlements_file, export_inputs  # noqa: E402
from redress.policy import DEFAULT_POLICY, load_policy  # noqa: E402
from redress.sql import file_path  # noqa: E402
from redress.warehouse import memory_limit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--slice-customers", type=int, default=SLICE_CUSTOMERS)
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    args = parser.parse_args()
    if not args.warehouse.is_file():
        raise SystemExit(f"entitle_slices: {args.warehouse} is not a file: give a warehouse.duckdb")
    work = Path(tempfile.mkdtemp(prefix="entitle-slices-", dir=args.warehouse.absolute().parent))
    try:
        start = time.perf_counter()
        with duckdb.connect(str(args.warehouse.absolute()), read_only=True) as con:
            con.execute("SET memory_limit = ?", [memory_limit()])  # a run's (redress/warehouse)
            slices = export_inputs(con, work, slice_customers=args.slice_customers)
        exported = time.perf_counter()
        result, _ = entitlements_file(slices, load_policy(args.policy), work)
        ruled = time.perf_counter()
        with duckdb.connect() as con:
            rows, won, digest = con.execute("""
                SELECT count(*), sum(amount), bit_xor(hash(customer_id, reason, amount))
                FROM read_parquet(?, hive_partitioning = false)""", [file_path(result)]).fetchall()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"slices {len(slices)}: export {exported - start:.1f} s, rule {ruled - exported:.1f} s, peak {peak:,.0f} MB; "
          f"{rows:,} entitlements, {won:,} won, digest {digest}")


if __name__ == "__main__":
    main()
