"""How the entitle stage (tasks/entitle.py) feeds the entitlement rule
(redress/rules/entitlements.py), and what it reads of the warehouse (EXPOSURE_FIELDS,
CUSTOMER_FIELDS: `redress whatif` reads the same columns, redress/whatif/evaluate.py).

The inputs are copied out of the warehouse to Parquet once (`export_inputs`); the rule's
two halves then run through Parquet (`entitlements_file`): tens of millions of exposures
are streamed, never held twice.

The first half (the exposure summary: a group_by per customer, joined with the
customers) holds every customer it sees in memory: 150M customers at once passed this
machine's 24 GB. So past SLICE_CUSTOMERS customers the inputs are written in slices by
DuckDB's hash of the customer id, mod the number of slices, and the summary is made one
slice at a time; a customer's exposures and record are in the same slice, so each
summary row is the one the whole would give. The hash only has to agree with itself
within one export (redress/partitions.py's MD5 is for machines that must agree with
each other, and took 23.1 s against 13.9 s to slice 10M customers). The second
half (the sum of passing base amounts, then each customer's amount) reads all the slices'
summaries as one.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import polars as pl

from redress.policy import Policy
from redress.rules.entitlements import entitlements_of, exposure_summary, passing_base_sum

# What the rule reads of each table (rules.entitlements.exposure_summary's inputs).
EXPOSURE_FIELDS = "customer_id, data_category, accessed_at, confidence"
CUSTOMER_FIELDS = "customer_id, status, closed_at, is_test, payout_method, bank_valid"

# Customers per slice of the exposure summary (module docstring). 150M in one slice passed
# 24 GB; on 10M customers one slice peaked at 2.8 GB and five at 1.6 GB (the rule's
# state, about 150 bytes a customer). Slicing costs an export about 1.7 times as long,
# so the 33.7M case stays one slice and 150M is four.
SLICE_CUSTOMERS = 40_000_000
# Each slice's files: the exposures, then the customers.
Slice = tuple[list[Path], list[Path]]

# The customers whose entitlement is recomputed in the stage's incremental mode: those
# with an exposure in one of $files (in full mode, everyone: export_inputs reads the
# tables whole).
_AFFECTED = """
    SELECT DISTINCT customer_id FROM scope_exposures
    WHERE file_sha256 IN (SELECT unnest($files::VARCHAR[]))"""


def export_inputs(con: duckdb.DuckDBPyConnection, work_dir: Path, *, every: bool = True,
                  files: list[str] | tuple[str, ...] = (), slice_customers: int = SLICE_CUSTOMERS) -> list[Slice]:
    """The rule's inputs as Parquet in work_dir, in slices of at most about
    `slice_customers` customers (module docstring): per slice, the exposures files
    (customer_id, data_category, accessed_at, confidence) and the customers files
    (customer_id, status, closed_at, is_test, payout_method, bank_valid): with `every`,
    both tables whole (the rule entitles everyone exposed; customers never exposed are
    carried and ignored), else only the customers with an exposure in `files` (SHA-256
    hex) and all their exposures. One slice is `exposures.parquet` and
    `customers.parquet`; a slice without exposures is left out, with its customers. Reads
    only: a read-only connection does."""
    work_dir.mkdir(parents=True, exist_ok=True)
    # Full mode: no condition at all. DuckDB did not skip the DISTINCT over every
    # exposure in _AFFECTED because a bound $every was true: the export of 10M customers'
    # inputs took 6.8 to 7.3 s with `$every OR customer_id IN (...)`, 3.4 to 4.0 s without.
    affected = {} if every else {"files": list(files)}
    where = "" if every else f"WHERE customer_id IN ({_AFFECTED})"
    exposures_sql = f"SELECT {EXPOSURE_FIELDS} FROM scope_exposures {where}"
    customers_sql = f"SELECT {CUSTOMER_FIELDS} FROM customers {where}"
    (count,), = con.execute(f"SELECT count(*) FROM ({customers_sql})", affected).fetchall()
    slices = max(1, math.ceil(count / slice_customers))
    if slices > 1:
        folders = work_dir / "exposures", work_dir / "customers"
        for query, folder in zip((exposures_sql, customers_sql), folders):
            # Folders slice=0, slice=1, ... (DuckDB's PARTITION_BY).
            con.execute(f"""
                COPY (SELECT *, CAST(hash(customer_id) % $slices AS UINTEGER) AS slice FROM ({query}))
                TO $target (FORMAT parquet, PARTITION_BY (slice))""", affected | {"slices": slices, "target": str(folder)})
        kept = [(_files(folders[0] / f"slice={n}"), _files(folders[1] / f"slice={n}")) for n in range(slices)]
        kept = [(e, c) for e, c in kept if e]  # a slice no exposure hashes to has nothing to entitle
        if kept:
            # A slice whose exposed customers are missing from the master (the rule raises
            # for them) still needs the customers' columns: an empty file of them.
            empty = work_dir / "customers_none.parquet"
            con.execute(f"COPY (SELECT {CUSTOMER_FIELDS} FROM customers WHERE false) TO $target (FORMAT parquet)",
                        {"target": str(empty)})
            return [(e, c or [empty]) for e, c in kept]
    exposures, customers = work_dir / "exposures.parquet", work_dir / "customers.parquet"
    con.execute(f"COPY ({exposures_sql}) TO $target (FORMAT parquet)", affected | {"target": str(exposures)})
    con.execute(f"COPY ({customers_sql}) TO $target (FORMAT parquet)", affected | {"target": str(customers)})
    return [([exposures], [customers])]


def _files(folder: Path) -> list[Path]:
    """The Parquet files DuckDB wrote in `folder` (one slice), by name; none if it is not there."""
    return sorted(p for p in folder.iterdir() if p.suffix == ".parquet") if folder.is_dir() else []


def entitlements_file(slices: list[Slice], policy: Policy, work_dir: Path,
                      name: str = "entitlements") -> tuple[Path, int]:
    """The entitlement of every customer in the exposures of `slices` (export_inputs)
    under `policy`, written to work_dir/<name>.parquet (the columns of
    rules.entitlements.entitlements_of), and the sum of base amounts (KRW) of those
    passing rules 1-5, which pro rata divides `budget.total_cap` by. The exposure summary
    is made one slice at a time (module docstring). SPEC "Eligibility and entitlement".
    Raises ValueError when an exposed customer is not in the customer master."""
    result = work_dir / f"{name}.parquet"
    summaries = []
    for n, (exposures, customers) in enumerate(slices):
        summaries.append(work_dir / f"{name}_exposure_summary_{n}.parquet")
        # glob=False: the data folder's name may hold glob characters (redress/sql.py);
        # a list of files is never read as Hive partitions by Polars.
        exposure_summary(pl.scan_parquet(exposures, glob=False), pl.scan_parquet(customers, glob=False),
                         policy).sink_parquet(summaries[-1])
    summary = pl.scan_parquet(summaries, glob=False)
    passing_sum = passing_base_sum(summary, policy)
    entitlements_of(summary, policy, passing_sum).sink_parquet(result)
    return result, passing_sum
