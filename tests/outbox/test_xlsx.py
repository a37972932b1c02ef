"""redress/outbox/xlsx.py: payments.xlsx holds identifiers as text and amounts as integers,
and the same rows give the same bytes (SPEC "Disbursement batches")."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timezone
from unittest import mock

import openpyxl
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redress.outbox import xlsx
from redress.outbox.xlsx import write_xlsx

CREATED = datetime(2025, 12, 1, 9, 30, tzinfo=timezone.utc)
BANK = pl.DataFrame({
    "payment_id": ["20251201-B0001-000001", "20251201-B0001-000002", "20251201-B0001-000003"],
    "customer_id": ["C0001", "=cmd|' /C calc'!A0", "0042"],
    "amount": [50000, 1234567, 1000],
    "currency": ["KRW"] * 3,
    "rail": ["bank_transfer"] * 3,
    "attempt": [1, 2, 1],
    "bank_code": ["003", "088", "004"],
    "bank_account": ["0285928584979502", "1139462501524886", "1234567890"],
})


def _cells(path) -> list[list]:
    sheet = openpyxl.load_workbook(path)["payments"]
    return [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows()]


def test_identifiers_are_text_and_amounts_integer_numbers(tmp_path):
    write_xlsx(BANK, tmp_path / "p.xlsx", CREATED)
    rows = _cells(tmp_path / "p.xlsx")
    assert [v for v, _ in rows[0]] == BANK.columns
    body = rows[1:]
    assert [[v for v, _ in r] for r in body] == [list(r) for r in BANK.iter_rows()]
    for r in body:
        kinds = dict(zip(BANK.columns, (t for _, t in r)))
        # 's': a text cell (the leading zeros and all 16 digits kept); 'n': a number;
        # the customer id that looks like a formula is text, never a formula ('f').
        assert {kinds[c] for c in ("payment_id", "customer_id", "bank_code", "bank_account")} == {"s"}
        assert (kinds["amount"], kinds["attempt"]) == ("n", "n")
    assert all(isinstance(r[2][0], int) for r in body)


def test_an_empty_value_is_an_empty_cell_and_other_dtypes_are_refused(tmp_path):
    frame = pl.DataFrame({"payment_id": ["p1"], "bank_code": [None], "amount": [5]},
                         schema={"payment_id": pl.String, "bank_code": pl.String, "amount": pl.Int64})
    write_xlsx(frame, tmp_path / "p.xlsx", CREATED)
    assert [v for v, _ in _cells(tmp_path / "p.xlsx")[1]] == ["p1", None, 5]
    with pytest.raises(ValueError, match="ratio"):
        write_xlsx(pl.DataFrame({"ratio": [0.5]}), tmp_path / "q.xlsx", CREATED)


def test_the_same_rows_give_the_same_bytes_in_any_timezone(tmp_path):
    write_xlsx(BANK, tmp_path / "a.xlsx", CREATED)
    # Another process in another timezone, a moment later: xlsxwriter would otherwise
    # stamp the time of writing into docProps/core.xml and the zip entries.
    script = ("import sys, polars as pl; from datetime import datetime; from redress.outbox.xlsx import write_xlsx; "
              "write_xlsx(pl.read_parquet(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3]))")
    BANK.write_parquet(tmp_path / "bank.parquet")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "bank.parquet"), str(tmp_path / "b.xlsx"),
                    CREATED.isoformat()], check=True, env=dict(os.environ, TZ="America/New_York"))
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.xlsx") as z:
        assert {i.date_time[:3] for i in z.infolist()} <= {(1980, 1, 1), (1980, 1, 31)}
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
        assert z.namelist() == ["[Content_Types].xml", "_rels/.rels", "docProps/app.xml", "docProps/core.xml",
                                "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml",
                                "xl/worksheets/sheet1.xml"]
        assert b"<dcterms:created xsi:type=\"dcterms:W3CDTF\">2025-12-01T09:30:00Z" in z.read("docProps/core.xml")


# ------------------------------------------------------------------ any frame, cell for cell

MAX_EXACT = 2**53 - 1
# XML 1.0's Char production: everything but these (and surrogates, which UTF-8 text cannot hold).
FORBIDDEN = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))] + ["\ufffe", "\uffff"]
TRICKY = ["0042", "0285928584979502", "1139462501524886", "=1+1", "=cmd|' /C calc'!A0", "&<>\"'", " lead",
          "trail ", "  ", "\u3000wide space\u3000", "_x0041_", "_x005F_", "a\rb", "line\nbreak", "tab\there", "",
          "+821012345678"]
WRITABLE = st.characters(codec="utf-8", exclude_characters=FORBIDDEN)
TEXT = st.one_of(st.none(), st.sampled_from(TRICKY), st.text(WRITABLE, max_size=12))
NUMBER = st.one_of(st.none(), st.integers(-MAX_EXACT, MAX_EXACT), st.sampled_from([0, -1, MAX_EXACT, -MAX_EXACT]))


@st.composite
def frames(draw) -> pl.DataFrame:
    """1-6 columns, text (String, or an identifier name of any of them) or Int64, in any
    order, 0-7 rows of any writable value."""
    names = draw(st.lists(st.sampled_from(["payment_id", "customer_id", "bank_code", "bank_account", "amount",
                                           "attempt", "currency", "rail", "memo", "x"]),
                          min_size=1, max_size=6, unique=True))
    height = draw(st.integers(0, 7))
    columns = {}
    for name in names:
        if draw(st.booleans()):
            columns[name] = pl.Series(name, draw(st.lists(TEXT, min_size=height, max_size=height)), pl.String)
        else:
            columns[name] = pl.Series(name, draw(st.lists(NUMBER, min_size=height, max_size=height)), pl.Int64)
    return pl.DataFrame(list(columns.values()))


def as_a_spreadsheet_reads(value):
    """openpyxl returns a cell's text as stored; Excel and LibreOffice also decode the
    `_xHHHH_` escapes of ECMA-376 ST_Xstring (so the writer stores a literal `_x0041_` as
    `_x005F_x0041_`). This is what a person sees."""
    if not isinstance(value, str):
        return value
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), value)


@settings(max_examples=60)
@given(frame=frames(), chunk_rows=st.integers(1, 4))
def test_any_frame_reads_back_cell_for_cell_with_its_types(tmp_path_factory, frame, chunk_rows):
    folder = tmp_path_factory.mktemp("prop")
    # Small chunks so that rows rendered in different chunks meet in every example.
    with mock.patch.object(xlsx, "_CHUNK_ROWS", chunk_rows):
        write_xlsx(frame, folder / "a.xlsx", CREATED)
    write_xlsx(frame, folder / "b.xlsx", CREATED)
    assert (folder / "a.xlsx").read_bytes() == (folder / "b.xlsx").read_bytes()
    sheet = openpyxl.load_workbook(folder / "a.xlsx")["payments"]
    rows = list(sheet.iter_rows(min_row=1, max_row=frame.height + 1, max_col=frame.width))
    assert sheet.max_row == frame.height + 1 and sheet.max_column == frame.width
    assert [c.value for c in rows[0]] == frame.columns and all(c.font.b for c in rows[0])
    for values, cells in zip(frame.iter_rows(), rows[1:]):
        for name, value, cell in zip(frame.columns, values, cells):
            if frame.schema[name] == pl.String or name in xlsx.IDENTIFIERS:
                # An identifier is text whatever its dtype; an empty value is an empty cell.
                expected = None if value in (None, "") else str(value)
                assert (as_a_spreadsheet_reads(cell.value), cell.data_type if expected else None) == \
                       (expected, "s" if expected else None)
                # Formatted as text ("@", numFmtId 49): what is typed over it stays text too.
                assert expected is None or cell.number_format == "@"
            else:
                assert (cell.value, cell.data_type) == (value, "n")
                assert value is None or type(cell.value) is int
    for letter, name in zip("ABCDEF", frame.columns):
        # xlsxwriter's width for max(len(name), 12) + 2 characters of Calibri 11 (14.7109375 for 14).
        assert sheet.column_dimensions[letter].width == (max(len(name), 12) * 7 + 19) * 256 // 7 / 256


@given(name=st.sampled_from(["amount", "attempt"]), position=st.integers(0, 3),
       value=st.one_of(st.integers(2**53, 2**63 - 1), st.integers(-(2**63), -(2**53))))
def test_an_integer_a_spreadsheet_would_round_is_refused(tmp_path_factory, name, position, value):
    values = [1, -1, MAX_EXACT, -MAX_EXACT]
    values[position] = value
    frame = pl.DataFrame({"payment_id": ["a", "b", "c", "d"], name: values}, schema_overrides={name: pl.Int64})
    path = tmp_path_factory.mktemp("big") / "p.xlsx"
    with pytest.raises(ValueError, match=f"column {name} .*2\\^53"):
        write_xlsx(frame, path, CREATED)
    assert not path.exists()
    with pytest.raises(ValueError, match="column n "):
        write_xlsx(pl.DataFrame({"n": [2**64 - 1]}, schema={"n": pl.UInt64}), path, CREATED)


@given(forbidden=st.sampled_from(FORBIDDEN), before=st.text(WRITABLE, max_size=5),
       after=st.text(WRITABLE, max_size=5), column=st.sampled_from(["customer_id", "memo"]))
def test_a_control_character_xml_forbids_is_refused_naming_the_column(tmp_path_factory, forbidden, before, after,
                                                                     column):
    frame = pl.DataFrame({"customer_id": ["C1", "C2"], "memo": ["fine", "fine"], "amount": [1, 2]})
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(before + forbidden + after))
                               .otherwise(pl.col(column)).alias(column))
    path = tmp_path_factory.mktemp("ctl") / "p.xlsx"
    with pytest.raises(ValueError) as refused:
        write_xlsx(frame, path, CREATED)
    message = str(refused.value)
    # naming the file being written (the notifications workbook is written by the same code)
    assert message.startswith(f"p.xlsx: column {column} holds a control character XML 1.0 forbids")
    assert "\n" not in message and forbidden not in message  # one line, and never the value
    assert not path.exists()


def test_tricky_text_survives_libreoffice(tmp_path):
    """What a person sees: LibreOffice Calc (headless) converts the sheet to CSV, and every
    cell is the value written (its `_xHHHH_` decoding, white space, `&<>`, a formula-like
    text, a line break inside a cell)."""
    frame = pl.DataFrame({"customer_id": TRICKY, "amount": list(range(-8, len(TRICKY) - 8))})
    write_xlsx(frame, tmp_path / "tricky.xlsx", CREATED)
    binary = shutil.which("soffice")
    assert binary, "LibreOffice is missing: install Debian's libreoffice-calc-nogui"
    subprocess.run([binary, f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless",
                    # CSV in UTF-8 (76), comma-separated, quoted with '"': the default is the locale's.
                    "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1",
                    "--outdir", str(tmp_path / "out"), str(tmp_path / "tricky.xlsx")],
                   check=True, capture_output=True, timeout=600)
    with (tmp_path / "out" / "tricky.csv").open(newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [["customer_id", "amount"], *([t, str(n)] for t, n in frame.iter_rows())]
