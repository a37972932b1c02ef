"""The disburse stage's plan, cut from files (SPEC "Disbursement batches", "Payments"):
the new payments never held in memory at once, so 132.5M payments (150M customers) plan
on a machine that cannot hold them as a frame.

    plan_payments(con, due, policy, run_date, bank_sql, next_seq, released, work_dir)

1. DuckDB sorts the due payments by rail and customer_id into a file, spilling to disk
   where memory runs out;
2. only their amounts are read, and redress/rules/batches.py batch_cuts places the
   batches on them (a few thousand rows: each batch's rows, id and value date);
3. one DuckDB query gives each payment its batch (an ASOF join on its row number:
   the batch whose first row is the nearest at or before it), its payment_id and its
   bank details, and writes the plan by batch_id and payment_id.

The plan is the one redress.rules.batches.batches gives in memory, row for row
(tests/disbursement/test_planning.py).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from redress.policy import Policy
from redress.rules.batches import batch_cuts, position_width
from redress.sql import file_path, identifier
from redress.vocabulary import ACCEPTED, BANK_TRANSFER, SETTLED, sql_literal
from redress.warehouse import export

# The planned payment's columns before its voucher parts and bank details, in the order
# the plan file has them.
PLANNED = ("customer_id", "amount", "rail", "attempt", "batch_id", "value_date", "seq", "payment_id")


def plan_payments(con: duckdb.DuckDBPyConnection, due: Path, policy: Policy, run_date: date, bank_sql: str,
                  next_seq: dict[tuple[str, date], int], released: dict[date, int], work_dir: Path,
                  bank_from: date | None = None) -> Path:
    """The plan as `work_dir`/planned.parquet (returned): one row per payment in `due`,
    by batch_id and payment_id, with PLANNED's columns, then its voucher_<product>
    columns as they are in `due`, then bank_code and bank_account.

    due: a Parquet file of the payments to issue now (customer_id, amount in KRW, rail,
    attempt and a voucher_<product> column per product), in any order, one per customer.
    bank_sql: a query of ours giving customer_id, bank_code, bank_account, at most one
    row per customer (a payment without one gets nulls). next_seq, released and bank_from
    as in batch_cuts. Raises ValueError for a payment no batch could hold.
    """
    ordered = export(con, "SELECT * FROM read_parquet(?, hive_partitioning = false) ORDER BY rail, customer_id",
                     work_dir / "due_ordered.parquet", [file_path(due)])
    # Each rail is one run of rows in the ordered file: its offset and count.
    counts = con.execute("SELECT rail, count(*) FROM read_parquet(?, hive_partitioning = false) "
                         "GROUP BY rail ORDER BY rail", [file_path(ordered)]).fetchall()
    amounts = pl.scan_parquet(ordered, glob=False).select("amount").collect().to_series().to_numpy()
    offsets = dict(zip([rail for rail, _ in counts], np.cumsum([0] + [n for _, n in counts])[:-1].tolist()))
    bounds = {rail: (offsets[rail], offsets[rail] + n) for rail, n in counts}
    cuts = batch_cuts({rail: amounts[lo:hi] for rail, (lo, hi) in bounds.items()}, policy, run_date,
                      next_seq=next_seq, released=released, bank_from=bank_from)
    del amounts
    # From positions in a rail to rows of the file; `position` keeps batch_id order.
    rail_rows = pl.DataFrame({"rail": list(offsets), "offset": list(offsets.values())},
                             schema={"rail": pl.String, "offset": pl.Int64})
    cuts = cuts.join(rail_rows, on="rail", how="left", maintain_order="left").with_columns(
        (pl.col("start") + pl.col("offset")).alias("first_row")
    ).with_row_index("position").select("position", "first_row", "batch_id", "value_date", "seq", "prefix")
    parts = [identifier(c) for c in pl.scan_parquet(ordered, glob=False).collect_schema().names()
             if c.startswith("voucher_")]
    con.register("plan_cuts", cuts)
    try:  # the ordered copy goes as soon as the plan is written: 0.65 GB at 150M customers
        return export(con, f"""
            WITH bank AS ({bank_sql})
            SELECT p.customer_id, p.amount, p.rail, p.attempt, c.batch_id, c.value_date, c.seq,
                   c.prefix || lpad(CAST(p.file_row_number - c.first_row + 1 AS VARCHAR),
                                    {position_width(policy)}, '0') AS payment_id,
                   {''.join(f'p.{part}, ' for part in parts)}bank.bank_code, bank.bank_account
            FROM read_parquet(?, file_row_number = true, hive_partitioning = false) p
            ASOF JOIN plan_cuts c ON p.file_row_number >= c.first_row
            LEFT JOIN bank USING (customer_id)
            ORDER BY c.position, p.file_row_number""", work_dir / "planned.parquet", [file_path(ordered)])
    finally:
        con.unregister("plan_cuts")
        ordered.unlink(missing_ok=True)


def shared_accounts(con: duckdb.DuckDBPyConnection, plan_file: Path) -> dict[str, int]:
    """The plan's bank transfers (the plan file `plan_payments` wrote) that go to a bank
    account (bank code and account digits) to which another customer's transfer in the
    same plan goes too: {"accounts", "payees", "amount_krw"} (won), zeros when none. A
    plan holds one payment per customer, so payees are payments. Many customers paid to
    one account is what a customers snapshot changed by someone other than the people
    looks like, or a family's one account, which only finance can tell apart: shown to
    finance (the stage line, summary.md, plan.md), never refused. Found by review: a
    snapshot naming one account for six customers was paid with nothing said, while the
    same among claims was shown (redress/warehouse/claims.py shared_accounts_sql)."""
    (accounts, payees, amount), = con.execute(f"""
        SELECT count(*), coalesce(sum(payees), 0), coalesce(sum(amount), 0) FROM (
            SELECT count(*) AS payees, sum(amount) AS amount
            FROM read_parquet(?, hive_partitioning = false)
            WHERE rail = {sql_literal(BANK_TRANSFER)} AND bank_account IS NOT NULL
            GROUP BY bank_code, bank_account HAVING count(*) > 1)""", [file_path(plan_file)]).fetchall()
    return {"accounts": int(accounts), "payees": int(payees), "amount_krw": int(amount)}


def changed_accounts(con: duckdb.DuckDBPyConnection, plan_file: Path) -> dict[str, int]:
    """The plan's bank transfers (the plan file `plan_payments` wrote) to a customer
    whose bank account in the customer master replaced another, or none, in a later
    snapshot (redress/warehouse/customers.py former_bank_accounts), and that go to none
    of the accounts the customer had before: {"payees", "amount_krw"} (won), zeros when
    none. A master changed by someone other than the customers looks like this, just as
    a customer's own correction after a returned transfer does, which only finance can
    tell apart: shown to finance (the stage line, summary.md, plan.md), never refused;
    not again once a transfer to the customer settled after the latest change.
    Found by the security review: the ledger keeps no account, so a snapshot moving
    payees' money to other accounts went unseen."""
    if not con.execute("SELECT count(*) FROM former_bank_accounts").fetchall()[0][0]:
        return {"payees": 0, "amount_krw": 0}  # no account ever changed: the plan file is not read
    # A transfer settled since the latest change (planned by a run started no earlier than
    # the one that read the snapshot making it; a claimant's may have gone to a claimed
    # account, so never for one) went to the account the master holds now: a payee
    # finance has seen paid there is not flagged again (found by the lifecycle review: a
    # top-up weeks later was).
    (payees, amount), = con.execute(f"""
        WITH changed AS (
            SELECT f.customer_id, max(r.started_at) AS changed_in FROM former_bank_accounts f
            JOIN ingested_files i ON i.file_sha256 = f.file_sha256 AND i.kind = 'customers'
                                 AND i.status = {sql_literal(ACCEPTED)}
            JOIN runs r ON r.run_id = i.run_id GROUP BY ALL),
        paid_there AS (
            SELECT DISTINCT l.customer_id FROM ledger l JOIN runs r ON r.run_id = l.run_id
            JOIN changed c ON c.customer_id = l.customer_id
            WHERE l.rail = {sql_literal(BANK_TRANSFER)} AND l.status = {sql_literal(SETTLED)}
              AND r.started_at >= c.changed_in
              AND l.customer_id NOT IN (SELECT customer_id FROM claims))
        SELECT count(*), coalesce(sum(p.amount), 0)
        FROM read_parquet(?, hive_partitioning = false) p
        WHERE p.rail = {sql_literal(BANK_TRANSFER)}
          AND p.customer_id IN (SELECT customer_id FROM former_bank_accounts)
          AND p.customer_id NOT IN (SELECT customer_id FROM paid_there)
          AND NOT EXISTS (SELECT 1 FROM former_bank_accounts f
                          WHERE f.customer_id = p.customer_id AND f.bank_code IS NOT DISTINCT FROM p.bank_code
                            AND f.bank_account IS NOT DISTINCT FROM p.bank_account)""",
        [file_path(plan_file)]).fetchall()
    return {"payees": int(payees), "amount_krw": int(amount)}
