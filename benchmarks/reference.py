"""Run the reference (benchmarks/reference.sql) on a data folder's inbox; print its figures.

    .venv/bin/python benchmarks/reference.py DATA_DIR [--policy FILE]

Independent of redress on purpose: it imports nothing from the project, so a bug in
redress's readers, identity or rules cannot hide in both. It only reads the inbox:
the newest customers snapshot (latest modification time, then natural order of names)
and every scope file once by content (SHA-256), skipping the ones DuckDB cannot open
or that lack data_category or accessed_at. A CSV line DuckDB cannot take as the header's
fields (one field too many: an unquoted comma) is a scope row of its own, `malformed`,
whose reason is `malformed_row`: DuckDB stores it as a rejected line and reads the rest.
Inbox paths reach DuckDB only as bound parameters.

Prints one JSON object on stdout: {"seconds": float, "files": {...}, "figures":
[[measure, key, n, amount], ...]} where measure is "reason" (customers and won per
entitlement reason), "rail" (first-run payments and won per rail) or "destination"
(scope rows per destination:reason). Exit 1 with one line on stderr when the inbox has
no customers snapshot.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
import time
import tomllib
from datetime import datetime
from pathlib import Path

import duckdb

SQL = Path(__file__).with_name("reference.sql")
DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policies" / "coupang-2025-v1.toml"
SCOPE_COLUMNS = ("customer_id", "email", "phone", "data_category", "accessed_at", "confidence")
# Unicode White_Space, as Rust's (Polars') trim uses it.
WHITESPACE = "".join(map(chr, [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                               0x2028, 0x2029, 0x202F, 0x205F, 0x3000]))


def _natural(name: str) -> tuple:
    return tuple(int(p) if i % 2 else p for i, p in enumerate(re.split(r"([0-9]+)", name))), name


def read_order(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Regular files of the folder, oldest modification time (whole seconds) first, then
    natural order of names (SPEC "Reading files"); hidden files are partial copies."""
    files = [p for p in folder.iterdir() if p.is_file() and not p.is_symlink()
             and not p.name.startswith(".") and p.suffix.lower() in suffixes] if folder.is_dir() else []
    return sorted(files, key=lambda p: (int(p.stat().st_mtime), _natural(p.name)))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def open_file(con: duckdb.DuckDBPyConnection, path: Path) -> duckdb.DuckDBPyRelation:
    """The file as a relation with every column as given; raises duckdb.Error if unreadable."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        query = "SELECT * FROM read_parquet(?, hive_partitioning = false)"
    elif suffix == ".csv":
        query = "SELECT * FROM read_csv(?, header = true, all_varchar = true, hive_partitioning = false)"
    else:
        query = "SELECT * FROM read_json(?, format = 'newline_delimited', sample_size = -1, hive_partitioning = false)"
    return con.sql(query, params=[str(path)])


def open_scope_csv(con: duckdb.DuckDBPyConnection, path: Path, number: int) -> duckdb.DuckDBPyRelation:
    """A scope CSV read once into a table of ours, its columns those its header names (as
    text; DuckDB's sniffer gives up on a file with a stray quote), the lines DuckDB
    rejects (one field too many, text after a closing quote) appended as rows with only
    `malformed` true; raises duckdb.Error if unreadable."""
    table, rejects, scans = f"scope_csv_{number}", f"rejects_{number}", f"scans_{number}"  # our own names
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), [])
    con.execute(f"""
        CREATE TEMP TABLE {table} AS SELECT *, false AS malformed
        FROM read_csv(?, header = true, auto_detect = false, columns = ?, delim = ',', quote = '"', escape = '"',
                      store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{scans}',
                      hive_partitioning = false)""", [str(path), {name.strip(): "VARCHAR" for name in header}])
    con.execute(f"INSERT INTO {table} BY NAME SELECT true AS malformed FROM (SELECT DISTINCT line FROM {rejects})")
    return con.table(table)


def scope_views(con: duckdb.DuckDBPyConnection, scope: Path) -> dict[str, int]:
    """Create view scope_file_rows over every readable scope file seen once by content."""
    seen: set[str] = set()
    counts = {"read": 0, "duplicate": 0, "unreadable": 0}
    parts = []
    for path in read_order(scope, (".csv", ".parquet", ".jsonl", ".ndjson")):
        digest = sha256(path)
        if digest in seen:
            counts["duplicate"] += 1
            continue
        seen.add(digest)
        try:
            rel = open_scope_csv(con, path, len(parts)) if path.suffix.lower() == ".csv" else open_file(con, path)
            columns = set(rel.columns)
        except duckdb.Error:
            counts["unreadable"] += 1
            continue
        if not {"data_category", "accessed_at"} <= columns:
            counts["unreadable"] += 1
            continue
        view = f"scope_file_{len(parts)}"  # our own name: no inbox text reaches the SQL
        rel.create_view(view)
        malformed = "malformed" if "malformed" in columns and path.suffix.lower() == ".csv" else "false"
        parts.append(f"SELECT {', '.join(f'{c}::VARCHAR AS {c}' if c in columns else f'NULL::VARCHAR AS {c}' for c in SCOPE_COLUMNS)}, "
                     f"{malformed} AS malformed FROM {view}")
        counts["read"] += 1
    empty = f"SELECT {', '.join(f'NULL::VARCHAR AS {c}' for c in SCOPE_COLUMNS)}, false AS malformed WHERE false"
    con.execute(f"CREATE OR REPLACE TEMP VIEW scope_file_rows AS {' UNION ALL '.join(parts) or empty}")
    return counts


def set_policy(con: duckdb.DuckDBPyConnection, policy_file: Path) -> None:
    """The policy's values as SQL variables (reference.sql's header lists them)."""
    policy = tomllib.loads(policy_file.read_text())
    con.execute("SET TimeZone = ?", [policy["policy"]["timezone"]])  # naive stamps are its wall clock
    values = {
        "window_start": datetime.fromisoformat(policy["breach"]["window_start"]),
        "window_end": datetime.fromisoformat(policy["breach"]["window_end"]),
        "counted_confidences": list(policy["eligibility"]["confidence"]),
        "statuses": list(policy["eligibility"]["statuses"]),
        "category_tiers": [{"data_category": k, "tier": int(v)} for k, v in sorted(policy["categories"].items())],
        "tier_amounts": [{"tier": int(k), "amount": int(v)} for k, v in sorted(policy["tiers"].items())],
        "total_cap": int(policy.get("budget", {}).get("total_cap", 0)),
        "minimum_amount": int(policy["payout"]["minimum_amount"]),
        "whitespace": WHITESPACE,
        "ascii_whitespace": "".join(c for c in WHITESPACE if c.isascii()),
    }
    for name, value in values.items():
        con.execute(f"SET VARIABLE {name} = ?", [value])
    for name in ("window_start", "window_end"):
        con.execute(f"SET VARIABLE {name} = getvariable('{name}')::TIMESTAMPTZ")


def reference(data_dir: Path, policy_file: Path) -> dict:
    """The reference's figures for the inbox of data_dir (module docstring)."""
    start = time.perf_counter()
    con = duckdb.connect()
    snapshots = read_order(data_dir / "inbox" / "customers", (".parquet", ".csv"))
    if not snapshots:
        raise SystemExit(f"reference: no customers snapshot in {data_dir / 'inbox' / 'customers'}")
    open_file(con, snapshots[-1]).create_view("customers_file")
    files = scope_views(con, data_dir / "inbox" / "scope")
    set_policy(con, policy_file)
    figures = con.execute(SQL.read_text()).fetchall()
    con.close()
    return {"seconds": time.perf_counter() - start, "files": files,
            "figures": [[m, k, int(n), None if a is None else int(a)] for m, k, n, a in figures]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    args = parser.parse_args()
    print(json.dumps(reference(args.data_dir, args.policy)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
