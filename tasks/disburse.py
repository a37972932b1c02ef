"""Stage 4, disburse: what is owed now becomes ledger rows and batch folders, together.

Order of work, so that a crash at any point leaves nothing half done:
1. finish or discard what a crashed run left: a `.tmp-<batch_id>` folder whose batch is
   committed is moved into place, any other is deleted;
2. compute the new payments and their batches, and write them, with each payment's bank
   details, to `planned.parquet` in the run's work folder: the payments go from
   Polars's streaming engine to a file, and DuckDB, which spills, sorts and batches
   them (redress/disbursement/planning.py); the plan is never a frame in memory (132.5M
   payments at 150M customers);
3. stage that file in the warehouse and run the emission suites on it (entitlements,
   ledger, batches: redress/checks/emission_checks.py); a failure stops the run here, before
   anything is written;
4. write every batch folder under its temporary name, from the same file;
5. commit ledger rows and batches in one transaction;
6. move the folders into place (4-6: redress/disbursement/release.py).
With `disbursement.require_approval`, steps 4-6 wait: the checked plan is kept in the
warehouse and reported (redress/disbursement/plan.py), and `redress approve` runs them for it.
Never retried by Prefect: a step that creates payments runs once per run.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress.context import RunContext
from redress.errors import RedressError
from redress.results import DisburseResult, Overpayments, RailTotal, TreasuryDay
from redress.runtime.faults import checkpoint
from redress.settings import Settings
from redress.vocabulary import BANK_TRANSFER
from redress.warehouse import connect, export
from redress.warehouse import claims as claims_table
from redress.outbox import files as outbox
from redress.rules.batches import batch_summary
from redress.checks.emission_checks import check_plan, gate_fingerprint, stage_plan
from redress.rules.payments import LEDGER_SQL, overpayments, payments_due
from redress.rules.plans import (bank_days_from, dated_before_today, dated_in_the_past, past_claim_deadline,
                                 payment_kinds, plan_summary)
from redress.rules.vouchers import with_voucher_parts
from redress.disbursement.plan import save_plan
from redress.outbox.audit import refuse_ledger_unlike_batches
from redress.disbursement.planning import changed_accounts, plan_payments, shared_accounts
from redress.disbursement.release import release


def recover_outbox(ctx: RunContext) -> list[str]:
    """Step 1: settle folders left by a run that stopped between writing and publishing."""
    if not ctx.batches_dir.is_dir():
        return []
    with connect(ctx.warehouse) as con:
        committed = {r[0] for r in con.execute("SELECT batch_id FROM batches").fetchall()}
    return outbox.settle_leftovers(
        ctx.batches_dir, lambda batch_id: batch_id in committed and not (ctx.batches_dir / batch_id).exists(),
        lambda tmp, batch_id: outbox.publish(tmp, ctx.batches_dir / batch_id))


@task(name="disburse", task_run_name="disburse", cache_policy=NO_CACHE, timeout_seconds=3600)
def disburse(ctx: RunContext, settings: Settings) -> DisburseResult:
    """Stage 4 (SPEC "Payments"): the steps above; returns a DisburseResult
    (redress/results.py)."""
    logger = get_run_logger()
    policy = ctx.policy()
    recovered = recover_outbox(ctx)
    with connect(ctx.warehouse) as con:
        # a ledger edited by hand: what is owed cannot be read from it; and the released
        # batches whose folder is gone, before this run's own are published
        gone = refuse_ledger_unlike_batches(con, ctx.data_dir)
        ent = export(con, "SELECT customer_id, reason, amount, rail FROM entitlements", ctx.work_dir / "ent.parquet")
        ledger = export(con, LEDGER_SQL, ctx.work_dir / "ledger.parquet")  # with the run order (payments.pending)
        claimants = con.sql("SELECT DISTINCT customer_id FROM claims").pl()
        (started_at,), = con.execute("SELECT started_at FROM runs WHERE run_id = ?", [ctx.run_id]).fetchall()
        sharing = con.sql(claims_table.shared_accounts_sql()).pl()
        # Planned batches count too: a batch id shown to finance in a plan is never
        # given to another batch, even once that plan is rejected or superseded.
        seqs = con.execute("""
            SELECT rail, value_date, max(CAST(regexp_extract(batch_id, '-([0-9]+)$', 1) AS BIGINT)) + 1
            FROM (SELECT rail, value_date, batch_id FROM batches
                  UNION ALL SELECT rail, value_date, batch_id FROM plan_batches) GROUP BY ALL""").fetchall()
        released_rows = con.execute("""
            SELECT value_date, sum(control_sum) FROM batches WHERE rail = ? GROUP BY ALL
        """, [BANK_TRANSFER]).fetchall()
    released = {day: int(total) for day, total in released_rows}  # bank-transfer cash per value date
    zone = ZoneInfo(policy.timezone)
    started_on = started_at.astimezone(zone).date()
    # Read once for the plan: its dates and what it says of them agree even if midnight
    # passes while it is made (found by the fix review); the release reads the clock again.
    today = policy.today()
    due = with_voucher_parts(payments_due(pl.scan_parquet(ent, glob=False), pl.scan_parquet(ledger, glob=False),
                                          policy, claimants.lazy()), policy)
    due.sink_parquet(ctx.work_dir / "due.parquet")
    over = overpayments(pl.scan_parquet(ent, glob=False), pl.scan_parquet(ledger, glob=False))
    over.write_parquet(ctx.overpayments_file)  # listed by the report stage (SPEC "Ledger": listed in the run report)
    with connect(ctx.warehouse) as con:
        # A claimant is paid to their latest claim's account, never the master's (SPEC
        # "Input: claims from customer service").
        plan_file = plan_payments(con, ctx.work_dir / "due.parquet", policy, ctx.run_date,
                                  claims_table.paying_accounts_sql(),
                                  next_seq={(rail, day): seq for rail, day, seq in seqs}, released=released,
                                  work_dir=ctx.work_dir,
                                  bank_from=bank_days_from(ctx.run_date, started_on, today))
    (ctx.work_dir / "due.parquet").unlink()
    # From here on the plan is a file: DuckDB, which spills, and Polars's streaming
    # engine read it (at 33.7M customers it is 30M payments, about 4 GB as a frame).
    summary = batch_summary(pl.scan_parquet(plan_file, glob=False)).collect()
    past = dated_before_today(summary, today)  # a catch-up's, as the SPEC dates them; none of any other run
    with connect(ctx.warehouse) as con:
        shared = shared_accounts(con, plan_file)
        changed = changed_accounts(con, plan_file)
    # SPEC "Approval before release": the checked plan is kept and the run stops with
    # it; `redress approve` releases exactly it (redress/disbursement/release.py). An empty plan has
    # nothing to approve.
    waiting = policy.require_approval and summary.height > 0
    if waiting:
        plan = plan_summary(payment_kinds(pl.scan_parquet(plan_file, glob=False),
                                          pl.scan_parquet(ledger, glob=False), claimants.lazy()),
                            released, policy.daily_cash_cap, sharing)
        plan["shared_payee_accounts"] = shared
        plan["changed_payee_accounts"] = changed
        plan["dated_before_today"] = past

    # The gate: GX opens the warehouse itself, so this connection is closed first.
    with connect(ctx.warehouse) as con:
        stage_plan(con, plan_file, summary, policy.voucher_products, policy_id=policy.id, run_date=ctx.run_date)
    check_plan(ctx, policy)
    checkpoint("disburse:planned", settings)

    created_at = datetime.now(timezone.utc).replace(microsecond=0)
    if waiting:
        with connect(ctx.warehouse) as con:  # what the gate passed, kept with the plan
            gate = gate_fingerprint(con, policy)
        save_plan(ctx, settings, policy, created_at, plan, gate)
    else:
        first_bank_day = summary.filter(pl.col("rail") == BANK_TRANSFER)["value_date"].min()
        if why := dated_in_the_past(ctx.run_id, ctx.run_date, started_on, policy.today(), first_bank_day,
                                    policy.timezone, approving=False):
            raise RedressError(why)
        release(ctx, settings, policy, plan_file, summary, created_at)

    per_rail = summary.group_by("rail").agg(pl.col("item_count").sum().alias("payments"),
                                            pl.col("control_sum").sum().alias("amount")).sort("rail")
    result = DisburseResult(
        batches=summary.height,
        payments=int(summary["item_count"].sum() or 0),
        amount_krw=int(summary["control_sum"].sum() or 0),
        per_rail={r["rail"]: RailTotal(payments=r["payments"], amount_krw=r["amount"]) for r in per_rail.to_dicts()},
        treasury=tuple(
            TreasuryDay(value_date=r["value_date"].isoformat(), amount_krw=r["amount"],
                        daily_cash_cap_krw=policy.daily_cash_cap)
            for r in summary.filter(pl.col("rail") == BANK_TRANSFER).group_by("value_date")
            .agg(pl.col("control_sum").sum().alias("amount")).sort("value_date").to_dicts()
        ),
        overpayments=Overpayments(
            customers=int((over["paid_out_above"] > 0).sum()), amount_krw=int(over["paid_out_above"].sum() or 0),
            held_customers=int((over["held_above"] > 0).sum()), held_krw=int(over["held_above"].sum() or 0)),
        recovered_batches=tuple(recovered),
        awaiting_approval=waiting,
        shared_accounts=shared["accounts"], payees_sharing=shared["payees"], shared_krw=shared["amount_krw"],
        changed_payees=changed["payees"], changed_krw=changed["amount_krw"],
        claim_deadline_passed=past_claim_deadline(ctx.run_date, policy.claim_deadline),
        folders_gone=gone[0], gone_payments=gone[1], gone_krw=gone[2],
        before_today_payments=past["payments"], before_today_krw=past["amount_krw"],
        before_today_from=past["first"], before_today_until=past["last"], today=past["today"],
    )
    if gone[0]:
        logger.warning("%s released batch folder(s) of %s payments (%s %s) are not in outbox/batches: "
                       "`redress verify` lists them", f"{gone[0]:,}", f"{gone[1]:,}", f"{gone[2]:,}", policy.currency)
    if past["payments"]:
        logger.warning("%s bank transfer(s), %s %s, are dated %s to %s, before today (%s in %s), as a catch-up run "
                       "dates them: a bank refuses such a file or moves it to a later day, whose daily cash cap does "
                       "not count it (see summary.md)", f"{past['payments']:,}", f"{past['amount_krw']:,}",
                       policy.currency, past["first"], past["last"], past["today"], policy.timezone)
    logger.info("%s %s payments in %s batches, %s %s",
                "planned, waiting for approval," if waiting else "disbursed",
                f"{result.payments:,}", f"{result.batches:,}", f"{result.amount_krw:,}", policy.currency)
    return result
