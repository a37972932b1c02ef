"""The released batches against the warehouse and their own manifests (SPEC "Ledger:
paying exactly once", "Disbursement batches"): nothing written.

A batch's ledger rows are written once, in the transaction that records the batch, and
never deleted, nor is their amount changed (returns and claims move a status only:
redress/warehouse/ledger.py). So for every batch the ledger holds exactly
`batches.item_count` rows summing to `batches.control_sum`, the figures its manifest
carries. A ledger that does not is a warehouse changed outside redress, and paying on
from it could pay someone twice (found by the audit review: one ledger row deleted by
hand, the next run paid that customer again, and nothing said so).

    ledger_unlike_batches(con)       the batches whose ledger rows differ from their totals
    batches_unlike_manifests(con, data_dir)  the batches whose totals differ from their
                                     released manifest.json, or whose manifest is
                                     not the one released
    folders_gone(con, data_dir)      the released batches with no folder in the outbox
    refuse_ledger_unlike_batches(con, data_dir)  RedressError (one line) when any of the
                                     above: every run and approval asks before it
                                     plans or releases; else folders_gone, from one
                                     read of `batches`
    verify(data_dir, batch_ids)      `redress verify`: the above, and each batch folder
                                     against its manifest (every file's SHA-256, the
                                     payments' count and sum) and the manifest against
                                     the warehouse's batch, its own SHA-256 included
                                     (kept when the batch was released: a manifest
                                     rewritten to match edited files is caught), and
                                     every ledger row against its batch's
                                     payments.parquet; the problems, one line each
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from redress import sql
from redress.errors import RedressError
from redress.inbox import sha256_of
from redress.outbox.files import staging_folder
from redress.outbox.recovery import batch_folders, verified_manifest
from redress.runtime.stage_counts import counted
from redress.warehouse import table_exists

# (batch_id, item_count, control_sum, ledger rows, their sum): NULL where one side has none.
LEDGER_AGAINST_BATCHES = """
    WITH paid AS (SELECT batch_id, count(*) AS payments, sum(amount) AS amount FROM ledger GROUP BY batch_id)
    SELECT coalesce(b.batch_id, p.batch_id) AS batch_id, b.item_count, b.control_sum, p.payments, p.amount
    FROM batches b FULL JOIN paid p USING (batch_id)
    WHERE b.item_count IS DISTINCT FROM p.payments OR b.control_sum IS DISTINCT FROM p.amount
    ORDER BY 1"""
# What the manifest says of its batch, beside the warehouse's `batches` column of it.
MANIFEST_FIELDS = ("rail", "currency", "value_date", "item_count", "control_sum", "policy_id", "run_id")


def _counted(payments: int | None, amount: int | None) -> str:
    return f"{counted(payments or 0, 'payment')} for {amount or 0:,}"


def _not_released(batch_id: str) -> str:
    return (f"outbox/batches/{batch_id}/manifest.json: not the manifest released (its SHA-256 differs from the "
            "one the warehouse kept)")


def _unlike(row: tuple) -> str:
    batch_id, count, total, payments, amount = row
    if count is None:
        return f"ledger rows name batch {batch_id}, which the batches table does not hold ({_counted(payments, amount)})"
    return (f"batch {batch_id}: the ledger holds {_counted(payments, amount)}, the batches table "
            f"{_counted(count, total)} (minor units)")


def ledger_unlike_batches(con: duckdb.DuckDBPyConnection, batch_ids: list[str] | None = None) -> list[str]:
    """One line per batch whose ledger rows are not, in count and sum of amount, the
    batch's item_count and control_sum, or per batch id the ledger names and `batches`
    does not; by batch id, of `batch_ids` only when given. Empty for a warehouse
    without the tables yet."""
    if not (table_exists(con, "ledger") and table_exists(con, "batches")):
        return []
    return [_unlike(row) for row in con.execute(LEDGER_AGAINST_BATCHES).fetchall()
            if batch_ids is None or row[0] in batch_ids]


def _released(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """`_batch_rows`, or none for a warehouse without the table yet."""
    return _batch_rows(con) if table_exists(con, "batches") else {}


def batches_unlike_manifests(con: duckdb.DuckDBPyConnection, data_dir: Path,
                             known: dict[str, dict] | None = None) -> list[str]:
    """One line per batch whose `batches` row is not, in count and sum, what its released
    folder's manifest.json says, or whose manifest is not the one released (its SHA-256
    kept in `batches`); by batch id. Reads each manifest (a small file), not the payment
    files: cheap enough for every run. A folder gone or not yet published is `verify`'s
    to say. Found by the fix review: a ledger row deleted together with its batch's totals
    agreed with itself, and the next run paid that customer again. `known`: the
    `batches` rows (`_released`), when the caller has read them."""
    known = _released(con) if known is None else known
    root = data_dir / "outbox" / "batches"
    found = []
    for batch_id, row in known.items():
        manifest = root / batch_id / "manifest.json"
        if not manifest.is_file():
            continue
        if row["manifest_sha256"] is not None and sha256_of(manifest) != row["manifest_sha256"]:
            found.append(_not_released(batch_id))
            continue
        try:
            said = json.loads(manifest.read_text(encoding="utf-8"))
            shown = (said["item_count"], said["control_sum"])
        except (OSError, ValueError, KeyError, TypeError):
            found.append(f"outbox/batches/{batch_id}/manifest.json: unreadable")
            continue
        if shown != (row["item_count"], row["control_sum"]):
            found.append(f"batch {batch_id}: the batches table holds {_counted(row['item_count'], row['control_sum'])}, "
                         f"its manifest.json {_counted(*shown)} (minor units)")
    return found


def folders_gone(con: duckdb.DuckDBPyConnection, data_dir: Path,
                 known: dict[str, dict] | None = None) -> tuple[int, int, int]:
    """(batches, payments, amount in minor units) of the released batches whose folder
    is not in outbox/batches, published or waiting to be (a killed run's, which the
    next run publishes): moved or deleted since, or the outbox restored from an older
    copy. The SPEC has no ledger row without its batch folder; if finance pulled them,
    nothing is lost, else those people were never paid (found by the recovery review:
    every run went on without a word). Reads folder names only. `known`: as
    batches_unlike_manifests's."""
    known = _released(con) if known is None else known
    root = data_dir / "outbox" / "batches"
    gone = [(row["item_count"], row["control_sum"]) for batch_id, row in known.items()
            if not (root / batch_id).is_dir() and not staging_folder(root, batch_id).is_dir()]
    return len(gone), sum(c for c, _ in gone), sum(t for _, t in gone)


def refuse_ledger_unlike_batches(con: duckdb.DuckDBPyConnection,
                                 data_dir: Path | None = None) -> tuple[int, int, int]:
    """RedressError (one line) when any batch's ledger rows differ from its totals
    (`ledger_unlike_batches`), or, given the data folder, its totals from its released
    manifest (`batches_unlike_manifests`): nothing may be planned or released from such
    a ledger. Otherwise, given the data folder, `folders_gone` from the same read of
    `batches`; (0, 0, 0) without it."""
    known = _released(con) if data_dir is not None else {}
    unlike = ledger_unlike_batches(con) + (batches_unlike_manifests(con, data_dir, known) if data_dir is not None else [])
    if unlike:
        more = f" (and {counted(len(unlike) - 1, 'more batch')})" if len(unlike) > 1 else ""
        raise RedressError(
            f"the ledger does not match the batches it was released in: {unlike[0]}{more}. The warehouse was "
            "changed outside redress, and paying on from it could pay someone twice: nothing was planned or "
            "released. Restore warehouse.duckdb from a backup and run `redress recover-ledger` (it restores "
            "the batches released since from the outbox); `redress verify` lists every difference")
    return folders_gone(con, data_dir, known) if data_dir is not None else (0, 0, 0)


def _batch_rows(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    columns = ("batch_id",) + MANIFEST_FIELDS
    # a warehouse no run of this version has opened yet (verify opens it read-only, and
    # cannot migrate it) has no manifest_sha256: its batches are held to their manifests
    # alone (found by the fix review: a traceback)
    kept = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'batches' "
                       "AND column_name = 'manifest_sha256'").fetchall()[0][0]
    rows = con.execute(f"SELECT {', '.join(columns)}, {'manifest_sha256' if kept else 'NULL'} FROM batches "
                       "ORDER BY batch_id").fetchall()
    return {row[0]: dict(zip(columns + ("manifest_sha256",), row)) for row in rows}


def _against_warehouse(manifest: dict, row: dict) -> list[str]:
    """The fields where a verified manifest and its `batches` row differ, one line each;
    first, a manifest that is not the file released (its SHA-256 kept in `batches`; none
    for an earlier version's batch): rewritten with the hashes of edited files, it
    agrees with them, never with the warehouse."""
    if row["manifest_sha256"] is not None and manifest["manifest_sha256"] != row["manifest_sha256"]:
        return [_not_released(row["batch_id"])]
    found = []
    for field in MANIFEST_FIELDS:
        stored = row[field].isoformat() if field == "value_date" else row[field]
        if manifest[field] != stored:
            found.append(f"batch {row['batch_id']}: manifest.json's {field} is {json.dumps(manifest[field])}, "
                         f"the warehouse's {json.dumps(stored)}")
    return found


def _rows_unlike(con: duckdb.DuckDBPyConnection, folder: Path) -> list[str]:
    """The batch's ledger rows against its verified payments.parquet, payment by payment
    (customer and amount): found by the fix review, a payment's customer renamed, or
    money moved between two payments of one batch, kept every count and sum and paid
    someone again."""
    (differ,), = con.execute("""
        SELECT count(*) FROM (SELECT payment_id, customer_id, amount FROM ledger WHERE batch_id = ?) l
        FULL JOIN (SELECT payment_id, customer_id, amount FROM read_parquet(?, hive_partitioning = false)) p
        USING (payment_id)
        WHERE l.customer_id IS DISTINCT FROM p.customer_id OR l.amount IS DISTINCT FROM p.amount""",
        [folder.name, sql.file_path(folder / "payments.parquet")]).fetchall()
    if not differ:
        return []
    return [f"batch {folder.name}: {counted(differ, 'payment')} in the ledger {'differs' if differ == 1 else 'differ'} "
            "from its payments.parquet (customer, amount, or a payment one holds and the other not)"]


def _unknown(folder: Path) -> str:
    """What to say of a batch folder the warehouse does not hold: recover-ledger restores
    it when its manifest holds (found by the fix review: a copy of another batch under a
    new name was sent to recover-ledger, which refused it)."""
    try:
        verified_manifest(folder, consequence=None)
    except RedressError as exc:
        return f"{exc}; and the warehouse holds no such batch: not a batch redress released"
    return f"outbox/batches/{folder.name}: a batch folder the warehouse does not hold (`redress recover-ledger` restores it)"


def verify(con: duckdb.DuckDBPyConnection, data_dir: Path, batch_ids: list[str] | None = None) -> dict:
    """`redress verify`: {"batches", "payments", "amount" (minor units), "problems"}:
    the batches checked (all the warehouse holds, or `batch_ids`), their payments and
    money as the warehouse holds them, and one line per problem found, in batch id order:
    the ledger against each checked batch (`ledger_unlike_batches`), each
    checked batch's folder against its manifest (recovery.verified_manifest: the files,
    every SHA-256, the payments' count and sum), the manifest against the warehouse's
    row, and the ledger's rows against its payments.parquet, payment by payment
    (`_rows_unlike`); a folder gone (finance copies folders out, never moves them) or
    not yet published (a run stopped after recording it); and, when all are
    checked, folders in the outbox the warehouse does not know. RedressError for a batch
    id the warehouse does not hold."""
    known = _released(con)
    wanted = sorted(known) if not batch_ids else sorted(set(batch_ids))
    unknown = [b for b in wanted if b not in known]
    if unknown:
        raise RedressError(f"the warehouse holds no batch {unknown[0]!r}: give a batch id of outbox/batches/")
    problems = ledger_unlike_batches(con, wanted if batch_ids else None)
    root = data_dir / "outbox" / "batches"
    for batch_id in wanted:
        folder = root / batch_id
        if not folder.is_dir():
            if staging_folder(root, batch_id).is_dir():  # found by the fix review: blamed on finance
                problems.append(f"batch {batch_id}: its folder is not published yet (a run stopped after recording "
                                "it; the next run, or approve given again, publishes it)")
            else:
                problems.append(f"batch {batch_id}: its folder outbox/batches/{batch_id} is gone (finance copies "
                                "batch folders out, never moves or deletes them)")
            continue
        try:
            manifest = verified_manifest(folder, consequence=None)
        except RedressError as exc:
            problems.append(str(exc))
            continue
        problems += _against_warehouse(manifest, known[batch_id]) or _rows_unlike(con, folder)
    if not batch_ids:
        problems += [_unknown(p) for p in batch_folders(data_dir) if p.name not in known]
    return {"batches": len(wanted), "payments": sum(known[b]["item_count"] for b in wanted),
            "amount": sum(known[b]["control_sum"] for b in wanted), "problems": problems}
