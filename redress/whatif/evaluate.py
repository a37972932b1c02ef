"""One read of the warehouse, every candidate policy evaluated over it.

The warehouse is opened read-only under the data folder's lock, the one `redress run`
holds for all its length (redress/warehouse/runs.py data_dir_lock): a what-if during a run
is refused in one line and never holds the warehouse the run is about to open. Only a
finished run's warehouse is described (outcome succeeded or recovered). The exposures,
customer master and entitlements in force are grouped in DuckDB, one row per exposed
customer (redress/whatif/compare.py); the ledger and the applied claims are read into
Polars; the scope rows the last run quarantined as unknown_category go through each
candidate's own row rules (redress/whatif/figures.py reclassified). Nothing is written
to the warehouse or the outbox.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from redress import sql
from redress.errors import RedressError
from redress.policy import Policy, load_policy
from redress.runtime.commands import redress_line
from redress.vocabulary import BANK_TRANSFER, UNKNOWN_CATEGORY
from redress.warehouse import connect, table_exists
from redress.warehouse import files
from redress.warehouse.migrations import catalog
from redress.warehouse import path as warehouse_path
from redress.warehouse.runs import data_dir_lock, latest_run, paid_under_other_rules
from redress.rules.plans import switch_date_refusal
from redress.rules.identity import email_norm, phone_e164
from redress.whatif.compare import compare
from redress.whatif.figures import reclassified

NO_WAREHOUSE = "no warehouse yet in {data_dir}: run `{command}` first"
RUN_GOING_ON = "a run is using {data_dir}: try again when it ends"
FINISHED = ("succeeded", "recovered")  # runs.outcome of a run whose warehouse is whole
# The scope rows quarantined as in a category the policy in force does not list, of the
# categories some candidate lists (the first of `reclassified`'s filters).
_UNLISTED_ROWS = """SELECT s.* FROM scope_rows s SEMI JOIN (
    SELECT file_sha256, row_number FROM quarantine WHERE kind = 'scope' AND reason = $reason) q
    USING (file_sha256, row_number)
    WHERE list_contains($categories, s.data_category)"""
_UNLISTED_COUNT = "SELECT count(*) FROM quarantine WHERE kind = 'scope' AND reason = ?"


def load_policies(paths: list[Path]) -> list[Policy]:
    """Every candidate, loaded before any data is touched; the first that does not parse
    raises the policy loader's RedressError (one line naming the file). The same file
    twice gives two columns."""
    return [load_policy(Path(p)) for p in paths]


def whatif(data_dir: Path, policies: list[Policy], run_date: date) -> dict:
    """{"as_of_run": the last run's id, "run_date": ISO date, "policies": the figures
    (redress/whatif/compare.py) of each policy, in the order given, each with
    "policy_id_paid_by_run": the run that paid under its policy.id with other rules, so
    that `redress run` would refuse it (redress/warehouse/runs.py), else None}, over the
    data folder's warehouse as of its last run (no exposure at all is a valid answer).
    run_date: the day a run would issue the top-ups (their first value date unless the
    policy names a later one).

    Raises RedressError (one line) when the folder has no warehouse or no run
    entitled anything in it yet, when a run is going on (the folder lock is held) or the
    warehouse is held by another process (WarehouseInUse), or when the last run did not
    finish (running or failed: its stages may have left half of their work), or when
    no run could be dated `run_date` (redress/rules/plans.py switch_date_refusal)."""
    warehouse = warehouse_path(data_dir)
    if not warehouse.is_file():
        raise RedressError(NO_WAREHOUSE.format(data_dir=data_dir, command=redress_line(data_dir, "run")))
    with data_dir_lock(data_dir, busy=RUN_GOING_ON), connect(warehouse, read_only=True) as con:
        if not all(table_exists(con, t) for t in ("scope_exposures", "customers", "entitlements", "ledger")):
            raise RedressError(NO_WAREHOUSE.format(data_dir=data_dir, command=redress_line(data_dir, "run")))
        last = _last_finished_run(con, data_dir)
        refused = switch_date_refusal(run_date, latest_run(con))
        if refused is not None:
            raise RedressError(refused)
        _same_timezone(con, policies)
        released = {day: int(total) for day, total in con.execute(
            "SELECT value_date, sum(control_sum) FROM batches WHERE rail = ? GROUP BY ALL",
            [BANK_TRANSFER]).fetchall()} if table_exists(con, "batches") else {}
        claims = table_exists(con, "claims")
        # Rows quarantined because the policy in force does not list their category: a
        # candidate that lists it takes some of them as exposures in its own run.
        unlisted = [UNKNOWN_CATEGORY]
        quarantined = (table_exists(con, "quarantine") and table_exists(con, "scope_rows")
                       and sql.one(con.execute(_UNLISTED_COUNT, unlisted))[0] > 0)
        # Read into Polars (Arrow, no file in between) while the lock is held.
        claimants = (con.sql("SELECT DISTINCT customer_id FROM claims").pl().lazy() if claims
                     else pl.LazyFrame(schema={"customer_id": pl.String}))
        extra = None
        if quarantined:
            listed = sorted({c for p in policies for c in p.categories})
            rows = con.sql(_UNLISTED_ROWS, params={"reason": UNKNOWN_CATEGORY, "categories": listed}).pl()
            if rows.height:
                master = _master_for(con, rows)
                extra = [reclassified(rows.lazy(), master, p).collect() for p in policies]
        try:
            out = compare(con, policies, run_date, released, claimants, extra)
        except ValueError as exc:  # an exposed customer missing from the master: a damaged warehouse
            raise RedressError(f"cannot evaluate the policies: {exc}") from None
        # A candidate that keeps the id of a policy that paid under other rules is priced
        # all the same, and the page says that `redress run` would refuse it as it is.
        known = "policy_rules_sha256" in catalog(con).get("runs", ()) and table_exists(con, "batches")
        for p, figures in zip(policies, out):
            figures["policy_id_paid_by_run"] = paid_under_other_rules(con, p) if known else None
    return {"as_of_run": last, "run_date": run_date.isoformat(), "policies": out}


def _same_timezone(con, policies: list[Policy]) -> None:
    """RedressError (one line) when a candidate's timezone is not the one the evidence's
    times were read in (`ingested_files.timezone`, redress/inbox/retime.py): what-if
    compares policies over the evidence as read, and another timezone makes every time
    written without an offset another instant, which only a run reads again. A warehouse
    of an earlier version, which recorded no timezone, is not checked."""
    if "timezone" not in catalog(con).get("ingested_files", ()):
        return
    read_in = sorted(tz for (tz,) in con.execute(
        f"SELECT DISTINCT timezone FROM ingested_files WHERE {files.EVIDENCE} AND timezone IS NOT NULL").fetchall())
    for p in policies:
        if read_in and p.timezone not in read_in:
            raise RedressError(
                f"policy {p.id}: its timezone {p.timezone} is not {', '.join(read_in)}, the one the evidence's times "
                "were read in; what-if compares policies over the evidence as read, and a new timezone makes every "
                "time without an offset another instant, which only `redress run` with that policy reads again")


def _master_for(con, rows: pl.DataFrame) -> pl.LazyFrame:
    """The customers that identity resolution could match `rows` (scope rows) to: those
    sharing their customer_id or normalised email or phone (rules.identity), every one of
    them, so that how many share a key (ambiguity) is as against the whole master.
    customer_id, email_norm, phone_e164, created_at."""
    keys = rows.select("customer_id", email_norm("email").alias("email_norm"), phone_e164("phone").alias("phone_e164"))
    con.register("whatif_row_keys", keys)
    try:
        return con.sql("""
            SELECT customer_id, email_norm, phone_e164, created_at FROM customers
            WHERE customer_id IN (SELECT customer_id FROM whatif_row_keys)
               OR email_norm IN (SELECT email_norm FROM whatif_row_keys)
               OR phone_e164 IN (SELECT phone_e164 FROM whatif_row_keys)""").pl().lazy()
    finally:
        con.unregister("whatif_row_keys")


def _last_finished_run(con, data_dir: Path) -> str | None:
    """The run the warehouse is as of: the last one started, which must have finished.
    None when the warehouse has no `runs` table (built before it). RedressError when
    the last run is still marked running (killed) or failed."""
    if not table_exists(con, "runs"):
        return None
    last = con.execute("SELECT run_id, outcome FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1").fetchall()
    if not last:
        return None
    (run_id, outcome), = last
    if outcome not in FINISHED:
        raise RedressError(f"the last run {run_id} in {data_dir} did not finish (it is {outcome}): "
                           "what-if describes a finished run only; run `redress run` again first")
    return run_id
