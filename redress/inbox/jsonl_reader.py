"""JSON Lines files as text columns (SPEC "Reading files").

* JSON Lines: every line is a JSON object; the columns are the keys of all lines
  (trimmed). A string value is read as it is; any other value as its JSON text
  (`12345` -> "12345", `true` -> "true", an object or array -> its compact JSON text,
  a float in its shortest round-trip form: `1e3` -> "1000.0"); JSON null is missing. A
  line that is not a JSON object, or an object with a key twice, makes the file
  unreadable_file naming the line. Blank lines are not rows.
* row_number: the line number, blank lines included.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from redress.inbox.columns import ROW, header_name
from redress.inbox.files import FileRejected
from redress.vocabulary import EMPTY_FILE, UNREADABLE_FILE


def jsonl_frame(path: Path) -> pl.LazyFrame:
    """The lines as JSON objects, one text column per key of any line (module docstring).
    Lines are read raw by Polars (no glob, no schema window) and unpacked by DuckDB's
    JSON reader, which keeps every key of every line."""
    lines = (pl.scan_csv(path, has_header=False, separator="\x1f", quote_char=None, infer_schema=False,
                         new_columns=["line"], glob=False, encoding="utf8", truncate_ragged_lines=False)
             .with_row_index("row_number", offset=1)
             .with_columns(pl.col("line").str.strip_prefix("\ufeff"))
             .filter(pl.col("line").str.strip_chars().fill_null("") != "")
             .collect())
    if lines.height == 0:
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    with duckdb.connect() as con:
        con.register("lines", lines)
        bad = con.execute("""
            SELECT min(row_number) FROM lines
            WHERE NOT json_valid(line) OR json_type(CASE WHEN json_valid(line) THEN line END) <> 'OBJECT'
        """).fetchall()[0][0]
        if bad is not None:
            raise FileRejected(UNREADABLE_FILE, f"line {bad} is not a JSON object")
        con.execute("""
            CREATE TABLE pairs AS
            SELECT l.row_number, e.key, CASE WHEN e.type = 'NULL' THEN NULL
                                              WHEN e.type = 'VARCHAR' THEN e.value ->> '$'
                                              ELSE e.value::VARCHAR END AS value
            FROM lines l, json_each(l.line) e""")
        keys = [k for (k,) in con.execute("SELECT DISTINCT key FROM pairs ORDER BY key").fetchall()]
        names = {}
        for key in keys:
            names.setdefault(header_name(key), []).append(key)
        con.register("keymap", pl.DataFrame({"key": keys, "name": [header_name(k) for k in keys]},
                                            schema={"key": pl.String, "name": pl.String}))
        twice = con.execute("""
            SELECT row_number, name FROM pairs JOIN keymap USING (key)
            GROUP BY ALL HAVING count(*) > 1 ORDER BY row_number LIMIT 1""").fetchall()
        if twice:
            raise FileRejected(UNREADABLE_FILE, f"line {twice[0][0]} gives the key {twice[0][1][:60]!r} twice")
        # one column per trimmed key: at most one raw key per line (checked above)
        select = ", ".join(f"max(value) FILTER (WHERE name = ${i + 1}) AS c{i}" for i in range(len(names)))
        wide = con.sql(f"""
            SELECT row_number{', ' + select if select else ''}
            FROM lines LEFT JOIN (pairs JOIN keymap USING (key)) USING (row_number)
            GROUP BY row_number ORDER BY row_number""", params=list(names)).pl()
    return wide.rename({"row_number": ROW, **{f"c{i}": name for i, name in enumerate(names)}}).lazy()
