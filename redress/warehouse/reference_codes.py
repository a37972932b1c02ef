"""Reference codes: 8 letters derived from a person with HMAC-SHA256 under a secret key.

Computed inside DuckDB (HMAC written out from its definition, RFC 2104, on DuckDB's
sha256), so 33.7 million codes need no Python loop. Letters only, without I and O: a
code can never be read as a phone number or confused with 1 and 0.

Eight letters give 24^8 (1.1e11) codes, so among tens of millions of people a few
collide by chance. A code is never given twice: a person whose code is already taken
(by an earlier notification or by a person earlier in key order) takes the next eight
bytes of the same digest, and so on; the outcome depends only on the key and the
people, not on the machine.
"""

from __future__ import annotations

import hashlib

import duckdb
import polars as pl

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ"
LENGTH = 8
WINDOWS = 4  # a 32-byte digest holds four 8-byte windows

# What people type between a code's letters: spaces (any Unicode space), dashes, dots and
# underscores, those of Korean and Japanese keyboards too (ㅡ and ㆍ as typed and as NFKC
# leaves them, ー, the middle dots · and ・). Found by the next review: `JFAKㆍYCJD`,
# `HUSU·FDLN` were no codes. None of them is a letter of a code (ALPHABET).
_TYPED_SEPARATORS = r"[\s\-\u2010-\u2015\u2212\u1173\u3161\u30fc._\u00b7\u2022\u2027\u30fb\u119e\u318d]"


def typed_code(text: pl.Expr) -> pl.Expr:
    """A reference code as staff type it, read as the code it stands for: in Unicode NFKC
    form (full-width `ＬＪＣＷ` from a Korean input method becomes `LJCW`), spaces and
    dashes dropped (`LJCW-KVAH`, `ljcw kvah`), upper-cased. A String expression; null
    stays null. Whether the result is a code at all is the reader's check (8 letters of
    ALPHABET). Every place a code is typed reads it so: `redress explain` and the claims
    files (found by review: a code typed full-width or with a hyphen was no code, and a
    claim for it was quarantined as unknown_reference_code)."""
    return text.str.normalize("NFKC").str.replace_all(_TYPED_SEPARATORS, "").str.to_uppercase()


def typed_code_text(text: str) -> str:
    """`typed_code` of one text (for explain)."""
    return pl.select(typed_code(pl.lit(text, dtype=pl.String))).item()


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sql(column: str) -> str:
    """SQL for the hex HMAC-SHA256 of a VARCHAR column; bind (ipad, opad) as parameters."""
    return f"sha256($opad || unhex(sha256($ipad || encode({column}))))"


def _code_sql(window: int) -> str:
    """SQL for the code of one window of the hex `digest` column: the window's 8 bytes
    read as one UBIGINT, its first LENGTH bytes (LENGTH <= 8; most significant first)
    each taken mod 24 into ALPHABET. One parse per window, not one per letter: the
    letters of 32 M digests in 6.45 s against 10.07 s, the same letters
    (benchmarks/reference_code_letters.py)."""
    window_bytes = f"('0x' || substr(digest, {window * 16 + 1}, 16))::UBIGINT"
    chars = [
        f"substr('{ALPHABET}', ((({window_bytes} >> {56 - 8 * i}) & 255) % {len(ALPHABET)})::INTEGER + 1, 1)"
        for i in range(LENGTH)
    ]
    return " || ".join(chars)


def code_parameters(key: bytes) -> dict[str, bytes]:
    """The values to bind ($ipad, $opad) for hmac_sql and with_first_code under `key`."""
    return dict(zip(("ipad", "opad"), _pads(key)))


def with_first_code(source_sql: str) -> str:
    """SQL: the rows of `source_sql` (a query of ours with a person_key VARCHAR column and
    none named digest or reference_code) and reference_code, each person's first choice:
    the code of their HMAC's window 0. Bind code_parameters(key). settle_codes then gives
    another to everyone who may not keep it."""
    return f"""SELECT * EXCLUDE (digest), {_code_sql(0)} AS reference_code
               FROM (SELECT *, {hmac_sql('person_key')} AS digest FROM ({source_sql}))"""


def assign_codes(con: duckdb.DuckDBPyConnection, people_table: str, taken_sql: str, key: bytes) -> None:
    """Adds reference_code to `people_table` (person_key VARCHAR, unique), avoiding every
    code returned by `taken_sql` and every code given to another person in the table.
    RuntimeError when someone finds no free code in WINDOWS windows.

    Window 0 is computed for everyone in the one pass that rewrites the table as a
    temporary one (with_first_code: no second table of digests, no join back), then
    settle_codes. A caller that builds the table can give it the first codes as it does
    (tasks/notify.py), with no rewrite, and call settle_codes alone."""
    taken_names = {"reference_code", "digest"} & {name.lower() for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [people_table]).fetchall()}
    if taken_names:
        raise ValueError(f"{people_table} already has a column named {', '.join(sorted(taken_names))}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {people_table} AS {with_first_code(f'SELECT * FROM {people_table}')}",
                code_parameters(key))
    settle_codes(con, people_table, taken_sql, key)


def settle_codes(con: duckdb.DuckDBPyConnection, people_table: str, taken_sql: str, key: bytes) -> None:
    """In `people_table` (person_key VARCHAR, unique; reference_code, each person's first
    choice as with_first_code gives it), clears and gives again every code that is taken:
    returned by `taken_sql`, or wanted too by a person earlier in person_key order. The
    later windows are computed only for those losers, a few among tens of millions, whose
    codes are then set by an UPDATE of their rows. RuntimeError when someone finds no
    free code in WINDOWS windows (a NULL person_key finds none in any)."""
    pads = code_parameters(key)
    # Every code already given (earlier notifications) as a hash set, probed by joins.
    con.execute(f"CREATE OR REPLACE TEMP TABLE _taken AS SELECT DISTINCT code FROM ({taken_sql}) AS t(code)")
    # Window 0's losers: a code given before, or one a person earlier in key order wants
    # too. Their code is cleared; every code left in the table is given.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _losers AS
        SELECT person_key FROM {people_table} SEMI JOIN _taken t ON t.code = reference_code
        UNION ALL
        SELECT person_key FROM (
            SELECT person_key, reference_code FROM {people_table}
            SEMI JOIN (SELECT reference_code FROM {people_table} GROUP BY reference_code HAVING count(*) > 1) d
                USING (reference_code)
            ANTI JOIN _taken t ON t.code = reference_code)
        QUALIFY row_number() OVER (PARTITION BY reference_code ORDER BY person_key) > 1""")
    con.execute(f"UPDATE {people_table} SET reference_code = NULL WHERE person_key IN (SELECT person_key FROM _losers)")
    # Everyone without a code: the losers, and anyone whose code could not be computed
    # (a NULL person_key), who then finds none in any window and stops the stage.
    left = con.execute(f"SELECT count(*) FROM {people_table} WHERE reference_code IS NULL").fetchall()[0][0]
    for window in range(1, WINDOWS):
        if not left:
            break
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _won AS
            SELECT person_key, code FROM (
                SELECT person_key, {_code_sql(window)} AS code
                FROM (SELECT person_key, {hmac_sql('person_key')} AS digest FROM {people_table}
                      WHERE reference_code IS NULL)
            ) candidates
            ANTI JOIN _taken t USING (code)
            ANTI JOIN {people_table} p ON p.reference_code = candidates.code
            QUALIFY row_number() OVER (PARTITION BY code ORDER BY person_key) = 1""", pads)
        con.execute(f"""
            UPDATE {people_table} p SET reference_code = w.code FROM _won w WHERE p.person_key = w.person_key""")
        left = con.execute(f"SELECT count(*) FROM {people_table} WHERE reference_code IS NULL").fetchall()[0][0]
    for scratch in ("_taken", "_losers", "_won"):
        con.execute(f"DROP TABLE IF EXISTS {scratch}")
    if left:
        raise RuntimeError(f"{left} people found no free reference code in {WINDOWS} windows")
