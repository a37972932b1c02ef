"""A returns file from finance, read (`returns_frame`): SPEC "Input: returns from
finance". The returns stage (tasks/returns.py) stages it and checks it
(redress/checks/returns_checks.py); nothing here decides whether a result applies.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from redress.inbox.files import RETURNS_COLUMNS
from redress.inbox.text_frame import read_text_frame

REQUIRED = ("payment_id", "status")


def returns_frame(path: Path, scratch: Path | None = None) -> pl.LazyFrame:
    """The file as text (`read_text_frame`: row_number, payment_id, status, reason;
    trimmed, blank = NULL; payment_id and status required; `malformed`: what is wrong
    with a row the reader could not split into the header's fields, NULL for a sound
    one: SPEC quarantines a malformed row, never the file; `as_written`: such a row as
    the file wrote it, since its named values may be misplaced). Raises FileRejected
    (unreadable_file, empty_file, missing_column). Given `scratch`, a folder for a
    work file, a line with a stray quote is a malformed row too (csv_reader.csv_frame)."""
    return read_text_frame(path, REQUIRED, RETURNS_COLUMNS, malformed=True, scratch=scratch)
