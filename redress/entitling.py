"""How the entitle stage (tasks/entitle.py) feeds the entitlement rule
(redress/rules/entitlements.py), and what it reads of the warehouse (EXPOSURE_FIELDS,
CUSTOMER_FIELDS: `redress whatif` reads the same columns, redress/whatif/evaluate.py).

The inputs are copied out of the warehouse to Parquet once (`export_inputs`); the rule's
two halves then run through Parquet (`entitlements_file`): tens of millions of exposures
are streamed, never held twice.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from redress.policy import Policy
from redress.rules.entitlements import entitlements_of, exposure_summary, passing_base_sum

# What the rule reads of each table (rules.entitlements.exposure_summary's inputs).
EXPOSURE_FIELDS = "customer_id, data_category, accessed_at, confidence"
CUSTOMER_FIELDS = "customer_id, status, closed_at, is_test, payout_method, bank_valid"

# The customers whose entitlement is recomputed: everyone exposed ($every), or those
# with an exposure in one of $files (the stage's incremental mode).
_AFFECTED = """
    SELECT DISTINCT customer_id FROM scope_exposures
    WHERE $every OR file_sha256 IN (SELECT unnest($files::VARCHAR[]))"""


def export_inputs(con: duckdb.DuckDBPyConnection, work_dir: Path, *, every: bool = True,
                  files: list[str] | tuple[str, ...] = ()) -> tuple[Path, Path]:
    """The rule's inputs as two Parquet files in work_dir: `exposures.parquet`
    (customer_id, data_category, accessed_at, confidence) and `customers.parquet`
    (customer_id, status, closed_at, is_test, payout_method, bank_valid), for everyone
    exposed (every) or only the customers with an exposure in `files` (SHA-256 hex).
    Reads only: a read-only connection does."""
    exposures, customers = work_dir / "exposures.parquet", work_dir / "customers.parquet"
    work_dir.mkdir(parents=True, exist_ok=True)
    affected = {"every": every, "files": list(files)}
    con.execute(f"""
        COPY (SELECT {EXPOSURE_FIELDS} FROM scope_exposures
              WHERE $every OR customer_id IN ({_AFFECTED})) TO $target (FORMAT parquet)""",
                affected | {"target": str(exposures)})
    con.execute(f"""
        COPY (SELECT {CUSTOMER_FIELDS} FROM customers
              WHERE $every OR customer_id IN ({_AFFECTED})) TO $target (FORMAT parquet)""",
                affected | {"target": str(customers)})
    return exposures, customers


def entitlements_file(exposures: Path, customers: Path, policy: Policy, work_dir: Path,
                      name: str = "entitlements") -> tuple[Path, int]:
    """The entitlement of every customer in `exposures` under `policy`, written to
    work_dir/<name>.parquet (the columns of rules.entitlements.entitlements_of), and the
    sum of base amounts (KRW) of those passing rules 1-5, which pro rata divides
    `budget.total_cap` by. SPEC "Eligibility and entitlement". Raises ValueError when an
    exposed customer is not in the customer master."""
    summary_file = work_dir / f"{name}_exposure_summary.parquet"
    result = work_dir / f"{name}.parquet"
    # glob=False: the data folder's name may hold glob characters (redress/sql.py)
    exposure_summary(pl.scan_parquet(exposures, glob=False), pl.scan_parquet(customers, glob=False),
                     policy).sink_parquet(summary_file)
    summary = pl.scan_parquet(summary_file, glob=False)
    passing_sum = passing_base_sum(summary, policy)
    entitlements_of(summary, policy, passing_sum).sink_parquet(result)
    return result, passing_sum
