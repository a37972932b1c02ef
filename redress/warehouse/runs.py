"""The `runs` table and the run summary: what each run read, did and produced. The one
module that writes `runs` (redress/warehouse/schema.py OWNERS)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from redress.context import RunContext
from redress.errors import RedressError
from redress.policy import Policy, policy_text
from redress import escape, warehouse
from redress.warehouse import plans
from redress.reports.data_docs import readable_records
from redress.results import RunSummary, run_counts
from redress.rules.plans import run_date_refusal
from redress.warehouse import connect
from redress.sql import one


BUSY = "another redress run is using {data_dir}; try again when it ends"


@contextmanager
def data_dir_lock(data_dir: Path, *, busy: str = BUSY, wait_seconds: float = 0.0):
    """One run per data folder at a time: a second one is refused, changing nothing.

    The commands that open the warehouse beside a run (`whatif`, `explain`) take it too,
    for as long as they hold the warehouse open: a run that found the warehouse open
    would fail half way. `busy` is the one-line refusal ({data_dir} filled in);
    `wait_seconds` waits that long for a holder that lets go soon (another explain)."""
    lock_path = data_dir / warehouse.LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RedressError(busy.format(data_dir=data_dir)) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def refuse_if_busy(data_dir: Path) -> None:
    """RedressError (BUSY, one line) when another process holds the data folder's lock
    now. A command checks this before it starts a temporary Prefect server (seconds),
    then takes the lock for its work (data_dir_lock)."""
    with data_dir_lock(data_dir):
        pass


def _ids_on_disk(data_dir: Path, run_date: date) -> list[int]:
    """Sequences of run ids that already name files (reports, notifications) on this
    date: a new run must not take one and overwrite what it names."""
    prefix = f"R{run_date:%Y%m%d}-"
    names = [p.name for p in (data_dir / "reports").glob(prefix + "*")]
    names += [p.stem for p in (data_dir / "outbox" / "notifications").glob(prefix + "*.parquet")]
    # ASCII digits only: str.isdigit also takes '²' (which int() refuses: every run of the
    # day failed on a folder so named) and other scripts' digits (which int() reads).
    return [int(n.removeprefix(prefix)) for n in names if re.fullmatch("[0-9]+", n.removeprefix(prefix))]


def _next_run_id(con, data_dir: Path, run_date: date) -> str:
    # The highest sequence, not a count: runs rebuilt from the outbox (recover-ledger)
    # may leave gaps, and an id is never given twice.
    n = con.execute(
        "SELECT coalesce(max(CAST(split_part(run_id, '-', 2) AS BIGINT)), 0) FROM runs WHERE run_date = ?",
        [run_date]).fetchall()[0][0]
    n = max([n, *_ids_on_disk(data_dir, run_date)])
    return f"R{run_date:%Y%m%d}-{n + 1:03d}"


def peek_run_id(data_dir: Path, run_date: date) -> str | None:
    """The id start_run would give a run of this date now, read without writing (so a
    Prefect flow run can be named after it before it starts); None when the warehouse
    cannot be read (held by another run, not DuckDB's): start_run decides then."""
    try:
        if not warehouse.path(data_dir).exists():
            return f"R{run_date:%Y%m%d}-{max([0, *_ids_on_disk(data_dir, run_date)]) + 1:03d}"
        with connect(warehouse.path(data_dir), read_only=True) as con:
            return _next_run_id(con, data_dir, run_date)
    except Exception:  # noqa: BLE001 - a name is a convenience; the run's own checks report the cause
        return None


# What a run still marked running when the next one starts is recorded as: killed, or its
# failure could not be recorded (flows/remediation.py). The next run writes its report
# (tasks/report.py report_killed_runs).
STOPPED = "stopped before the end (killed or crashed)"


def latest_run(con) -> tuple[str, date] | None:
    """(run id, run date) of the latest-dated run the warehouse records, any outcome; None
    when it records none."""
    return one(con.execute("SELECT run_id, run_date FROM runs ORDER BY run_date DESC, run_id DESC LIMIT 1"))


def paid_under_other_rules(con, policy: Policy) -> str | None:
    """The id of the first run that released batches stamped with `policy`'s policy.id
    under other rules (redress/policy RULE_TABLES: what decides who is owed what and by
    which rail; SPEC "The policy": one file per version, its id stamped on every
    entitlement, payment and batch: one id, one set of amounts); else None. Runs rebuilt
    by recover-ledger count by the rules their batches' manifests name; those whose
    rules are unknown (recorded, or their manifests written, by an earlier version) do
    not count; nor do runs that released nothing (a file changed before it paid anything
    may keep its id)."""
    found = one(con.execute("""
        SELECT r.run_id FROM runs r
        WHERE r.policy_id = ? AND r.policy_rules_sha256 <> ?
          AND EXISTS (SELECT 1 FROM batches b WHERE b.run_id = r.run_id)
        ORDER BY r.started_at, r.run_id LIMIT 1""", [policy.id, policy.rules_sha256]))
    return None if found is None else found[0]


def _policy_id_reused(con, policy: Policy) -> str | None:
    """Why `policy` may not run here (`paid_under_other_rules`), one line; else None."""
    run_id = paid_under_other_rules(con, policy)
    if run_id is None:
        return None
    return (f"policy {escape.terminal(policy.path.name)} has policy.id {policy.id!r}, which run {run_id} "
            "stamped on its payments under other rules (its breach, eligibility, categories, tiers, budget or "
            "payout): give the changed policy a new policy.id (one file per version, so that a payment's policy id "
            "names its amounts)")


def refuse_run_start(con, policy: Policy, run_date: date) -> None:
    """RedressError (one line) when no run under `policy` may be dated `run_date` in this
    warehouse (redress/rules/plans.py run_date_refusal: before its latest-dated run, or
    more than a day after today where `policy` pays), or `policy` reuses the id of a
    policy that paid under other rules (`_policy_id_reused`)."""
    refused = (run_date_refusal(run_date, latest_run(con), policy.today(), policy.timezone)
               or _policy_id_reused(con, policy))
    if refused is not None:
        raise RedressError(refused)


def _read_runs(data_dir: Path, policy: Policy) -> tuple[tuple[str, date] | None, str | None]:
    """(latest_run, _policy_id_reused) of the folder's warehouse, read without writing;
    (None, None) when it cannot be read so (none yet, another process's, an earlier
    version's without `runs`): the run judges again under the folder's lock."""
    if warehouse.path(data_dir).is_file():
        try:
            with connect(warehouse.path(data_dir), read_only=True) as con:
                return latest_run(con), _policy_id_reused(con, policy)
        except (RedressError, duckdb.Error):
            pass
    return None, None


def check_run_start(data_dir: Path, policy: Policy, run_date: date) -> None:
    """refuse_run_start before a command starts Prefect (seconds saved on a typo), reading
    the warehouse without writing (`_read_runs`)."""
    latest, reused = _read_runs(data_dir, policy)
    refused = run_date_refusal(run_date, latest, policy.today(), policy.timezone) or reused
    if refused is not None:
        raise RedressError(refused)


def check_policy_id(data_dir: Path, policy: Policy) -> None:
    """RedressError (one line) when `policy` reuses the id of one that paid here under
    other rules (`_policy_id_reused`), read without writing: for `redress serve`, whose
    every run would be refused, before it registers anything."""
    reused = _read_runs(data_dir, policy)[1]
    if reused is not None:
        raise RedressError(reused)


def start_run(data_dir: Path, policy: Policy, run_date: date | None, parameters: dict) -> RunContext:
    """Record a new run; its id is the run date and a sequence, so ids sort and repeat
    identically for the same history. `run_date` None: the day, where the policy pays, of
    the very instant recorded as the run's start, so that the run is for its own day
    (redress/rules/plans.py bank_days_from); `parameters` gets the run date."""
    started_at = datetime.now(timezone.utc)
    run_date = run_date or started_at.astimezone(ZoneInfo(policy.timezone)).date()
    parameters = {**parameters, "run_date": str(run_date)}
    with connect(warehouse.path(data_dir)) as con:
        # Under the folder lock no other run is going on: a run still marked running was
        # killed. Say so (even when this run is refused next), and drop its scratch files.
        con.execute("UPDATE runs SET outcome = 'failed', error = ? WHERE outcome = 'running'", [STOPPED])
        refuse_run_start(con, policy, run_date)  # before anything of this run is written
        shutil.rmtree(data_dir / "work", ignore_errors=True)
        run_id = _next_run_id(con, data_dir, run_date)
        con.execute(
            "INSERT INTO runs (run_id, started_at, run_date, parameters, policy_id, policy_sha256, policy_rules_sha256, "
            "policy_text, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running')",
            [run_id, started_at, run_date, json.dumps(parameters, sort_keys=True),
             policy.id, policy.sha256, policy.rules_sha256, policy_text(policy)],
        )
        # SPEC "Approval before release": a later run supersedes a plan still waiting;
        # this run plans its payments afresh from the ledger as it is.
        plans.supersede_waiting(con, run_id, datetime.now(timezone.utc))
    return RunContext(data_dir, run_id, run_date, policy.path, policy.sha256)


def run_context(data_dir: Path, run_id: str, *, recorded_policy: bool = False) -> RunContext:
    """The context of an earlier run `run_id`, from its `runs` row (its run date and
    policy file); RedressError (one line) when the warehouse has no such run, or its row
    does not name its policy file (edited by hand: `parameters` is JSON with `policy`).
    `recorded_policy`: with the policy text the run read (`runs.policy_text`), which
    RunContext.policy then falls back on when the file has changed: for what only
    describes the run (a superseded or expired plan's page; found by the operations
    review: a waiting plan's policy file edited, every later run warned that its page
    could not be written), never for what pays or decides."""
    with connect(warehouse.path(data_dir)) as con:
        row = one(con.execute("SELECT run_date, parameters, policy_sha256, policy_text FROM runs WHERE run_id = ?",
                              [run_id]))
    if row is None:
        raise RedressError(f"no run {run_id} in {data_dir}: nothing to decide")
    run_date, parameters, sha, text = row
    try:
        policy = json.loads(parameters)["policy"]
        if not isinstance(policy, str) or not policy:
            raise TypeError(policy)
    except (ValueError, KeyError, TypeError, RecursionError):  # a nesting too deep is no ValueError
        raise RedressError(f"run {run_id}'s row in the warehouse does not name its policy file (runs.parameters "
                           "must be JSON with a `policy` path): was it edited by hand?") from None
    return RunContext(data_dir, run_id, run_date if isinstance(run_date, date) else date.fromisoformat(run_date),
                      Path(policy), sha, text if recorded_policy else None)


def finish_run(ctx: RunContext, outcome: str, summary: RunSummary, error: str | None = None) -> None:
    """Record the run's end: its files, every stage result's fields (`counts`, from
    run_counts, with `suite_records`: the labels of the suite records in its
    validations/, so a page written again later can tell which were removed since), the
    disburse result again as `totals`, outcome and error."""
    try:
        _record_end(ctx, outcome, summary, error)
    finally:
        # Scratch files hold staged customer data: gone on every exit, failure and
        # Ctrl-C included (a kill -9 leaves them to the next run's start_run).
        shutil.rmtree(ctx.work_dir, ignore_errors=True)
        _remove_if_empty(ctx.work_dir.parent)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _record_end(ctx: RunContext, outcome: str, summary: RunSummary, error: str | None) -> None:
    counts = run_counts(summary)
    records, _ = readable_records(ctx.report_dir)  # never raises: the run's end is always recorded
    suite_records = sorted(r["label"] for r in records)  # one record per label
    with connect(ctx.warehouse) as con:
        files = con.execute(
            "SELECT kind, file_name, file_sha256, status FROM ingested_files WHERE run_id = ? ORDER BY kind, file_name",
            [ctx.run_id],
        ).fetchall()
        con.execute(
            "UPDATE runs SET ended_at = ?, input_files = ?, counts = ?, totals = ?, outcome = ?, error = ? "
            "WHERE run_id = ?",
            [
                datetime.now(timezone.utc),
                json.dumps([dict(zip(("kind", "file_name", "file_sha256", "status"), f)) for f in files]),
                json.dumps({**counts, "suite_records": suite_records}, sort_keys=True),
                json.dumps(counts["disburse"], sort_keys=True),
                outcome, error, ctx.run_id,
            ],
        )


def record_recovered(con, run_id: str, started_at: str | None, run_date: date, policy_id: str,
                     rules_sha256: str | None) -> None:
    """A run rebuilt from the outbox by `redress recover-ledger` (redress/outbox/recovery.py),
    outcome `recovered`, inside the caller's transaction: recorded so that no new run
    takes its id (and overwrites its files). `started_at`: the first batch's created_at
    (ISO text), else midnight of the run date. `rules_sha256`: its batches' manifests'
    policy_rules_sha256, so that its policy id keeps its rules (`paid_under_other_rules`);
    None when they do not name it (written by an earlier version, or no batch)."""
    con.execute(
        "INSERT INTO runs (run_id, started_at, run_date, parameters, policy_id, policy_sha256, policy_rules_sha256, "
        "outcome, error) VALUES (?, coalesce(?::TIMESTAMPTZ, ?::DATE::TIMESTAMPTZ), ?, ?, ?, '', ?, 'recovered', "
        "'rebuilt from the outbox by redress recover-ledger')",
        [run_id, started_at, run_date, run_date, json.dumps({"restored_from": "outbox"}), policy_id, rules_sha256])


def record_told_checked(con, run_id: str) -> None:
    """Run `run_id`, and every run with ledger rows no notify stage has looked at yet,
    looked at (`runs.told_checked`): their payees told otherwise before are listed
    (redress/rules/notifications.py TOLD_OTHERWISE). Inside the caller's transaction,
    the one that records the notify stage's notifications, so a kill before it leaves
    them to the next notify stage."""
    con.execute("""
        UPDATE runs SET told_checked = true
        WHERE run_id = ? OR (NOT coalesce(told_checked, false) AND run_id IN (SELECT DISTINCT run_id FROM ledger))""",
                [run_id])


def record_approval(con, run_id: str, *, by: str, note: str | None, at: datetime) -> None:
    """Who released run `run_id`'s plan, when and with what note (SPEC "Approval before
    release"), inside the caller's transaction: the one that commits its ledger rows."""
    con.execute("UPDATE runs SET approved_by = ?, approved_at = ?, approval_note = ? WHERE run_id = ?",
                [by, at, note, run_id])


def record_exposures(con, run_id: str, counts: tuple[int, int, int]) -> None:
    """The exposure counts run `run_id`'s report shows (redress/reports/report_facts.py
    `exposure_pairs`): distinct exposures (customer, category), customers among them,
    and exposures only this run's scope files hold. They change only with scope rows,
    which only a later run commits, so the report page written again after an approval
    or a rejection reads them here instead of grouping every scope row again (20 s at
    33.7 M customers)."""
    con.execute("UPDATE runs SET exposures = ? WHERE run_id = ?", [json.dumps(list(counts)), run_id])


def recorded_exposures(con, run_id: str) -> tuple[int, int, int] | None:
    """What record_exposures kept for run `run_id`; None when nothing was (a run of an
    earlier version, a recovered one) or what is there is not three counts."""
    found = con.execute("SELECT exposures FROM runs WHERE run_id = ?", [run_id]).fetchall()
    try:
        counts = json.loads(found[0][0]) if found and found[0][0] else None
    except (ValueError, RecursionError):  # a nesting too deep is no ValueError
        return None
    if isinstance(counts, list) and len(counts) == 3 and all(type(n) is int and n >= 0 for n in counts):
        return counts[0], counts[1], counts[2]
    return None
