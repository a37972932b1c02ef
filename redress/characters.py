"""Characters as the data path reads them: the Unicode of Polars and DuckDB, not Python's.

Python 3.11's `unicodedata` is Unicode 14.0; Polars (Rust) and DuckDB's regular
expressions know later versions. Against every code point (tests/redress/
test_characters.py) the two readings differ on:
- NFKC, for 99 characters: the outlined Latin letters and digits U+1CCD6-U+1CCF9, which
  Polars reads as `A`-`Z` and `0`-`9` and Python leaves as they are, among them; so a
  message text spelling a phone number or a domain in them showed it to its reader and
  passed the check that looks for one (SPEC "Notifications": a message holds no link
  and no other phone number);
- format characters (Cf): U+13439-U+1343F, which Python takes for unassigned ones and
  the customers suite's SQL refuses (redress/rules/printable.py);
- letters (L): every letter of a script added since (Kawi, Nag Mundari...).

So a text judged one character at a time outside a frame (a message body, a policy text,
a header name, what an agent typed into `explain`, the paying account's name) is judged
here, by the engine that judges the same text inside one. Lone surrogates, which no
frame can hold (a Python string from the environment can), are each their own character
here, and match no class.

    nfkc(text)              -> str: Polars' NFKC form
    first_in(text, klass, surrogates=False)
                            -> the first character of `text` in a character class (or, asked,
                               a lone surrogate), or None
"""

from __future__ import annotations

import re

import polars as pl

_SURROGATE = re.compile("[\ud800-\udfff]")


def nfkc(text: str) -> str:
    """`text` (str) in Unicode NFKC form as Polars computes it (`str.normalize`), the
    form the classifier and the data checks compare identifiers in (SPEC "Identity
    resolution"). A lone surrogate is kept as it is, and the text around it normalised."""
    parts = _SURROGATE.split(text)
    if len(parts) > 1:
        marks = _SURROGATE.findall(text)
        return "".join(nfkc(part) + mark for part, mark in zip(parts, [*marks, ""]))
    return pl.select(pl.lit(text, dtype=pl.String).str.normalize("NFKC")).item()


def first_in(text: str, klass: str, *, surrogates: bool = False) -> str | None:
    """The first character of `text` that the regular-expression character class
    `[klass]` matches, as Rust's regex (Polars) and RE2 (DuckDB) read it (`\\p{Cf}`,
    `\\p{L}`, `\\x{FDD0}-\\x{FDEF}`...), or, with `surrogates`, a lone surrogate (which no
    output can carry); None when none does. Lone surrogates match no class."""
    parts, marks = _SURROGATE.split(text), _SURROGATE.findall(text)
    for part, mark in zip(parts, [*marks, None]):
        found = pl.select(pl.lit(part, dtype=pl.String).str.extract(f"([{klass}])", 1)).item()
        if found is not None:
            return found
        if surrogates and mark is not None:
            return mark
    return None
