"""What a customers value must be to reach every output intact (SPEC "Input: customers
snapshot", "Disbursement batches", "Notifications").

A customer_id is written into pain.001 (`Cdtr/Nm`, Max140Text, XML 1.0), payments.csv
and payments.xlsx cells, the notifications' person_key, and `redress explain` on a
terminal; an email becomes a notification's recipient (Parquet and CSV). One value that
one of them cannot carry made every run fail at the bank file, so nobody was paid: the
snapshot suite refuses it at the door instead (expectations/customers_staging.json).

Unprintable, decided once for all those outputs: any character of Unicode general
category
- Cc, controls: U+0000-U+001F (tab, line feed and carriage return included: a line
  break inside an identifier splits a CSV row for naive readers and is not kept as
  written by XML), U+007F-U+009F; XML 1.0 forbids most of C0, xlsx cells all of it,
  and an escape sequence would drive the terminal of whoever runs `explain`;
- Cf, format characters (soft hyphen, zero-width space and joiners, the bidirectional
  overrides that make an id read as another one, the byte order mark, tags), as
  DuckDB's RE2 classifies them;
- Zl, Zp: the line and paragraph separators U+2028, U+2029 (line breaks again);
- the 66 non-characters U+FDD0-U+FDEF and U+xFFFE, U+xFFFF of every plane (XML 1.0
  forbids U+FFFE and U+FFFF; none is meant for interchange);
- the other default-ignorable code points (Unicode's Default_Ignorable_Code_Point, which
  a renderer shows as nothing; RE2 has no class for it, so they are listed): the Hangul
  fillers U+115F, U+1160, U+3164 and U+FFA0 (letters, Lo, that show blank: a label
  `ㅤ` or an id `C1ㅤ` beside `C1`; found by review), the combining grapheme joiner
  U+034F, the Khmer inherent vowels U+17B4-U+17B5, the Mongolian and other variation
  selectors U+180B-U+180F, U+FE00-U+FE0F and U+E0100-U+E01EF, and the unassigned ones
  U+2065, U+FFF0-U+FFF8 and U+E0000-U+E0FFF;
- the braille blank U+2800, a symbol that shows nothing (found by review: it took the
  Hangul filler's place once that was refused).
Surrogates (Cs) cannot occur in a file: one holding one is not UTF-8 and is refused by
the reader as unreadable_file. Spaces inside a value (U+0020, U+3000) and private-use
characters are printable and allowed; leading and trailing ones are trimmed at ingest.

Length: the tightest output is `Cdtr/Nm` at 140 characters. The payment id does not
contain the customer id (value date, rail, sequence, position: redress/rules/batches.py), the
person_key and the Parquet/CSV columns have no limit, and an xlsx cell holds 32,767.
XML Schema counts a length in characters (Unicode code points), not bytes or
graphemes; DuckDB's length() counts code points too.
"""

from __future__ import annotations

from redress.characters import first_in

MAX_CUSTOMER_ID_CHARS = 140

_NONCHARACTERS = r"\x{FDD0}-\x{FDEF}" + "".join(
    rf"\x{{{plane:X}FFFE}}\x{{{plane:X}FFFF}}" for plane in range(17)
)

# Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties.txt) less what Cc and Cf
# hold already.
_INVISIBLE = (r"\x{034F}\x{115F}\x{1160}\x{17B4}\x{17B5}\x{180B}-\x{180F}\x{2065}\x{3164}\x{FE00}-\x{FE0F}"
              r"\x{FFA0}\x{FFF0}-\x{FFF8}\x{E0000}-\x{E0FFF}"
              # and the braille blank, a symbol (So) that shows nothing (found by the fix review)
              r"\x{2800}")

# The unprintable characters, as the inside of a character class that RE2 (DuckDB's
# regexp_matches) and Rust's regex (Polars) read alike.
UNPRINTABLE_CHARS = rf"\p{{Cc}}\p{{Cf}}\p{{Zl}}\p{{Zp}}{_NONCHARACTERS}{_INVISIBLE}"
# Matches a value holding any unprintable character.
UNPRINTABLE = f"[{UNPRINTABLE_CHARS}]"


def first_unprintable(text: str) -> str | None:
    """The first character of `text` that UNPRINTABLE matches, for values checked outside
    DuckDB (a policy's message texts, a message body): read by Polars' regular
    expressions, whose Unicode is DuckDB's and not Python's older one
    (redress/characters.py: Python 3.11 takes U+13439-U+1343F, format characters, for
    unassigned ones). A lone surrogate (a Python string can hold one; no output can)
    counts as unprintable too. None when all print."""
    return first_in(text, UNPRINTABLE_CHARS, surrogates=True)
