"""Stage 2, validate: every scope row of every accepted file to exactly one destination.

Evidence is classified under the current customer master and policy. redress/warehouse/increments.py
decides how much of it: all of it when the master, the policy or the rules changed
since the last classification (so a later snapshot or policy is applied to earlier
files too), else only the rows of files not classified yet, appended to the outcome
tables. The conservation count (rows read = exposures + non-members + review +
quarantine) is checked per file and a run whose counts do not balance fails.

Before any outcome is committed, the row rules restated in SQL (redress/checks/input_checks.py)
judge the same rows again, on the same normalised keys, and are compared with the
classification row by row: rows they disagree on go to review as `checks_disagree`
(SPEC "Nothing is lost") and the run goes on, unless the disagreement is broad enough to
be a bug (`input_checks.disagreement_limit`, over all scope rows), which stops it. The
`scope_rows` suite then reports the rows per reason, and its counts must equal the rows
staged per reason. The `scope_exposures` suite then gates the run: a failure there
means a bug upstream, never something to pay on. Only then are the staged rows
committed, in one transaction with the record of the files classified.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress import escape, sql
from redress.context import RunContext
from redress.errors import RedressError
from redress.results import DisagreeingRow, Disagreements, Destinations, FileBalance, ValidateResult
from redress.runtime.faults import checkpoint
from redress.settings import Settings
from redress.warehouse import connect, customers, export, quarantine, scope_rows
from redress.checks import input_checks
from redress.warehouse import increments
from redress.rules.classify import classified_scope
from redress.rules.identity import MOBILE_E164, normalised_master
from redress.rules.notifications import message_address
from redress.vocabulary import ACCEPTED, CHECKS_DISAGREE, EXPOSURE, NON_MEMBER, QUARANTINE, REVIEW, sql_literal
from redress.checks.quality import check, require


# The rows the input checks disagree on (at most `input_checks.disagreement_limit`, a
# small share): each is held in review as checks_disagree, with both answers, whatever
# the classification said. Every other row goes where the classification put it. So
# each staged table is one scan of the classified Parquet, filtered on its destination,
# against this small table (an anti-join, or a join for review): the tens of millions
# of classified rows are never joined to the tens of millions of checked ones, nor
# materialised a second time.
_DISAGREEING = """
    CREATE OR REPLACE TEMP TABLE disagreeing AS
    SELECT file_sha256, row_number, classified_as, checked_as FROM scope_rows_checked WHERE checks_disagree"""

# The classified rows (`c`) the checks agree on; the caller filters c.destination.
_AGREED = """read_parquet($classified, hive_partitioning = false) c
    ANTI JOIN disagreeing d ON c.file_sha256 = d.file_sha256 AND c.row_number = d.row_number"""

# HOLDING: each outcome table and the table holding its new rows until they are committed.
# Staged tables are real tables, not temporary ones: the suites read them through a
# connection of their own (redress/checks/suites.py).
HOLDING = {
    "scope_exposures": "staged_exposures",
    "non_member_exposures": "staged_non_member",
    "review": "staged_review",
    "quarantine": "staged_quarantine",
}

# Rows listed by file and row number in the run summary; the rest are in `review`.
DISAGREEMENTS_LISTED = 50


def _stage_outcomes(con: duckdb.DuckDBPyConnection, classified: Path, run_id: str) -> None:
    """The classified rows of this run, split into the HOLDING tables, each row in
    exactly one: where the classification put it, or in review as checks_disagree when
    `scope_rows_checked` disagrees. No ORDER BY: every reader of these tables orders
    explicitly (redress/warehouse/exports.py, explain, reports)."""
    con.execute(_DISAGREEING)
    path = sql.file_path(classified)
    con.execute(f"""
        CREATE OR REPLACE TABLE staged_exposures AS
        SELECT c.file_sha256, c.row_number, c.resolved_id AS customer_id, c.matched_by, c.data_category,
               c.accessed_at, c.confidence, c.source
        FROM {_AGREED} WHERE c.destination = $destination""", {"classified": path, "destination": EXPOSURE})
    con.execute(f"""
        CREATE OR REPLACE TABLE staged_non_member AS
        SELECT c.file_sha256, c.row_number, {message_address("c.phone_e164", "c.email_norm")} AS recipient,
               c.email_norm, c.phone_e164, c.data_category, c.accessed_at, c.confidence
        FROM {_AGREED} WHERE c.destination = $destination""",
                {"classified": path, "destination": NON_MEMBER, "mobile": MOBILE_E164})
    con.execute(f"""
        CREATE OR REPLACE TABLE staged_review AS
        SELECT c.file_sha256, c.row_number, c.reason, c.matched_by, c.candidates, c.email, c.phone,
               c.data_category, c.accessed_at, c.confidence, NULL::VARCHAR AS classified_as,
               NULL::VARCHAR AS checked_as
        FROM {_AGREED} WHERE c.destination = $destination
        UNION ALL
        SELECT c.file_sha256, c.row_number, {sql_literal(CHECKS_DISAGREE)}, c.matched_by, c.candidates, c.email,
               c.phone, c.data_category, c.accessed_at, c.confidence, d.classified_as, d.checked_as
        FROM read_parquet($classified, hive_partitioning = false) c
        JOIN disagreeing d ON c.file_sha256 = d.file_sha256 AND c.row_number = d.row_number""",
                {"classified": path, "destination": REVIEW})
    con.execute(f"""
        CREATE OR REPLACE TABLE staged_quarantine AS
        SELECT $run_id AS run_id, 'scope' AS kind, c.file_sha256, f.file_name, c.row_number, c.reason,
               NULL::VARCHAR AS detail,
               -- A malformed row (redress/inbox/scope.py): what is wrong with it; its
               -- values may sit under the wrong names, and are not kept.
               CASE WHEN c.malformed IS NOT NULL THEN to_json(struct_pack(malformed := c.malformed))
                    ELSE to_json(struct_pack(customer_id := c.customer_id, email := c.email, phone := c.phone,
                        data_category := c.data_category, accessed_at := c.accessed_at_raw,
                        confidence := c.confidence_raw, source := c.source)) END::VARCHAR AS row_json,
               c.resolved_id AS customer_id
        FROM {_AGREED}
        JOIN (SELECT DISTINCT file_sha256, file_name FROM ingested_files
              WHERE kind = 'scope' AND status = {sql_literal(ACCEPTED)}
              QUALIFY row_number() OVER (PARTITION BY file_sha256 ORDER BY ingested_at, file_name) = 1) f
          ON f.file_sha256 = c.file_sha256
        WHERE c.destination = $destination""",
                {"classified": path, "destination": QUARANTINE, "run_id": run_id})
    con.execute("DROP TABLE disagreeing")


def _commit_outcomes(con: duckdb.DuckDBPyConnection, plan: increments.Plan, run_id: str, settings: Settings) -> None:
    """One transaction: the staged rows become the outcome rows (full: replacing every
    earlier row; incremental: appended), with the record of which files are classified
    under which basis. Killed before COMMIT, nothing of it happened and the rerun plans
    the same; after it, the rerun finds the files classified."""
    con.execute("BEGIN")
    if plan.mode == increments.FULL:
        scope_rows.replace_outcomes(con, HOLDING)
        quarantine.drop_scope_rows(con)
    else:
        scope_rows.append_outcomes(con, HOLDING)
    quarantine.add_staged(con, HOLDING["quarantine"])
    increments.record_classified(con, plan, run_id)
    checkpoint("validate:before-commit", settings)
    con.execute("COMMIT")


def renormalise_master(ctx: RunContext) -> Path:
    """The customer master's identity keys under the current rule (redress/rules/identity.py),
    as Parquet (customer_id, email_norm, phone_e164, created_at) for the classifier;
    rows of `customers` whose stored keys differ (a warehouse written under an older
    rule) are updated, so the SQL checks and notifications read the same keys."""
    stored = ctx.work_dir / "customers_keys.parquet"
    master = ctx.work_dir / "master.parquet"
    with connect(ctx.warehouse) as con:
        export(con, """SELECT customer_id, email, phone, email_norm AS email_stored,
                              phone_e164 AS phone_stored, created_at FROM customers""", stored)
    normalised_master(pl.scan_parquet(stored, glob=False)).sink_parquet(master)
    stored.unlink()  # read: at 150 M customers 7 GB of disk that validate's spill needs
    stale = pl.scan_parquet(master, glob=False).filter(
        pl.col("email_norm").ne_missing(pl.col("email_stored")) | pl.col("phone_e164").ne_missing(pl.col("phone_stored"))
    ).select(pl.len()).collect().item()
    if stale:
        with connect(ctx.warehouse) as con:
            customers.update_identity_keys(con, sql.file_path(master))
        get_run_logger().info("customer master: identity keys of %s customers re-normalised", f"{stale:,}")
    return master


def conservation(con: duckdb.DuckDBPyConnection, staged: list[str] | None = None) -> pl.DataFrame:
    """Per accepted scope file: rows read and rows per destination, and whether they
    balance. `staged`: only these files (sha256), counted in the HOLDING tables, before
    they are committed."""
    t = HOLDING if staged is not None else {name: name for name in HOLDING}
    return con.sql(f"""
        WITH dest AS (
            SELECT file_sha256, {sql_literal(EXPOSURE)} AS d FROM {t['scope_exposures']}
            UNION ALL SELECT file_sha256, {sql_literal(NON_MEMBER)} FROM {t['non_member_exposures']}
            UNION ALL SELECT file_sha256, {sql_literal(REVIEW)} FROM {t['review']}
            UNION ALL SELECT file_sha256, {sql_literal(QUARANTINE)} FROM {t['quarantine']}
                      WHERE kind = 'scope' AND row_number IS NOT NULL)
        SELECT f.file_name, f.file_sha256, f.rows_read,
               count(*) FILTER (d = {sql_literal(EXPOSURE)}) AS exposure,
               count(*) FILTER (d = {sql_literal(NON_MEMBER)}) AS non_member,
               count(*) FILTER (d = {sql_literal(REVIEW)}) AS review,
               count(*) FILTER (d = {sql_literal(QUARANTINE)}) AS quarantine
        FROM ingested_files f LEFT JOIN dest USING (file_sha256)
        WHERE f.kind = 'scope' AND f.status = {sql_literal(ACCEPTED)}
          AND ($every OR f.file_sha256 IN (SELECT unnest($files::VARCHAR[])))
        GROUP BY ALL ORDER BY f.file_name
    """, params={"every": staged is None, "files": list(staged or [])}).pl().with_columns(
        (pl.col("exposure") + pl.col("non_member") + pl.col("review") + pl.col("quarantine")).alias("accounted")
    ).with_columns((pl.col("accounted") == pl.col("rows_read")).alias("balanced"))


def _require_balanced(balance: pl.DataFrame) -> None:
    unbalanced = balance.filter(~pl.col("balanced"))
    if unbalanced.height:
        worst = unbalanced.row(0, named=True)
        raise RedressError(
            f"conservation check failed for scope file {escape.terminal(worst['file_name'])}: "
            f"{worst['rows_read']} rows read, {worst['accounted']} accounted for"
        )


def _cross_check_input(ctx: RunContext, categories: list[str]) -> dict[str, int]:
    """The `scope_rows` suite on `scope_rows_checked`, against the staged rows held in
    quarantine or review per reason; the table stays when they differ."""
    with connect(ctx.warehouse) as con:
        classified = input_checks.classification_counts(con, HOLDING["quarantine"], HOLDING["review"])
    checked = check(ctx, "scope_rows_checked", "scope_rows", parameters={"categories": categories},
                    held=input_checks.HELD_REASONS)
    agreed = input_checks.cross_check(checked, classified)
    with connect(ctx.warehouse) as con:
        input_checks.drop_scope_rows_checked(con)
    return agreed


def _master_keys(ctx: RunContext, plan: increments.Plan) -> Path:
    """The master's identity keys for the classifier (customer_id, email_norm,
    phone_e164, created_at): normalised again only when no record says they were
    computed under this RULES_VERSION (redress/warehouse/increments.py); else as stored at ingest."""
    if plan.renormalise:
        return renormalise_master(ctx)
    with connect(ctx.warehouse) as con:
        return export(con, "SELECT customer_id, email_norm, phone_e164, created_at FROM customers",
                      ctx.work_dir / "master.parquet")


def _classify(ctx: RunContext, plan: increments.Plan, categories: list[str]) -> tuple[int, dict[str, int]]:
    """Classify and check the rows of `plan.files` (all scope rows on the full path),
    stage their outcomes and gate them: conservation per file, the disagreement limit,
    the `scope_rows` cross-check and the `scope_exposures` gate, all before anything is
    committed. Returns (rows disagreeing among them, the suite's agreed counts per reason).

    On the incremental path the suites see only the new rows. That still catches what
    they must: every earlier row was checked when it was committed, under the same
    basis (same master, policy and code), and is unchanged; the new files' rows carry
    file sha256s no earlier row has, so (file_sha256, row_number) stays unique over
    the whole table when it is unique among the new rows."""
    master = _master_keys(ctx, plan)
    every = plan.mode == increments.FULL
    scope, classified = ctx.work_dir / "scope_rows.parquet", ctx.work_dir / "classified.parquet"
    with connect(ctx.warehouse) as con:
        con.execute(
            "COPY (SELECT * FROM scope_rows WHERE ? OR file_sha256 IN (SELECT unnest(?::VARCHAR[]))) "
            "TO ? (FORMAT parquet)", [every, list(plan.files), str(scope)])
        earlier = (0, 0) if every else con.execute(f"""
            SELECT (SELECT count(*) FROM review WHERE reason = ?),
                   (SELECT coalesce(sum(rows_read), 0) FROM ingested_files WHERE kind = 'scope'
                    AND status = {sql_literal(ACCEPTED)} AND file_sha256 IN (SELECT file_sha256 FROM classified_files))
            """, [input_checks.CHECKS_DISAGREE]).fetchall()[0]
    # classified_scope keeps its input's row order: the checks join the two by position.
    classified_scope(pl.scan_parquet(scope, glob=False).with_columns(pl.col("confidence").alias("confidence_raw")),
                     pl.scan_parquet(master, glob=False), categories).sink_parquet(classified)
    # Each work file goes once read for the last time: at 150 M customers they are 17 GB,
    # and the checks and suites below spill tens of GB beside them.
    master.unlink()
    with connect(ctx.warehouse) as con:
        input_checks.create_scope_rows_checked(con, categories, scope, classified)
        scope.unlink()
        disagreeing = input_checks.require_narrow_disagreement(con, earlier)
        _stage_outcomes(con, classified, ctx.run_id)
        classified.unlink()
        _require_balanced(conservation(con, staged=list(plan.files)))
    agreed = _cross_check_input(ctx, categories)
    require(check(ctx, HOLDING["scope_exposures"], "scope_exposures", parameters={"categories": categories},
                  staged_for="scope_exposures"))
    return disagreeing, agreed


@task(name="validate scope", task_run_name="validate scope", cache_policy=NO_CACHE, timeout_seconds=3600)
def validate_scope(ctx: RunContext, settings: Settings) -> ValidateResult:
    """Stage 2 (SPEC "Input: scope files"): classify the scope rows that need it (all on
    the full path, the new files' on the incremental one: redress/warehouse/increments.py), gate
    them, commit them, and report every accepted file's rows per destination.

    Returns a ValidateResult (redress/results.py); raises RedressError (one line) when a gate fails: nothing is committed then."""
    logger = get_run_logger()
    policy = ctx.policy()
    categories = sorted(policy.categories)
    with connect(ctx.warehouse) as con:
        plan = increments.plan(con, ctx.policy_sha256, ctx.run_id)
    logger.info("validate: %s", plan.why)
    agreed: dict[str, int] = {}
    if plan.mode == increments.FULL or plan.files:
        _, agreed = _classify(ctx, plan, categories)
        with connect(ctx.warehouse) as con:
            _commit_outcomes(con, plan, ctx.run_id, settings)
    with connect(ctx.warehouse) as con:
        balance = conservation(con)
        reasons = con.sql("""
            SELECT reason, count(*) AS n FROM quarantine WHERE kind = 'scope' AND row_number IS NOT NULL
            GROUP BY reason ORDER BY reason""").fetchall()
        held = con.execute("SELECT count(*) FROM review WHERE reason = ?",
                           [input_checks.CHECKS_DISAGREE]).fetchall()[0][0]
        listed = input_checks.disagreeing_rows(con, DISAGREEMENTS_LISTED)
    # Checked before the commit for the rows it wrote; again over all, as a guard.
    _require_balanced(balance)
    if held:
        logger.warning("scope rows: %s held in review as checks_disagree", f"{held:,}")
    totals = {d: int(balance[d].sum()) for d in ("exposure", "non_member", "review", "quarantine")}
    totals["rows_read"] = int(balance["rows_read"].sum())
    logger.info("scope rows: %s read, %s exposures, %s non-member, %s in review, %s quarantined",
                *(f"{totals[k]:,}" for k in ("rows_read", "exposure", "non_member", "review", "quarantine")))
    return ValidateResult(
        mode=plan.mode, why=plan.why, classified_files=len(plan.files), destinations=Destinations(**totals),
        quarantine_reasons=dict(reasons), input_checks=agreed,
        checks_disagree=Disagreements(rows=int(held), listed=tuple(DisagreeingRow(**r) for r in listed)),
        files=tuple(FileBalance(**f) for f in balance.drop("file_sha256").to_dicts()))
