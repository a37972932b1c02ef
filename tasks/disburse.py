"""Stage 4, disburse: what is owed now becomes ledger rows and batch folders, together.

Order of work, so that a crash at any point leaves nothing half done:
1. finish or discard what a crashed run left: a `.tmp-<batch_id>` folder whose batch is
   committed is moved into place, any other is deleted;
2. compute the new payments and their batches;
3. stage the plan in the warehouse and run the emission suites on it (entitlements,
   ledger, batches: redress/checks/emission_checks.py); a failure stops the run here, before
   anything is written;
4. write every batch folder under its temporary name;
5. commit ledger rows and batches in one transaction;
6. move the folders into place.
Never retried by Prefect: a step that creates payments runs once per run.
"""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress.context import RunContext
from redress.results import DisburseResult, Overpayments, RailTotal, TreasuryDay
from redress.runtime.faults import checkpoint
from redress.settings import Settings, debtor
from redress.vocabulary import BANK_TRANSFER
from redress.warehouse import connect, export
from redress.warehouse import claims as claims_table
from redress.warehouse import ledger as ledger_table
from redress.outbox import files as outbox
from redress.rules.batches import batch_summary, batches
from redress.checks.emission_checks import check_plan, drop_plan, stage_plan
from redress.outbox.pain001 import pain001
from redress.rules.payments import new_payments, overpayments
from redress.rules.payments_file import payment_files
from redress.rules.vouchers import with_voucher_parts


PAIN_COLUMNS = ("payment_id", "customer_id", "amount", "bank_code", "bank_account")


def recover_outbox(ctx: RunContext) -> list[str]:
    """Step 1: settle folders left by a run that stopped between writing and publishing."""
    if not ctx.batches_dir.is_dir():
        return []
    with connect(ctx.warehouse) as con:
        committed = {r[0] for r in con.execute("SELECT batch_id FROM batches").fetchall()}
    return outbox.settle_leftovers(
        ctx.batches_dir, lambda batch_id: batch_id in committed and not (ctx.batches_dir / batch_id).exists(),
        lambda tmp, batch_id: outbox.publish(tmp, ctx.batches_dir / batch_id))


@task(name="disburse", cache_policy=NO_CACHE, timeout_seconds=3600)
def disburse(ctx: RunContext, settings: Settings) -> DisburseResult:
    """Stage 4 (SPEC "Payments"): the steps above; returns a DisburseResult
    (redress/results.py)."""
    logger = get_run_logger()
    policy = ctx.policy()
    recovered = recover_outbox(ctx)
    with connect(ctx.warehouse) as con:
        ent = export(con, "SELECT customer_id, reason, amount, rail FROM entitlements", ctx.work_dir / "ent.parquet")
        ledger = export(con, "SELECT customer_id, amount, status, rail, attempt FROM ledger",
                        ctx.work_dir / "ledger.parquet")
        claimants = con.sql("SELECT DISTINCT customer_id FROM claims").pl()
        seqs = con.execute("""
            SELECT rail, value_date, max(CAST(regexp_extract(batch_id, '-([0-9]+)$', 1) AS BIGINT)) + 1
            FROM batches GROUP BY ALL""").fetchall()
        released = con.execute("""
            SELECT value_date, sum(control_sum) FROM batches WHERE rail = ? GROUP BY ALL
        """, [BANK_TRANSFER]).fetchall()
    payments = new_payments(pl.scan_parquet(ent, glob=False), pl.scan_parquet(ledger, glob=False), policy,
                            claimants.lazy())
    over = overpayments(pl.scan_parquet(ent, glob=False), pl.scan_parquet(ledger, glob=False))
    planned = batches(
        payments, policy, ctx.run_date,
        next_seq={(rail, day): seq for rail, day, seq in seqs},
        released={day: int(total) for day, total in released},
    )
    with connect(ctx.warehouse) as con:
        # A claimant is paid to their latest claim's account, never the master's (SPEC
        # "Input: claims from customer service").
        bank = con.sql(f"""
            WITH claimed AS ({claims_table.latest_bank_details_sql()})
            SELECT customer_id, bank_code, bank_account FROM claimed
            UNION ALL BY NAME
            SELECT customer_id, bank_code, bank_account FROM customers
            WHERE bank_valid AND customer_id NOT IN (SELECT customer_id FROM claimed)""").pl()
    planned = planned.join(bank, on="customer_id", how="left").sort("batch_id", "payment_id")
    planned = with_voucher_parts(planned, policy)
    summary = batch_summary(planned)
    payer = debtor(settings) if (summary["rail"] == "bank_transfer").any() else None

    # The gate: GX opens the warehouse itself, so this connection is closed first.
    with connect(ctx.warehouse) as con:
        stage_plan(con, planned, summary, policy.voucher_products)
    check_plan(ctx, policy)
    checkpoint("disburse:planned", settings)

    created_at = datetime.now(timezone.utc).replace(microsecond=0)
    ctx.batches_dir.mkdir(parents=True, exist_ok=True)
    parts = planned.partition_by("batch_id", as_dict=True, maintain_order=True)
    for meta in summary.to_dicts():  # one step per batch, not per payment
        rows = parts[(meta["batch_id"],)]
        manifest = dict(
            meta, value_date=meta["value_date"].isoformat(), currency=policy.currency,
            policy_id=policy.id, run_id=ctx.run_id, created_at=created_at.isoformat(),
        )
        extra = {}
        if meta["rail"] == "bank_transfer":
            # MsgId must fit 35 characters: the payment ids' batch prefix (value date,
            # rail, sequence) is unique for ever and fits; the manifest names both.
            reference = rows["payment_id"][0].rsplit("-", 1)[0]
            manifest["bank_file_reference"] = reference
            extra["pain.001.xml"] = pain001(reference, meta["value_date"], created_at,
                                            rows.select(PAIN_COLUMNS), payer, currency=policy.currency)
        outbox.write_batch(ctx.batches_dir, manifest, payment_files(rows, meta["rail"], policy), extra)
        checkpoint("disburse:folder-written", settings)
    checkpoint("disburse:folders-written", settings)

    with connect(ctx.warehouse) as con:
        # Committed from the staged plan: exactly the rows the suites passed.
        con.execute("BEGIN")
        ledger_table.issue_planned(con, currency=policy.currency, policy_id=policy.id, run_id=ctx.run_id,
                                   created_at=created_at)
        con.execute("COMMIT")
        checkpoint("disburse:committed", settings)
        drop_plan(con)
    for batch_id in summary["batch_id"].to_list():
        outbox.publish(outbox.staging_folder(ctx.batches_dir, batch_id), ctx.batches_dir / batch_id)
        checkpoint("disburse:published-one", settings)

    per_rail = planned.group_by("rail").agg(pl.len().alias("payments"), pl.col("amount").sum()).sort("rail")
    result = DisburseResult(
        batches=summary.height,
        payments=planned.height,
        amount_krw=int(planned["amount"].sum() or 0),
        per_rail={r["rail"]: RailTotal(payments=r["payments"], amount_krw=r["amount"]) for r in per_rail.to_dicts()},
        treasury=tuple(
            TreasuryDay(value_date=r["value_date"].isoformat(), amount_krw=r["amount"],
                        daily_cash_cap_krw=policy.daily_cash_cap)
            for r in summary.filter(pl.col("rail") == "bank_transfer").group_by("value_date")
            .agg(pl.col("control_sum").sum().alias("amount")).sort("value_date").to_dicts()
        ),
        overpayments=Overpayments(customers=over.height, amount_krw=int(over["overpaid"].sum() or 0)),
        recovered_batches=tuple(recovered),
    )
    logger.info("disbursed %s payments in %s batches, %s %s", result.payments, result.batches,
                result.amount_krw, policy.currency)
    return result
