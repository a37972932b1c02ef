"""Writing the outbox: files that appear whole or not at all.

Everything is written under a temporary name, flushed to disk, then renamed; a batch
folder is written as `.tmp-<batch_id>` and renamed into place only after its ledger rows
are committed (see tasks/disburse.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timezone
from pathlib import Path

import polars as pl
import pyarrow as pa

from redress.inbox import sha256_of
from redress.outbox.xlsx import write_xlsx

# A cell starting with one of these is run as a formula by spreadsheet programs...
FORMULA_START = r"^[=+\-@\t\r]"
# ...unless it is a plain number, which a spreadsheet reads as a number, never a formula:
# an E.164 phone (+821012345678) or a negative amount is left as written.
PLAIN_NUMBER = r"^[+-]?[0-9]+$"


def _formula_like(cell: pl.Expr) -> pl.Expr:
    return cell.str.contains(FORMULA_START) & ~cell.str.contains(PLAIN_NUMBER)


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Every CSV redress writes for people goes through here (SPEC "Disbursement
    batches"): a text cell that begins with `=`, `+`, `-`, `@`, tab or CR and is not a
    plain number (digits with an optional leading + or -) gets a leading `'`; nothing
    else changes. Non-text columns are left as they are."""
    return frame.with_columns(
        pl.when(_formula_like(pl.col(c))).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c, dtype in frame.schema.items()
        if dtype == pl.String
    )


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_table(frame: pl.DataFrame, folder: Path, stem: str, *, csv: bool = True) -> list[Path]:
    """<stem>.parquet and, when asked, a spreadsheet-safe <stem>.csv, flushed to disk."""
    written = [folder / f"{stem}.parquet"]
    frame.write_parquet(written[0], statistics=False)
    if csv:
        written.append(folder / f"{stem}.csv")
        spreadsheet_safe(frame).write_csv(written[1])
    for path in written:
        fsync(path)
    return written


# The rows a spreadsheet opens (1,048,576 with the header): beyond them a sheet would
# mislead, so no workbook is written.
SHEET_MAX_ROWS = 1_048_575


def write_people_table(frame: pl.DataFrame, folder: Path, stem: str, created: datetime) -> tuple[list[Path], str | None]:
    """A list for people (forensics, finance, customer service): <stem>.parquet, a
    spreadsheet-safe <stem>.csv with a UTF-8 BOM, and <stem>.xlsx of text cells (a sheet
    named `stem`; every column not integer written as its text, a character no sheet can
    hold as its escape, `\\x01`), flushed to disk.
    Found by the accessibility review: review.csv without a BOM read as CP949 in a
    Korean locale, and its phones `010...` became numbers without the 0, as the
    notification list did before it had both. `created`: the workbook's date (the run
    date: the same run, the same bytes). Returns the files written and, when no
    workbook could be (more rows than a sheet holds, or a value no sheet can carry:
    write_xlsx's ValueError, which names the column, never a value), why not; the
    Parquet and CSV files hold the list all the same."""
    written = [folder / f"{stem}.parquet", folder / f"{stem}.csv"]
    frame.write_parquet(written[0], statistics=False)
    spreadsheet_safe(frame).write_csv(written[1], include_bom=True)
    why = None
    if frame.height > SHEET_MAX_ROWS:
        why = f"{frame.height:,} rows, more than a sheet holds"
    else:
        book = folder / f"{stem}.xlsx"
        try:
            as_text = frame.with_columns(pl.col(c).cast(pl.String) for c, dtype in frame.schema.items()
                                         if dtype != pl.String and not dtype.is_integer())
            write_xlsx(_shown(as_text), book, created, sheet=stem)
            written.append(book)
        except (ValueError, pl.exceptions.PolarsError) as exc:  # a nested column has no text: say so, write on
            book.unlink(missing_ok=True)
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    for path in written:
        fsync(path)
    return written, why


def write_run_list(frame: pl.DataFrame, folder: Path, stem: str, run_date: date, logger) -> list[Path]:
    """A run's list for people in `folder` (made if missing; `write_people_table`), its
    workbook dated by the run date (the same run, the same bytes); a workbook that could
    not be written is said in `logger`'s warning. The files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written, why = write_people_table(frame, folder, stem, datetime.combine(run_date, time(), timezone.utc))
    if why:
        logger.warning("%s: no workbook beside the list (%s); the Parquet and CSV files hold it", stem, why)
    return written


# The characters XML 1.0, and so a sheet, cannot hold: in a list for people each is shown
# as its escape (`\x01`), as the terminal shows it; the CSV and Parquet keep it as it is.
_UNSHEETABLE = [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]


def _shown(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with each character of _UNSHEETABLE in its text columns written as its
    escape: a quarantined row is often quarantined for such a character, and its list
    should still open as a workbook."""
    def visible(column: pl.Expr) -> pl.Expr:
        for code in _UNSHEETABLE:
            column = column.str.replace_all(chr(code), f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}",
                                            literal=True)
        return column

    return frame.with_columns(visible(pl.col(c)) for c, dtype in frame.schema.items() if dtype == pl.String)


def exact_pieces(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The rows of `batches`, in their order, as tables of exactly `rows` rows each, the
    last one shorter; nothing when there are no rows. Where a file's row groups end then
    does not depend on where a reader's batches end (DuckDB's depend on its threads), so
    the bytes written from them do not either. Each table may hold several chunks, with
    the batches' schema."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def discard_written(threads: Iterable[ThreadPoolExecutor], writers: Iterable, paths: Iterable[Path]) -> None:
    """After a failed write of Parquet files, before re-raising: stop the writing
    threads (the running piece finishes, the queued ones are cancelled), close each
    writer (`pyarrow.parquet.ParquetWriter`) with its error suppressed, since a full
    disk that failed a write or a footer fails the other closes too and the first error
    is the one to raise, then remove every file, so none is left short and readable as
    whole."""
    for thread in threads:
        thread.shutdown(wait=True, cancel_futures=True)
    try:
        for writer in writers:
            with contextlib.suppress(Exception):
                writer.close()
    finally:
        for path in paths:
            path.unlink(missing_ok=True)


def write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    fsync(path)


TMP_PREFIX = ".tmp-"  # a folder still being written: `.tmp-<batch_id>`, `.tmp-<run_id>`


def staging_folder(batches_dir: Path, batch_id: str) -> Path:
    return batches_dir / f"{TMP_PREFIX}{batch_id}"


def settle_leftovers(folder: Path, publishable: Callable[[str], bool], publish: Callable[[Path, str], None]) -> list[str]:
    """Each `.tmp-<id>` folder a stopped run left in `folder`, in name order: published
    with `publish(tmp, id)` when `publishable(id)` (its warehouse rows were committed),
    else deleted (never committed: the rerun writes it again). Returns the ids
    published. The outbox half of "files, then the commit, then the rename" (SPEC
    "Ledger: paying exactly once")."""
    if not folder.is_dir():
        return []
    published = []
    for tmp in sorted(folder.glob(f"{TMP_PREFIX}*")):
        name = tmp.name.removeprefix(TMP_PREFIX)
        if publishable(name):
            publish(tmp, name)
            published.append(name)
        else:
            shutil.rmtree(tmp)
    return published


def write_batch(batches_dir: Path, manifest: dict, payments: pl.DataFrame, extra: dict[str, bytes] | None = None) -> Path:
    """The batch folder under its temporary name: payments.parquet, payments.csv,
    payments.xlsx (dated from the manifest's created_at, so the same batch gives the
    same bytes), any extra files (e.g. pain.001.xml), and manifest.json with the
    SHA-256 of every other file. SPEC "Disbursement batches"."""
    tmp = staging_folder(batches_dir, manifest["batch_id"])
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    written = write_table(payments, tmp, "payments")
    written.append(tmp / "payments.xlsx")
    write_xlsx(payments, written[-1], datetime.fromisoformat(manifest["created_at"]))
    fsync(written[-1])
    for name, content in sorted((extra or {}).items()):
        (tmp / name).write_bytes(content)
        fsync(tmp / name)
        written.append(tmp / name)
    manifest = dict(manifest, files={p.name: sha256_of(p) for p in sorted(written)})
    write_json(tmp / "manifest.json", manifest)
    fsync(tmp)
    return tmp


def publish(tmp: Path, final: Path) -> None:
    """Move a fully written temporary folder or file into place."""
    os.replace(tmp, final)
    fsync(final.parent)
