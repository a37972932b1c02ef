"""The new files of the inbox, as the ingest and returns stages both take them (SPEC
"File rules", "Reading files"): each file whose content was not seen before in its folder
is handed to the stage's loader; a duplicate, a text file that is not UTF-8 or a file the loader
rejects whole is recorded (ingested_files, quarantine) with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import duckdb
from prefect import get_run_logger

from redress import escape
from redress import inbox as io
from redress.inbox.hashing import not_text_detail
from redress.context import RunContext
from redress.errors import RedressError
from redress.results import FileRead
from redress.runtime import interrupts, progress
from redress.runtime.machine_errors import duckdb_error_line
from redress.vocabulary import ACCEPTED, DUPLICATE_FILE, NOT_READ, REJECTED, REJECTED_FILE, UNREADABLE_FILE
from redress.settings import Settings
from redress.warehouse import connect, files, quarantine


def record(con, f: io.InboxFile, ctx: RunContext, status: str, reason=None, rows=None, read_in=None) -> FileRead:
    files.record(con, sha256=f.sha256, name=f.name, kind=f.kind, size_bytes=f.size_bytes, status=status,
                 reason=reason, rows=rows, run_id=ctx.run_id, read_in=read_in)
    if status not in (ACCEPTED, DUPLICATE_FILE):
        quarantine.add_file(con, ctx.run_id, f.kind, f.sha256, f.name,
                            status if status != REJECTED else REJECTED_FILE, reason)
    return FileRead(kind=f.kind, file_name=f.name, file_sha256=f.sha256, status=status, rows_read=rows,
                    detail=reason if status == DUPLICATE_FILE else None)


def _duplicate(f: io.InboxFile, earlier: tuple[str, str] | None) -> str:
    """Why `f` is a duplicate_file, naming the file first read with its content (`earlier`:
    its name and status; None when no record names it). A customers snapshot accepted
    before and dropped again to go back to it (found by review: a bad snapshot undone so
    stayed current, with no word why): the SPEC skips content seen before, so the reason
    says how to make it current again."""
    if earlier is None:
        return "same content as a file seen before"
    said = f"same content as {earlier[0]} ({earlier[1]}), seen before"
    if f.kind == "customers" and earlier[1] == ACCEPTED:
        said += ("; a snapshot is read once, so to make it current again drop a copy saved anew (any change of its "
                 "bytes: a re-export, a line added at the end)")
    return said


def not_read(kind: str, name: str, why: str, logger) -> FileRead:
    """A stage-result entry (and one warning) for an inbox entry this run does not read."""
    # A file name may hold a newline (a forged log line) or terminal escapes.
    logger.warning("%s/%s: not read: %s", kind, escape.terminal(name), escape.terminal(why))
    return FileRead(kind=kind, file_name=name, file_sha256=None, status=NOT_READ, rows_read=None, detail=why)


def each_new_file(ctx: RunContext, settings: Settings, kinds: tuple[str, ...],
                  load: Callable[[io.InboxFile], FileRead], stage: str | None = None,
                  listed: list[tuple[str, str, str | None]] | None = None,
                  before: Callable[[list[io.InboxFile]], None] | None = None) -> list[FileRead]:
    """Calls `load` on every inbox file of these kinds whose content was not seen before
    in its folder (kind), in read order (redress.inbox.files.read_order: oldest modification time first, then natural order of
    names). A file seen before in its folder under this name is passed over; the same
    content there under another name is recorded as duplicate_file; a text file that is not UTF-8, or one
    `load` rejects whole (FileRejected), is recorded and quarantined with its reason.
    Files still being copied in are waited for (REDRESS_INBOX_QUIET_SECONDS, at most
    REDRESS_INBOX_WAIT_SECONDS); those still changing, links and other non-regular
    entries are not read: each is logged once and listed with status "not_read". Every file
    met is logged in one form (`kind/name: status (N rows)`) and counted as the step
    "reading files" of `stage` (default: the kind) in the run's progress. `listed`, when
    given, is extended with (kind, name, sha256) of every entry of the inbox, sha256 None
    for one passed over (`evidence_gone`). `before`, when given, is called once before
    the first `load` with the files `load` may be called on (new content, one file per
    content, in read order): what a file's rows mean may depend on the others of the run
    (tasks/claims.py: a code claimed in two files)."""
    logger = get_run_logger()
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    inbox = io.inbox_files(ctx.data_dir, timedelta(seconds=settings.inbox_quiet_seconds),
                           timedelta(seconds=settings.inbox_wait_seconds), kinds, log=logger.info)
    entries = [not_read(p.kind, p.name, p.why, logger) for p in inbox.passed_over]
    if listed is not None:
        listed += [(f.kind, f.name, f.sha256) for f in inbox.files] + [(p.kind, p.name, None) for p in inbox.passed_over]
    # A file is its content within its folder (its kind): the same bytes refused in the
    # wrong folder (a scope file among the customers: missing_column) are read once moved
    # to the right one, under any name; in one folder, content seen before is a duplicate.
    # Content refused as unreadable under a name was judged as that name's format only:
    # met under a name no format reads (`io.format_of`: `scope.parq`), or refused as the
    # wrong one (a Parquet file named `.csv`: not UTF-8 text), the same bytes renamed as
    # the refusal says (`scope.parquet`) are read; under a name of the same format they
    # are a duplicate. Found by review: they were passed over as a duplicate for ever,
    # the file's people unpaid, with nothing saying its rows were never read.
    with connect(ctx.warehouse) as con:
        recorded = con.execute("SELECT kind, file_sha256, file_name, status FROM ingested_files WHERE kind IN "
                               "(SELECT unnest(?::VARCHAR[])) ORDER BY ingested_at DESC, file_name DESC",
                               [list(kinds)]).fetchall()
    # Content seen (by kind) and content refused as unreadable (by kind and format), each
    # with the earliest file read under it and what became of it: the one a duplicate names
    seen_content = {(kind, sha): (name, status) for kind, sha, name, status in recorded if status != UNREADABLE_FILE}
    seen_unreadable = {(kind, sha, io.format_of(name)): (name, status) for kind, sha, name, status in recorded
                       if status == UNREADABLE_FILE}
    seen_files = {(kind, sha, name) for kind, sha, name, _ in recorded}
    new = [f for f in inbox.files if (f.kind, f.sha256, f.name) not in seen_files]
    if before is not None:
        loadable = {}
        for f in new:
            if (f.kind, f.sha256) not in seen_content and (f.kind, f.sha256, io.format_of(f.name)) not in seen_unreadable:
                loadable.setdefault((f.kind, f.sha256), f)
        before(list(loadable.values()))
    stage = stage or kinds[0]
    for done, f in enumerate(new):
        progress.step(stage, "reading files", done, len(new))
        if (f.kind, f.sha256) in seen_content or (f.kind, f.sha256, io.format_of(f.name)) in seen_unreadable:
            with connect(ctx.warehouse) as con:
                earlier = (seen_content.get((f.kind, f.sha256))
                           or seen_unreadable.get((f.kind, f.sha256, io.format_of(f.name))))
                entries.append(record(con, f, ctx, DUPLICATE_FILE, _duplicate(f, earlier)))
            _log_file(logger, f, entries[-1])
            continue
        try:
            f.check_unchanged()
        except io.FileChanged as exc:
            entries.append(not_read(f.kind, f.name, f"{exc}; read by a later run", logger))
            continue
        try:
            if f.text_problem:
                raise io.FileRejected(UNREADABLE_FILE, not_text_detail(f.text_problem))
            try:
                entries.append(load(f))
                seen_content.setdefault((f.kind, f.sha256), (f.name, entries[-1].status))
            except io.FileRejected:
                # What was refused must be the content the sha256 names: a file cut short
                # or rewritten while it was read is not recorded as refused (its sha256
                # would pass the whole file over once it is back), a later run reads it.
                f.check_unchanged()
                raise
        except io.FileRejected as rejected:
            # A Ctrl-C that DuckDB or Polars turned into an error while reading (DuckDB:
            # "reading the Python object ... failed: KeyboardInterrupt") is no verdict on
            # the file: recorded, its content would be passed over by every later run.
            interrupts.check()
            with connect(ctx.warehouse) as con:
                entries.append(record(con, f, ctx, rejected.reason, rejected.detail))
            if rejected.reason == UNREADABLE_FILE:
                seen_unreadable.setdefault((f.kind, f.sha256, io.format_of(f.name)), (f.name, rejected.reason))
            else:
                seen_content.setdefault((f.kind, f.sha256), (f.name, rejected.reason))
        except io.FileChanged as exc:  # nothing was written for it: a later run reads it whole
            entries.append(not_read(f.kind, f.name, f"{exc}; read by a later run", logger))
            continue
        except duckdb.Error as exc:  # the machine's failure (a full disk) named as such, not as the file's
            raise RedressError(duckdb_error_line(str(exc))
                               or f"loading {f.kind}/{escape.terminal(f.name)} failed: {exc}") from None
        _log_file(logger, f, entries[-1])
    if new:
        progress.step(stage, "reading files", len(new), len(new))
    return entries


def _log_file(logger, f: io.InboxFile, entry: FileRead) -> None:
    """One line per file met, in one form whatever became of it: a duplicate too."""
    rows = "no rows read" if entry.rows_read is None else f"{entry.rows_read:,} rows"
    said = f": {escape.terminal(entry.detail)}" if entry.status == DUPLICATE_FILE and entry.detail else ""
    logger.info("%s/%s: %s (%s)%s", f.kind, escape.terminal(f.name), entry.status, rows, said)


def evidence_gone(evidence: list[tuple], listed: list[tuple[str, str, str | None]]) -> tuple[str, ...]:
    """One line (no row value) for each accepted scope file, and the customers snapshot
    the master was promoted from, whose content is no longer in the inbox under any name
    (one still being copied in counts as there): gone, or its name now holding other
    content (which, new, this run read as a new file). Its
    rows stay evidence: SPEC "Paying exactly once", evidence only accumulates, and no
    file's removal retracts an exposure. `evidence`: warehouse.files.evidence's rows;
    `listed`: each_new_file's, for the same kinds.
    Sorted by kind and name."""
    contents = {(kind, sha) for kind, _, sha in listed}
    names = {(kind, name) for kind, name, _ in listed}
    passed_over = {(kind, name) for kind, name, sha in listed if sha is None}
    lines = []
    for kind, name, sha, rows, run_id, _ in evidence:
        if (kind, sha) in contents or (kind, name) in passed_over:  # there, perhaps under another name
            continue
        what = "its name now holds other content" if (kind, name) in names else "no longer in the inbox"
        rows = rows or 0
        lines.append(f"{kind}/{name} ({rows:,} row{'' if rows == 1 else 's'}, read by run {run_id}): {what}")  # escaped where shown
    return tuple(lines)
