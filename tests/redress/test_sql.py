"""redress/sql.py: values from outside reach DuckDB bound or escaped, never as SQL text
(issue 9, item 6); and a guard that SQL f-strings in the code base splice no path."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from redress.errors import RedressError
from redress.checks.gx_duckdb import warehouse_url
from redress.sql import check_path, file_path, identifier, literal, one

ROOT = Path(__file__).resolve().parents[2]
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40)


@given(TEXT)
def test_a_literal_reads_back_as_the_value_and_never_as_sql(value):
    with duckdb.connect() as con:
        assert con.execute(f"SELECT {literal(value)}").fetchall() == [(value,)]


def test_a_literal_cannot_close_its_quote():
    payload = "x'; COPY (SELECT 42) TO 'pwned.csv'; --"
    with duckdb.connect() as con:
        assert con.execute(f"SELECT {literal(payload)}").fetchall() == [(payload,)]
    with pytest.raises(ValueError):
        literal("a\0b")


@given(TEXT.filter(bool))
def test_an_identifier_names_exactly_that_column(name):
    with duckdb.connect() as con:
        con.execute(f"CREATE TABLE t ({identifier(name)} INTEGER)")
        assert [d[0] for d in con.execute("SELECT * FROM t").description] == [name]


@pytest.mark.parametrize("name", ["", "a\0b"])
def test_an_unusable_identifier_is_refused(name):
    with pytest.raises(ValueError):
        identifier(name)


# Folder names: glob characters and their look-alikes, quotes, SQL, a leading dot.
FOLDER = st.text(st.sampled_from("ab1[]*{},'\" ;!^-.$%#&"), min_size=1, max_size=6).filter(
    lambda s: s not in (".", ".."))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(FOLDER, min_size=1, max_size=5, unique=True))
def test_a_reader_reads_exactly_the_file_named_never_a_glob_match(tmp_path, names):
    """Each folder holds a file with its own name; reading one through file_path gives
    that file only, even when its name, as a glob, matches the others."""
    root = tmp_path / "root"
    shutil.rmtree(root, ignore_errors=True)
    with duckdb.connect() as con:
        for name in names:
            (root / name).mkdir(parents=True)
            con.execute("COPY (SELECT ? AS name) TO ? (FORMAT parquet)", [name, str(root / name / "x.parquet")])
        for name in names:
            got = con.execute("SELECT list(name) FROM read_parquet(?)", [file_path(root / name / "x.parquet")])
            assert got.fetchall() == [([name],)]


def test_duckdb_globs_a_bound_path_which_is_why_file_path_exists(tmp_path):
    with duckdb.connect() as con:
        for name in ("data[1]", "data1"):
            (tmp_path / name).mkdir()
            con.execute("COPY (SELECT ? AS name) TO ? (FORMAT parquet)", [name, str(tmp_path / name / "x.parquet")])
        raw = str(tmp_path / "data[1]" / "x.parquet")
        assert con.execute("SELECT name FROM read_parquet(?)", [raw]).fetchall() == [("data1",)]
        assert con.execute("SELECT name FROM read_parquet(?)", [file_path(raw)]).fetchall() == [("data[1]",)]


@pytest.mark.parametrize("folder", ["what?", "back\\slash", "nul\0"])
def test_a_path_duckdb_cannot_use_is_refused_in_one_line(folder, tmp_path):
    with pytest.raises(RedressError) as refused:
        check_path(tmp_path / folder / "warehouse.duckdb")
    assert "\n" not in str(refused.value) and "move the data folder" in str(refused.value)
    with pytest.raises(RedressError):
        file_path(tmp_path / folder / "x.parquet")


def test_settings_are_bound_not_spliced():
    with duckdb.connect() as con:
        con.execute("SET TimeZone = ?", ["Asia/Seoul"])
        con.execute("SET memory_limit = ?", ["1GiB"])
        assert con.execute("SELECT current_setting('TimeZone'), current_setting('memory_limit')").fetchall() \
            == [("Asia/Seoul", "1.0 GiB")]


@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0?\\"), min_size=1, max_size=30))
def test_the_gx_url_gives_back_the_warehouse_path_exactly(name):
    path = f"/data/{name}/warehouse.duckdb"
    url = make_url(warehouse_url(Path(path)))
    assert url.database == str(Path(path)) and not url.query
    assert "$" not in warehouse_url(Path(path))  # GX substitutes ${VAR} in connection strings


# --------------------------------------------------------------------------- the guard

# A name interpolated into SQL text that looks like a path or a value from outside.
PATHLIKE = re.compile(r"path|staged|target|rendered|result|folder|dir\b|_dir|file_name|warehouse|parquet|"
                      r"timezone|\btz\b|zone|memory_limit|\bsrc\b|scope /|_q\(", re.IGNORECASE)
SQL = re.compile(r"\b(SELECT|COPY|INSERT|UPDATE|DELETE|CREATE|ATTACH|SET|read_parquet|read_csv|read_json)\b")
SOURCES = [p for folder in ("redress", "tasks", "flows", "benchmarks") for p in sorted((ROOT / folder).rglob("*.py"))]


def spliced_sql(source: str) -> list[str]:
    """Each f-string (or "...".format call) whose text is SQL and whose interpolated
    expressions look like a path or an outside value, as `line: expression`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            exprs = [ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
              and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)):
            text = node.func.value.value
            exprs = [ast.unparse(a) for a in [*node.args, *(k.value for k in node.keywords)]]
        else:
            continue
        if SQL.search(text):
            found += [f"{node.lineno}: {e}" for e in exprs if PATHLIKE.search(e)]
    return found


def test_the_guard_catches_the_mistakes_it_is_for():
    bad = '''
con.execute(f"INSERT INTO t SELECT * FROM read_parquet('{result}')")
con.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet)")
con.execute(f"SET TimeZone = '{timezone}'")
con.execute("SELECT * FROM read_csv({})".format(_q(scope / name)))
'''
    assert len(spliced_sql(bad)) == 4
    fine = '''
con.execute(f"SELECT {columns} FROM read_parquet(?) ORDER BY person_key", [file_path(rendered)])
con.execute(f"COPY (SELECT * FROM {table} ORDER BY {order}) TO ? (FORMAT parquet)", [str(tmp)])
'''
    assert spliced_sql(fine) == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_sql_text_splices_a_path_or_an_outside_value(path):
    assert spliced_sql(path.read_text(encoding="utf-8")) == [], (
        "bind it as a parameter, or quote it with redress.sql (see its docstring)")


def test_one_fetches_the_whole_result_so_the_connection_stays_usable():
    with duckdb.connect() as con:
        assert one(con.execute("SELECT 1, 'a'")) == (1, "a")
        assert con.sql("SELECT 2").fetchall() == [(2,)]  # no "unfinished result"
        assert one(con.execute("SELECT 1 WHERE false")) is None
        with pytest.raises(ValueError, match="at most one row"):
            one(con.execute("SELECT * FROM range(2)"))


def test_duckdb_leaves_a_fetchone_result_open_which_is_why_one_exists():
    with duckdb.connect() as con:
        con.execute("SELECT 1").fetchone()
        with pytest.raises(duckdb.Error, match="unfinished result"):
            con.sql("SELECT 2").fetchall()


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_calls_fetchone(path):
    """A fetchone() that works where it is (the connection closes next) breaks as soon as
    someone adds a query after it: every single-row read goes through sql.one."""
    calls = [node.lineno for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Attribute) and node.attr == "fetchone"]
    assert calls == [], f"{path.relative_to(ROOT)}: fetchone() at lines {calls}: use redress.sql.one"


# --------------------------------------------------------------------------- Hive partitions

# DuckDB's file readers (each takes a key=value folder as a column), in SQL text: any
# case, a space before the bracket allowed; not pl.read_parquet(...) in a script.
READERS = ("read_parquet", "parquet_scan", "read_csv", "read_csv_auto", "read_json", "read_json_auto",
           "read_ndjson", "read_ndjson_auto", "read_json_objects", "read_ndjson_objects", "read_text", "read_blob")
READER_SQL = re.compile(rf"(?<![\w.])({'|'.join(READERS)})\s*\(", re.IGNORECASE)
# FROM 'x.parquet': a file read with no options (not COPY t FROM 'x.parquet', a load).
QUOTED_FILE = re.compile(r"(?<!COPY )\b(FROM|JOIN)\s+'[^'{}]*\.(parquet|csv|tsv|json|jsonl|ndjson)(\.\w+)?'",
                         re.IGNORECASE)
HIVE_OFF = re.compile(r"\bhive_partitioning\s*=\s*false\b", re.IGNORECASE)
SQL_COMMENT = re.compile(r"--[^\n]*")
READER_CALLS = {"read_parquet", "read_csv", "read_json", "from_csv_auto"}  # the relation API's
NOT_DUCKDB = {"pl", "polars", "pd", "pandas"}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_duckdb_reads_a_key_value_folder_as_a_column_unless_told_not_to(fmt, tmp_path):
    """The trap redress/sql.py describes, for each reader: the folder's value replaces the
    file's column, typed, with the path escaped by file_path and bound."""
    folder = tmp_path / "name=x" / "rows=7"  # names the suite's own folders do not use (conftest.py)
    folder.mkdir(parents=True)
    target = folder / f"a.{fmt}"
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 'C1' AS name, 5000 AS rows) TO ? (FORMAT {fmt})", [str(target)])
        read = f"SELECT name, rows FROM read_{fmt}(?{{}})"
        assert con.execute(read.format(""), [file_path(target)]).fetchall() == [("x", 7)]
        assert con.execute(read.format(", hive_partitioning = false"), [file_path(target)]).fetchall() \
            == [("C1", 5000)]


def test_the_suite_runs_where_a_reader_that_took_folders_as_columns_would_read_wrong_values(tmp_path):
    """tests/conftest.py puts every test's files under `customer_id=C0000000000/...`, so
    the flow tests try every reader against the trap; this fails if that goes away."""
    assert [part for part in tmp_path.parts if "=" in part][:2] == ["customer_id=C0000000000", "amount=7"]
    with duckdb.connect() as con:
        con.execute("COPY (SELECT 'C1' AS customer_id, 5000 AS amount) TO ? (FORMAT parquet)",
                    [str(tmp_path / "a.parquet")])
        assert con.execute("SELECT customer_id, amount FROM read_parquet(?)",
                           [file_path(tmp_path / "a.parquet")]).fetchall() == [("C0000000000", 7)]


def _arguments(text: str, start: int) -> str:
    """The text from `start` to the parenthesis that closes the one before it."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return text[start:]


def hive_readers(source: str) -> list[str]:
    """Each DuckDB reader call that does not turn Hive partitions off, as `line: call`:
    read_parquet/read_csv/read_json in SQL text (strings and f-strings; docstrings are
    prose) and the relation API's con.read_parquet(...) (not Polars' or pandas')."""
    tree = ast.parse(source)
    prose = {id(node.body[0].value) for node in ast.walk(tree)
             if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
             and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    prose |= {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            text = node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in READER_CALLS
              and not (isinstance(node.func.value, ast.Name) and node.func.value.id in NOT_DUCKDB)):
            if not any(k.arg == "hive_partitioning" and isinstance(k.value, ast.Constant) and k.value.value is False
                       for k in node.keywords):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
            continue
        else:
            continue
        found += [f"{node.lineno}: {m[0]}{_arguments(text, m.end())})" for m in READER_SQL.finditer(text)
                  if not HIVE_OFF.search(SQL_COMMENT.sub("", _arguments(text, m.end())))]
        found += [f"{node.lineno}: {m[0]}" for m in QUOTED_FILE.finditer(text)
                  if not re.search(r"\bCOPY\s+\S+\s+$", text[:m.start()], re.IGNORECASE)]
    return found


def test_the_hive_guard_catches_the_mistakes_it_is_for():
    bad = '''
con.execute("SELECT * FROM read_parquet(?)", [p])
con.execute(f"SELECT {c} FROM read_csv(?, all_varchar = true) WHERE {w}", [p])
con.execute("""INSERT INTO t
    SELECT * FROM read_json($file,
                            format = 'newline_delimited')""", {"file": p})
con.read_parquet(p)
con.read_csv(p, hive_partitioning=True)
con.execute("SELECT * FROM READ_PARQUET (?)", [p])
con.execute("SELECT * FROM read_csv_auto(?) JOIN parquet_scan(?) USING (k)", [p, q])
con.execute("""SELECT * FROM read_parquet(? -- hive_partitioning = false
)""", [p])
con.execute("SELECT * FROM 'data/x.parquet'")
con.from_csv_auto(p)
'''
    assert len(hive_readers(bad)) == 11
    fine = '''
"""A docstring may say read_parquet('exports/ledger/*.parquet')."""
con.execute(f"SELECT {c} FROM read_parquet(?, file_row_number = true, hive_partitioning = false) p", [p])
con.execute("SELECT * FROM read_csv($f, all_varchar = true, HIVE_PARTITIONING = FALSE)", {"f": p})
con.read_parquet(p, hive_partitioning=False)
pl.read_parquet(p, glob=False)
'''
    assert hive_readers(fine) == []


@pytest.mark.parametrize("path", SOURCES + sorted(set((ROOT / "tests").rglob("*.py")) - {Path(__file__).resolve()}),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_duckdb_reader_turns_hive_partitions_off(path):
    assert hive_readers(path.read_text(encoding="utf-8")) == [], (
        "a folder named key=value in the path would replace the file's column: say hive_partitioning = false "
        "(redress/sql.py)")


POLARS_READERS = {"read_parquet", "scan_parquet", "read_csv", "scan_csv", "read_ndjson", "scan_ndjson", "read_ipc",
                  "scan_ipc"}


def polars_globbing(text: str) -> list[str]:
    """Calls of a Polars file reader (`pl.read_parquet(...)`, `pl.scan_csv(...)`...) that do
    not say glob=False: Polars expands `*`, `?` and `[...]` in a path, so a data folder
    named `k'o [1]*` read another file or none (found by the suite: the overpayments list)."""
    return [f"{node.lineno}: pl.{node.func.attr}" for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "pl"
            and node.func.attr in POLARS_READERS
            and not any(k.arg == "glob" and isinstance(k.value, ast.Constant) and k.value.value is False
                        for k in node.keywords)]


def test_the_glob_guard_catches_a_polars_reader_without_glob_false():
    assert polars_globbing("pl.read_parquet(p)\npl.scan_csv(p, has_header=False)\npl.scan_parquet(p, glob=True)\n") \
        == ["1: pl.read_parquet", "2: pl.scan_csv", "3: pl.scan_parquet"]
    assert polars_globbing("pl.read_parquet(p, glob=False)\npl.scan_ndjson(\n    p,\n    glob=False)\n") == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_polars_reader_of_redress_reads_the_path_it_is_given(path):
    assert polars_globbing(path.read_text(encoding="utf-8")) == [], "say glob=False (a path is not a pattern)"
