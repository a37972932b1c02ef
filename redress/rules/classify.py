"""Where every scope row goes: SPEC "Row rules, then identity", first failing rule decides.

Every row ends in exactly one destination: exposure, non_member, review or quarantine.
"""

from __future__ import annotations

import polars as pl

from redress import vocabulary as v
from redress.rules.identity import resolve

DESTINATIONS = tuple(v.DESTINATIONS)


def classified_scope(rows: pl.LazyFrame, master: pl.LazyFrame, categories: list[str]) -> pl.LazyFrame:
    """rows: scope_rows (customer_id, email, phone, data_category, accessed_at_raw,
    accessed_at, confidence, ...). master: customer_id, email_norm, phone_e164, created_at.

    A row with `malformed` set (the reader could not split it into the header's fields:
    redress/inbox/scope.py; a frame without the column has none) is quarantined as
    `malformed_row` before every SPEC rule.

    Returns rows with destination, reason, resolved_id, matched_by, candidates,
    email_norm, phone_e164 and confidence defaulted to 'confirmed', one per input row
    and in the input's order (redress/checks/input_checks.py joins the two by position).
    """
    malformed = (pl.col("malformed").is_not_null() if "malformed" in rows.collect_schema().names()
                 else pl.lit(False))
    no_identifier = pl.all_horizontal(pl.col(c).is_null() for c in ("customer_id", "email", "phone"))
    conf = pl.col("confidence").fill_null(v.CONFIRMED)
    rule = (
        pl.when(malformed).then(pl.lit(v.MALFORMED_ROW))
        .when(no_identifier).then(pl.lit(v.MISSING_IDENTIFIER))
        .when(~pl.col("data_category").is_in(categories) | pl.col("data_category").is_null())
        .then(pl.lit(v.UNKNOWN_CATEGORY))
        .when(pl.col("accessed_at").is_null()).then(pl.lit(v.INVALID_TIMESTAMP))
        .when(~conf.is_in(list(v.CONFIDENCES))).then(pl.lit(v.INVALID_CONFIDENCE))
    )
    checked = rows.with_columns(conf.alias("confidence"), rule.alias("row_reason"))
    joined = resolve(checked, master.select("customer_id", "email_norm", "phone_e164", "created_at")).rename(
        {"resolved_created_at": "_created_at"})

    # Compared as instants in UTC: Polars refuses to compare timestamps of two zones.
    accessed, created_at = (pl.col(c).dt.convert_time_zone("UTC") for c in ("accessed_at", "_created_at"))
    before_created = (pl.col("identity") == v.MEMBER) & (accessed < created_at)
    destination = (
        pl.when(pl.col("row_reason").is_not_null()).then(pl.lit(v.QUARANTINE))
        .when(pl.col("identity") == v.MEMBER)
        .then(pl.when(before_created).then(pl.lit(v.QUARANTINE)).otherwise(pl.lit(v.EXPOSURE)))
        .otherwise(pl.col("identity"))
    )
    reason = (
        pl.when(pl.col("row_reason").is_not_null()).then(pl.col("row_reason"))
        .when(before_created).then(pl.lit(v.EXPOSURE_BEFORE_ACCOUNT_CREATED))
        .otherwise(pl.col("identity_reason"))
    )
    return joined.with_columns(destination.alias("destination"), reason.alias("reason")).drop(
        "row_reason", "identity", "identity_reason", "_created_at"
    )
