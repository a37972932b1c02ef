"""redress/outbox/files.py write_people_table: a list for people is Parquet, a CSV with a
UTF-8 BOM and a workbook of text cells (found by the accessibility review: review.csv
read as CP949 in a Korean locale and lost its phones' leading 0 in a spreadsheet)."""

from __future__ import annotations

import codecs
import logging
from datetime import datetime, timezone

import openpyxl
import polars as pl

from redress.outbox import files

RUN_DAY = datetime(2025, 12, 1, tzinfo=timezone.utc)


def test_each_value_is_a_text_cell_as_written_and_the_csv_has_a_bom(tmp_path):
    frame = pl.DataFrame({"phone": ["01012345678", None], "file_name": ["스코프_05.csv", "s.csv"], "row_number": [3, 4],
                          "accessed_at": [datetime(2025, 7, 1, 10), None], "held": [True, False]})
    written, why = files.write_people_table(frame, tmp_path, "review", RUN_DAY)
    assert why is None and [p.name for p in written] == ["review.parquet", "review.csv", "review.xlsx"]
    assert (tmp_path / "review.csv").read_bytes().startswith(codecs.BOM_UTF8)
    sheet = openpyxl.load_workbook(tmp_path / "review.xlsx")["review"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows == [["phone", "file_name", "row_number", "accessed_at", "held"],
                    ["01012345678", "스코프_05.csv", 3, "2025-07-01 10:00:00.000000", "true"],
                    [None, "s.csv", 4, None, "false"]]
    assert sheet["A2"].data_type == "s" and sheet["C2"].data_type == "n"


def test_a_character_no_sheet_holds_is_shown_as_its_escape_in_the_workbook_only(tmp_path):
    frame = pl.DataFrame({"as_written": ["C1,\x01name,\x1b[2J", "\ufffe"]})
    written, why = files.write_people_table(frame, tmp_path, "quarantine", RUN_DAY)
    assert why is None and len(written) == 3
    sheet = openpyxl.load_workbook(tmp_path / "quarantine.xlsx")["quarantine"]
    assert [c.value for c in sheet["A"]][1:] == ["C1,\\x01name,\\x1b[2J", "\\ufffe"]
    assert pl.read_parquet(tmp_path / "quarantine.parquet")["as_written"].to_list() == frame["as_written"].to_list()


def test_a_list_longer_than_a_sheet_gets_no_workbook_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "SHEET_MAX_ROWS", 2)
    written, why = files.write_people_table(pl.DataFrame({"a": ["1", "2", "3"]}), tmp_path, "review", RUN_DAY)
    assert [p.name for p in written] == ["review.parquet", "review.csv"] and why == "3 rows, more than a sheet holds"
    assert not (tmp_path / "review.xlsx").exists()


def test_a_run_list_makes_its_folder_and_warns_of_a_missing_workbook_without_a_value(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(files, "SHEET_MAX_ROWS", 1)
    folder = tmp_path / "quarantine" / "staged"
    logger = logging.getLogger("test.run_list")
    with caplog.at_level(logging.WARNING, logger="test.run_list"):
        written = files.write_run_list(pl.DataFrame({"phone": ["01099990000", "01099990001"]}), folder, "review",
                                       RUN_DAY.date(), logger)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == ["quarantine/staged/review.parquet",
                                                                      "quarantine/staged/review.csv"]
    assert pl.read_parquet(written[0])["phone"].to_list() == ["01099990000", "01099990001"]
    assert caplog.messages == ["review: no workbook beside the list (2 rows, more than a sheet holds); "
                               "the Parquet and CSV files hold it"]
