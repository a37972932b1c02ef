"""The gate before emission: what the disburse stage is about to write, checked in SQL.

After the new payments and their batches are planned, and before any batch folder is
written or any ledger row committed, the plan is staged in the warehouse and three
suites (expectations/entitlements.json, ledger.json, batches.json) run on it inside
DuckDB. A failure stops the run: nothing reaches the outbox or the ledger. When they
pass, tasks/disburse.py commits the ledger rows and batches from the staged tables, so what
is committed is what was checked.

    stage_plan(con, planned, summary, products)  the plan (a Parquet file) as tables, and the views checked
                                                 (stage_payments, then stage_checked)
    check_plan(ctx, policy)                      the three suites, recorded; stops on a failure
    gate_fingerprint(con, policy)                all the gate reads, as one SHA-256: a plan whose inputs
                                                 have not changed since it passed is not checked again
    drop_plan(con)                               once the plan is committed

Staged (CREATE OR REPLACE, so a run that stopped leaves them for inspection until the
next run replaces them):
    planned_payments         one row per new payment, with its bank details and voucher parts
    planned_batches          one row per new batch: the totals its manifest will carry
    entitlements_checked     (view) entitlements, with the rules that span columns as booleans
    ledger_after             (table) the ledger as it will be once the plan is committed,
                             for the customers and payment ids the plan touches
    planned_batches_checked  (table) planned batches beside their payments' count and sum,
                             and the bank-transfer cash of their value date

ledger_after and planned_batches_checked are computed once, as tables: GX runs one query
per expectation, and as views their joins over the whole ledger were computed again for
each of them. ledger_after holds every planned row, and of the ledger as it is only the
rows of a customer the plan pays or with a payment id the plan reuses. That still
catches all a plan can break: a ledger row of anyone else is unchanged by the plan, so
its customer's verdict (paid after <= greatest(entitled, paid before)) holds by
definition, and the row itself passed this gate when it was planned (its columns are
NOT NULL and BIGINT in the table; status is only moved by returns, to a known status).
ledger_after is built SLICE_PAYMENTS planned payments at a time, by a hash of the
customer id: a verdict reads only its customer's rows, so the slices give the rows the
whole would, without grouping 132.5M customers at once.

A plan waiting for approval passed the gate when its run planned it, and its
gate_fingerprint was kept with it. `redress approve` writes the same plan file again and
computes the fingerprint, reading the file's payments where planned_payments would hold
them: equal, the suites would read the very rows they passed, under the same suites,
gate code and policy, so they are not run again (at 33.7M, building ledger_after and
running the suites took about 45 s of the approval), nor are the payments staged (the
ledger rows are committed from the file the fingerprint read: 8.8 M payments at 10 M
customers, 6 s); different (anything moved: a ledger row restored by hand, an
entitlement edited, a new version of redress), the plan is staged and the whole gate
runs, and a failure stops the release.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from redress.context import RunContext
from redress.entitling import SLICE_CUSTOMERS
from redress.vocabulary import BANK_TRANSFER, ELIGIBLE, ISSUED, LIVE_STATUSES, VOUCHER, sql_list, sql_literal
from redress.sql import customer_slice, file_path, identifier
from redress.policy import Policy, VoucherProduct
from redress.checks.quality import check, require
from redress.checks.suites import EXPECTATIONS_DIR, SuiteResult
from redress.warehouse.claims import paying_accounts_sql
from redress.warehouse.exports import ROW_FINGERPRINT

# Planned payments per slice of ledger_after's customers (stage_checked): as many
# customers as entitle summarises at once, so the 33.7M case is one slice.
SLICE_PAYMENTS = SLICE_CUSTOMERS
VIEWS = ("entitlements_checked", "ledger_after", "planned_batches_checked")  # the checked objects
TABLES = ("planned_payments", "planned_batches")

# Payments that count as paid (SPEC "Ledger"): a returned one is owed again.
LIVE = sql_list(LIVE_STATUSES)
# Our own codes as SQL text (the views cannot take bound parameters).
_ELIGIBLE, _ISSUED, _VOUCHER, _BANK = (sql_literal(c) for c in (ELIGIBLE, ISSUED, VOUCHER, BANK_TRANSFER))


def _parts_sum_ok(products: tuple[VoucherProduct, ...]) -> str:
    """A voucher payment's parts are all there, none negative, and sum to its amount."""
    parts = [identifier(f"voucher_{p.id}") for p in products]
    return (
        f"CASE WHEN rail = {_VOUCHER} THEN coalesce({' + '.join(parts)} = amount"
        f" AND least({', '.join(parts)}) >= 0, false) ELSE true END"
    )


def stage_plan(
    con: duckdb.DuckDBPyConnection,
    planned: Path,
    summary: pl.DataFrame,
    products: tuple[VoucherProduct, ...],
    *,
    policy_id: str | None = None,
    run_date: date | None = None,
) -> None:
    """Load the plan and create the tables the suites read (`stage_payments`, then
    `stage_checked`, with `policy_id` and `run_date`)."""
    stage_payments(con, planned, summary, products)
    stage_checked(con, products, policy_id=policy_id, run_date=run_date)


def planned_payments_sql(products: tuple[VoucherProduct, ...]) -> str:
    """SQL of ours: the payments of a plan file, bound as the one parameter (`file_path`),
    with the columns and types `planned_payments` holds them in: the rows the table
    would hold, for a plan file read without staging it (`gate_fingerprint(planned=)`,
    redress/warehouse/ledger.py `issue_planned`)."""
    parts = ", ".join(identifier(f"voucher_{p.id}") for p in products)
    return (f"SELECT payment_id, customer_id, amount, rail, attempt, batch_id, value_date, bank_code, bank_account, "
            f"{parts} FROM read_parquet(?, hive_partitioning = false)")


def stage_payments(
    con: duckdb.DuckDBPyConnection,
    planned: Path,
    summary: pl.DataFrame,
    products: tuple[VoucherProduct, ...],
) -> None:
    """The plan as the tables `planned_payments` and `planned_batches`, which the ledger
    rows and batches are committed from. planned: a Parquet file of the planned payments
    (redress/warehouse/plans.py PAYMENT_COLUMNS and a voucher_<product> column per
    product), by batch_id and payment_id, the very file the batch folders are then
    written from; summary: the batch summary (batch_id, rail, value_date, item_count,
    control_sum)."""
    con.execute(f"CREATE OR REPLACE TABLE planned_payments AS {planned_payments_sql(products)}",
                [file_path(planned)])
    stage_batches(con, summary)


def stage_batches(con: duckdb.DuckDBPyConnection, summary: pl.DataFrame) -> None:
    """`planned_batches` alone (stage_payments): a few rows per value date and rail."""
    con.register("plan_batches_frame", summary)
    try:
        con.execute("""
            CREATE OR REPLACE TABLE planned_batches AS
            SELECT batch_id, rail, value_date, item_count, control_sum FROM plan_batches_frame""")
    finally:
        con.unregister("plan_batches_frame")


def stage_checked(con: duckdb.DuckDBPyConnection, products: tuple[VoucherProduct, ...], *,
                  policy_id: str | None = None, run_date: date | None = None) -> None:
    """The views and tables the three suites read (module docstring), over the staged
    `planned_payments` and `planned_batches`. With `policy_id`, a batch id must be that
    policy's id, its value date, its rail and a sequence (redress/rules/batches.py
    batch_cuts); with `run_date`, no batch may be dated before it (the plan's run
    dates its first batches by it: SPEC "Disbursement batches")."""
    con.execute(f"""
        CREATE OR REPLACE VIEW entitlements_checked AS
        SELECT customer_id, policy_id, reason, base_amount, amount, rail,
               coalesce(reason = {_ELIGIBLE} OR amount = 0, false) AS zero_unless_eligible,
               coalesce(amount <= base_amount, false) AS within_base_amount
        FROM entitlements""")

    # paid_after <= greatest(entitled, paid_before): a new payment never takes anyone
    # above their entitlement; an old overpayment (the scope shrank) is no clawback and
    # no failure either. Every row of a customer carries the customer's verdict.
    _drop(con, "ledger_after")
    # Where each transfer the plan makes may go: the account planning read (a claim's,
    # else the master's valid one), so a plan edited by hand between its run and its
    # approval cannot send money elsewhere (found by review: an account changed in
    # plan_payments was released to the bank file).
    con.execute(f"CREATE OR REPLACE TEMP TABLE paying_accounts AS {paying_accounts_sql()}")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE ledger_touched AS
        SELECT payment_id, customer_id, amount, rail, batch_id, status FROM ledger
        WHERE customer_id IN (SELECT customer_id FROM planned_payments)
           OR payment_id IN (SELECT payment_id FROM planned_payments)""")
    # In slices of customers, as entitle does (redress/entitling.py): a customer's
    # verdict needs only their own rows, and 132.5M planned payments (150M customers)
    # grouped and joined at once spilled 30 GB to disk.
    planned = con.execute("SELECT count(*) FROM planned_payments").fetchall()[0][0]
    slices = max(1, -(-planned // SLICE_PAYMENTS))
    for part in range(slices):
        # One slice has no condition at all, and a slice's numbers are SQL text, not
        # parameters: with `hash(customer_id) % $slices = $part` this statement ran three
        # times as long (8.9M planned payments at 10M customers: 11.0 s against 3.3 s
        # without the condition, 6.4 s with it as literals; two slices 4.8 s in all as
        # literals, 12.1 s as parameters).
        in_slice = customer_slice(slices, part)
        con.execute(f"""
            {'CREATE TABLE ledger_after AS' if part == 0 else 'INSERT INTO ledger_after'}
            WITH planned AS (SELECT * FROM planned_payments WHERE {in_slice}),
            rows AS (
                SELECT payment_id, customer_id, amount, rail, batch_id, status,
                       false AS planned, true AS parts_sum_ok, NULL::DATE AS value_date,
                       NULL::VARCHAR AS bank_code, NULL::VARCHAR AS bank_account
                FROM ledger_touched WHERE {in_slice}
                UNION ALL
                SELECT payment_id, customer_id, amount, rail, batch_id, {_ISSUED},
                       true, {_parts_sum_ok(products)}, value_date, bank_code, bank_account
                FROM planned),
            paid AS (
                SELECT customer_id,
                       coalesce(sum(amount) FILTER (status IN {LIVE} AND NOT planned), 0) AS paid_before,
                       coalesce(sum(amount) FILTER (status IN {LIVE}), 0) AS paid_after
                FROM rows GROUP BY customer_id),
            entitled AS (SELECT customer_id, amount FROM entitlements WHERE {in_slice}),
            batch_ids AS (SELECT batch_id, count(*) AS n, any_value(rail) AS rail, any_value(value_date) AS value_date
                          FROM planned_batches GROUP BY batch_id)
            SELECT r.payment_id, r.customer_id, r.amount, typeof(r.amount) = 'BIGINT' AS amount_is_bigint,
                   r.rail, r.batch_id, r.status, r.planned,
                   coalesce(e.amount, 0) AS entitled, p.paid_before, p.paid_after,
                   coalesce(p.paid_after <= greatest(coalesce(e.amount, 0), p.paid_before), false)
                       AS within_entitlement,
                   coalesce(NOT r.planned OR b.n = 1, false) AS in_one_batch,
                   coalesce(NOT r.planned OR b.batch_id IS NULL  -- no batch: in_one_batch says so
                            OR (b.rail = r.rail AND b.value_date = r.value_date
                                AND starts_with(r.payment_id, strftime(r.value_date, '%Y%m%d') || '-')), false)
                       AS in_its_batch,
                   coalesce(NOT r.planned OR r.rail <> {_BANK}
                            OR (a.bank_code = r.bank_code AND a.bank_account = r.bank_account), false)
                       AS to_paying_account,
                   r.parts_sum_ok
            FROM rows r
            LEFT JOIN paid p ON p.customer_id = r.customer_id
            LEFT JOIN entitled e ON e.customer_id = r.customer_id
            LEFT JOIN batch_ids b ON b.batch_id = r.batch_id
            LEFT JOIN paying_accounts a ON a.customer_id = r.customer_id AND r.planned AND r.rail = {_BANK}""")
    con.execute("DROP TABLE ledger_touched")
    con.execute("DROP TABLE paying_accounts")

    # day_cash: bank transfers of the batch's value date, earlier runs' batches plus this
    # plan's (SPEC: no day's outflow above daily_cash_cap); NULL off the bank rail.
    _drop(con, "planned_batches_checked")
    con.execute(f"""
        CREATE TABLE planned_batches_checked AS
        WITH payments AS (
            SELECT batch_id, count(*) AS payments, sum(amount) AS payments_amount
            FROM planned_payments GROUP BY batch_id),
        released AS (
            SELECT value_date, sum(control_sum) AS released FROM batches
            WHERE rail = {_BANK} GROUP BY value_date),
        planned_day AS (
            SELECT value_date, sum(control_sum) AS planned FROM planned_batches
            WHERE rail = {_BANK} GROUP BY value_date)
        SELECT b.batch_id, b.rail, b.value_date, b.item_count, b.control_sum,
               coalesce(p.payments, 0) AS payments, coalesce(p.payments_amount, 0) AS payments_amount,
               coalesce(b.item_count = coalesce(p.payments, 0), false) AS count_ok,
               coalesce(b.control_sum = coalesce(p.payments_amount, 0), false) AS sum_ok,
               CASE WHEN b.rail = {_BANK} THEN coalesce(r.released, 0) + d.planned END AS day_cash,
               NOT EXISTS (SELECT 1 FROM batches x WHERE x.batch_id = b.batch_id) AS new_batch_id,
               -- the id is <policy id>-<value date>-<rail>-<sequence> (redress/rules/batches.py batch_cuts)
               coalesce(regexp_extract(b.batch_id, '-([0-9]{{4,}})$', 1) <> ''
                        AND ends_with(b.batch_id, '-' || strftime(b.value_date, '%Y%m%d') || '-' || b.rail || '-'
                                                  || regexp_extract(b.batch_id, '-([0-9]{{4,}})$', 1))
                        AND ($policy_id IS NULL OR b.batch_id = $policy_id || '-' || strftime(b.value_date, '%Y%m%d')
                                                   || '-' || b.rail || '-' || regexp_extract(b.batch_id, '-([0-9]+)$', 1)),
                        false) AS named_for_it,
               coalesce($run_date IS NULL OR b.value_date >= $run_date, false) AS dated_from_the_run
        FROM planned_batches b
        LEFT JOIN payments p ON p.batch_id = b.batch_id
        LEFT JOIN released r ON r.value_date = b.value_date
        LEFT JOIN planned_day d ON d.value_date = b.value_date""", {"policy_id": policy_id, "run_date": run_date})


def check_plan(ctx: RunContext, policy: Policy) -> list[SuiteResult]:
    """Run the three suites on the staged plan, recording each for the run's reports,
    then stop the run at the first that failed. The caller must hold no connection to
    the warehouse meanwhile."""
    # index_column=None: the views have no row_number, and the report keeps counts only;
    # a stopped run leaves the views in place, to query for the rows that failed.
    results = [
        check(ctx, "entitlements_checked", "entitlements", index_column=None,
              parameters={"policy_id": [policy.id]}),
        check(ctx, "ledger_after", "ledger", index_column=None),
        check(ctx, "planned_batches_checked", "batches", index_column=None, parameters={
            "max_batch_items": policy.max_batch_items,
            "max_batch_amount": policy.max_batch_amount,
            "daily_cash_cap": policy.daily_cash_cap,
        }),
    ]
    return [require(result) for result in results]


# What the gate reads (besides the policy): the staged plan and the tables its views join.
GATE_INPUTS = ("planned_payments", "planned_batches", "entitlements", "ledger", "batches")
GATE_SUITES = ("entitlements", "ledger", "batches")


def gate_fingerprint(con: duckdb.DuckDBPyConnection, policy: Policy, planned: Path | None = None) -> str:
    """SHA-256 (hex) of everything the gate reads and decides with: for each of
    GATE_INPUTS, its columns and types, row count and the sum and xor of its rows'
    hashes (one scan each, whatever the rows' order), the three suites' files, this
    module's text (the views' SQL) and the policy's SHA-256. Call with the plan staged
    (`stage_payments`), or with `planned_batches` staged (`stage_batches`) and
    `planned`, the plan file, whose payments then stand for `planned_payments`: the
    same rows give the same fingerprint, staged or not (an approval stages the
    payments only when the fingerprint has moved). Two equal fingerprints mean the
    suites would read the same rows under the same rules (a collision of the row
    hashes aside, as for the analyst exports' fingerprints). The accounts the ledger
    suite holds transfers to (paying_accounts_sql: customers and claims) are left out:
    only a run changes them, and a run supersedes a waiting plan first, so an unmoved
    plan still pays the accounts its gate passed."""
    digest = hashlib.sha256()
    for table in GATE_INPUTS:
        if table == "planned_payments" and planned is not None:
            query, params = planned_payments_sql(policy.voucher_products), [file_path(planned)]
            columns = [tuple(c[:2]) for c in con.execute(f"DESCRIBE {query}", params).fetchall()]
        else:
            query, params = f"SELECT * FROM {table}", []
            columns = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()
        rows = con.execute(f"SELECT {ROW_FINGERPRINT} FROM ({query}) AS _row", params).fetchall()[0]
        digest.update(json.dumps([table, columns, list(rows)]).encode("utf-8"))
    for suite in GATE_SUITES:
        digest.update((EXPECTATIONS_DIR / f"{suite}.json").read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(policy.sha256.encode("ascii"))
    return digest.hexdigest()


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a staged view or table, whichever it is (an earlier version staged views)."""
    for (kind,) in con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?",
                               [name]).fetchall():
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {name}")


def drop_plan(con: duckdb.DuckDBPyConnection) -> None:
    """Remove the staged plan once its ledger rows and batches are committed."""
    for name in (*VIEWS, *TABLES):
        _drop(con, name)
