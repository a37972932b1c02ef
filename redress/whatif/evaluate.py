"""One read of the warehouse, every candidate policy evaluated over it.

The warehouse is opened read-only (a run holding it is a one-line error) and its inputs
copied once to Parquet in a private temporary folder outside the data folder: the
evidence and customer master as the entitle stage reads them (redress/entitling.py),
the entitlements in force, the ledger, the applied claims and the bank cash already
scheduled per value date. Each policy then runs the entitle stage's rule over those
files; nothing is written to the warehouse or the outbox.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import polars as pl

from redress.entitling import entitlements_file, export_inputs
from redress.errors import RedressError
from redress.policy import Policy, load_policy
from redress.runtime.commands import redress_line
from redress.vocabulary import BANK_TRANSFER
from redress.warehouse import connect, export, table_exists
from redress.warehouse import path as warehouse_path
from redress.whatif.figures import figures

NO_WAREHOUSE = "no warehouse yet in {data_dir}: run `{command}` first"


def load_policies(paths: list[Path]) -> list[Policy]:
    """Every candidate, loaded before any data is touched; the first that does not parse
    raises the policy loader's RedressError (one line naming the file). The same file
    twice gives two columns."""
    return [load_policy(Path(p)) for p in paths]


def whatif(data_dir: Path, policies: list[Policy], run_date: date) -> dict:
    """{"as_of_run": the last run's id, "run_date": ISO date, "policies": the figures
    (redress/whatif/figures.py) of each policy, in the order given}, over the data
    folder's warehouse as of its last run. run_date: the day a run would issue
    the top-ups (their first value date unless the policy names a later one).

    Raises RedressError (one line) when the folder has no warehouse or nothing was
    entitled in it yet, or when the warehouse is held by a run (WarehouseInUse)."""
    warehouse = warehouse_path(data_dir)
    if not warehouse.is_file():
        raise RedressError(NO_WAREHOUSE.format(data_dir=data_dir, command=redress_line(data_dir, "run")))
    with tempfile.TemporaryDirectory(prefix="redress-whatif-") as tmp:
        work = Path(tmp)
        with connect(warehouse, read_only=True) as con:
            if not all(table_exists(con, t) for t in ("scope_exposures", "customers", "entitlements", "ledger")):
                raise RedressError(NO_WAREHOUSE.format(data_dir=data_dir, command=redress_line(data_dir, "run")))
            (exposed,), = con.execute("SELECT count(*) FROM scope_exposures").fetchall()
            if not exposed:
                raise RedressError(f"no accepted exposure in the warehouse of {data_dir}: run `{redress_line(data_dir, 'run')}` first")
            exposures, customers = export_inputs(con, work)
            in_force = export(con, "SELECT customer_id, amount FROM entitlements", work / "in_force.parquet")
            ledger = export(con, "SELECT customer_id, amount, status, rail, attempt FROM ledger",
                            work / "ledger.parquet")
            claimants = (con.sql("SELECT DISTINCT customer_id FROM claims").pl() if table_exists(con, "claims")
                         else pl.DataFrame(schema={"customer_id": pl.String}))
            last = con.execute("SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1").fetchall() \
                if table_exists(con, "runs") else []
            released = {day: int(total) for day, total in con.execute(
                "SELECT value_date, sum(control_sum) FROM batches WHERE rail = ? GROUP BY ALL",
                [BANK_TRANSFER]).fetchall()} if table_exists(con, "batches") else {}
        out = []
        for n, policy in enumerate(policies):
            try:
                entitled, passing_sum = entitlements_file(exposures, customers, policy, work, f"policy-{n}")
            except ValueError as exc:  # an exposed customer missing from the master: a damaged warehouse
                raise RedressError(f"cannot evaluate {policy.path.name}: {exc}") from None
            out.append(figures(pl.scan_parquet(entitled, glob=False), passing_sum,
                               pl.scan_parquet(in_force, glob=False), pl.scan_parquet(ledger, glob=False),
                               claimants.lazy(), policy, run_date, released))
        return {"as_of_run": last[0][0] if last else None, "run_date": run_date.isoformat(), "policies": out}
