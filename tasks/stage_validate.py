"""Stage 2, validate: every scope row of every accepted file to exactly one destination.

All evidence is classified again on every run, under the current customer master and
policy, so a later snapshot or policy is applied to earlier files too. The conservation
count (rows read = exposures + non-members + review + quarantine) is checked per file
and a run whose counts do not balance fails.

Before any outcome is written, the row rules restated in SQL (tasks/input_checks.py)
judge every row again, on the same normalised keys, and are compared with the
classification row by row: rows they disagree on go to review as `checks_disagree`
(SPEC "Nothing is lost") and the run goes on, unless the disagreement is broad enough to
be a bug (`input_checks.disagreement_limit`), which stops it. The `scope_rows` suite
then reports the rows per reason, and its counts must equal the rows held per reason.
The `scope_exposures` suite then gates the run: a failure there means a bug upstream,
never something to pay on.
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
from redress.warehouse import connect, export
from tasks import input_checks
from tasks.classify import classified_scope
from tasks.identity import normalised_master
from tasks.quality import check, require


# Each classified row with its final destination: a row the input checks disagree on is
# held in review as checks_disagree, with both answers, whatever the classification said.
_PLACED = """(
    SELECT c.* REPLACE (
               CASE WHEN d.checks_disagree THEN 'review' ELSE c.destination END AS destination,
               CASE WHEN d.checks_disagree THEN 'checks_disagree' ELSE c.reason END AS reason),
           CASE WHEN d.checks_disagree THEN d.classified_as END AS classified_as,
           CASE WHEN d.checks_disagree THEN d.checked_as END AS checked_as
    FROM read_parquet($classified) c
    LEFT JOIN scope_rows_checked d USING (file_sha256, row_number))"""

# Rows listed by file and row number in the run summary; the rest are in `review`.
DISAGREEMENTS_LISTED = 50


def _replace_outcomes(con: duckdb.DuckDBPyConnection, classified: Path, run_id: str) -> None:
    """Rebuild the outcome tables from the classified Parquet and `scope_rows_checked`."""
    src = {"classified": sql.file_path(classified)}
    con.execute("BEGIN")
    con.execute(f"""
        CREATE OR REPLACE TABLE scope_exposures AS
        SELECT file_sha256, row_number, resolved_id AS customer_id, matched_by, data_category,
               accessed_at, confidence, source
        FROM {_PLACED} WHERE destination = 'exposure' ORDER BY file_sha256, row_number""", src)
    con.execute(f"""
        CREATE OR REPLACE TABLE non_member_exposures AS
        SELECT file_sha256, row_number, coalesce(phone_e164, email_norm) AS recipient, email_norm,
               phone_e164, data_category, accessed_at, confidence
        FROM {_PLACED} WHERE destination = 'non_member' ORDER BY file_sha256, row_number""", src)
    con.execute(f"""
        CREATE OR REPLACE TABLE review AS
        SELECT file_sha256, row_number, reason, matched_by, candidates, email, phone,
               data_category, accessed_at, confidence, classified_as, checked_as
        FROM {_PLACED} WHERE destination = 'review' ORDER BY file_sha256, row_number""", src)
    # Row-level scope quarantine is re-derived each run; rejected files stay as recorded.
    con.execute("DELETE FROM quarantine WHERE kind = 'scope' AND row_number IS NOT NULL")
    con.execute(f"""
        INSERT INTO quarantine
        SELECT $run_id, 'scope', c.file_sha256, f.file_name, c.row_number, c.reason, NULL,
               to_json(struct_pack(customer_id := c.customer_id, email := c.email, phone := c.phone,
                   data_category := c.data_category, accessed_at := c.accessed_at_raw,
                   confidence := c.confidence_raw, source := c.source))::VARCHAR
        FROM {_PLACED} c
        JOIN (SELECT DISTINCT file_sha256, file_name FROM ingested_files WHERE status = 'accepted'
              QUALIFY row_number() OVER (PARTITION BY file_sha256 ORDER BY ingested_at, file_name) = 1) f
          USING (file_sha256)
        WHERE c.destination = 'quarantine' ORDER BY c.file_sha256, c.row_number""", src | {"run_id": run_id})
    con.execute("COMMIT")


def renormalise_master(ctx: RunContext) -> Path:
    """The customer master's identity keys under the current rule (tasks/identity.py),
    as Parquet (customer_id, email_norm, phone_e164, created_at) for the classifier;
    rows of `customers` whose stored keys differ (a warehouse written under an older
    rule) are updated, so the SQL checks and notifications read the same keys."""
    stored = ctx.work_dir / "customers_keys.parquet"
    master = ctx.work_dir / "master.parquet"
    with connect(ctx.warehouse) as con:
        export(con, """SELECT customer_id, email, phone, email_norm AS email_stored,
                              phone_e164 AS phone_stored, created_at FROM customers""", stored)
    normalised_master(pl.scan_parquet(stored, glob=False)).sink_parquet(master)
    stale = pl.scan_parquet(master, glob=False).filter(
        pl.col("email_norm").ne_missing(pl.col("email_stored")) | pl.col("phone_e164").ne_missing(pl.col("phone_stored"))
    ).select(pl.len()).collect().item()
    if stale:
        with connect(ctx.warehouse) as con:
            con.execute("""
                UPDATE customers SET email_norm = m.email_norm, phone_e164 = m.phone_e164
                FROM read_parquet(?) m
                WHERE customers.customer_id = m.customer_id
                  AND (m.email_norm IS DISTINCT FROM m.email_stored OR m.phone_e164 IS DISTINCT FROM m.phone_stored)
            """, [sql.file_path(master)])
        get_run_logger().info("customer master: identity keys of %s customers re-normalised", stale)
    return master


def conservation(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per accepted scope file: rows read and rows per destination, and whether they balance."""
    return con.sql("""
        WITH dest AS (
            SELECT file_sha256, 'exposure' AS d FROM scope_exposures
            UNION ALL SELECT file_sha256, 'non_member' FROM non_member_exposures
            UNION ALL SELECT file_sha256, 'review' FROM review
            UNION ALL SELECT file_sha256, 'quarantine' FROM quarantine
                      WHERE kind = 'scope' AND row_number IS NOT NULL)
        SELECT f.file_name, f.file_sha256, f.rows_read,
               count(*) FILTER (d = 'exposure') AS exposure,
               count(*) FILTER (d = 'non_member') AS non_member,
               count(*) FILTER (d = 'review') AS review,
               count(*) FILTER (d = 'quarantine') AS quarantine
        FROM ingested_files f LEFT JOIN dest USING (file_sha256)
        WHERE f.kind = 'scope' AND f.status = 'accepted'
        GROUP BY ALL ORDER BY f.file_name
    """).pl().with_columns(
        (pl.col("exposure") + pl.col("non_member") + pl.col("review") + pl.col("quarantine")).alias("accounted")
    ).with_columns((pl.col("accounted") == pl.col("rows_read")).alias("balanced"))


def _cross_check_input(ctx: RunContext, categories: list[str]) -> dict[str, int]:
    """The `scope_rows` suite on `scope_rows_checked`, against the rows held in quarantine
    or review per reason; the table stays when they differ."""
    with connect(ctx.warehouse) as con:
        classified = input_checks.classification_counts(con)
    checked = check(ctx, "scope_rows_checked", "scope_rows", parameters={"categories": categories})
    agreed = input_checks.cross_check(checked, classified)
    with connect(ctx.warehouse) as con:
        input_checks.drop_scope_rows_checked(con)
    return agreed


@task(name="validate scope", cache_policy=NO_CACHE, timeout_seconds=3600)
def validate_scope(ctx: RunContext) -> dict:
    logger = get_run_logger()
    policy = ctx.policy()
    categories = sorted(policy.categories)
    with connect(ctx.warehouse) as con:
        rows = export(con, "SELECT * FROM scope_rows", ctx.work_dir / "scope_rows.parquet")
    master = renormalise_master(ctx)
    classified = ctx.work_dir / "classified.parquet"
    scope = pl.scan_parquet(rows, glob=False).with_columns(pl.col("confidence").alias("confidence_raw"))
    classified_scope(scope, pl.scan_parquet(master, glob=False), categories).sink_parquet(classified)
    with connect(ctx.warehouse) as con:
        input_checks.create_scope_rows_checked(con, categories, classified)
        disagreeing = input_checks.require_narrow_disagreement(con)
        _replace_outcomes(con, classified, ctx.run_id)
        balance = conservation(con)
        reasons = con.sql("""
            SELECT reason, count(*) AS n FROM quarantine WHERE kind = 'scope' AND row_number IS NOT NULL
            GROUP BY reason ORDER BY reason""").fetchall()
        listed = input_checks.disagreeing_rows(con, DISAGREEMENTS_LISTED)
    unbalanced = balance.filter(~pl.col("balanced"))
    if unbalanced.height:
        worst = unbalanced.row(0, named=True)
        raise RedressError(
            f"conservation check failed for scope file {escape.terminal(worst['file_name'])}: "
            f"{worst['rows_read']} rows read, {worst['accounted']} accounted for"
        )
    if disagreeing:
        logger.warning("scope rows: %s held in review as checks_disagree", disagreeing)
    agreed = _cross_check_input(ctx, categories)
    require(check(ctx, "scope_exposures", "scope_exposures", parameters={"categories": categories}))
    totals = {d: int(balance[d].sum()) for d in ("exposure", "non_member", "review", "quarantine")}
    totals["rows_read"] = int(balance["rows_read"].sum())
    logger.info("scope rows: %s", totals)
    return {"destinations": totals, "quarantine_reasons": dict(reasons), "input_checks": agreed,
            "checks_disagree": {"rows": disagreeing, "listed": listed},
            "files": balance.drop("file_sha256").to_dicts()}
