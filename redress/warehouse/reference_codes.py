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

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ"
LENGTH = 8
WINDOWS = 4  # a 32-byte digest holds four 8-byte windows


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sql(column: str) -> str:
    """SQL for the hex HMAC-SHA256 of a VARCHAR column; bind (ipad, opad) as parameters."""
    return f"sha256($opad || unhex(sha256($ipad || encode({column}))))"


def _code_sql(window: int) -> str:
    chars = [
        f"substr('{ALPHABET}', (('0x' || substr(digest, {window * 16 + 2 * i + 1}, 2))::INTEGER % {len(ALPHABET)}) + 1, 1)"
        for i in range(LENGTH)
    ]
    return " || ".join(chars)


def assign_codes(con: duckdb.DuckDBPyConnection, people_table: str, taken_sql: str, key: bytes) -> None:
    """Adds reference_code to `people_table` (person_key VARCHAR, unique), avoiding every
    code returned by `taken_sql` and every code given to another person in the table."""
    ipad, opad = _pads(key)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _digests AS SELECT person_key, {hmac_sql('person_key')} AS digest "
        f"FROM {people_table}",
        {"ipad": ipad, "opad": opad},
    )
    # Every code already given (earlier notifications) as a hash set, probed by anti
    # joins: a `NOT IN (subquery)` re-reads the subquery for the whole table each window.
    con.execute(f"CREATE OR REPLACE TEMP TABLE _taken AS SELECT DISTINCT code FROM ({taken_sql}) AS t(code)")
    con.execute("CREATE OR REPLACE TEMP TABLE _codes (person_key VARCHAR, reference_code VARCHAR)")
    left = 0
    for window in range(WINDOWS):
        # Window 0 codes everyone; a later window only the few whose code was taken.
        source = "_digests" if window == 0 else "(SELECT * FROM _digests ANTI JOIN _codes USING (person_key))"
        con.execute(f"""
            INSERT INTO _codes
            SELECT person_key, code FROM (
                SELECT d.person_key, {_code_sql(window)} AS code FROM {source} d
            ) candidates
            ANTI JOIN _taken t ON t.code = candidates.code
            ANTI JOIN _codes c ON c.reference_code = candidates.code
            QUALIFY row_number() OVER (PARTITION BY code ORDER BY person_key) = 1
        """)
        left = con.execute("SELECT count(*) FROM _digests ANTI JOIN _codes USING (person_key)").fetchall()[0][0]
        if not left:
            break
    if left:
        raise RuntimeError(f"{left} people found no free reference code in {WINDOWS} windows")
    # One copy, not two: DuckDB reads the old table before it replaces it.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {people_table} AS
        SELECT p.*, c.reference_code FROM {people_table} p JOIN _codes c USING (person_key)
    """)
    for scratch in ("_digests", "_taken", "_codes"):
        con.execute(f"DROP TABLE {scratch}")
