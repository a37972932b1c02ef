"""The outbox against the warehouse: what was issued must be known before anything more is.

The outbox is what finance and comms have already taken: batch folders (each with a
manifest naming every file's SHA-256) and notification files. If the warehouse is lost,
or replaced by an older copy, it no longer knows some of them, and a run would pay and
notify those people again (SPEC "Ledger: paying exactly once"). So:

- `unknown_outbox` lists what the outbox holds that the warehouse does not know; a run
  refuses to start while anything is listed (redress/runtime/start_checks.py);
- `recover_ledger` (`redress recover-ledger`) rebuilds what is missing from the outbox
  alone: `batches` and `ledger` rows from every batch folder, after verifying every
  file against its manifest, and `notifications` rows from every notification file and
  its index (`outbox/notifications/index/<run_id>.parquet`: person_key, customer_id,
  reference_code, written with it by the notify stage), so nobody is notified twice and
  reference codes stay the same. Restored payments are `issued`: returns files not in
  `ingested_files` are applied again by the next run, which brings their status up to
  date before anything is computed. Idempotent: what the warehouse knows is left alone.
  Claims (SPEC "Input: claims from customer service") survive the same way: a
  `cancelled` status and the `claims` table are not in the outbox, so a held claim
  payment is restored `issued` (held: never paid out), and the claims files not in
  `ingested_files` are applied again by the next run, after the returns, cancelling the
  held payments and recording the claimed accounts again before anything is computed.
  The bank transfer a claim led to is in its batch folder, so it is restored too and
  counts as paid: nobody is paid twice.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from redress import sql
from redress.errors import RedressError
from redress.warehouse import connect, ledger, notifications, table_exists
from redress.warehouse import path as warehouse_path
from redress.warehouse import plans as plans_table
from redress.warehouse import runs as runs_table
from redress.inbox import sha256_of
from redress.rules.notifications import PAID_TEMPLATES


RUN_ID = re.compile(r"R([0-9]{8})-([0-9]{3,})")
SHA256 = re.compile(r"[0-9a-f]{64}")
# <policy>-<YYYYMMDD>-<rail>-<seq> (redress/rules/batches.py): any other folder in outbox/batches
# (an `archive/` finance made) is not a batch and is neither checked nor restored.
BATCH_ID = re.compile(r".+-[0-9]{8}-(voucher|bank_transfer|claim)-[0-9]+")
INDEX = "index"  # outbox/notifications/index/<run_id>.parquet: who each notification row is for
# A notification file's rows with the person each is for; $1 the file, $2 its index.
NOTES_WITH_KEYS = """
    SELECT k.person_key, k.customer_id, f.recipient, f.channel, f.reference_code, f.template_id, f.language
    FROM read_parquet($1, hive_partitioning = false) f
    LEFT JOIN read_parquet($2, hive_partitioning = false) k USING (reference_code)"""


@dataclass
class OutboxState:
    """What the outbox holds that the warehouse does not know (ids, sorted)."""
    batches: list[str] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)  # run ids of notification files

    def __bool__(self) -> bool:
        return bool(self.batches or self.notifications)

    def describe(self) -> str:
        parts = []
        if self.batches:
            parts.append(f"{len(self.batches)} batch folder(s) (first {self.batches[0]})")
        if self.notifications:
            parts.append(f"{len(self.notifications)} notification file(s) (first {self.notifications[0]}.parquet)")
        return " and ".join(parts)


def batch_folders(data_dir: Path) -> list[Path]:
    """Published batch folders (a `.tmp-` folder was never handed to finance)."""
    root = data_dir / "outbox" / "batches"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and BATCH_ID.fullmatch(p.name))


def notification_files(data_dir: Path) -> list[Path]:
    root = data_dir / "outbox" / "notifications"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("*.parquet") if not p.name.startswith(".") and RUN_ID.fullmatch(p.stem))


def row_count(path: Path) -> int:
    return pl.scan_parquet(path, glob=False).select(pl.len()).collect().item()


def _known(data_dir: Path) -> tuple[set[str], set[str]]:
    warehouse = warehouse_path(data_dir)
    if not warehouse.exists():
        return set(), set()
    with connect(warehouse, read_only=True) as con:
        batches = {r[0] for r in con.execute("SELECT batch_id FROM batches").fetchall()} \
            if table_exists(con, "batches") else set()
        notified = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM notifications").fetchall()} \
            if table_exists(con, "notifications") else set()
    return batches, notified


def unknown_outbox(data_dir: Path) -> OutboxState:
    """Batch folders and (non-empty) notification files the warehouse does not know.
    Reads only: the warehouse is opened read-only, and not created when missing."""
    folders, files = batch_folders(data_dir), notification_files(data_dir)
    if not folders and not files:
        return OutboxState()
    batches, notified = _known(data_dir)
    return OutboxState(
        batches=[p.name for p in folders if p.name not in batches],
        # A run that had nobody new to tell still writes an empty file; it told no one.
        notifications=[p.stem for p in files if p.stem not in notified and row_count(p) > 0],
    )


def verified_manifest(folder: Path, consequence: str | None = "nothing restored") -> dict:
    """The folder's manifest after checking it names exactly the folder's files, every
    SHA-256 matches, and payments.parquet holds item_count payments summing to
    control_sum; with `manifest_sha256`, the manifest file's own. RedressError (one line,
    ending in `; consequence` when given) on the first mismatch."""
    where = f"outbox/batches/{folder.name}"
    then = f"; {consequence}" if consequence else ""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        files = dict(manifest["files"])
        keys = {k: manifest[k] for k in ("batch_id", "rail", "currency", "value_date", "item_count",
                                         "control_sum", "policy_id", "run_id", "created_at")}
        # Absent from the manifests of earlier versions: those runs' rules stay unknown.
        keys["policy_rules_sha256"] = manifest.get("policy_rules_sha256")
        # Who released it, for a batch an approval released (none without approval).
        keys.update({k: manifest.get(k) for k in ("approved_by", "approved_at", "approval_note", "approved_os_user")})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RedressError(f"{where}: unreadable manifest.json ({type(exc).__name__}: {exc}){then}") from None
    rules = keys["policy_rules_sha256"]
    if rules is not None and not (isinstance(rules, str) and SHA256.fullmatch(rules)):
        raise RedressError(f"{where}: manifest.json's policy_rules_sha256 is not a SHA-256{then}")
    # The approval's fields, which recover-ledger records (found by the fix review: an
    # `approved_at` that is no time was a traceback)
    for name in ("approved_by", "approved_at", "approval_note", "approved_os_user"):
        if keys[name] is not None and not isinstance(keys[name], str):
            raise RedressError(f"{where}: manifest.json's {name} is not a text{then}")
    if keys["approved_at"] is not None and _instant(keys["approved_at"]) is None:
        raise RedressError(f"{where}: manifest.json's approved_at is not an ISO 8601 time with its offset{then}")
    if keys["batch_id"] != folder.name:
        raise RedressError(f"{where}: manifest names batch {keys['batch_id']}{then}")
    # A file manager's .DS_Store or Thumbs-like dot-file is not part of the batch.
    present = sorted(p.name for p in folder.iterdir() if p.name != "manifest.json" and not p.name.startswith("."))
    if present != sorted(files) or "payments.parquet" not in files:
        raise RedressError(f"{where}: files {present} differ from the manifest's {sorted(files)}{then}")
    for name in sorted(files):
        if sha256_of(folder / name) != files[name]:
            raise RedressError(f"{where}/{name}: SHA-256 differs from the manifest{then}")
    totals = pl.scan_parquet(folder / "payments.parquet", glob=False).select(
        pl.len().alias("n"), pl.col("amount").sum().alias("sum")).collect().row(0)
    if totals != (keys["item_count"], keys["control_sum"]):
        raise RedressError(f"{where}: payments.parquet holds {totals[0]} payments for {totals[1]}, the manifest "
                           f"{keys['item_count']} for {keys['control_sum']}{then}")
    keys["manifest_sha256"] = sha256_of(folder / "manifest.json")
    return keys


def _notification_sources(data_dir: Path, run_id: str) -> list[str]:
    """[file, index] of one run's notifications after checking, in DuckDB without
    loading them (tens of millions of rows), that the index names a person for every
    row and nothing more. RedressError (one line) otherwise."""
    root = data_dir / "outbox" / "notifications"
    index = root / INDEX / f"{run_id}.parquet"
    if not index.is_file():
        raise RedressError(f"outbox/notifications/{run_id}.parquet has no index file ({INDEX}/{run_id}.parquet, "
                           "deleted, or written before redress kept one): restore that file or the warehouse "
                           "from backup; nothing restored")
    sources = [sql.file_path(root / f"{run_id}.parquet"), sql.file_path(index)]
    with duckdb.connect() as con:
        rows, indexed, matched = con.execute(f"""
            SELECT (SELECT count(*) FROM read_parquet($1, hive_partitioning = false)),
                   (SELECT count(*) FROM read_parquet($2, hive_partitioning = false)),
                   (SELECT count(*) FROM ({NOTES_WITH_KEYS}) WHERE person_key IS NOT NULL)""", sources).fetchall()[0]
    if not rows == indexed == matched:
        raise RedressError(f"outbox/notifications/{run_id}.parquet and its index do not match row for row "
                           f"({rows} rows, {indexed} in the index, {matched} matched); nothing restored")
    return sources


def _instant(text: str) -> datetime | None:
    """The time `text` gives (ISO 8601 with an offset, as a release writes it), or None."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _run_date(run_id: str):
    return datetime.strptime(RUN_ID.fullmatch(run_id)[1], "%Y%m%d").date()


def recover_ledger(data_dir: Path) -> dict:
    """Restore `batches`, `ledger`, `notifications` (and a `runs` row, outcome
    `recovered`, for each run id they name) from the outbox; verify everything first,
    then write it in one transaction, with the plans the restored batches decide
    (`_settle_plans`). Returns counts: batches, payments, amount (minor units),
    notifications, runs; and, when anything was restored, approved_plans and
    superseded_plans (run ids). RedressError on any mismatch, with nothing written."""
    missing = unknown_outbox(data_dir)
    # found by the recovery review: the line did not say where a sound copy is
    manifests = [verified_manifest(data_dir / "outbox" / "batches" / b,
                                   "nothing restored; put finance's copy of that batch folder back, then run "
                                   "recover-ledger again") for b in missing.batches]
    notes = {r: _notification_sources(data_dir, r) for r in missing.notifications}
    restored = {"batches": 0, "payments": 0, "amount": 0, "notifications": 0, "runs": 0}
    if not manifests and not notes:
        return restored
    with connect(warehouse_path(data_dir)) as con:
        known_runs = {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()}
        con.execute("BEGIN")
        runs: dict[str, dict] = {}
        for m in manifests:
            folder = data_dir / "outbox" / "batches" / m["batch_id"]
            added = ledger.restore_batch(con, m, sql.file_path(folder / "payments.parquet"))
            restored["batches"] += 1
            restored["payments"] += added
            restored["amount"] += m["control_sum"]
            runs.setdefault(m["run_id"], {"started": m["created_at"], "policy_id": m["policy_id"],
                                          "rules": m["policy_rules_sha256"]})
        for run_id, sources in notes.items():
            restored["notifications"] += notifications.restore(con, NOTES_WITH_KEYS, sources, run_id)
            runs.setdefault(run_id, {"started": None, "policy_id": "", "rules": None})
        for run_id, info in sorted(runs.items()):
            if run_id in known_runs or not RUN_ID.fullmatch(run_id):
                continue
            # Recorded so that no new run takes the id (and overwrites its files).
            runs_table.record_recovered(con, run_id, info["started"], _run_date(run_id), info["policy_id"],
                                        info["rules"])
            restored["runs"] += 1
        restored["approved_plans"], restored["superseded_plans"] = _settle_plans(con, manifests)
        unpaid = _told_of_a_payment_never_found(con)
        if unpaid:
            con.execute("ROLLBACK")
            count, first_run = unpaid
            raise RedressError(
                f"{count} person(s) were told of a payment (first in run {first_run}) that no batch folder in "
                "outbox/batches holds: a batch folder was moved or deleted; put finance's copy back and run "
                "recover-ledger again; nothing restored")
        con.execute("COMMIT")
    return restored


def _settle_plans(con: duckdb.DuckDBPyConnection, manifests: list[dict]) -> tuple[list[str], list[str]]:
    """The plans the restored batches decide, inside the caller's transaction (found by
    the recovery review): a plan whose batches the outbox holds was released, whatever
    an older warehouse says (waiting, or since rejected), so it is approved as its
    manifests say, its last steps left to the next run (plans.pages_due); every other
    plan still waiting was made from a ledger without those batches, and approving it
    would pay their people again: superseded by the latest run that released them.
    Returns (approved, superseded): their run ids."""
    approvals = {m["run_id"]: m for m in manifests if m.get("approved_by") and m.get("approved_at")}
    approved = []
    for run_id, m in sorted(approvals.items()):
        at = _instant(m["approved_at"])
        if plans_table.restore_approval(con, run_id, by=m["approved_by"], note=m.get("approval_note"), at=at,
                                        os_user=m.get("approved_os_user")):
            approved.append(run_id)
        # its runs row too, the one recorded above when the warehouse had none (fix review)
        runs_table.record_approval(con, run_id, by=m["approved_by"], note=m.get("approval_note"), at=at)
    latest = max(m["run_id"] for m in manifests) if manifests else None
    superseded = plans_table.supersede_waiting(con, latest, datetime.now(timezone.utc)) if latest else []
    return approved, superseded


def _told_of_a_payment_never_found(con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    """(people, first run) of customers whose notification says they are paid (voucher,
    bank transfer or claim template) but who have no payment in the ledger as rebuilt.
    The notification files are a second record of who was paid: a batch folder finance
    moved out of the outbox would otherwise be paid again by the next run."""
    (count, first_run), = con.execute("""
        SELECT count(*), min(n.run_id) FROM notifications n
        WHERE n.customer_id IS NOT NULL AND list_contains(?, n.template_id)
          AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.customer_id = n.customer_id)""",
        [list(PAID_TEMPLATES)]).fetchall()
    return (int(count), first_run) if count else None
