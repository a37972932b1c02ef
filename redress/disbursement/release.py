"""The release steps of the disburse stage, shared by a run released at once and by an
approved plan (SPEC "Ledger: paying exactly once", "Approval before release").

The plan is staged in the warehouse and passed the emission suites before this runs
(redress/checks/emission_checks.py). Then, in the order that leaves nothing half done
when the process is killed at any point (tasks/disburse.py, steps 4-6):
4. every batch folder is written under its temporary name;
5. the ledger rows and batches are committed in one transaction, with the plan's
   approval (plans.state, runs.approved_*) when it is an approved plan;
6. the folders are moved into place.
A rerun (or a second `redress approve`) first settles the temporary folders a killed one
left (tasks/disburse.py recover_outbox): published when committed, else deleted.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from redress.checks.emission_checks import drop_plan, planned_payments_sql
from redress.context import RunContext
from redress.outbox import files as outbox
from redress.inbox import sha256_of
from redress.outbox.pain001 import pain001
from redress.policy import Policy
from redress.rules.batches import bank_file_reference
from redress.rules.payments_file import payment_files
from redress.runtime import progress
from redress.runtime.faults import checkpoint
from redress.settings import Settings, debtor
from redress.sql import file_path
from redress.vocabulary import APPROVED, BANK_TRANSFER
from redress.warehouse import connect
from redress.warehouse import ledger as ledger_table
from redress.warehouse import plans as plans_table
from redress.warehouse import runs as runs_table

PAIN_COLUMNS = ("payment_id", "customer_id", "amount", "bank_code", "bank_account")
# Batch folders written at once (release): two, one per core of the machine it is sized for.
WRITERS = 2


@dataclass(frozen=True)
class Approval:
    """Who released a waiting plan (the name given, and the operating-system account of
    the process that released it), when (UTC, whole seconds) and with what note."""
    by: str
    at: datetime
    note: str | None = None
    os_user: str | None = None

    def manifest_fields(self) -> dict:
        return {"approved_by": self.by, "approved_at": self.at.isoformat(), "approval_note": self.note,
                "approved_os_user": self.os_user}


def release(ctx: RunContext, settings: Settings, policy: Policy, planned: Path, summary: pl.DataFrame,
            created_at: datetime, approval: Approval | None = None, payments_staged: bool = True,
            stage: str = "disburse") -> None:
    """Steps 4-6 for the staged plan: `planned`, the Parquet file it was staged from (one
    row per payment, with bank details and voucher parts, by batch_id and payment_id),
    and `summary` (one row per batch: batch_id, rail, value_date, item_count,
    control_sum). Ledger rows carry ctx.run_id, the run that planned them; `approval`
    goes into every manifest and into `runs`. `payments_staged` False: only
    `planned_batches` is staged, and the ledger rows come from `planned` itself, the file
    an approval's gate fingerprint read (redress/checks/emission_checks.py). `stage`: the
    console stage its progress shows under (`release` when an approval releases it)."""
    payer = debtor(settings) if (summary["rail"] == BANK_TRANSFER).any() else None
    ctx.batches_dir.mkdir(parents=True, exist_ok=True)
    payments = pl.scan_parquet(planned, glob=False)

    def folder(meta: dict, rows: pl.DataFrame) -> tuple[str, str]:
        manifest = dict(
            meta, value_date=meta["value_date"].isoformat(), currency=policy.currency,
            policy_id=policy.id, run_id=ctx.run_id, created_at=created_at.isoformat(),
            # so that a warehouse rebuilt from the outbox still knows which rules paid
            # under this policy id (redress/warehouse/runs.py paid_under_other_rules)
            policy_rules_sha256=policy.rules_sha256,
            **(approval.manifest_fields() if approval else {}),
        )
        extra = {}
        if meta["rail"] == BANK_TRANSFER:
            reference = bank_file_reference(rows["payment_id"][0].rsplit("-", 1)[0], policy.id)
            manifest["bank_file_reference"] = reference
            extra["pain.001.xml"] = pain001(reference, meta["value_date"], created_at,
                                            rows.select(PAIN_COLUMNS), payer, currency=policy.currency)
        written = outbox.write_batch(ctx.batches_dir, manifest, payment_files(rows, meta["rail"], policy), extra)
        return meta["batch_id"], sha256_of(written / "manifest.json")

    # Folders are written WRITERS at a time: much of a folder's time is single-threaded
    # (deflating the sheet, hashing, fsync, the CSV), and those release the GIL. Batches
    # are read in order here and handed over; at most WRITERS + 1 are held at once, and
    # each written folder is waited for in batch order, so the checkpoints and progress
    # come as they did one at a time. Each folder's bytes depend only on its own rows.
    pending: deque[Future] = deque()
    offset = 0
    manifests: dict[str, str] = {}  # batch id -> its manifest's SHA-256, kept in `batches`
    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="batch-folder") as pool:
        def written() -> None:
            batch_id, manifest_sha256 = pending.popleft().result()  # a writer's error is raised here
            manifests[batch_id] = manifest_sha256
            checkpoint("disburse:folder-written", settings)

        for handed, meta in enumerate(summary.to_dicts()):  # one step per batch, not per payment
            # the folders written so far: those handed over and no longer pending
            progress.step(stage, "batches written", handed - len(pending), summary.height)
            # One batch at a time, never the whole plan: the file holds the batches in
            # batch_id order, as `summary` lists them, so each is the next item_count rows.
            rows = payments.slice(offset, meta["item_count"]).collect()
            offset += meta["item_count"]
            if not (rows.height == meta["item_count"] and (rows["batch_id"] == meta["batch_id"]).all()
                    and rows["payment_id"].is_sorted()):  # the file staged and checked: never expected
                raise RuntimeError(f"batch {meta['batch_id']}: the plan file's rows are not the batch's "
                                   f"{meta['item_count']} checked payments in order")
            if len(pending) == WRITERS:
                written()
            pending.append(pool.submit(folder, meta, rows))
        while pending:
            written()
    progress.step(stage, "batches written", summary.height, summary.height)
    checkpoint("disburse:folders-written", settings)

    with connect(ctx.warehouse) as con:
        # Committed from the staged plan: exactly the rows the suites passed.
        con.execute("BEGIN")
        source = {} if payments_staged else {"payments": planned_payments_sql(policy.voucher_products),
                                             "params": [file_path(planned)]}
        ledger_table.issue_planned(con, currency=policy.currency, policy_id=policy.id, run_id=ctx.run_id,
                                   created_at=created_at, manifests=manifests, **source)
        if approval is not None:
            if not plans_table.decide(con, ctx.run_id, APPROVED, by=approval.by, note=approval.note,
                                      at=approval.at, os_user=approval.os_user):
                raise RuntimeError(f"plan {ctx.run_id} stopped waiting during its release")  # the lock forbids it
            runs_table.record_approval(con, ctx.run_id, by=approval.by, note=approval.note, at=approval.at)
        con.execute("COMMIT")
        checkpoint("disburse:committed", settings)
        drop_plan(con)
    for batch_id in summary["batch_id"].to_list():
        outbox.publish(outbox.staging_folder(ctx.batches_dir, batch_id), ctx.batches_dir / batch_id)
        checkpoint("disburse:published-one", settings)
