"""payments.xlsx: a batch's payments for people (SPEC "Disbursement batches").

The CSV beside it is for machines: a spreadsheet's default CSV import reads
`0285928584979502` as a number and drops its leading zero, or rounds a 16-digit account
(a double holds 15 significant digits). Here every identifier is a text cell, safe by
type and not by a prefix, and every amount an integer number cell, so what a finance
officer copies out of the sheet is what the bank file holds.

Written with xlsxwriter directly: one cell type per column, chosen here, with nothing
guessed from the values (its `write()` would turn `=...` into a formula and, if asked,
digits into numbers). Byte-identical for the same rows and `created`: the document's
creation date is set from it, and xlsxwriter stamps every zip entry with a fixed date.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import xlsxwriter

# Columns that name something rather than count it: always text cells, whatever the
# dtype, so no leading zero is dropped and no 16-digit account is rounded.
IDENTIFIERS = ("payment_id", "customer_id", "bank_code", "bank_account")
_INTEGERS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)
SHEET = "payments"


def write_xlsx(frame: pl.DataFrame, path: Path, created: datetime) -> None:
    """One sheet named `payments`: a header row of column names, then one row per row of
    `frame` in its order. IDENTIFIERS and every other text column are text cells;
    integer columns (amounts in minor units, attempt) are number cells; an empty value
    is an empty cell. `created` (timezone-aware or naive UTC) is the document's creation
    date. ValueError for a column of any other dtype: nothing is coerced silently."""
    kinds = {}
    for name, dtype in frame.schema.items():
        if name in IDENTIFIERS or dtype == pl.String:
            kinds[name] = "text"
        elif dtype in _INTEGERS:
            kinds[name] = "number"
        else:
            raise ValueError(f"payments.xlsx: column {name} has dtype {dtype}, neither text nor integer")
    # constant_memory: rows are streamed to disk (a batch holds up to max_batch_items
    # rows) and text is stored inline; the strings_to_* options are off so nothing
    # written as text is ever reinterpreted.
    workbook = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
        "strings_to_urls": False,
    })
    try:
        if created.tzinfo is not None:  # core.xml holds UTC, marked Z
            created = created.astimezone(timezone.utc).replace(tzinfo=None)
        workbook.set_properties({"created": created, "title": "payments"})
        sheet = workbook.add_worksheet(SHEET)
        header = workbook.add_format({"bold": True})
        text = workbook.add_format({"num_format": "@"})  # shown and edited as text too
        for col, name in enumerate(frame.columns):
            sheet.write_string(0, col, name, header)
            sheet.set_column(col, col, max(len(name), 12) + 2, text if kinds[name] == "text" else None)
        writers = [(sheet.write_string, text) if kinds[name] == "text" else (sheet.write_number, None)
                   for name in frame.columns]
        cells = frame.with_columns(pl.col(n).cast(pl.String) for n, k in kinds.items() if k == "text")
        for row, values in enumerate(cells.iter_rows(), start=1):
            for col, (value, (write, fmt)) in enumerate(zip(values, writers)):
                if value is not None:
                    write(row, col, value, fmt)
    finally:
        workbook.close()
