"""Stage 2, validate: every scope row of every accepted file to exactly one destination.

All evidence is classified again on every run, under the current customer master and
policy, so a later snapshot or policy is applied to earlier files too. The conservation
count (rows read = exposures + non-members + review + quarantine) is checked per file
and a run whose counts do not balance fails. The `scope_rows` suite then restates the row
rules in SQL (tasks/input_checks.py): its count per reason must equal the
classification's, or the run stops. The `scope_exposures` suite then gates the run: a
failure there means a bug upstream, never something to pay on.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress.context import RunContext
from redress.errors import RedressError
from redress.warehouse import connect, export
from tasks import input_checks
from tasks.classify import classified_scope
from tasks.quality import check, require


def _replace_outcomes(con: duckdb.DuckDBPyConnection, classified: Path, run_id: str) -> None:
    src = f"read_parquet('{classified}')"
    con.execute("BEGIN")
    con.execute(f"""
        CREATE OR REPLACE TABLE scope_exposures AS
        SELECT file_sha256, row_number, resolved_id AS customer_id, matched_by, data_category,
               accessed_at, confidence, source
        FROM {src} WHERE destination = 'exposure' ORDER BY file_sha256, row_number""")
    con.execute(f"""
        CREATE OR REPLACE TABLE non_member_exposures AS
        SELECT file_sha256, row_number, coalesce(phone_e164, email_norm) AS recipient, email_norm,
               phone_e164, data_category, accessed_at, confidence
        FROM {src} WHERE destination = 'non_member' ORDER BY file_sha256, row_number""")
    con.execute(f"""
        CREATE OR REPLACE TABLE review AS
        SELECT file_sha256, row_number, reason, matched_by, candidates, email, phone,
               data_category, accessed_at, confidence
        FROM {src} WHERE destination = 'review' ORDER BY file_sha256, row_number""")
    # Row-level scope quarantine is re-derived each run; rejected files stay as recorded.
    con.execute("DELETE FROM quarantine WHERE kind = 'scope' AND row_number IS NOT NULL")
    con.execute(f"""
        INSERT INTO quarantine
        SELECT ?, 'scope', c.file_sha256, f.file_name, c.row_number, c.reason, NULL,
               to_json(struct_pack(customer_id := c.customer_id, email := c.email, phone := c.phone,
                   data_category := c.data_category, accessed_at := c.accessed_at_raw,
                   confidence := c.confidence_raw, source := c.source))::VARCHAR
        FROM {src} c
        JOIN (SELECT DISTINCT file_sha256, file_name FROM ingested_files WHERE status = 'accepted'
              QUALIFY row_number() OVER (PARTITION BY file_sha256 ORDER BY ingested_at, file_name) = 1) f
          USING (file_sha256)
        WHERE c.destination = 'quarantine' ORDER BY c.file_sha256, c.row_number""", [run_id])
    con.execute("COMMIT")


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
    """The `scope_rows` suite on the view of the SQL row rules, against the rows the
    classification sent to quarantine or review; the view stays when they disagree."""
    with connect(ctx.warehouse) as con:
        input_checks.create_scope_rows_checked(con, categories)
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
    with connect(ctx.warehouse) as con:
        rows = export(con, "SELECT * FROM scope_rows", ctx.work_dir / "scope_rows.parquet")
        master = export(
            con, "SELECT customer_id, email_norm, phone_e164, created_at FROM customers",
            ctx.work_dir / "master.parquet",
        )
    classified = ctx.work_dir / "classified.parquet"
    scope = pl.scan_parquet(rows).with_columns(pl.col("confidence").alias("confidence_raw"))
    classified_scope(scope, pl.scan_parquet(master), sorted(policy.categories)).sink_parquet(classified)
    with connect(ctx.warehouse) as con:
        _replace_outcomes(con, classified, ctx.run_id)
        balance = conservation(con)
        reasons = con.sql("""
            SELECT reason, count(*) AS n FROM quarantine WHERE kind = 'scope' AND row_number IS NOT NULL
            GROUP BY reason ORDER BY reason""").fetchall()
    unbalanced = balance.filter(~pl.col("balanced"))
    if unbalanced.height:
        worst = unbalanced.row(0, named=True)
        raise RedressError(
            f"conservation check failed for scope file {worst['file_name']}: "
            f"{worst['rows_read']} rows read, {worst['accounted']} accounted for"
        )
    agreed = _cross_check_input(ctx, sorted(policy.categories))
    require(check(ctx, "scope_exposures", "scope_exposures", parameters={"categories": sorted(policy.categories)}))
    totals = {d: int(balance[d].sum()) for d in ("exposure", "non_member", "review", "quarantine")}
    totals["rows_read"] = int(balance["rows_read"].sum())
    logger.info("scope rows: %s", totals)
    return {"destinations": totals, "quarantine_reasons": dict(reasons), "input_checks": agreed,
            "files": balance.drop("file_sha256").to_dicts()}
