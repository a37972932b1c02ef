"""Rows a reader cannot split into the header's fields, marked instead of refused, for
files of one row per payment (SPEC "Input: returns from finance": a malformed row is
quarantined, never the file; claims follow the same rule) and for scope files (one odd
row never holds back the file's others: redress/inbox/scope.py). Customer snapshots
still refuse the file whole (SPEC "Input: customers snapshot"), naming the first such
row: both readings are tested on the same files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redress import inbox as io
from redress.inbox.jsonl_reader import KEY_TWICE, NOT_AN_OBJECT

WANT = ("a", "b", "c")
BEYOND = "more fields than the header (quote values that contain commas)"
value = st.text(alphabet="xyzé 0-9", min_size=1, max_size=5).filter(str.strip)
# a row: three values, and what follows the third (nothing, empty fields, or values)
row = st.tuples(st.lists(value, min_size=3, max_size=3),
                st.one_of(st.just([]), st.lists(st.just(""), min_size=1, max_size=3),
                          st.lists(value, min_size=1, max_size=3)))


def read(path: Path, malformed: bool) -> list[dict]:
    return io.read_text_frame(path, (), WANT, malformed=malformed).collect().to_dicts()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, min_size=1, max_size=25))
def test_a_csv_row_wider_than_the_header_is_marked_or_refuses_the_file(tmp_path, rows):
    path = tmp_path / "r.csv"
    path.write_text("a,b,c\n" + "".join(",".join(values + extra) + "\n" for values, extra in rows), encoding="utf-8")
    wider = [n for n, (_, extra) in enumerate(rows, start=1) if any(extra)]
    got = read(path, malformed=True)
    # every row once, in order, its three values as written; marked exactly when wider
    assert [r["row_number"] for r in got] == list(range(1, len(rows) + 1))
    assert [(r["a"], r["b"], r["c"]) for r in got] == [tuple(v.strip() for v in values) for values, _ in rows]
    assert [r["row_number"] for r in got if r["malformed"] is not None] == wider
    assert {r["malformed"] for r in got} <= {None, BEYOND}
    # a marked row as written (its fields as the file gave them, trailing empty ones cut)
    assert [r["as_written"] for r in got] == [
        ",".join(values + extra).rstrip(",") if any(extra) else None for values, extra in rows]
    if wider:
        with pytest.raises(io.FileRejected) as caught:
            read(path, malformed=False)
        assert (caught.value.reason, caught.value.detail) == ("unreadable_file", f"row {wider[0]} has {BEYOND}")
    else:
        assert [{k: v for k, v in r.items() if k not in ("malformed", "as_written")} for r in got] == \
            read(path, malformed=False)


line = st.one_of(
    st.fixed_dictionaries({}, optional={k: value for k in WANT}).map(lambda d: ("object", json.dumps(d), d)),
    st.sampled_from(['[1, 2]', '"text"', '{"a": 1', 'null', '42']).map(lambda t: ("not", t, None)),
    # a key given twice (exactly, or once trimmed), and what the line keeps: its other keys
    st.sampled_from([('{"a": "x", "a": "y", "c": "z"}', {"c": "z"}), ('{"b": "x", " b": "y"}', {})]).map(
        lambda t: ("twice", t[0], t[1])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line, min_size=1, max_size=25))
def test_a_jsonl_line_that_is_no_clear_object_is_marked_or_refuses_the_file(tmp_path, lines):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(text + "\n" for _, text, _ in lines), encoding="utf-8")
    got = read(path, malformed=True)
    said = {"object": None, "not": NOT_AN_OBJECT, "twice": KEY_TWICE}
    assert [r["row_number"] for r in got] == list(range(1, len(lines) + 1))
    assert [r["malformed"] for r in got] == [said[kind] for kind, _, _ in lines]
    assert [r["as_written"] for r in got] == [None if kind == "object" else text for kind, text, _ in lines]
    for r, (kind, _, values) in zip(got, lines):
        # a sound line's values as written; one that is no object keeps none; one with a
        # key twice keeps its other keys (given once: clear) and neither value of that key
        written = {k.strip(): v.strip() for k, v in (values or {}).items()}
        assert tuple(r[k] for k in WANT) == tuple(written.get(k) if kind != "not" else None for k in WANT)
    bad = [n for n, (kind, _, _) in enumerate(lines, start=1) if kind != "object"]
    if bad:
        with pytest.raises(io.FileRejected) as caught:
            read(path, malformed=False)
        assert caught.value.reason == "unreadable_file"
    else:
        assert [{k: v for k, v in r.items() if k not in ("malformed", "as_written")} for r in got] == \
            read(path, malformed=False)


def test_a_parquet_file_has_no_malformed_rows(tmp_path):
    import polars as pl

    pl.DataFrame({"a": ["x", "y"], "b": [1, None]}).write_parquet(tmp_path / "r.parquet")
    assert read(tmp_path / "r.parquet", malformed=True) == [
        {"row_number": 1, "a": "x", "b": "1", "c": None, "malformed": None, "as_written": None},
        {"row_number": 2, "a": "y", "b": None, "c": None, "malformed": None, "as_written": None}]


def test_a_jsonl_file_of_nothing_but_malformed_lines_is_its_rows_not_a_missing_column(tmp_path):
    """Found by review: such a file was refused as missing payment_id and status, while
    the same lines as CSV rows were each quarantined."""
    path = tmp_path / "r.jsonl"
    path.write_text('["a"]\n"b"\n42\n', encoding="utf-8")
    got = io.read_text_frame(path, ("a", "b"), WANT, malformed=True).collect().to_dicts()
    assert [(r["row_number"], r["a"], r["malformed"], r["as_written"]) for r in got] == [
        (1, None, NOT_AN_OBJECT, '["a"]'), (2, None, NOT_AN_OBJECT, '"b"'), (3, None, NOT_AN_OBJECT, "42")]
    path.write_text('["a"]\n{"c": "x"}\n', encoding="utf-8")  # a sound line without them: missing
    with pytest.raises(io.FileRejected) as caught:
        io.read_text_frame(path, ("a", "b"), WANT, malformed=True)
    assert caught.value.reason == "missing_column"


def test_a_column_named_malformed_in_the_file_is_not_the_readers_mark(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,malformed\nx,yes\ny,no,extra\n", encoding="utf-8")
    assert [(r["a"], r["malformed"]) for r in io.read_text_frame(path, ("a",), ("a",), malformed=True).collect().to_dicts()] == [
        ("x", None), ("y", BEYOND)]
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": "x", "malformed": "yes"}\n[1]\n', encoding="utf-8")
    assert [(r["a"], r["malformed"]) for r in io.read_text_frame(path, ("a",), ("a",), malformed=True).collect().to_dicts()] == [
        ("x", None), (None, NOT_AN_OBJECT)]


@pytest.mark.parametrize("value", ['5" rain', 'CS"042', 'a "b" c'])
def test_a_quote_inside_an_unquoted_value_is_refused_saying_so(tmp_path, value):
    """Found by review: `P1,returned,5" rain` refused the file as `cannot be read:
    ComputeError`. Now it says what to change, and names the line where it can: in a
    returns or claims file, which is parsed whole first (scope files keep one reading)."""
    path = tmp_path / "r.csv"
    path.write_text(f"a,b,c\nP1,x,ok\nP2,y,{value}\nP3,z,fine\n", encoding="utf-8")
    for malformed, start in ((True, "line 3 has a \" inside a value"), (False, "a \" inside a value")):
        try:
            io.stage(io.read_text_frame(path, ("a",), WANT, malformed=malformed), tmp_path / "s.parquet")
        except io.FileRejected as refused:
            assert refused.reason == "unreadable_file" and refused.detail.startswith(start), refused.detail
        else:  # Polars takes some such quotes as they are: then the value must be exactly as written
            got = io.read_text_frame(path, ("a",), WANT, malformed=malformed).collect()
            assert got["c"].to_list() == ["ok", value, "fine"]


def test_in_a_file_of_one_row_per_payment_a_value_across_lines_is_malformed(tmp_path):
    """Found by review: a quote opened in one reason and closed two lines later took two
    results into that reason; their payments were never applied nor quarantined."""
    from redress.inbox.csv_reader import SPANS_LINES

    path = tmp_path / "r.csv"
    path.write_text('a,b,c\nP30,returned,"ACCT CLOSED\nP31,returned,no account\nP32,returned,NOT FOUND"\n'
                    'P33,settled,\n', encoding="utf-8")
    got = read(path, malformed=True)
    assert [(r["row_number"], r["a"], r["malformed"]) for r in got] == [(1, "P30", SPANS_LINES), (2, "P33", None)]
    assert got[0]["as_written"] == 'P30,returned,"ACCT CLOSED\nP31,returned,no account\nP32,returned,NOT FOUND"'
    # a scope file keeps taking quoted line breaks as values
    assert [r["c"] for r in read(path, malformed=False)] == ["ACCT CLOSED\nP31,returned,no account\nP32,returned,NOT FOUND", None]


@pytest.mark.parametrize("body, line", [
    ('P8,returned,"closed, moved"\nP9,returned,5" rain\n', 3),   # a quoted comma before it
    ('P7,returned,"two\nlines"\nP9,returned,5" rain\n', 4),     # a quoted line break before it
    ('P9,returned,"never closed\nP10,x,y\n', 2),                # a quote never closed
    ('P1,returned,fine\nP2,settled,"a ""quoted"" word"\n', None),  # CSV throughout
])
def test_the_line_named_for_a_bad_quote_is_where_csv_stops(tmp_path, body, line):
    """Found by review: the line was found by a pattern that a quoted comma or line break
    before the bad quote misled."""
    from redress.inbox.csv_reader import stray_quote_line

    path = tmp_path / "r.csv"
    path.write_text("payment_id,status,reason\n" + body, encoding="utf-8")
    assert stray_quote_line(path) == line
    path.write_text("\ufeffpayment_id,status,reason\r\n" + body.replace("\n", "\r\n"), encoding="utf-8")
    assert stray_quote_line(path) == line


# ------------------------------------------------------------------ scope files

SCOPE_HEADER = "customer_id,email,phone,data_category,accessed_at,confidence,source"
SPEC_COLUMNS = ("customer_id", "email", "phone", "data_category", "accessed_at", "confidence", "source")
# a source as forensics write it: plain, quoted with a comma, quoted across lines
source = st.sampled_from([("waf", "waf"), ('"db, audit"', "db, audit"), ('"line one\nline two"', "line one\nline two"),
                          ("", None)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["C1", "C2", ""]), source,
                               st.one_of(st.just([]), st.lists(value, min_size=1, max_size=2))),
                     min_size=1, max_size=20),
       crlf=st.booleans())
def test_a_scope_row_wider_than_the_header_is_kept_empty_and_marked_and_no_other_is(tmp_path, rows, crlf):
    """Every row once and in order. A row with a value beyond the header is marked with
    what is wrong, its SPEC columns empty (they may be shifted), and not kept as written
    (it may hold columns beyond the SPEC's); every
    other row is read as written, a quoted comma or line break in its source included
    (a scope file is not one result per line)."""
    eol = "\r\n" if crlf else "\n"
    lines = [f"{cid},,,name,2025-07-01T10:00:00,,{written}" + "".join("," + e for e in extra)
             for cid, (written, _), extra in rows]
    path = tmp_path / "s.csv"
    path.write_bytes((SCOPE_HEADER + eol + eol.join(lines) + eol).encode())
    got = io.scope_frame(path).collect().to_dicts()
    assert [r["row_number"] for r in got] == list(range(1, len(rows) + 1))
    assert all("as_written" not in r for r in got)
    for r, (cid, (written, read_as), extra) in zip(got, rows):
        if extra:
            assert r["malformed"] == BEYOND
            assert all(r[c] is None for c in SPEC_COLUMNS)
        else:
            assert r["malformed"] is None
            assert (r["customer_id"], r["data_category"], r["source"]) == (cid or None, "name", read_as)


def test_a_scope_jsonl_line_that_is_no_clear_object_is_kept_empty_and_marked(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"customer_id": "C1", "data_category": "name", "accessed_at": "2025-07-01"}\n[1]\n'
                    '{"customer_id": "C2", "customer_id": "C3", "data_category": "name", "accessed_at": "2025-07-01"}\n',
                    encoding="utf-8")
    got = io.scope_frame(path).collect().to_dicts()
    assert [(r["row_number"], r["customer_id"], r["data_category"], r["malformed"]) for r in got] == [
        (1, "C1", "name", None), (2, None, None, NOT_AN_OBJECT), (3, None, None, KEY_TWICE)]
    assert "as_written" not in got[0]


def test_a_customers_snapshot_still_refuses_a_row_wider_than_its_header(tmp_path):
    from redress.inbox.files import CUSTOMER_COLUMNS

    path = tmp_path / "c.csv"
    path.write_text(",".join(CUSTOMER_COLUMNS) + "\nC1,Kim,,,active,2020-01-01,,false,,,,extra\n", encoding="utf-8")
    with pytest.raises(io.FileRejected) as caught:
        io.read_text_frame(path, ("customer_id",), CUSTOMER_COLUMNS)
    assert (caught.value.reason, caught.value.detail) == ("unreadable_file", f"row 1 has {BEYOND}")


@pytest.mark.parametrize("body, rows", [
    # a \x1f inside a quoted value cuts the raw line the width is counted on, and leaves
    # its quotes unpaired until the next one: read in a moment, not 6,000 columns wide
    ('C1,,,name,2025-07-01,,"tab\x1fsep"\n' + "C2,,,name,2025-07-01,,waf\n" * 1000
     + 'C3,,,name,2025-07-01,,"tab\x1fsep"\n', 1002),
    # a wide row whose quoted source holds a line break: its commas span two lines
    ('C1,,,name,2025-07-01,,"two\nlines",extra\nC2,,,name,2025-07-01,,waf\n', 2),
    # ... or sixty (found by review: records over 50 lines were not counted)
    ('C1,,,name,2025-07-01,,"' + "frame\n" * 60 + '",extra\nC2,,,name,2025-07-01,,waf\n', 2),
    # a line of nothing but commas, however many, is not a row (found by review)
    ('C1,,,name,2025-07-01,,waf\n' + "," * 45 + "\n" + " ,\t," * 20 + "\nC2,,,name,2025-07-01,,waf\n", 2),
])
def test_the_width_is_found_per_record_and_bounded(tmp_path, body, rows):
    from redress.inbox.csv_reader import MAX_BEYOND_HEADER, _csv_width

    path = tmp_path / "s.csv"
    path.write_text(SCOPE_HEADER + "\n" + body, encoding="utf-8")
    width, _ = _csv_width(path)
    assert 7 <= width <= 8 + MAX_BEYOND_HEADER  # never wider than the cap, however the quotes pair
    assert io.scope_frame(path).collect().height == rows


def test_stray_quotes_far_apart_are_refused_at_once_not_read_thousands_of_columns_wide(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(SCOPE_HEADER + '\nC1,,,name,2025-07-01,,5" rain\n' + "C2,,,name,2025-07-01,,waf\n" * 1000
                    + 'C3,,,name,2025-07-01,,6" snow\n', encoding="utf-8")
    from redress.inbox.csv_reader import MAX_BEYOND_HEADER, _csv_width

    assert _csv_width(path)[0] <= 8 + MAX_BEYOND_HEADER  # the quotes pair wrongly: bounded all the same
    with pytest.raises(io.FileRejected) as caught:
        io.stage(io.scope_frame(path), tmp_path / "staged.parquet")
    assert caught.value.reason == "unreadable_file" and 'a " inside a value' in caught.value.detail


def test_a_row_far_wider_than_the_header_refuses_the_file_rather_than_widen_every_row(tmp_path):
    from redress.inbox.csv_reader import MAX_BEYOND_HEADER

    path = tmp_path / "s.csv"
    for extra, refused in ((MAX_BEYOND_HEADER, False), (MAX_BEYOND_HEADER + 1, True), (1500, True)):
        path.write_text(SCOPE_HEADER + "\nC1,,,name,2025-07-01,,x" + ",y" * extra + "\nC2,,,name,2025-07-01,,waf\n",
                        encoding="utf-8")
        if refused:
            with pytest.raises(io.FileRejected) as caught:
                io.stage(io.scope_frame(path), tmp_path / "staged.parquet")
            assert caught.value.detail == ("a row has more than 32 fields beyond the header, so the file cannot be "
                                           "read row by row (quote values that contain commas)")
        else:
            assert [r["malformed"] for r in io.scope_frame(path).collect().to_dicts()] == [BEYOND, None]


@pytest.mark.parametrize("name, body", [
    ("s.csv", f"{SCOPE_HEADER}\nC1,,,name,2025-07-01,,waf\nC2,,,name,2025-07-01,,waf\x1flog, server 2\n"
              "C3,,,name,2025-07-01,,\"a\x1fb\"\n"),
    # JSON allows a control character in a string only escaped: unescaped, the line is
    # no JSON object and is quarantined alone
    ("s.jsonl", '{"customer_id": "C1", "data_category": "name", "accessed_at": "2025-07-01"}\n'
                '{"customer_id": "C2", "data_category": "name", "accessed_at": "2025-07-01", "source": "a\x1fb"}\n'
                '{"customer_id": "C3", "data_category": "name", "accessed_at": "2025-07-01", "source": "a\\u001fb"}\n'),
])
def test_a_unit_separator_byte_in_a_row_is_a_character_like_any_other(tmp_path, name, body):
    """Found by review: raw lines were read split at \x1f, so a line holding one was cut
    short, and the file refused as one with more fields than the header, JSON Lines too."""
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    got = io.scope_frame(path).collect().to_dicts()
    assert [(r["customer_id"], r["malformed"]) for r in got] == (
        [("C1", None), (None, BEYOND), ("C3", None)] if name.endswith(".csv") else
        [("C1", None), (None, NOT_AN_OBJECT), ("C3", None)])
    assert got[-1]["source"] == "a\x1fb"
