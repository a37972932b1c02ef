"""Stage 1, ingest: every new inbox file into the warehouse, or into quarantine whole.

New customers snapshots are checked by the `customers_staging` suite before they become
the current master: one failing row rejects the whole file (its failing rows are listed
in quarantine) and the previous snapshot stays current.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import duckdb
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress import escape
from redress.context import RunContext
from redress.errors import RedressError
from redress.results import FileRead, IngestResult
from redress.runtime.faults import checkpoint
from redress.settings import Settings
from redress.warehouse import connect, files, quarantine
from redress.inbox import reading as io
from redress.checks.quality import check
from redress.runtime.retry_policy import BACKOFF_SECONDS, JITTER, io_errors_only
from redress.checks.suites import failing_rows_of


def record(con, f: io.InboxFile, ctx: RunContext, status: str, reason=None, rows=None) -> FileRead:
    files.record(con, sha256=f.sha256, name=f.name, kind=f.kind, size_bytes=f.size_bytes, status=status,
                 reason=reason, rows=rows, run_id=ctx.run_id)
    if status not in ("accepted", "duplicate_file"):
        quarantine.add_file(con, ctx.run_id, f.kind, f.sha256, f.name,
                            status if status != "rejected" else "rejected_file", reason)
    return FileRead(kind=f.kind, file_name=f.name, file_sha256=f.sha256, status=status, rows_read=rows)


def _ingest_scope(con, f: io.InboxFile, ctx: RunContext, tz: str, settings: Settings) -> FileRead:
    """Read the file once, straight into scope_rows, in one transaction with its record."""
    with io.loading(con):
        con.execute("BEGIN")
        try:
            rows = io.load_scope_rows(con, io.scope_frame(f.path), f.sha256, tz)
            f.check_unchanged()  # what was loaded is the content the sha256 names
        except BaseException:
            con.execute("ROLLBACK")
            raise
        entry = record(con, f, ctx, "accepted", rows=rows)
        checkpoint("ingest:before-commit", settings)
        con.execute("COMMIT")
    return entry


def _ingest_customers(ctx: RunContext, f: io.InboxFile, tz: str, settings: Settings) -> FileRead:
    """Read the file once into customers_staging, check it with GX (which needs the
    warehouse to itself), then promote or reject."""
    with connect(ctx.warehouse) as con:
        rows = io.load_customers_staging(con, io.customers_frame(f.path), tz)
        try:
            f.check_unchanged()  # what was loaded is the content the sha256 names
        except io.FileChanged:
            con.execute("DROP TABLE customers_staging")
            raise
    checked = check(ctx, "customers_staging", "customers_staging", label=f"customers_staging-{f.name}")
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
            entry = record(con, f, ctx, "rejected", f"{failures.height} failure(s): {', '.join(reasons)}", rows)
        else:
            io.promote_customers(con, f.sha256)
            entry = record(con, f, ctx, "accepted", rows=rows)
        con.execute("DROP TABLE IF EXISTS customers_staging")  # gone when promoted (renamed to customers)
        checkpoint("ingest:customers-before-commit", settings)
        con.execute("COMMIT")
    return entry


def not_read(kind: str, name: str, why: str, logger) -> FileRead:
    """A stage-result entry (and one warning) for an inbox entry this run does not read."""
    # A file name may hold a newline (a forged log line) or terminal escapes.
    logger.warning("%s/%s: not read: %s", kind, escape.terminal(name), escape.terminal(why))
    return FileRead(kind=kind, file_name=name, file_sha256=None, status="not_read", rows_read=None, detail=why)


def each_new_file(ctx: RunContext, settings: Settings, kinds: tuple[str, ...],
                  load: Callable[[io.InboxFile], FileRead]) -> list[FileRead]:
    """Calls `load` on every inbox file of these kinds whose content was not seen before,
    in read order (redress.inbox.reading: oldest modification time first, then natural order of
    names). A file seen before under this name is passed over; the same content under
    another name is recorded as duplicate_file; a text file that is not UTF-8, or one
    `load` rejects whole (FileRejected), is recorded and quarantined with its reason.
    Files still being copied in are waited for (REDRESS_INBOX_QUIET_SECONDS, at most
    REDRESS_INBOX_WAIT_SECONDS); those still changing, links and other non-regular
    entries are not read: each is logged once and listed with status "not_read"."""
    logger = get_run_logger()
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    inbox = io.inbox_files(ctx.data_dir, timedelta(seconds=settings.inbox_quiet_seconds),
                           timedelta(seconds=settings.inbox_wait_seconds), kinds, log=logger.info)
    entries = [not_read(p.kind, p.name, p.why, logger) for p in inbox.passed_over]
    with connect(ctx.warehouse) as con:
        recorded = con.execute("SELECT file_sha256, file_name FROM ingested_files").fetchall()
    seen_pairs, seen_content = set(recorded), {sha for sha, _ in recorded}
    for f in inbox.files:
        if (f.sha256, f.name) in seen_pairs:
            continue
        if f.sha256 in seen_content:
            with connect(ctx.warehouse) as con:
                entries.append(record(con, f, ctx, "duplicate_file", "same content as a file seen before"))
            continue
        try:
            f.check_unchanged()
        except io.FileChanged as exc:
            entries.append(not_read(f.kind, f.name, f"{exc}; read by a later run", logger))
            continue
        seen_content.add(f.sha256)
        try:
            if f.text_problem:
                raise io.FileRejected("unreadable_file", f"{io.NOT_UTF8} (found: {f.text_problem})")
            try:
                entries.append(load(f))
            except io.FileRejected:
                # What was refused must be the content the sha256 names: a file cut short
                # or rewritten while it was read is not recorded as refused (its sha256
                # would pass the whole file over once it is back), a later run reads it.
                f.check_unchanged()
                raise
        except io.FileRejected as rejected:
            with connect(ctx.warehouse) as con:
                entries.append(record(con, f, ctx, rejected.reason, rejected.detail))
        except io.FileChanged as exc:  # nothing was written for it: a later run reads it whole
            seen_content.discard(f.sha256)
            entries.append(not_read(f.kind, f.name, f"{exc}; read by a later run", logger))
            continue
        except duckdb.Error as exc:
            raise RedressError(f"loading {f.kind}/{escape.terminal(f.name)} failed: {exc}") from None
        last = entries[-1]
        logger.info("%s/%s: %s (%s rows)", f.kind, escape.terminal(f.name), last.status, last.rows_read)
    return entries


@task(name="ingest inbox", cache_policy=NO_CACHE, timeout_seconds=3600, retries=len(BACKOFF_SECONDS),
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

    entries = each_new_file(ctx, settings, ("customers", "scope"), load)
    with connect(ctx.warehouse) as con:
        masters = con.execute("SELECT count(*) FROM customers").fetchall()[0][0]
    if masters == 0:
        raise RedressError("no valid customers snapshot: drop one into inbox/customers/ (see quarantine for rejected ones)")
    return IngestResult(files=tuple(entries))
