"""Customer service's verified claims: SPEC "Input: claims from customer service".

A stage of its own after returns and before validate: claims change the ledger (held
claim payments become `cancelled`) and record bank details that the disburse stage of
the same run pays to, like returns do, but they read other tables (notifications for
the reference code, the ledger's claim rail) and have their own suite; folding them into
the returns stage would mix two inputs, two suites and two quarantine kinds in one task.

Each new file of inbox/claims/ (CSV: reference_code, bank_code, bank_account,
verified_at, verified_by) is checked by the `claims_staging` suite: every row is applied
or quarantined with its reason (redress/checks/claims_checks.py), in one transaction
with the file's record, so a file is applied once or not at all. An applied claim is a
`claims` row (the bank details, never written into the customer master) and the
person's held claim payments cancelled. Never retried by Prefect: it changes payment
statuses.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone

import duckdb
import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress import sql, vocabulary
from redress.context import RunContext
from redress.results import ClaimsFileRead, ClaimsResult
from redress.runtime.faults import checkpoint
from redress.settings import Settings
from redress.warehouse import claims as claims_table
from redress.warehouse import connect, quarantine
from redress.warehouse.ledger import cancel_claimed
from redress import inbox as io
from redress.inbox.new_files import each_new_file, record
from redress.checks.claims_checks import NAMED_BY_ANOTHER_FILE, create_claims_staging
from redress.checks.quality import EVERY_REASON, check
from redress.checks.suites import failing_rows_of

# The row as quarantine keeps it, with no more of a bank account than its last 4 digits,
# however the row was split (found by two reviews: a comma in an account puts its digits
# under whichever column follows, and masking each field to its last 4 showed 8 of 12).
# A malformed row keeps only its code and what was wrong. Otherwise each field shows
# only when it is what its column holds: the account (last 4) and the bank code when the
# bank details are valid, verified_at when it is a time, verified_by when it has a
# letter and no run of 5 digits (a staff id, not `KIM/1234567890123`), the code when it
# is letters; anything else is `******`.
_SOUND = "s.malformed IS NULL"
_HIDDEN = "'******'"
ROW_FIELDS = {
    "reference_code": f"""CASE WHEN s.reference_code IS NULL THEN NULL
                               WHEN regexp_full_match(s.reference_code, '[A-Za-z]+') THEN s.reference_code
                               ELSE {_HIDDEN} END""",
    "bank_code": f"""CASE WHEN NOT {_SOUND} OR s.bank_code IS NULL THEN NULL WHEN s.bank_valid THEN s.bank_code
                          ELSE {_HIDDEN} END""",
    "bank_account": f"""CASE WHEN NOT {_SOUND} OR s.bank_account IS NULL THEN NULL
                             WHEN s.bank_valid THEN {quarantine.masked_account('s.bank_account')} ELSE {_HIDDEN} END""",
    "verified_at": f"""CASE WHEN NOT {_SOUND} OR s.verified_at IS NULL THEN NULL
                            WHEN s.verified_at_ts IS NOT NULL THEN s.verified_at ELSE {_HIDDEN} END""",
    "verified_by": f"""CASE WHEN NOT {_SOUND} OR s.verified_by IS NULL THEN NULL
                            WHEN regexp_matches(s.verified_by, '[A-Za-z]') AND NOT regexp_matches(s.verified_by, '[0-9]{{5}}')
                            THEN s.verified_by ELSE {_HIDDEN} END""",
    "malformed": "s.malformed",
}


def codes_named_by_several(files: list[io.InboxFile], work_dir) -> frozenset[str]:
    """The reference codes (typed_code form) that more than one of these claims files
    names: in a sound row, or anywhere in a malformed row (as within one file:
    claims_checks named_by_malformed; found by review, a malformed row in another file
    did not block the code). A row for one is `repeated_reference_code` in each
    (claims_checks named_elsewhere), as a code named twice in one file is. A file that
    cannot be read names none (it is refused whole when its turn comes). Claims files are
    a desk's day of calls: each is read twice, whole, here and when applied."""
    named: dict[str, int] = {}
    for f in files:
        try:
            frame = io.claims_frame(f.path, work_dir).collect()
        except (io.FileRejected, OSError, pl.exceptions.PolarsError):
            continue
        with duckdb.connect() as con:
            con.register("claims_rows", frame)
            codes = {code for (code,) in con.execute(f"""
                SELECT reference_code FROM claims_rows WHERE malformed IS NULL AND reference_code IS NOT NULL
                UNION SELECT replace(unnest({sql.names("as_written")}), ' ', '') FROM claims_rows
                WHERE malformed IS NOT NULL""").fetchall()}
        for code in codes:
            named[code] = named.get(code, 0) + 1
    return frozenset(code for code, files_naming in named.items() if files_naming > 1)


def codes_held_since_the_last_run_that_ended(con) -> frozenset[str]:
    """The codes that a run stopped half-way since the last run that succeeded found named
    by two claims files (NAMED_BY_ANOTHER_FILE): its rerun reads only the files it did not
    get to, and must hold them as the stopped run would have (found by review: killed
    after the first desk's file, the rerun paid the second desk's account)."""
    return frozenset(code for (code,) in con.execute("""
        SELECT DISTINCT json_extract_string(q.row_json, '$.reference_code') FROM quarantine q
        WHERE q.kind = 'claims' AND q.reason = ? AND q.detail = ?
          AND q.run_id IN (SELECT run_id FROM runs WHERE outcome <> 'succeeded' AND started_at > (
                  SELECT coalesce(max(started_at), '-infinity'::TIMESTAMPTZ) FROM runs WHERE outcome = 'succeeded'))
          AND json_extract_string(q.row_json, '$.reference_code') IS NOT NULL""",
        [vocabulary.REPEATED_REFERENCE_CODE, NAMED_BY_ANOTHER_FILE]).fetchall())


def _apply_file(ctx: RunContext, f: io.InboxFile, settings: Settings,
                named_elsewhere: frozenset[str] = frozenset()) -> ClaimsFileRead:
    policy = ctx.policy()
    staged = ctx.work_dir / f"claims-{f.sha256[:16]}.parquet"
    rows = io.stage(io.claims_frame(f.path, ctx.work_dir), staged)
    with connect(ctx.warehouse) as con:
        create_claims_staging(con, staged, policy.timezone, policy.claim_deadline, max_attempts=policy.max_attempts,
                              named_elsewhere=named_elsewhere)
    checked = check(ctx, "claims_staging", "claims_staging", label=f"claims_staging-{f.name}", held=EVERY_REASON)
    failures = failing_rows_of(ctx.warehouse, checked)
    claimed_at = datetime.now(timezone.utc)
    with connect(ctx.warehouse) as con:
        con.register("failures", failures)
        con.execute("BEGIN")
        quarantine.add_failing_rows(con, run_id=ctx.run_id, kind="claims", sha256=f.sha256, file_name=f.name,
                                    staging="claims_staging", row_fields=ROW_FIELDS, detail_sql="s.detail")
        applied = claims_table.record_accepted(con, sha256=f.sha256, run_id=ctx.run_id, claimed_at=claimed_at)
        cancelled_krw = con.execute(
            "SELECT coalesce(sum(cancelled_amount), 0) FROM claims WHERE file_sha256 = ? AND run_id = ?",
            [f.sha256, ctx.run_id]).fetchall()[0][0]
        cancelled = cancel_claimed(con, ctx.run_id)
        whole_file = failures.filter(failures["row_number"].is_null()).height > 0
        if whole_file:
            reasons = ", ".join(sorted(set(failures["reason"].to_list())))
            entry = record(con, f, ctx, "rejected", f"not applied: {reasons}", rows)
        else:
            entry = record(con, f, ctx, "accepted", rows=rows)
        entry = ClaimsFileRead(**asdict(entry), claims_applied=applied, payments_cancelled=cancelled,
                               cancelled_krw=int(cancelled_krw), rows_quarantined=failures.height)
        con.execute("DROP TABLE claims_staging")
        checkpoint("claims:before-commit", settings)
        con.execute("COMMIT")
        checkpoint("claims:committed", settings)
    return entry


@task(name="apply claims", task_run_name="apply claims", cache_policy=NO_CACHE, timeout_seconds=1800)
def apply_claims(ctx: RunContext, settings: Settings) -> ClaimsResult:
    """Every new claims file, checked and applied (or quarantined); returns each file
    met, in read order, and the totals (a file not read counts zero everywhere).
    SPEC "Input: claims from customer service"."""
    several: set[str] = set()  # codes named by more than one of this run's claims files

    def before(files: list[io.InboxFile]) -> None:
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        several.update(codes_named_by_several(files, ctx.work_dir))
        with connect(ctx.warehouse) as con:
            several.update(codes_held_since_the_last_run_that_ended(con))

    entries = [e if isinstance(e, ClaimsFileRead) else ClaimsFileRead(**asdict(e))
               for e in each_new_file(ctx, settings, ("claims",),
                                      lambda f: _apply_file(ctx, f, settings, frozenset(several)), before=before)]
    with connect(ctx.warehouse) as con:
        (accounts, claimants), = con.execute(f"""
            SELECT count(DISTINCT (bank_code, bank_account)), count(*)
            FROM ({claims_table.shared_accounts_sql()})""").fetchall()
    result = ClaimsResult(files=tuple(entries),
                          claims_applied=sum(e.claims_applied for e in entries),
                          payments_cancelled=sum(e.payments_cancelled for e in entries),
                          cancelled_krw=sum(e.cancelled_krw for e in entries),
                          rows_quarantined=sum(e.rows_quarantined for e in entries),
                          shared_accounts=accounts, claimants_sharing=claimants)
    get_run_logger().info("claims: %s applied, %s held payments cancelled (%s KRW), %s quarantined; "
                          "%s claimants' latest claims share %s bank accounts",
                          *(f"{n:,}" for n in (result.claims_applied, result.payments_cancelled, result.cancelled_krw,
                                               result.rows_quarantined, claimants, accounts)))
    return result
