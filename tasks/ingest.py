"""Stage 1, ingest: every new inbox file into the warehouse, or into quarantine whole.

New customers snapshots are checked by the `customers_staging` suite before they become
the current master: one failing row rejects the whole file (its failing rows are listed
in quarantine) and the previous snapshot stays current.
"""

from __future__ import annotations

import dataclasses

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress.context import RunContext
from redress.errors import RedressError
from redress.results import FileRead, IngestResult
from redress.runtime.faults import checkpoint
from redress.settings import Settings
from redress import escape
from redress.warehouse import connect, files, quarantine
from redress.warehouse import customers as customers_table
from redress import inbox as io
from redress.inbox.new_files import each_new_file, evidence_gone, record
from redress.inbox.retime import retime
from redress.checks.quality import EVERY_REASON, check
from redress.runtime.retry_policy import BACKOFF_SECONDS, JITTER, io_errors_only
from redress.checks.suites import failing_rows_of
from redress.rules.identity import customer_keys
from redress.vocabulary import ACCEPTED, NOT_READ, REJECTED


def _ingest_scope(con, f: io.InboxFile, ctx: RunContext, tz: str, settings: Settings) -> FileRead:
    """Read the file once, straight into scope_rows, in one transaction with its record."""
    with io.loading(con):
        con.execute("BEGIN")
        try:
            rows = io.load_scope_rows(con, io.scope_frame(f.path, ctx.work_dir), f.sha256, tz, ctx.work_dir)
            f.check_unchanged()  # what was loaded is the content the sha256 names
        except BaseException:
            con.execute("ROLLBACK")
            raise
        entry = record(con, f, ctx, ACCEPTED, rows=rows, read_in=tz)
        checkpoint("ingest:before-commit", settings)
        con.execute("COMMIT")
    return entry


def unusable_contacts(con) -> list[str]:
    """customers_staging's phones and emails given but not well-formed (SPEC "Identity
    resolution"), as a line for the run's summary, or none: kept as given, a snapshot is
    not refused for them, but no scope row is matched to them and no message goes to
    them, which the forensics team should know (found by review: a master phone
    `(+82) 10-...` matched nobody, and the customer's own scope rows made a non-member,
    without a word). Counts only: which customers is a query on `customers` (README)."""
    (phones, emails), = con.execute("""
        SELECT count(*) FILTER (phone IS NOT NULL AND phone_e164 IS NULL),
               count(*) FILTER (email IS NOT NULL AND email_norm IS NULL) FROM customers_staging""").fetchall()
    parts = [f"{n:,} {what}" for n, what in ((phones, "phone(s)"), (emails, "email(s)")) if n]
    return [f"{' and '.join(parts)} on file not well-formed, kept as given: no scope row is matched by them and "
            "no message goes to them"] if parts else []


def _ingest_customers(ctx: RunContext, f: io.InboxFile, tz: str, settings: Settings) -> FileRead:
    """Read the file once into customers_staging, check it with GX (which needs the
    warehouse to itself), then promote or reject."""
    with connect(ctx.warehouse) as con:
        rows = io.load_customers_staging(con, customer_keys(io.customers_frame(f.path, ctx.work_dir)), tz, ctx.work_dir)
        try:
            f.check_unchanged()  # what was loaded is the content the sha256 names
        except io.FileChanged:
            con.execute("DROP TABLE customers_staging")
            raise
    checked = check(ctx, "customers_staging", "customers_staging", label=f"customers_staging-{f.name}", held=EVERY_REASON)
    failures = failing_rows_of(ctx.warehouse, checked)
    with connect(ctx.warehouse) as con:
        con.execute("BEGIN")
        if not checked.success:
            reasons = sorted(set(failures["reason"].to_list()))
            con.register("failures", failures)
            # Kept as long as the warehouse and read by whoever fixes the file: the row is found by its
            # number and customer id; the name is not kept and the account is masked.
            quarantine.add_failing_rows(
                con, run_id=ctx.run_id, kind="customers", sha256=f.sha256, file_name=f.name,
                staging="customers_staging", detail="snapshot rejected whole", row_fields={
                    "customer_id": "s.customer_id", "name_given": "s.name IS NOT NULL", "email": "s.email",
                    "phone": "s.phone", "status": "s.status", "created_at": "s.created_at",
                    "closed_at": "s.closed_at", "is_test": "s.is_test", "payout_method": "s.payout_method",
                    "bank_code": "s.bank_code", "bank_account": quarantine.masked_account("s.bank_account")})
            entry = record(con, f, ctx, REJECTED, f"{failures.height} failure(s): {', '.join(reasons)}", rows)
        else:
            left, paid, claimed, claimed_krw = customers_table.left_out(con)
            unpaid = (f", {claimed:,} of them claimants whose claimed transfer ({claimed_krw:,} KRW in all) is not "
                      "issued yet and now waits for a snapshot that holds them" if claimed else "")
            said = [f"{left:,} customer(s) of the previous snapshot not in it, {paid:,} of them paid or held "
                    f"before{unpaid}: no decision and nothing more paid for them, nothing taken back"] if left else []
            said += unusable_contacts(con)
            io.promote_customers(con, f.sha256)
            entry = record(con, f, ctx, ACCEPTED, rows=rows, read_in=tz)
            if said:  # said in the run's summary beside the file (found by review: a silent drop)
                entry = dataclasses.replace(entry, detail="; ".join(said))
                get_run_logger().warning("customers/%s: %s", escape.terminal(f.name), entry.detail)
        con.execute("DROP TABLE IF EXISTS customers_staging")  # gone when promoted (renamed to customers)
        checkpoint("ingest:customers-before-commit", settings)
        con.execute("COMMIT")
    return entry


@task(name="ingest inbox", task_run_name="ingest inbox", cache_policy=NO_CACHE, timeout_seconds=3600, retries=len(BACKOFF_SECONDS),
      retry_delay_seconds=BACKOFF_SECONDS, retry_jitter_factor=JITTER, retry_condition_fn=io_errors_only)
def ingest_inbox(ctx: RunContext, settings: Settings) -> IngestResult:
    """Record every new customers and scope file (by content) and load the accepted ones;
    returns each file met, in read order. Returns are applied by their own stage
    (tasks/returns.py)."""
    tz = ctx.policy().timezone

    def load(f: io.InboxFile) -> FileRead:
        if f.kind == "scope":
            with connect(ctx.warehouse) as con:
                return _ingest_scope(con, f, ctx, tz, settings)
        return _ingest_customers(ctx, f, tz, settings)

    listed: list[tuple[str, str, str | None]] = []
    entries = each_new_file(ctx, settings, ("customers", "scope"), load, stage="ingest", listed=listed)
    with connect(ctx.warehouse) as con:
        masters = con.execute("SELECT count(*) FROM customers").fetchall()[0][0]
        if masters == 0:
            # a snapshot there but not read (its name, its permissions, still being copied)
            # is said, never "drop one" while one is there (found by review)
            unread = [e for e in entries if e.kind == "customers" and e.status == NOT_READ]
            why = (f"; {len(unread)} file(s) in inbox/customers/ not read, first {escape.terminal(unread[0].file_name)}: "
                   f"{unread[0].detail}" if unread else "")
            raise RedressError("no valid customers snapshot: drop one into inbox/customers/ (see quarantine for "
                               f"rejected ones){why}")
        evidence = files.evidence(con)  # read once: the accepted files the decisions rest on
        retimed = retime(con, tz, evidence).line(tz)  # a new policy timezone: earlier files' times read again
        gone = evidence_gone(evidence, listed)
    logger = get_run_logger()
    if retimed:
        logger.info("ingest: %s", retimed)
    if gone:
        logger.warning("ingest: %s file(s) read before are no longer in the inbox as read; their rows stay "
                       "evidence (the run summary lists them)", f"{len(gone):,}")
    return IngestResult(files=tuple(entries), retimed=retimed, gone=gone)
