"""The eight letters of a reference code from its HMAC digest, in DuckDB: the earlier
derivation (two hex digits parsed per letter) against redress/warehouse/reference_codes.py
`_code_sql` (the window's 8 bytes parsed once as a UBIGINT), on the same digests.

    .venv/bin/python benchmarks/reference_code_letters.py [--people 5000000] [--repeat 3]

Prints the best of --repeat wall seconds for each and earlier / shipped, after checking
that both give every code the same in all four windows (the run stops otherwise). The
digests are SHA-256 of the row numbers, so every run reads the same values. Run `uptime`
first: other work on the machine skews both.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from redress.warehouse.reference_codes import ALPHABET, LENGTH, WINDOWS, _code_sql  # noqa: E402


def earlier_code_sql(window: int) -> str:
    """The derivation before 2026-12-02: each letter's two hex digits parsed on their own."""
    return " || ".join(
        f"substr('{ALPHABET}', (('0x' || substr(digest, {window * 16 + 2 * i + 1}, 2))::INTEGER % {len(ALPHABET)}) + 1, 1)"
        for i in range(LENGTH))


def best_seconds(con: duckdb.DuckDBPyConnection, code_sql: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE codes AS SELECT {code_sql} AS reference_code FROM digests")
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE digests AS SELECT sha256(i::VARCHAR) AS digest FROM range(?) t(i)", [args.people])
    for window in range(WINDOWS):
        (differ,), = con.execute(
            f"SELECT count(*) FROM digests WHERE ({earlier_code_sql(window)}) IS DISTINCT FROM ({_code_sql(window)})"
        ).fetchall()
        if differ:
            print(f"window {window}: {differ:,} codes differ between the two derivations", file=sys.stderr)
            return 1
    earlier = best_seconds(con, earlier_code_sql(0), args.repeat)
    shipped = best_seconds(con, _code_sql(0), args.repeat)
    print(f"letters of {args.people:,} codes, best of {args.repeat} (every code equal in windows 0-{WINDOWS - 1})")
    print(f"  earlier (two hex digits per letter)   {earlier:7.2f} s")
    print(f"  shipped (one UBIGINT per window)      {shipped:7.2f} s")
    print(f"  earlier / shipped                     {earlier / shipped:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
