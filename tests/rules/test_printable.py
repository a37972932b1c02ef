"""redress/rules/printable.py and the booleans redress/inbox/customers.py load_customers_staging computes
from it: a customer_id or email that an output cannot carry rejects the snapshot at the
door (SPEC "Input: customers snapshot"). Files go through the real reader."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from redress import inbox as io
from redress.rules.identity import customer_keys
from redress.rules.printable import MAX_CUSTOMER_ID_CHARS


def staging_flags(tmp_path: Path, ids: list[str], emails: list[str | None] | None = None) -> list[dict]:
    """The rule booleans of each row of a snapshot with these customer ids (and emails),
    read as a Parquet inbox file, in row order."""
    n = len(ids)
    text = {c: pl.String for c in io.CUSTOMER_COLUMNS}
    frame = pl.DataFrame({c: [None] * n for c in text}, schema=text)
    frame = frame.with_columns(
        pl.Series("customer_id", ids, pl.String), pl.Series("email", emails or [None] * n, pl.String),
        name=pl.lit("Kim"), status=pl.lit("active"), created_at=pl.lit("2024-01-01"))
    frame.write_parquet(tmp_path / "customers.parquet")
    io.stage(customer_keys(io.customers_frame(tmp_path / "customers.parquet")), tmp_path / "staged.parquet")
    with duckdb.connect() as con:
        io.load_customers_staging(con, tmp_path / "staged.parquet", "Asia/Seoul", tmp_path)
        return con.sql("""SELECT customer_id, customer_id_unprintable AS unprintable,
                                 customer_id_too_long AS too_long, email_unprintable
                          FROM customers_staging ORDER BY row_number""").pl().to_dicts()


@pytest.mark.parametrize("value, why", [
    ("c\x00", "NUL"), ("c\x01d", "C0 control"), ("c\x1bd", "escape: drives a terminal"),
    ("c\td", "tab"), ("c\nd", "line feed"), ("c\rd", "carriage return"), ("c\x7fd", "DEL"),
    ("c\x85d", "C1 next line"), ("c\x9fd", "C1 control"), ("c\u00add", "soft hyphen (Cf)"),
    ("c\u200bd", "zero-width space (Cf)"), ("c\u202ed", "right-to-left override (Cf)"),
    ("c\ufeffd", "byte order mark (Cf)"), ("c\U000e0041d", "tag (Cf)"), ("c\u2028d", "line separator"),
    ("c\u2029d", "paragraph separator"), ("c\ufdd0d", "non-character"), ("c\ufffed", "non-character U+FFFE"),
    ("c\uffffd", "non-character U+FFFF"), ("c\U0010ffffd", "non-character of plane 16"),
    ("c\u3164", "Hangul filler, a letter that shows blank"), ("\uffa0c", "halfwidth Hangul filler"),
    ("c\u115fd", "Hangul choseong filler"), ("c\u034fd", "combining grapheme joiner"),
    ("c\ufe0fd", "variation selector"), ("c\U000e0100d", "variation selector supplement"),
    ("c\u2800", "braille blank, a symbol that shows nothing"),
])
def test_an_unprintable_customer_id_or_email_is_flagged(tmp_path, value, why):
    [row] = staging_flags(tmp_path, [value], [value + "@example.com"])
    assert row["customer_id"] == value  # as given: nothing silently removed
    assert (row["unprintable"], row["too_long"], row["email_unprintable"]) == (True, False, True), why


@pytest.mark.parametrize("value", [
    "C000000001", "고객-0001", "=HYPERLINK(x)", "a b", "a\u3000b", "é", "e\u0301", "🦆", "\ue000", "\ufffd",
    "x" * MAX_CUSTOMER_ID_CHARS, "가" * MAX_CUSTOMER_ID_CHARS, "🦆" * MAX_CUSTOMER_ID_CHARS,
])
def test_printable_ids_up_to_140_characters_pass(tmp_path, value):
    [row] = staging_flags(tmp_path, [value], ["kim@example.com"])
    assert (row["unprintable"], row["too_long"], row["email_unprintable"]) == (False, False, False)


@pytest.mark.parametrize("value", [
    "x" * (MAX_CUSTOMER_ID_CHARS + 1), "가" * (MAX_CUSTOMER_ID_CHARS + 1),
    "e\u0301" * 71,  # 71 graphemes, 142 code points: XML Schema counts code points
])
def test_a_customer_id_over_140_characters_is_flagged(tmp_path, value):
    [row] = staging_flags(tmp_path, [value])
    assert (row["unprintable"], row["too_long"]) == (False, True)


def test_a_missing_email_or_customer_id_is_not_unprintable(tmp_path):
    [row] = staging_flags(tmp_path, [None], [None])  # missing_customer_id is another rule
    assert (row["unprintable"], row["too_long"], row["email_unprintable"]) == (False, False, False)
