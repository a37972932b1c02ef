"""JSON Lines files as text columns (SPEC "Reading files").

* JSON Lines: every line is a JSON object; the columns are the keys of all lines
  (trimmed). A string value is read as it is; any other value as its JSON text
  (`12345` -> "12345", `true` -> "true", an object or array -> its compact JSON text,
  a float in its shortest round-trip form: `1e3` -> "1000.0"); JSON null is missing. A
  line that is not a JSON object, or an object with a key twice, makes the file
  unreadable_file naming the line; a reader of finance's and customer service's files
  asks for such lines to be marked instead (`malformed=True`): the line is a row, with a
  column saying what is wrong and one holding the line as written, for its checks to
  quarantine it alone; a line that is no object has every column empty, one with a key
  twice keeps its other keys (clear) but neither value of that key. Blank lines are
  not rows.
* row_number: the line number, blank lines included.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from redress.inbox.columns import AS_WRITTEN, MALFORMED, ROW, header_name
from redress.inbox.csv_reader import raw_lines
from redress.inbox.files import FileRejected
from redress.vocabulary import EMPTY_FILE, UNREADABLE_FILE


NOT_AN_OBJECT = "the line is not a JSON object"
KEY_TWICE = "the line gives a key twice"


def jsonl_frame(path: Path, malformed: bool = False) -> pl.LazyFrame:
    """The lines as JSON objects, one text column per key of any line (module docstring).
    Lines are read raw by Polars (no glob, no schema window) and unpacked by DuckDB's
    JSON reader, which keeps every key of every line. With `malformed`, a bad line is a
    row (module docstring) with NOT_AN_OBJECT or KEY_TWICE in a column MALFORMED and the
    line in a last one AS_WRITTEN (both NULL for a sound line) instead of making the file
    unreadable."""
    lines = (raw_lines(path, truncate=False)
             .with_row_index("row_number", offset=1)
             .with_columns(pl.col("line").str.strip_prefix("\ufeff"))
             .filter(pl.col("line").str.strip_chars().fill_null("") != "")
             .collect())
    if lines.height == 0:
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    with duckdb.connect() as con:
        con.register("lines", lines)
        is_object = "json_valid(line) AND json_type(CASE WHEN json_valid(line) THEN line END) = 'OBJECT'"
        bad = con.execute(f"SELECT min(row_number) FROM lines WHERE NOT ({is_object})").fetchall()[0][0]
        if bad is not None and not malformed:
            raise FileRejected(UNREADABLE_FILE, f"line {bad} is not a JSON object")
        con.execute(f"""
            CREATE TABLE pairs AS
            SELECT l.row_number, e.key, CASE WHEN e.type = 'NULL' THEN NULL
                                              WHEN e.type = 'VARCHAR' THEN e.value ->> '$'
                                              ELSE e.value::VARCHAR END AS value
            FROM (SELECT * FROM lines WHERE {is_object}) l, json_each(l.line) e""")
        keys = [k for (k,) in con.execute("SELECT DISTINCT key FROM pairs ORDER BY key").fetchall()]
        names = {}
        for key in keys:
            names.setdefault(header_name(key), []).append(key)
        con.register("keymap", pl.DataFrame({"key": keys, "name": [header_name(k) for k in keys]},
                                            schema={"key": pl.String, "name": pl.String}))
        con.execute("""
            CREATE TABLE twice AS
            SELECT row_number, name FROM pairs JOIN keymap USING (key)
            GROUP BY ALL HAVING count(*) > 1""")
        first_twice = con.execute("SELECT row_number, min(name) FROM twice GROUP BY row_number "
                                  "ORDER BY row_number LIMIT 1").fetchall()
        if first_twice and not malformed:
            raise FileRejected(UNREADABLE_FILE,
                               f"line {first_twice[0][0]} gives the key {first_twice[0][1][:60]!r} twice")
        flagged = ""
        if malformed:
            # A key given twice keeps neither value (which is meant is a guess); the line's
            # other keys are clear, and kept, so the row still names its payment or code.
            con.execute("""DELETE FROM pairs WHERE (row_number, key) IN (
                               SELECT (t.row_number, k.key) FROM twice t JOIN keymap k USING (name))""")
            con.execute(f"""
                CREATE TABLE bad AS
                SELECT row_number, '{NOT_AN_OBJECT}' AS m, line FROM lines WHERE NOT ({is_object})
                UNION ALL SELECT DISTINCT t.row_number, '{KEY_TWICE}', l.line FROM twice t JOIN lines l USING (row_number)""")
            flagged = "LEFT JOIN bad USING (row_number)"
        # one column per trimmed key: at most one raw key per line (checked above)
        select = [f"max(value) FILTER (WHERE name = ${i + 1}) AS c{i}" for i in range(len(names))]
        select += ["any_value(m) AS m", "any_value(bad.line) AS w"] if malformed else []
        wide = con.sql(f"""
            SELECT {', '.join(['row_number', *select])}
            FROM lines LEFT JOIN (pairs JOIN keymap USING (key)) USING (row_number) {flagged}
            GROUP BY row_number ORDER BY row_number""", params=list(names)).pl()
    renamed = {"row_number": ROW, **{f"c{i}": name for i, name in enumerate(names)}}
    if malformed:
        renamed |= {"m": MALFORMED, "w": AS_WRITTEN}
    return wide.rename(renamed).lazy()
