"""The demo's batch files opened in a real spreadsheet (issue 14, SPEC "Disbursement
batches"): LibreOffice Calc headless, Debian's `libreoffice-calc-nogui`.

- payments.xlsx is for people: every payment id, customer id, bank code and account
  survives LibreOffice exactly (leading zeros, all 16 digits), amounts as integers.
- The CSVs are for machines: LibreOffice's default CSV import still reads `0123` as 123
  and `+821012345678` as a number (that is why the xlsx exists), so here only what the
  SPEC promises of them is asserted: no cell is ever read as a formula, and a phone is
  written as it is, without the `'` prefix.
"""

from __future__ import annotations

import codecs

import csv
import shutil
import subprocess
from datetime import date
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from approval_off import DEFAULT_POLICY
from flows.remediation import remediation
from redress.generate import generate

DEMO_CUSTOMERS, DEMO_SEED = 20_000, 2025  # `redress demo`'s defaults (flows/cli.py)
IDENTIFIERS = ("payment_id", "customer_id", "bank_code", "bank_account")


def soffice(convert_to: str, files: list[Path], out: Path, profile: Path) -> None:
    """Convert `files` with LibreOffice headless and its default filters, in a profile of
    their own (two conversions never share one)."""
    binary = shutil.which("soffice")
    assert binary, "LibreOffice is missing: install Debian's libreoffice-calc-nogui (apt-get install " \
                   "libreoffice-calc-nogui), as .ci/run does"
    out.mkdir(parents=True)
    subprocess.run([binary, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to", convert_to,
                    "--outdir", str(out), *map(str, files)], check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo")
    generate(data, DEMO_CUSTOMERS, DEMO_SEED)
    summary = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    return data, summary


def test_every_identifier_in_payments_xlsx_survives_libreoffice(demo, tmp_path):
    data, _ = demo
    folders = sorted(p for p in (data / "outbox" / "batches").iterdir())
    assert folders and all((f / "payments.xlsx").is_file() for f in folders)
    # One LibreOffice start for every batch: each xlsx copied under its batch id.
    copies = []
    for folder in folders:
        copies.append(tmp_path / "in" / f"{folder.name}.xlsx")
        copies[-1].parent.mkdir(exist_ok=True)
        shutil.copyfile(folder / "payments.xlsx", copies[-1])
    soffice("csv", copies, tmp_path / "out", tmp_path / "profile")
    bank_rows = 0
    for folder in folders:
        expected = pl.read_parquet(folder / "payments.parquet")
        with (tmp_path / "out" / f"{folder.name}.csv").open(newline="", encoding="utf-8") as fh:
            header, *rows = list(csv.reader(fh))
        assert header == expected.columns
        # Every cell as the parquet holds it: identifiers as written, amounts as integers.
        assert rows == [["" if c is None else str(c) for c in r] for r in expected.iter_rows()]
        if "bank_account" in expected.columns:
            bank_rows += expected.height
    accounts = pl.concat([pl.read_parquet(f / "payments.parquet").select(IDENTIFIERS)
                          for f in folders if (f / "pain.001.xml").is_file()])
    # The cases a spreadsheet's number guessing breaks are really in the demo's batches.
    assert bank_rows == accounts.height > 300
    assert accounts["bank_account"].str.starts_with("0").any()
    assert (accounts["bank_account"].str.len_chars() == 16).any()
    assert accounts["bank_code"].str.starts_with("0").all()


def test_csvs_are_formula_safe_and_phones_are_not_prefixed(demo, tmp_path):
    data, summary = demo
    notes_csv = data / "outbox" / "notifications" / f"{summary['run_id']}.csv"
    notes = pl.read_parquet(notes_csv.with_suffix(".parquet"))
    written = pl.read_csv(notes_csv, infer_schema=False)
    phones = notes.filter(pl.col("recipient").str.starts_with("+"))["recipient"]
    assert phones.len() > 1000
    # As written: every E.164 phone exactly, no apostrophe (a plain number is no formula).
    assert written["recipient"].to_list() == notes["recipient"].to_list()
    bank = sorted((data / "outbox" / "batches").glob("*/pain.001.xml"))[0].parent
    shutil.copyfile(bank / "payments.csv", tmp_path / "payments.csv")
    soffice("xlsx", [notes_csv, tmp_path / "payments.csv"], tmp_path / "out", tmp_path / "profile")
    for name in (notes_csv.stem, "payments"):
        sheet = openpyxl.load_workbook(tmp_path / "out" / f"{name}.xlsx").active
        kinds = {c.data_type for row in sheet.iter_rows() for c in row}
        assert "f" not in kinds, f"{name}.csv: LibreOffice read a cell as a formula"
    sheet = openpyxl.load_workbook(tmp_path / "out" / f"{notes_csv.stem}.xlsx").active
    # The CSV starts with a UTF-8 BOM, which tells Excel its encoding (found by review:
    # without one, Excel in a Korean locale reads the messages as CP949; LibreOffice's
    # headless import here takes the locale's charset either way, so it cannot show it),
    # and a CSV reader still reads the header as the column names.
    assert notes_csv.read_bytes().startswith(codecs.BOM_UTF8) and written.columns == notes.columns
    with notes_csv.open(newline="", encoding="utf-8-sig") as fh:
        assert next(csv.reader(fh)) == notes.columns
    column = notes.columns.index("recipient")
    recipients = [row[column].value for row in sheet.iter_rows(min_row=2)]
    # No phone shows an apostrophe; LibreOffice's default import reads it as a number
    # (the '+' dropped): the CSV is for machines, the parquet and payments.xlsx for people.
    assert not any(str(r).startswith("'") for r in recipients)


def test_the_notification_list_for_people_keeps_every_phone_in_libreoffice(demo, tmp_path):
    """Found by review: the notifications CSV opened in a spreadsheet showed
    `+821012345678` as the number 821012345678. The workbook beside it holds every
    value as a text cell, so the comms team sees the list as the Parquet holds it."""
    data, summary = demo
    book = data / "outbox" / "notifications" / f"{summary['run_id']}.xlsx"
    notes = pl.read_parquet(book.with_suffix(".parquet"))
    assert notes.filter(pl.col("recipient").str.starts_with("+")).height > 1000
    # exported as UTF-8 (charset 76), comma-separated, double quotes: the messages are Korean
    soffice("csv:Text - txt - csv (StarCalc):44,34,76", [book], tmp_path / "out", tmp_path / "profile")
    with (tmp_path / "out" / f"{book.stem}.csv").open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    assert header == notes.columns
    assert rows == [["" if c is None else str(c) for c in r] for r in notes.iter_rows()]
    assert openpyxl.load_workbook(book).sheetnames == ["notifications"]


def test_the_lists_for_forensics_keep_every_value_in_libreoffice(demo, tmp_path):
    """Found by the accessibility review: review.csv had no BOM (Korean file names and
    values read as CP949 in a Korean locale) and its phones `010...` lost their 0 in a
    spreadsheet. Each list of the quarantine folder has a BOM and a workbook of text
    cells beside it, which LibreOffice reads back as the Parquet holds every value."""
    data, summary = demo
    folder = data / "quarantine" / summary["run_id"]
    books = [folder / f"{stem}.xlsx" for stem in ("quarantine", "review")]
    for book in books:
        assert book.with_suffix(".csv").read_bytes().startswith(codecs.BOM_UTF8), book.name
    review = pl.read_parquet(folder / "review.parquet")
    assert review["phone"].str.starts_with("0").any()  # the case a spreadsheet's number guessing breaks
    soffice("csv:Text - txt - csv (StarCalc):44,34,76", books, tmp_path / "out", tmp_path / "profile")
    for book in books:
        listed = pl.read_parquet(book.with_suffix(".parquet"))
        with (tmp_path / "out" / f"{book.stem}.csv").open(newline="", encoding="utf-8") as fh:
            header, *rows = list(csv.reader(fh))
        assert header == listed.columns
        as_text = listed.with_columns(pl.col(c).cast(pl.String) for c, t in listed.schema.items()
                                      if t != pl.String and not t.is_integer())
        assert rows == [["" if c is None else str(c) for c in r] for r in as_text.iter_rows()], book.name
        assert openpyxl.load_workbook(book).sheetnames == [book.stem]
