"""redress/outbox/xlsx.py: payments.xlsx holds identifiers as text and amounts as integers,
and the same rows give the same bytes (SPEC "Disbursement batches")."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from datetime import datetime, timezone

import openpyxl
import polars as pl
import pytest

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
        assert b"<dcterms:created xsi:type=\"dcterms:W3CDTF\">2025-12-01T09:30:00Z" in z.read("docProps/core.xml")
