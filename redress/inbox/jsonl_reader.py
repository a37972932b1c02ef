"""JSON Lines files as text columns (SPEC "Reading files").

* JSON Lines: every line is a JSON object; the columns are the keys of all lines
  (trimmed). A string value is read as it is; any other value as its JSON text
  (`12345` -> "12345", `true` -> "true", an object or array -> its compact JSON text),
  every number as written, inside an object or array too (`1.50` -> "1.50", `1E3` ->
  "1E3", `-0` -> "-0": `_numbers_as_written`); JSON null is missing. A
  line that is not a JSON object, or an object giving twice a key the reader wants (or
  one that reads as such: a key beyond them given twice is ignored, as in a CSV), makes
  the file unreadable_file naming the line; a reader of finance's and customer service's files
  asks for such lines to be marked instead (`malformed=True`): the line is a row, with a
  column saying what is wrong and one holding the line as written, for its checks to
  quarantine it alone (a line spelling half of a character, `\\ud800`, is said to: it
  is no object only to a reader of text); a line that is no object has every column empty, one with a key
  twice keeps its other keys (clear) but neither value of that key. A key that reads
  as a wanted column without being it (`Customer_ID`, `Confidence`: columns.py) is a
  file's misnaming when every line gives it and no line the column: the file is refused
  as missing that column, naming the name to use (text_frame.py). Given in some lines
  only, or beside lines naming the column exactly, it is those lines' fault: with
  `malformed` each is marked LOOK_ALIKE alone and keeps its other keys (taking its
  value as the column's would be a guess, and dropping it would read a `suspected` row
  as confirmed); without, the file is refused as before. Blank lines are not rows.
* row_number: the line number, blank lines included.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from redress.inbox.columns import AS_WRITTEN, DEFAULTED, MALFORMED, ROW, header_name, look_alike, wanted_as
from redress.inbox.csv_reader import raw_lines
from redress.inbox.files import FileRejected
from redress.vocabulary import EMPTY_FILE, UNREADABLE_FILE


NOT_AN_OBJECT = "the line is not a JSON object"
# The bytes of lines unpacked at once (jsonl_frame): bounds DuckDB's join of each key to its line.
UNPACKED_BYTES = 32 << 20
# printf format: the escape. JSON may spell half of a character that needs two (a lone
# surrogate, `\ud800`); no UTF-8 text can hold it, so DuckDB reads no object there.
HALF_CHARACTER = "the line holds %s, half of a character (a lone surrogate escape), which no text can carry"
# SQL over `line`: the first lone surrogate escape in it, '' when none: escaped backslashes
# and whole surrogate pairs taken away first (`\\ud800` is a backslash and text).
_LONE_SURROGATE = r"""regexp_extract(regexp_replace(regexp_replace(line, '\\\\', '', 'g'),
                                   '\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}', '', 'g'),
                    '\\u[dD][89a-fA-F][0-9a-fA-F]{2}')"""
# printf formats (DuckDB's, bound): the key (its first 60 characters), and the column it reads as
KEY_TWICE = "the line gives the key '%s' twice"
LOOK_ALIKE = ("the line gives the key '%s', which reads as the column %s without being it, and the file's other "
              "lines do not: name it exactly")


def key_twice(key: str) -> str:
    """The MALFORMED text of a line that gives `key` twice."""
    return KEY_TWICE % key[:60]


def look_alike_key(key: str, column: str) -> str:
    """The MALFORMED text of a line whose `key` only reads as `column`."""
    return LOOK_ALIKE % (key[:60], column)


def jsonl_frame(path: Path, malformed: bool = False, wanted: tuple[str, ...] = (),
                digits_as_written: tuple[str, ...] = ()) -> pl.LazyFrame:
    """The lines as JSON objects, one text column per key of any line (module docstring).
    Lines are read raw by Polars (no glob, no schema window) and unpacked by DuckDB's
    JSON reader, which keeps every key of every line. With `malformed`, a bad line is a
    row (module docstring) with NOT_AN_OBJECT or KEY_TWICE in a column MALFORMED and the
    line in a last one AS_WRITTEN (both NULL for a sound line) instead of making the file
    unreadable; and, given the `wanted` columns, a line with a key that only reads as one
    of them, unless the whole file names it so (module docstring), is such a row too,
    LOOK_ALIKE. A column of `digits_as_written` given as a JSON number in any line makes
    the file unreadable_file, naming the first such line (text_frame.read_text_frame)."""
    lines = (raw_lines(path, truncate=False)
             .with_row_index("row_number", offset=1)
             .with_columns(pl.col("line").str.strip_prefix("\ufeff"))
             .filter(pl.col("line").str.strip_chars().fill_null("") != "")
             .with_columns(chunk=(pl.col("line").str.len_bytes().cum_sum() // UNPACKED_BYTES).cast(pl.Int64))
             .collect())
    if lines.height == 0:
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    with duckdb.connect() as con:
        con.register("lines", lines)
        is_object = "json_valid(line) AND json_type(CASE WHEN json_valid(line) THEN line END) = 'OBJECT'"
        said = f"CASE WHEN {_LONE_SURROGATE} = '' THEN $not_an_object ELSE printf($half, {_LONE_SURROGATE}) END"
        bad = con.execute(f"""SELECT row_number, {said} FROM lines WHERE NOT ({is_object}) ORDER BY row_number LIMIT 1""",
                          {"not_an_object": NOT_AN_OBJECT, "half": HALF_CHARACTER}).fetchall()
        if bad and not malformed:
            raise FileRejected(UNREADABLE_FILE, bad[0][1].replace("the line", f"line {bad[0][0]}", 1))
        # Every key of every line names a column, but only the values of those a reader
        # may look at are unpacked (`_looked_at`): found by review, 200,000 lines of 300
        # extra keys each took 10 GB and more than 17 minutes, unpacking and pivoting
        # every value; the others are columns of NULL, ignored by every reader.
        keys = [k for (k,) in con.execute(f"""SELECT DISTINCT unnest(json_keys(line)) AS key FROM lines
                                               WHERE {is_object} ORDER BY key""").fetchall()]
        looked_at = [k for k in keys if _looked_at(header_name(k), wanted)]
        only = "WHERE list_contains($looked_at, e.key)" if looked_at != keys else ""
        # A chunk of lines at a time: DuckDB joins json_each's rows back to their line by
        # its text, a hash table of every line at once (2 M lines of 5 keys: 4.2 GB, in
        # chunks 1.8 GB; 200,000 lines of 300 keys: 8.6 GB, in chunks 2.8 GB).
        con.execute("CREATE TABLE parsed (row_number BIGINT, id UBIGINT, key VARCHAR, type VARCHAR, value VARCHAR)")
        for chunk in lines["chunk"].unique().sort().to_list():
            con.execute(f"""
                INSERT INTO parsed
                SELECT l.row_number, e.id, e.key, e.type, CASE WHEN e.type = 'NULL' THEN NULL
                                                                WHEN e.type = 'VARCHAR' THEN e.value ->> '$'
                                                                ELSE e.value::VARCHAR END AS value
                FROM (SELECT * FROM lines WHERE chunk = $chunk AND {is_object}) l, json_each(l.line) e
                {only}""", {"looked_at": looked_at, "chunk": chunk} if only else {"chunk": chunk})
        # the lines that are objects with a key
        (objects,), = con.execute(f"SELECT count(*) FROM lines WHERE {is_object} AND len(json_keys(line)) > 0"
                                  if only else "SELECT count(DISTINCT row_number) FROM parsed").fetchall()
        numbered = con.execute("""
            SELECT row_number, key FROM parsed
            WHERE list_contains($keys, key) AND type NOT IN ('VARCHAR', 'NULL', 'BOOLEAN', 'OBJECT', 'ARRAY')
            ORDER BY row_number, key LIMIT 1""",
                               {"keys": [k for k in keys if header_name(k) in digits_as_written]}).fetchall()
        if numbered:  # found by the fix review: `"bank_account": 1234567890123` was paid as its digits
            (row, key), = numbered
            name = header_name(key)
            raise FileRejected(UNREADABLE_FILE, f"line {row} gives {name} as a number, which keeps no leading zero, "
                                                f"so it is not the {name} as written; write it as a string (quoted)")
        _numbers_as_written(con, [k for k in keys if not wanted or header_name(k) in wanted])
        names = {}
        for key in keys:
            names.setdefault(header_name(key), []).append(key)
        con.register("keymap", pl.DataFrame({"key": keys, "name": [header_name(k) for k in keys]},
                                            schema={"key": pl.String, "name": pl.String}))
        con.execute("""
            CREATE TABLE twice AS
            SELECT row_number, name FROM pairs JOIN keymap USING (key)
            GROUP BY ALL HAVING count(*) > 1""")
        # A key no reader wants, nor reads as one it wants, given twice: ignored like any
        # column beyond the SPEC's, both values dropped, the line kept, as a CSV column
        # given twice is (columns.py; found by review: `"extra": 1, "extra": 2` cost the row).
        ignored = [n for n in names if wanted and wanted_as(n, wanted) is None]
        if ignored:
            con.execute("""DELETE FROM pairs WHERE (row_number, key) IN (
                               SELECT (t.row_number, k.key) FROM twice t JOIN keymap k USING (name)
                               WHERE list_contains(?::VARCHAR[], t.name))""", [ignored])
            con.execute("DELETE FROM twice WHERE list_contains(?::VARCHAR[], name)", [ignored])
        first_twice = con.execute("SELECT row_number, min(name) FROM twice GROUP BY row_number "
                                  "ORDER BY row_number LIMIT 1").fetchall()
        alike, meant = _lines_own_look_alikes(con, names, wanted, objects) if malformed else ([], [])
        for name in alike:
            del names[name]
        if first_twice and not malformed:
            raise FileRejected(UNREADABLE_FILE,
                               f"line {first_twice[0][0]} gives the key {first_twice[0][1][:60]!r} twice")
        flagged = ""
        if malformed:
            # A key given twice keeps neither value (which is meant is a guess); the line's
            # other keys are clear, and kept, so the row still names its payment or code.
            con.execute("""DELETE FROM pairs WHERE (row_number, key) IN (
                               SELECT (t.row_number, k.key) FROM twice t JOIN keymap k USING (name))""")
            # A key only like a column's, in some lines: those lines keep their other keys
            # but neither that key's value nor the column's beside it (which is meant is a guess).
            con.execute("""CREATE TABLE alike AS SELECT row_number, min(name) AS name FROM pairs JOIN keymap USING (key)
                           WHERE list_contains(?::VARCHAR[], name) GROUP BY row_number""", [alike])
            con.execute("""DELETE FROM pairs WHERE key IN (SELECT key FROM keymap WHERE list_contains(?::VARCHAR[], name))
                           OR (row_number IN (SELECT row_number FROM alike)
                               AND key IN (SELECT key FROM keymap WHERE list_contains(?::VARCHAR[], name)))""",
                        [alike, meant])
            con.register("meant_by", pl.DataFrame({"name": alike, "column": [wanted_as(n, wanted) for n in alike]},
                                                  schema={"name": pl.String, "column": pl.String}))
            con.execute(f"""
                CREATE TABLE bad AS
                SELECT row_number, {said} AS m, line FROM lines WHERE NOT ({is_object})
                UNION ALL SELECT t.row_number, printf($key_twice, left(min(t.name), 60)), any_value(l.line)
                          FROM twice t JOIN lines l USING (row_number) GROUP BY t.row_number
                UNION ALL SELECT a.row_number, printf($look_alike, left(a.name, 60), b.column), l.line
                          FROM alike a JOIN lines l USING (row_number) JOIN meant_by b USING (name)
                          WHERE a.row_number NOT IN (SELECT row_number FROM twice)""",
                        {"not_an_object": NOT_AN_OBJECT, "half": HALF_CHARACTER, "key_twice": KEY_TWICE,
                         "look_alike": LOOK_ALIKE})
            flagged = "LEFT JOIN bad USING (row_number)"
        # one column per trimmed key: at most one raw key per line (checked above); NULL
        # for a key no reader looks at
        pivoted = [name for name in names if _looked_at(name, wanted)]
        select = [f"max(value) FILTER (WHERE name = ${pivoted.index(name) + 1}) AS c{i}" if name in pivoted
                  else f"NULL::VARCHAR AS c{i}" for i, name in enumerate(names)]
        select += ["any_value(m) AS m", "any_value(bad.line) AS w"] if malformed else []
        wide = con.sql(f"""
            SELECT {', '.join(['row_number', *select])}
            FROM lines LEFT JOIN (pairs JOIN keymap USING (key)) USING (row_number) {flagged}
            GROUP BY row_number ORDER BY row_number""", params=pivoted).pl()
    renamed = {"row_number": ROW, **{f"c{i}": name for i, name in enumerate(names)}}
    if malformed:
        renamed |= {"m": MALFORMED, "w": AS_WRITTEN}
    return wide.rename(renamed).lazy()


def _looked_at(name: str, wanted: tuple[str, ...]) -> bool:
    """Whether a reader may look at the values of the column of trimmed name `name`:
    every column when `wanted` is empty; else one of `wanted` or a name that reads as one
    (wanted_as: refused, or its lines marked), or one holding a DEFAULTED column's name
    among other words (text_frame looks for that column's values in it)."""
    return (not wanted or wanted_as(name, wanted) is not None
            or any(look_alike(meant) in look_alike(name) for meant in DEFAULTED if meant in wanted))


# A line cut into tokens that tile it: a JSON string whole (escapes included), a number,
# a run of anything else, or a single character (`-` of `-Infinity`). Only lines that are
# JSON objects are cut, so a number token is never inside a string.
TOKEN = r'"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|[^"0-9-]+|.'
NUMBER = r"-?[0-9][0-9.eE+-]*"


def _numbers_as_written(con: duckdb.DuckDBPyConnection, keys: list[str]) -> None:
    """`pairs` (row_number, key, value) from `parsed` (the same, with json_each's id and
    type), each number under one of `keys` (the columns the reader wants; the others'
    values are left out anyway) as written (SPEC "Reading files": a value that is not a
    string is read as its JSON text; `1.50` stays "1.50", `1E2` "1E2", `-0` "-0"), where
    DuckDB's parse gives its canonical form ("1.5", "100.0", "0"); a number inside an
    object or array too (`[1.50]` stays "[1.50]"; the container's text stays compact).
    An integer's canonical form is its text but for `-0`, so only the lines with another
    number, or a container with a digit, are parsed again, with every number token
    quoted: that turns each number into a string of its written text at the same place
    of the same tree (json_each's `id`). A container's compact text and its quoted twin
    cut into the same tokens but for the numbers, which are taken from the twin. NaN and
    Infinity, which DuckDB's reader takes, are no number tokens and keep the text DuckDB
    gives them, as written."""
    con.execute("""
        CREATE TEMP TABLE written AS
        SELECT l.row_number, e.id, CASE WHEN e.type = 'VARCHAR' THEN e.value ->> '$' ELSE e.value::VARCHAR END AS text
        FROM (SELECT row_number,
                     array_to_string(list_transform(regexp_extract_all(line, $token),
                         lambda t: CASE WHEN regexp_full_match(t, $number) THEN '"' || t || '"' ELSE t END), '')
                     AS line
              FROM lines WHERE row_number IN (
                  SELECT row_number FROM parsed
                  WHERE list_contains($keys, key)
                    AND (type NOT IN ('VARCHAR', 'NULL', 'BOOLEAN', 'BIGINT', 'UBIGINT', 'OBJECT', 'ARRAY')
                         OR (type = 'BIGINT' AND value = '0')
                         OR (type IN ('OBJECT', 'ARRAY') AND regexp_matches(value, '[0-9]'))))) l,
             json_each(l.line) e
        WHERE e.type IN ('VARCHAR', 'OBJECT', 'ARRAY') AND list_contains($keys, e.key)""",
                {"token": TOKEN, "number": NUMBER, "keys": keys})
    if con.execute("SELECT count(*) FROM written").fetchall()[0][0] == 0:
        con.execute("ALTER TABLE parsed RENAME TO pairs")
        return
    con.execute("""
        CREATE TABLE pairs AS
        SELECT p.row_number, p.id, p.key, CASE
            WHEN w.text IS NULL OR p.type IN ('VARCHAR', 'NULL', 'BOOLEAN') THEN p.value
            WHEN p.type IN ('OBJECT', 'ARRAY') THEN array_to_string(list_transform(
                list_zip(regexp_extract_all(p.value, $token), regexp_extract_all(w.text, $token)),
                lambda z: CASE WHEN regexp_full_match(z[1], $number) THEN z[2][2:-2] ELSE z[1] END), '')
            WHEN regexp_full_match(w.text, $number) THEN w.text
            ELSE p.value END AS value
        FROM parsed p LEFT JOIN written w USING (row_number, id)""", {"token": TOKEN, "number": NUMBER})


def _lines_own_look_alikes(con: duckdb.DuckDBPyConnection, names: dict[str, list[str]],
                           wanted: tuple[str, ...], objects: int) -> tuple[list[str], list[str]]:
    """(the keys (trimmed names) that read as one of `wanted` without being it and are
    the fault of the lines giving them, not the file's naming (module docstring): the
    wanted column is named exactly in some line, or some line that is an object gives
    it in none of its look-alike spellings; the wanted columns they read as), each sorted.
    `objects`: the lines that are objects with a key."""
    meant_by = {name: wanted_as(name, wanted) for name in names if name not in wanted}
    alike = {name: meant for name, meant in meant_by.items() if meant is not None}
    if not alike:
        return [], []
    con.register("alike_names", pl.DataFrame({"name": list(alike), "meant": list(alike.values())},
                                              schema={"name": pl.String, "meant": pl.String}))
    # per wanted column: the lines giving it in some spelling of its look-alikes
    given = dict(con.execute("""SELECT meant, count(DISTINCT row_number) FROM pairs JOIN keymap USING (key)
                                JOIN alike_names USING (name) GROUP BY meant""").fetchall())
    con.unregister("alike_names")
    own = sorted(name for name, meant in alike.items() if meant in names or given.get(meant, 0) < objects)
    return own, sorted({alike[name] for name in own})
