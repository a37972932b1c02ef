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


def _code_sql(window: int, digest: str = "digest") -> str:
    chars = [
        f"substr('{ALPHABET}', (('0x' || substr({digest}, {window * 16 + 2 * i + 1}, 2))::INTEGER % {len(ALPHABET)}) + 1, 1)"
        for i in range(LENGTH)
    ]
    return " || ".join(chars)


def assign_codes(con: duckdb.DuckDBPyConnection, people_table: str, taken_sql: str, key: bytes) -> None:
    """Adds reference_code to `people_table` (person_key VARCHAR, unique), avoiding every
    code returned by `taken_sql` and every code given to another person in the table.

    The rule, window by window: a person takes the code of the window unless it is
    taken (earlier notifications, or given in an earlier window) or a person earlier in
    key order has the same candidate in this window; then the next window. Everyone
    takes window 0 in one pass; only the few who lose it (about n^2 / 2.2e11 people)
    go through the later windows. Raises RuntimeError when someone finds no free code
    in WINDOWS windows."""
    ipad, opad = _pads(key)
    pads = {"ipad": ipad, "opad": opad}
    # One pass over everyone: the window-0 code, the digest not kept (64 hex characters
    # per person; the few who need a later window have it computed again).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {people_table} AS
        SELECT * EXCLUDE (digest), {_code_sql(0)} AS reference_code
        FROM (SELECT *, {hmac_sql('person_key')} AS digest FROM {people_table})
    """, pads)
    # Only the taken codes someone here holds: a rerun with a few new people against tens
    # of millions of earlier codes probes a small set instead of hashing every code.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _taken AS SELECT DISTINCT code FROM ({taken_sql}) AS t(code)
        WHERE code IN (SELECT reference_code FROM {people_table})
    """)
    # Who loses window 0: a code already taken, or a person after the first with the
    # same code. A count per code, not a window over everyone: the duplicates are few.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _losers AS
        WITH repeated AS (
            SELECT reference_code FROM {people_table} GROUP BY reference_code HAVING count(*) > 1
        ),
        clashing AS (
            SELECT person_key, reference_code FROM {people_table}
            WHERE reference_code IN (SELECT reference_code FROM repeated)
               OR reference_code IN (SELECT code FROM _taken)
        )
        SELECT person_key, {hmac_sql('person_key')} AS digest FROM clashing
        QUALIFY row_number() OVER (PARTITION BY reference_code ORDER BY person_key) > 1
             OR reference_code IN (SELECT code FROM _taken)
    """, pads)
    # Codes given in later windows. A later window must avoid every code given so far:
    # the taken ones, those given in earlier later windows, and every winner's window-0
    # code; a loser's own window-0 code is either taken or a winner's, so avoiding every
    # window-0 code in the table is the same rule.
    con.execute("CREATE OR REPLACE TEMP TABLE _codes (person_key VARCHAR, reference_code VARCHAR)")
    left = con.execute("SELECT count(*) FROM _losers").fetchall()[0][0]
    for window in range(1, WINDOWS):
        if not left:
            break
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _candidates AS
            SELECT person_key, {_code_sql(window)} AS code FROM _losers ANTI JOIN _codes USING (person_key)
        """)
        con.execute(f"""
            INSERT INTO _codes
            SELECT person_key, code FROM _candidates
            WHERE code NOT IN (SELECT code FROM ({taken_sql}) AS t(code)
                               WHERE code IN (SELECT code FROM _candidates))
              AND code NOT IN (SELECT reference_code FROM _codes)
              AND code NOT IN (SELECT reference_code FROM {people_table}
                               WHERE reference_code IN (SELECT code FROM _candidates))
            QUALIFY row_number() OVER (PARTITION BY code ORDER BY person_key) = 1
        """)
        left = con.execute("SELECT count(*) FROM _losers ANTI JOIN _codes USING (person_key)").fetchall()[0][0]
    if left:
        raise RuntimeError(f"{left} people found no free reference code in {WINDOWS} windows")
    con.execute(f"""
        UPDATE {people_table} SET reference_code = c.reference_code FROM _codes c
        WHERE {people_table}.person_key = c.person_key
    """)
    for scratch in ("_taken", "_losers", "_codes", "_candidates"):
        con.execute(f"DROP TABLE IF EXISTS {scratch}")
