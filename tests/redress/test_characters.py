"""redress/characters.py: a text judged one character at a time outside a frame is
judged as the engines (Polars, DuckDB) judge it inside one, whatever Python's own
Unicode version says."""

from __future__ import annotations

import unicodedata

import duckdb
import polars as pl
from hypothesis import given, strategies as st

from redress.characters import first_in, nfkc
from redress.inbox.columns import SPACE
from redress.rules.printable import UNPRINTABLE, UNPRINTABLE_CHARS, first_unprintable

# every code point but the surrogates
EVERY = pl.Series("c", [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
# Characters the two Unicode versions read differently, and ordinary ones around them.
DIFFERENT = ["\U00013439", "\U0001343f", "\U0001ccd6", "\U0001ccf9", "\U0001e4d0", "\U0001e030", "\ua7f1"]
TEXT = st.text(st.one_of(st.characters(), st.sampled_from([*DIFFERENT, *SURROGATES, "\u200b", "\u00ad", "\x07",
                                                           "\ufdd0", "\uffff", " ", "a", "Ａ"])), max_size=12)


def test_the_unprintable_class_is_the_same_in_duckdb_and_polars_for_every_character():
    """The customers suite's SQL (DuckDB's RE2) and everything judged here (Rust's regex)
    read UNPRINTABLE alike, on every one of the 1,112,064 code points."""
    with duckdb.connect() as con:
        con.register("every", pl.DataFrame({"c": EVERY}))
        in_duckdb = con.sql("SELECT regexp_matches(c, $class) AS m FROM every", params={"class": UNPRINTABLE}).pl()["m"]
    in_polars = EVERY.str.contains(UNPRINTABLE)
    assert in_duckdb.sum() == in_polars.sum() > 0
    assert (in_duckdb == in_polars).all()


def test_every_default_ignorable_code_point_is_unprintable():
    """Unicode's Default_Ignorable_Code_Point (what a renderer shows as nothing), as the
    `regex` package (in the lock, through Prefect's dateparser) knows it: each is in
    UNPRINTABLE, as the engines read it. Found by review: the Hangul filler U+3164, a
    letter that shows blank, passed as a category label."""
    import regex
    ignorable = pl.Series(regex.findall(r"\p{Default_Ignorable_Code_Point}", "".join(EVERY)))
    assert ignorable.len() > 4000 and "\u3164" in ignorable.to_list()
    assert ignorable.str.contains(UNPRINTABLE).all(), ignorable.filter(~ignorable.str.contains(UNPRINTABLE))


def test_python_3_11_reads_some_characters_otherwise_than_the_engines():
    """Why the module exists: characters whose NFKC form or format class Python's
    Unicode gives otherwise. If Python ever agrees, nothing here is wrong; the fix
    read them as the engines do either way."""
    assert nfkc("\U0001ccd6\U0001ccf0") == "A0"  # outlined A and 0 (Unicode 16)
    assert first_unprintable("a\U00013439b") == "\U00013439"  # a format character (Unicode 15)
    if unicodedata.unidata_version < "15":
        assert unicodedata.normalize("NFKC", "\U0001ccd6") == "\U0001ccd6"
        assert unicodedata.category("\U00013439") == "Cn"


def test_whitespace_at_a_header_name_s_edge_is_what_python_calls_whitespace_for_every_character():
    """header_name trims what str.isspace calls whitespace (every code point checked),
    and format characters as the engines read them."""
    in_polars = EVERY.str.contains(f"^[{SPACE}]$")
    in_python = pl.Series([c.isspace() for c in EVERY])
    assert in_polars.sum() == in_python.sum() > 0
    assert (in_polars == in_python).all()


@given(text=TEXT)
def test_first_in_is_the_first_character_duckdb_finds_and_surrogates_are_none(text):
    """first_in finds what DuckDB's regexp_extract finds first in the text; a lone
    surrogate (no frame can hold one) matches no class and hides nothing after it."""
    plain = "".join(c for c in text if c not in SURROGATES and not 0xD800 <= ord(c) <= 0xDFFF)
    (found,), = duckdb.execute("SELECT regexp_extract(?, ?, 1)", [plain, f"([{UNPRINTABLE_CHARS}])"]).fetchall()
    assert first_in(text, UNPRINTABLE_CHARS) == (found or None)


def _unprintable_in_duckdb(char: str) -> bool:
    (matched,), = duckdb.execute("SELECT regexp_matches(?, ?)", [char, UNPRINTABLE]).fetchall()
    return matched


@given(text=TEXT)
def test_first_unprintable_also_names_a_lone_surrogate_at_its_place(text):
    """first_unprintable is the first character that the customers suite's SQL calls
    unprintable, or a lone surrogate, whichever comes first."""
    unprintable = [c for c in text if 0xD800 <= ord(c) <= 0xDFFF or _unprintable_in_duckdb(c)]
    assert first_unprintable(text) == (unprintable[0] if unprintable else None)


@given(before=TEXT, after=TEXT, surrogate=st.sampled_from(SURROGATES))
def test_nfkc_is_polars_nfkc_and_keeps_a_lone_surrogate_as_it_is(before, after, surrogate):
    """nfkc is Polars' str.normalize("NFKC") of the text; a lone surrogate stays, the
    text on each side of it normalised as a text of its own."""
    def polars_nfkc(text: str) -> str:
        return pl.select(pl.lit(text, dtype=pl.String).str.normalize("NFKC")).item()

    before, after = ("".join(c for c in t if not 0xD800 <= ord(c) <= 0xDFFF) for t in (before, after))
    assert nfkc(before) == polars_nfkc(before)
    assert nfkc(before + surrogate + after) == polars_nfkc(before) + surrogate + polars_nfkc(after)
