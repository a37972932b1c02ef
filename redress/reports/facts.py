"""What the warehouse holds of one run, for its report: the files it met, its quarantine
per reason, its batches, and the bank-transfer cash per value date it released on; for a
run whose plan waits for approval, the same figures as planned (SPEC "Approval before
release"), kept apart so that nothing planned reads as released.
Typed, so that the report reads each by field and a fact cannot fall out unnoticed (the
stages' own results are in redress/results.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from redress.vocabulary import BANK_TRANSFER, CANCELLED, RETURNED, SETTLED, WAITING


@dataclass(frozen=True)
class FileRow:
    """An inbox file this run met: kind, name, status (ingested_files), rows read."""
    kind: str
    file_name: str
    status: str
    rows: int | None


@dataclass(frozen=True)
class QuarantineCount:
    """Quarantined whole files and rows of this run, per kind and reason; file_names:
    every file with a quarantined row or refused whole for it, sorted."""
    kind: str
    reason: str
    files: int
    rows: int
    file_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchTotal:
    """This run's new batches per rail and value date (ISO), with payments and won."""
    rail: str
    value_date: str
    batches: int
    payments: int
    amount: int


@dataclass(frozen=True)
class CashDay:
    """Bank-transfer won on a value date this run released on: this run's, all runs'."""
    value_date: str
    this_run: int
    all_runs: int


@dataclass(frozen=True)
class RunFacts:
    files: tuple[FileRow, ...] = ()
    quarantine: tuple[QuarantineCount, ...] = ()
    batches: tuple[BatchTotal, ...] = ()
    cash: tuple[CashDay, ...] = ()
    # A plan waiting for approval (nothing of it released): its batches per rail and
    # value date, and its bank-transfer days, all_runs = released before + this plan.
    planned_batches: tuple[BatchTotal, ...] = ()
    planned_cash: tuple[CashDay, ...] = ()


def run_facts(con: duckdb.DuckDBPyConnection, run_id: str) -> RunFacts:
    """The facts of run `run_id`, each list in a stable order."""
    files = con.execute("""
        SELECT kind, file_name, status, rows_read FROM ingested_files WHERE run_id = ?
        ORDER BY ingested_at, kind, file_name""", [run_id]).fetchall()
    quarantine = con.execute("""
        SELECT kind, reason, count(*) FILTER (row_number IS NULL), count(*) FILTER (row_number IS NOT NULL),
               list(DISTINCT file_name ORDER BY file_name)
        FROM quarantine WHERE run_id = ? GROUP BY ALL ORDER BY kind, reason""", [run_id]).fetchall()
    batches = con.execute("""
        SELECT rail, value_date, count(*), sum(item_count), sum(control_sum) FROM batches
        WHERE run_id = ? GROUP BY ALL ORDER BY rail, value_date""", [run_id]).fetchall()
    cash = con.execute("""
        SELECT value_date, sum(control_sum) FILTER (run_id = ?), sum(control_sum) FROM batches
        WHERE rail = ? AND value_date IN (
            SELECT value_date FROM batches WHERE run_id = ? AND rail = ?)
        GROUP BY ALL ORDER BY value_date""", [run_id, BANK_TRANSFER, run_id, BANK_TRANSFER]).fetchall()
    waiting = con.execute("SELECT count(*) FROM plans WHERE run_id = ? AND state = ?", [run_id, WAITING]).fetchall()
    planned_batches, planned_cash = [], []
    if waiting[0][0]:
        planned_batches = con.execute("""
            SELECT rail, value_date, count(*), sum(item_count), sum(control_sum) FROM plan_batches
            WHERE run_id = ? GROUP BY ALL ORDER BY rail, value_date""", [run_id]).fetchall()
        planned_cash = con.execute("""
            SELECT p.value_date, p.amount, p.amount + coalesce((
                SELECT sum(b.control_sum) FROM batches b WHERE b.rail = ? AND b.value_date = p.value_date), 0)
            FROM (SELECT value_date, sum(control_sum) AS amount FROM plan_batches
                  WHERE run_id = ? AND rail = ? GROUP BY value_date) p
            ORDER BY p.value_date""", [BANK_TRANSFER, run_id, BANK_TRANSFER]).fetchall()
    return RunFacts(
        files=tuple(FileRow(k, f, s, r) for k, f, s, r in files),
        quarantine=tuple(QuarantineCount(k, r, int(f), int(n), tuple(names)) for k, r, f, n, names in quarantine),
        batches=tuple(BatchTotal(r, _iso(d), int(b), int(p), int(a)) for r, d, b, p, a in batches),
        cash=tuple(CashDay(_iso(d), int(t or 0), int(a)) for d, t, a in cash),
        planned_batches=tuple(BatchTotal(r, _iso(d), int(b), int(p), int(a)) for r, d, b, p, a in planned_batches),
        planned_cash=tuple(CashDay(_iso(d), int(t), int(a)) for d, t, a in planned_cash),
    )


@dataclass(frozen=True)
class Applied:
    """What a run applied to the ledger from finance's and customer service's files
    (SPEC "Input: returns from finance", "Input: claims"), as the warehouse holds it:
    payments settled, returned and (held claim payments) cancelled by it, each a count
    and won, and the claims it recorded; and its own new payments committed to the
    ledger (issued, whatever became of them since) and their batches; and the people it
    notified (found by review: a run killed after its notify committed was told of in no
    summary). For the report of a run that stopped before
    writing its own (tasks/report.py report_killed_runs), whose stage results are lost."""
    settled: tuple[int, int]
    returned: tuple[int, int]
    cancelled: tuple[int, int]
    claims: int
    issued: tuple[int, int] = (0, 0)  # its own new payments committed to the ledger: count, won
    batches: int = 0  # the batches they are in
    told: tuple[tuple[str, int], ...] = ()  # the people it notified, per channel (sorted)


def applied_facts(con: duckdb.DuckDBPyConnection, run_id: str) -> Applied:
    """Applied for run `run_id`: a returned, settled or cancelled payment names the run
    that applied it (`ledger.updated_run_id`) and keeps that status for good (a later
    result for it is quarantined, never applied)."""
    per = {status: (int(n), int(krw or 0)) for status, n, krw in con.execute("""
        SELECT status, count(*), sum(amount) FROM ledger WHERE updated_run_id = ? AND status IN (?, ?, ?)
        GROUP BY ALL""", [run_id, SETTLED, RETURNED, CANCELLED]).fetchall()}
    (claims,), = con.execute("SELECT count(*) FROM claims WHERE run_id = ?", [run_id]).fetchall()
    (issued, krw, batches), = con.execute("SELECT count(*), sum(amount), count(DISTINCT batch_id) FROM ledger "
                                          "WHERE run_id = ?", [run_id]).fetchall()
    told = con.execute("SELECT channel, count(*) FROM notifications WHERE run_id = ? GROUP BY ALL ORDER BY channel",
                       [run_id]).fetchall()
    return Applied(settled=per.get(SETTLED, (0, 0)), returned=per.get(RETURNED, (0, 0)),
                   cancelled=per.get(CANCELLED, (0, 0)), claims=int(claims),
                   issued=(int(issued), int(krw or 0)), batches=int(batches),
                   told=tuple((c, int(n)) for c, n in told))


def _iso(value) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
