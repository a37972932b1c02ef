"""Text values as every reader gives them (SPEC "Input: scope files": an empty or blank
cell counts as missing; values are trimmed of Unicode whitespace, no-break and
ideographic spaces included).

One definition for the readers (redress/inbox/columns.py) and for the policy, whose
category names must be what a trimmed data_category can equal (redress/policy/tables.py).
"""

from __future__ import annotations

import polars as pl


def trimmed(expr: pl.Expr) -> pl.Expr:
    """`expr` (String) trimmed of Unicode whitespace (Rust's White_Space: U+00A0, U+3000
    too), blank as NULL."""
    trimmed = expr.str.strip_chars()
    return pl.when(trimmed == "").then(None).otherwise(trimmed)


def trimmed_text(text: str) -> str | None:
    """One text as `trimmed` reads a value: None when blank."""
    return pl.select(trimmed(pl.lit(text, dtype=pl.String))).item()
