"""The evidence's times read again when the policy's timezone changes (SPEC "Input:
customers snapshot", "Input: scope files": a time without an offset is in the policy's
timezone).

A customers or scope file's times are typed once, when the file is read, in the timezone
of that run's policy, and `ingested_files.timezone` records which. A later policy with
another timezone (a correction: the files were written in Seoul time, not UTC) makes
every time written without an offset another instant. So ingest, once the new files are
read and before anything is classified, types again, in the policy's timezone, the times
of every accepted scope file and of the current customers snapshot that were read in
another: from the text as written (`scope_rows.accessed_at_raw`, `customers.created_at_raw`
and `closed_at_raw`), exactly as a first reading in that timezone types it
(redress/inbox/streaming.py `ts`): a time with an offset keeps its instant, one without
takes the new timezone, text that is not a time stays none. A typed Parquet timestamp was
kept as text in ISO 8601 (redress/inbox/parquet_reader.py), an offset with a zone; one
whose text is not ISO 8601 (a year past 9999) keeps its wall time, moved to the new
timezone. A changed policy file already takes validate's full path
(redress/warehouse/increments.py), so every decision is then made again on the new
instants; a run killed in between finds them typed and the policy still changed.

A file read by an earlier version has no timezone recorded: it is taken as read in the
timezone of the first run's policy that finds it so, and recorded so. A customers master
promoted by an earlier version kept no times as written: a new timezone then stops the
run with one line, since its times cannot be read again (a new snapshot is read in the
new timezone).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from redress.errors import RedressError
from redress.inbox.streaming import ts_again
from redress.warehouse import customers as customers_table
from redress.warehouse import files, scope_rows
from redress.warehouse.migrations import catalog


@dataclass(frozen=True)
class Retimed:
    """What `retime` typed again: the accepted scope files and their rows, the customers
    master's rows (0: none), and the timezones they had been read in (sorted)."""
    scope_files: int = 0
    scope_rows: int = 0
    customers: int = 0
    earlier: tuple[str, ...] = ()

    def line(self, timezone: str) -> str:
        """One line for the log and the summary, or '' when nothing was typed again. No
        row value."""
        if not (self.scope_files or self.customers):
            return ""
        parts = []
        if self.scope_files:
            parts.append(f"{self.scope_rows:,} rows of {self.scope_files:,} scope file(s)")
        if self.customers:
            parts.append(f"the customers snapshot's {self.customers:,} rows")
        return (f"times without an offset read again in {timezone}, the policy's timezone "
                f"(read before in {', '.join(self.earlier)}): {' and '.join(parts)}")


def retime(con: duckdb.DuckDBPyConnection, timezone: str, evidence: list[tuple] | None = None) -> Retimed:
    """Type again, in `timezone` (the policy's, an IANA name the policy loader checked),
    the times of every accepted scope file and of the current customers master read in
    another timezone, and record `timezone` for them, in one transaction of its own
    (module docstring). Returns what was typed again. Raises RedressError (one line) when
    the master was promoted by an earlier version and read in another timezone.
    `evidence`: files.evidence(con), when the caller has it already."""
    stale = files.read_elsewhere(files.evidence(con) if evidence is None else evidence, timezone)
    if not stale:  # every run but the first after a timezone change: one small query
        return Retimed()
    con.execute("BEGIN")
    try:
        con.execute("SET TimeZone = ?", [timezone])
        out = _retime(con, timezone, stale)
        files.record_timezone(con, timezone)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("SET TimeZone = 'UTC'")
    return out


def _retime(con: duckdb.DuckDBPyConnection, timezone: str, stale: list[tuple[str, str, str | None]]) -> Retimed:
    scope_files = rows = customers = 0
    earlier = sorted({tz for _, _, tz in stale if tz is not None})
    for tz in earlier:
        params = {"now": timezone, "earlier": tz}
        shas = [sha for kind, sha, was in stale if kind == "scope" and was == tz]
        if shas:
            scope_files += len(shas)
            rows += scope_rows.retime(con, shas, ts_again("accessed_at_raw", "accessed_at"), params)
        if any(kind == "customers" and was == tz for kind, _, was in stale):
            if not {"created_at_raw", "closed_at_raw"} <= catalog(con).get("customers", frozenset()):
                raise RedressError(
                    f"the policy's timezone is {timezone}, but the current customers snapshot was read in {tz} "
                    "by an earlier version of redress, which did not keep its times as written: run with a "
                    f"policy in {tz}, or drop a new customers snapshot into inbox/customers/")
            customers += customers_table.retime(con, ts_again("created_at_raw", "created_at"),
                                                ts_again("closed_at_raw", "closed_at"), params)
    return Retimed(scope_files, rows, customers, tuple(earlier))
