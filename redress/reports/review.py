"""The review list for the forensics team, quarantine/<run_id>/review.csv (and .parquet):
every row of the `review` table, held for a person to decide and never paid
automatically (SPEC "Identity resolution", "Nothing is lost"), with what is needed to
resolve it.

One row per review row, ordered by file name then row number (REVIEW_COLUMNS):
file_name and row_number (1-based data row of the scope file), the reason code with its
plain words (vocabulary REVIEW_REASONS) and what to do (REVIEW_ACTIONS), the identifier
it was matched by, how many customers share it and their ids (space-separated, sorted),
then the row as given in the scope file (customer_id, email, phone, data_category,
accessed_at, confidence, source) and, for checks_disagree, both readings.

The identifiers as given are the forensics team's own evidence, and the one way to tell
the candidates apart: personal data, so the file lives beside quarantine.csv under
quarantine/, which a run keeps to its owner (and REDRESS_SHARE_GROUP):
redress/runtime/permissions.py. Candidates are found with the pipeline's own
normalisation (redress/rules/identity.py) against the current customer master.
"""

from __future__ import annotations

import duckdb
import polars as pl

from redress.rules.identity import email_norm, phone_e164
from redress.vocabulary import ACCEPTED, REVIEW_ACTIONS, REVIEW_REASONS

REVIEW_STEM = "review"  # quarantine/<run_id>/review.csv and .parquet
REVIEW_COLUMNS = ("file_name", "row_number", "reason", "reason_text", "what_to_do", "matched_by", "candidates",
                  "candidate_customer_ids", "customer_id", "email", "phone", "data_category", "accessed_at",
                  "confidence", "source", "classified_as", "checked_as")

_ROWS = """
SELECT f.file_name, r.row_number, r.reason, r.matched_by, r.candidates,
       s.customer_id, s.email, s.phone, s.data_category, s.accessed_at_raw AS accessed_at,
       s.confidence, s.source, r.classified_as, r.checked_as
FROM review r
JOIN scope_rows s USING (file_sha256, row_number)
JOIN (SELECT file_sha256, min(file_name) AS file_name FROM ingested_files
      WHERE kind = 'scope' AND status = ? GROUP BY ALL) f USING (file_sha256)
"""

# Customers sharing a review row's identifiers: the one it was matched by when it has
# one (ambiguous_identifier), else any it gives (checks_disagree). Three equi-joins, not
# one join ON a OR b OR c: DuckDB cannot hash an OR of conditions and would compare every
# review row with every customer (minutes at 33.7M customers).
_CANDIDATES = """
SELECT i, string_agg(DISTINCT customer_id, ' ' ORDER BY customer_id) AS candidate_customer_ids
FROM (
    SELECT k.i, c.customer_id FROM review_keys k JOIN customers c ON k.customer_id = c.customer_id
    WHERE k.matched_by IS NULL
    UNION ALL
    SELECT k.i, c.customer_id FROM review_keys k JOIN customers c ON k.email_norm = c.email_norm
    WHERE k.matched_by IS NULL OR k.matched_by = 'email'
    UNION ALL
    SELECT k.i, c.customer_id FROM review_keys k JOIN customers c ON k.phone_e164 = c.phone_e164
    WHERE k.matched_by IS NULL OR k.matched_by = 'phone'
)
GROUP BY i
"""


def review_list(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every `review` row with what resolves it (REVIEW_COLUMNS; strings but row_number
    and candidates, Int64), sorted by file_name, row_number. A row whose scope file is
    not among the accepted ones cannot exist (the warehouse writes both together); it
    would be left out by the join, which the tests rule out by comparing with `review`."""
    rows = con.sql(_ROWS, params=[ACCEPTED]).pl().sort("file_name", "row_number").with_row_index("i")
    keys = rows.select("i", "matched_by", "customer_id", email_norm("email").alias("email_norm"),
                       phone_e164("phone").alias("phone_e164"))
    con.register("review_keys", keys)
    try:
        candidates = con.sql(_CANDIDATES).pl()
    finally:
        con.unregister("review_keys")
    return (
        rows.join(candidates, on="i", how="left")
        .with_columns(
            pl.col("reason").replace_strict(REVIEW_REASONS, default=pl.col("reason"), return_dtype=pl.String)
            .alias("reason_text"),
            pl.col("reason").replace_strict(REVIEW_ACTIONS, default=None, return_dtype=pl.String).alias("what_to_do"),
        )
        .cast({"row_number": pl.Int64, "candidates": pl.Int64})
        .sort("i")
        .select(REVIEW_COLUMNS)
    )

