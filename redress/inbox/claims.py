"""A claims file from customer service, read (`claims_frame`): SPEC "Input: claims from
customer service". The claims stage (tasks/claims.py) stages it and checks it
(redress/checks/claims_checks.py); nothing here decides whether a claim is valid.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from redress.inbox.customers import bank_details
from redress.inbox.files import CLAIMS_COLUMNS
from redress.inbox.text_frame import read_text_frame
from redress.warehouse.reference_codes import typed_code


def claims_frame(path: Path, scratch: Path | None = None) -> pl.LazyFrame:
    """The file as text (`read_text_frame`: row_number, reference_code, bank_code,
    bank_account, verified_at, verified_by; trimmed, blank = NULL; reference_code read
    as a typed code (NFKC, spaces and dashes dropped, upper-cased: redress/warehouse/
    reference_codes.py typed_code), and `as_written` in NFKC, so the codes a malformed
    row names are found as a sound row's are; every column
    required; `malformed`: what is wrong with a row the reader could not split, and
    `as_written`: that row as written, both NULL for a sound one; the checks read it for
    the codes it names, quarantine never keeps it: it may hold a shifted account), plus
    bank_account_digits and bank_valid by the master's bank rule (`bank_details`).
    Raises FileRejected (unreadable_file, empty_file, missing_column). Given `scratch`, a
    folder for a work file, a line with a stray quote is a malformed row too
    (csv_reader.csv_frame)."""
    frame = read_text_frame(path, CLAIMS_COLUMNS, CLAIMS_COLUMNS, malformed=True, scratch=scratch)
    return frame.with_columns(*bank_details(), typed_code(pl.col("reference_code")).alias("reference_code"),
                              pl.col("as_written").str.normalize("NFKC"))
