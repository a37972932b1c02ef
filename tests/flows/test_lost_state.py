"""Nobody paid or notified twice when the warehouse is lost or replaced by an old copy
(issue 9, item 1), and the analyst exports a successful run leaves behind (item 3b).

History of the module's data folder: run 1 pays a generated breach; a copy of the
warehouse is kept (the "old copy"); a late scope file and a returns file arrive; run 2
pays the late customers and reissues the returned payments. Each test works on its own
copy of that folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.remediation import remediation
from flows.cli import main
from redress.errors import RedressError
from redress.generate import generate
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

LEDGER = "SELECT payment_id, customer_id, amount, rail, batch_id, attempt, status FROM ledger ORDER BY payment_id"
NOTES = "SELECT person_key, customer_id, reference_code, run_id FROM notifications ORDER BY person_key"


def q(data: Path, sql: str):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def run(data: Path, day: int) -> dict:
    return remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, day))


def outbox_files(data: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data)): p.read_bytes() for p in sorted((data / "outbox").rglob("*")) if p.is_file()}


@pytest.fixture
def cli(monkeypatch, capsys):
    """cli(*args) -> (exit code, stdout, stderr lines): redress in this process, so it
    uses the session's Prefect test server."""
    for name in ("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL",
                 "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL"):
        monkeypatch.setenv(name, "CRITICAL")

    def call(*args: str):
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err.strip().splitlines()

    return call


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    data = tmp_path_factory.mktemp("lost") / "data"
    generate(data, 500, seed=33)
    run(data, 1)
    old_copy = data.parent / "warehouse-after-run-1.duckdb"
    shutil.copy(data / "warehouse.duckdb", old_copy)
    late = [r[0] for r in q(data, """
        SELECT customer_id FROM customers WHERE NOT is_test AND status <> 'closed'
        AND customer_id NOT IN (SELECT customer_id FROM entitlements) ORDER BY 1 LIMIT 4""")]
    assert late, "the generated breach leaves some customers unexposed"
    (data / "inbox" / "scope" / "scope_late.csv").write_text(
        "customer_id,email,phone,data_category,accessed_at,confidence,source\n"
        + "".join(f"{c},,,name,2025-08-01T12:00:00+09:00,,late\n" for c in late))
    returned = [r[0] for r in q(data, "SELECT payment_id FROM ledger WHERE rail = 'voucher' ORDER BY 1 LIMIT 3")]
    (data / "inbox" / "returns" / "returns_1.csv").write_text(
        "payment_id,status,reason\n" + "".join(f"{p},returned,voucher undeliverable\n" for p in returned))
    second = run(data, 2)
    assert q(data, "SELECT count(*) FROM ledger WHERE attempt = 2") == [(len(returned),)]
    assert second["disburse"]["payments"] > len(returned)  # reissues and late customers
    assert second["notify"]["notifications"] > 0
    return data, old_copy


@pytest.fixture
def folder(history, tmp_path):
    data, old_copy = history
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    return copy, old_copy


def assert_paid_and_told_once(data: Path, ledger_before, notes_before) -> None:
    assert q(data, LEDGER) == ledger_before  # same payments, ids, amounts, statuses
    assert q(data, NOTES) == notes_before  # same people, same reference codes
    wrong = q(data, """
        WITH paid AS (SELECT customer_id, sum(amount) FILTER (status IN ('issued', 'settled')) AS paid
                      FROM ledger GROUP BY ALL)
        SELECT count(*) FROM entitlements e LEFT JOIN paid p USING (customer_id)
        WHERE e.reason = 'ELIGIBLE' AND coalesce(p.paid, 0) <> e.amount""")
    assert wrong == [(0,)]
    published = pl.concat([pl.read_parquet(p) for p in sorted((data / "outbox" / "notifications").glob("*.parquet"))])
    assert published["reference_code"].n_unique() == published.height == len(notes_before)


@pytest.mark.parametrize("loss", ["deleted", "old_copy"])
def test_a_lost_warehouse_is_refused_then_recovered_without_paying_twice(folder, cli, loss):
    data, old_copy = folder
    ledger_before, notes_before = q(data, LEDGER), q(data, NOTES)
    files_before = outbox_files(data)
    (data / "warehouse.duckdb").unlink()
    if loss == "old_copy":
        shutil.copy(old_copy, data / "warehouse.duckdb")
    old_bytes = (data / "warehouse.duckdb").read_bytes() if loss == "old_copy" else None

    code, _, err = cli("--data-dir", str(data), "run", "--run-date", "2025-12-02")
    assert code == 1 and len(err) == 1
    assert "does not know" in err[0] and "recover-ledger" in err[0] and "batch folder" in err[0]
    assert "notification file" in err[0]
    assert outbox_files(data) == files_before  # nothing new, nothing changed
    if loss == "deleted":
        assert not (data / "warehouse.duckdb").exists()  # not even created
    else:
        assert (data / "warehouse.duckdb").read_bytes() == old_bytes

    code, out, err = cli("--data-dir", str(data), "recover-ledger")
    assert code == 0 and err == []
    known = {r[0] for r in q(data, "SELECT DISTINCT batch_id FROM ledger")}
    assert known == {p.name for p in (data / "outbox" / "batches").iterdir()}
    assert f"restored {len(known) if loss == 'deleted' else len(known) - len(old_batches(old_copy))} batches" in out
    restored = {(p, c, a, r, b, t) for p, c, a, r, b, t, _ in q(data, LEDGER)}
    assert restored == {(p, c, a, r, b, t) for p, c, a, r, b, t, _ in ledger_before}
    assert q(data, NOTES) == notes_before
    code, out, _ = cli("--data-dir", str(data), "recover-ledger")  # idempotent
    assert code == 0 and "nothing to restore" in out

    summary = run(data, 2)  # the same run date: the new run must not reuse a restored run id
    assert summary["run_id"] not in {r for *_, r in notes_before}
    assert summary["disburse"]["payments"] == 0
    assert summary["notify"]["notifications"] == 0
    assert_paid_and_told_once(data, ledger_before, notes_before)
    for name, content in files_before.items():  # every file handed out before is untouched
        assert (data / name).read_bytes() == content
    # the run told nobody new, so its notification file is empty and not "unknown"
    code, out, _ = cli("--data-dir", str(data), "recover-ledger")
    assert code == 0 and "nothing to restore" in out


def old_batches(old_copy: Path) -> set[str]:
    with duckdb.connect(str(old_copy), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT batch_id FROM batches").fetchall()}


def test_recovery_refuses_a_batch_whose_file_changed(folder, cli):
    data, _ = folder
    (data / "warehouse.duckdb").unlink()
    victim = sorted((data / "outbox" / "batches").iterdir())[-1] / "payments.csv"
    victim.write_bytes(victim.read_bytes().replace(b",", b";", 1))
    code, out, err = cli("--data-dir", str(data), "recover-ledger")
    assert code == 1 and len(err) == 1
    assert victim.parent.name in err[0] and "payments.csv" in err[0] and "SHA-256" in err[0]
    assert err[0].endswith("nothing restored; put finance's copy of that batch folder back, then run recover-ledger "
                           "again")
    assert not (data / "warehouse.duckdb").exists()  # nothing restored, nothing created


def test_a_recovered_warehouse_keeps_the_rules_its_policy_id_paid_under(folder, cli):
    """A policy id names one set of amounts (SPEC "The policy"): a warehouse rebuilt from
    the outbox still refuses a changed policy under an id that paid, because each batch's
    manifest names the rules it was paid under."""
    data, _ = folder
    paid_under = q(data, "SELECT DISTINCT policy_id, policy_rules_sha256 FROM runs WHERE run_id IN "
                         "(SELECT run_id FROM batches)")
    assert len(paid_under) == 1 and len(paid_under[0][1]) == 64
    for manifest in (data / "outbox" / "batches").glob("*/manifest.json"):
        assert json.loads(manifest.read_text())["policy_rules_sha256"] == paid_under[0][1]
    (data / "warehouse.duckdb").unlink()
    code, _, err = cli("--data-dir", str(data), "recover-ledger")
    assert code == 0 and err == []
    recovered = q(data, LEDGER)
    assert q(data, "SELECT DISTINCT policy_id, policy_rules_sha256 FROM runs WHERE outcome = 'recovered'") == paid_under

    raised = data.parent / "raised.toml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert text.count("1 = 50000") == 1
    raised.write_text(text.replace("1 = 50000", "1 = 60000"), encoding="utf-8")
    code, _, err = cli("--data-dir", str(data), "run", "--policy", str(raised), "--run-date", "2025-12-02")
    assert code == 1 and len(err) == 1
    assert f"policy.id {paid_under[0][0]!r}" in err[0] and "new policy.id" in err[0]
    assert q(data, LEDGER) == recovered  # refused before anything was read or paid


def test_recovery_refuses_a_manifest_naming_rules_that_are_no_hash(folder, cli):
    data, _ = folder
    (data / "warehouse.duckdb").unlink()
    manifest = sorted((data / "outbox" / "batches").iterdir())[0] / "manifest.json"
    content = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**content, "policy_rules_sha256": "not a hash"}))
    code, _, err = cli("--data-dir", str(data), "recover-ledger")
    assert code == 1 and len(err) == 1
    assert manifest.parent.name in err[0] and "policy_rules_sha256" in err[0]
    assert not (data / "warehouse.duckdb").exists()


@pytest.mark.parametrize("field, value, said", [
    ("approved_at", "2025-12-01 noon", "approved_at is not an ISO 8601 time with its offset"),
    ("approved_at", "2025-12-01T10:00:00", "approved_at is not an ISO 8601 time with its offset"),
    ("approved_at", 5, "approved_at is not a text"),
    ("approved_by", ["Kim"], "approved_by is not a text"),
])
def test_recovery_refuses_a_manifest_whose_approval_is_no_approval_in_one_line(folder, cli, field, value, said):
    """Found by the fix review: recover-ledger, now recording the approval its manifests
    name, gave a traceback for an `approved_at` that is no time."""
    data, _ = folder
    (data / "warehouse.duckdb").unlink()
    manifest = sorted((data / "outbox" / "batches").iterdir())[0] / "manifest.json"
    content = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**content, "approved_by": "Kim", "approved_at": "2025-12-01T10:00:00+00:00",
                                    field: value}))
    code, _, err = cli("--data-dir", str(data), "recover-ledger")
    assert code == 1 and len(err) == 1, err
    assert manifest.parent.name in err[0] and said in err[0] and "nothing restored" in err[0]
    assert not (data / "warehouse.duckdb").exists()


def test_recovery_refuses_a_notification_file_without_its_index(folder, cli):
    data, _ = folder
    (data / "warehouse.duckdb").unlink()
    index = sorted((data / "outbox" / "notifications" / "index").glob("*.parquet"))[0]
    index.unlink()
    code, _, err = cli("--data-dir", str(data), "recover-ledger")
    assert code == 1 and len(err) == 1 and index.name in err[0] and "index" in err[0]
    assert not (data / "warehouse.duckdb").exists()


def test_a_successful_run_leaves_owner_only_analyst_exports(folder):
    data, _ = folder
    exports = data / "exports"
    # large append-mostly tables in partitions (redress/warehouse/exports.py), the rest one file each
    assert sorted(p.name for p in exports.iterdir()) == sorted(
        [f"{t}.parquet" for t in ("batches", "claims", "customers", "entitlements", "ingested_files", "runs")]
        + ["ledger", "non_member_exposures", "notifications", "quarantine", "review", "scope_exposures",
           ".fingerprints.json"])
    for path in exports.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600)
    ledger = pl.read_parquet(exports / "ledger" / "*.parquet")
    assert ledger.sort("payment_id").select(
        "payment_id", "customer_id", "amount", "rail", "batch_id", "attempt", "status").rows() == q(data, LEDGER)
    runs = q(data, "SELECT DISTINCT run_id FROM ledger ORDER BY 1")
    assert sorted(p.stem for p in (exports / "ledger").iterdir()) == [r for (r,) in runs]
    # the export of runs is written after the run is recorded: it shows the run succeeded
    assert pl.read_parquet(exports / "runs.parquet")["outcome"].to_list() == ["succeeded", "succeeded"]


def test_the_same_inputs_give_the_same_export_bytes(folder):
    data, _ = folder
    ledger = sorted((data / "exports" / "ledger").iterdir())
    before = {p.name: (p.read_bytes(), p.stat().st_ino) for p in ledger}
    run(data, 3)
    # nothing new paid: the same files, not even written again
    assert {p.name: (p.read_bytes(), p.stat().st_ino) for p in sorted((data / "exports" / "ledger").iterdir())} == before


def test_recovery_refuses_while_a_batch_folder_people_were_told_of_is_missing(folder, cli):
    """Finance moved a batch folder out of the outbox and the warehouse was lost: the
    notifications still say those people are paid, so recovery refuses (a run after it
    would pay them again) until the folder is back."""
    data, _ = folder
    (data / "warehouse.duckdb").unlink()
    batches = data / "outbox" / "batches"
    voucher = sorted(p for p in batches.iterdir() if "-voucher-" in p.name)[0]
    moved = data.parent / "finance-copy" / voucher.name
    shutil.move(voucher, moved)
    code, _, err = cli("--data-dir", str(data), "recover-ledger")
    assert code == 1 and len(err) == 1
    assert "were told of a payment" in err[0] and "put finance's copy back" in err[0]
    assert q(data, "SELECT count(*) FROM ledger") == [(0,)]  # rolled back: nothing restored
    shutil.move(moved, voucher)
    code, out, _ = cli("--data-dir", str(data), "recover-ledger")
    assert code == 0 and "restored" in out
    assert q(data, f"SELECT count(*) > 0 FROM ledger WHERE batch_id = '{voucher.name}'") == [(True,)]


def test_folders_and_dot_files_that_are_not_batches_block_nothing(folder, cli):
    data, _ = folder
    batches = data / "outbox" / "batches"
    (batches / "archive").mkdir()
    (batches / "archive" / "old.csv").write_text("x\n")
    (sorted(batches.iterdir())[0] / ".DS_Store").write_bytes(b"\0\1")
    summary = run(data, 3)  # the warehouse is intact: a run is not refused
    assert summary["disburse"]["payments"] == 0
    (data / "warehouse.duckdb").unlink()
    code, out, err = cli("--data-dir", str(data), "recover-ledger")
    assert code == 0 and err == [] and "restored" in out
    assert "archive" not in {r[0] for r in q(data, "SELECT batch_id FROM batches")}


def test_the_suggested_recovery_command_is_quoted_for_a_shell(folder, cli):
    data, _ = folder
    odd = data.parent / "dollar $(touch PWNED) `id` folder"
    shutil.move(data, odd)
    (odd / "warehouse.duckdb").unlink()
    code, _, err = cli("--data-dir", str(odd), "run", "--run-date", "2025-12-02")
    assert code == 1 and len(err) == 1
    assert "--data-dir '" in err[0] and "$(touch PWNED) `id` folder' recover-ledger" in err[0]


def test_verify_finds_an_edited_bank_file_and_a_ledger_edited_by_hand_and_no_run_pays_from_it(folder, cli):
    """Found by the audit review: a pain.001.xml edited after release (a creditor's
    account changed) went unseen by every command, and a ledger row deleted by hand
    let the next run pay that customer again, nothing saying so. `redress verify`
    names both; a run, and an approval, refuse to plan or release from such a ledger."""
    data, _ = folder
    code, out, err = cli("--data-dir", str(data), "verify")
    batches = sorted(p.name for p in (data / "outbox" / "batches").iterdir())
    (payments, amount), = q(data, "SELECT count(*), sum(amount) FROM ledger")
    assert (code, err) == (0, []) and out.startswith(f"{len(batches)} batches, {payments:,} payments, {amount:,} in "
                                                     "minor units: every batch folder matches its manifest")
    bank = next(b for b in batches if "-bank_transfer-" in b)
    xml = data / "outbox" / "batches" / bank / "pain.001.xml"
    xml.write_text(xml.read_text(encoding="utf-8").replace("<Othr><Id>", "<Othr><Id>9", 1), encoding="utf-8")
    (voucher, payment_id, paid), = q(data, """SELECT batch_id, payment_id, amount FROM ledger
                                          WHERE rail = 'voucher' ORDER BY payment_id LIMIT 1""")
    (count, total), = q(data, f"SELECT item_count, control_sum FROM batches WHERE batch_id = '{voucher}'")
    # and a bank file edited with its manifest rewritten to match: the manifest is not the one released
    other = [b for b in batches if "-bank_transfer-" in b][1] if len([b for b in batches if "-bank_transfer-" in b]) > 1 \
        else next(b for b in batches if "-claim-" in b)
    edited = data / "outbox" / "batches" / other / "payments.csv"
    edited.write_bytes(edited.read_bytes() + b"\n")
    manifest = json.loads((data / "outbox" / "batches" / other / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["payments.csv"] = hashlib.sha256(edited.read_bytes()).hexdigest()
    (data / "outbox" / "batches" / other / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    # and a copy of a batch under another batch's name: no batch redress released, not one to recover
    copied = bank[:-4] + "0099"
    shutil.copytree(data / "outbox" / "batches" / bank, data / "outbox" / "batches" / copied)
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("DELETE FROM ledger WHERE payment_id = ?", [payment_id])
    code, out, err = cli("--data-dir", str(data), "verify")
    # the ledger against every batch first, then each batch folder in batch id order, then folders not held
    in_order = sorted([(bank, f"outbox/batches/{bank}/pain.001.xml: SHA-256 differs from the manifest"),
                       (other, f"outbox/batches/{other}/manifest.json: not the manifest released (its SHA-256 differs "
                               "from the one the warehouse kept)"),
                       (voucher, f"batch {voucher}: 1 payment in the ledger differs from its payments.parquet "
                                 "(customer, amount, or a payment one holds and the other not)")])
    assert code == 1 and err == [] and out.splitlines() == [
        f"batch {voucher}: the ledger holds {count - 1:,} payments for {total - paid:,}, the batches table "
        f"{count:,} payments for {total:,} (minor units)",
        *(line for _, line in in_order),
        f"outbox/batches/{copied}: manifest names batch {bank}; and the warehouse holds no such batch: not a batch "
        "redress released",
        f"5 problems in {len(batches)} batches, {payments:,} payments, {amount:,} in minor units"]
    code, out, err = cli("--data-dir", str(data), "verify", voucher)  # one batch: its own problems only
    assert code == 1 and len(out.splitlines()) == 3 and out.startswith(f"batch {voucher}: the ledger holds")
    shutil.rmtree(data / "outbox" / "batches" / copied)  # else the run refuses an outbox it does not know, first
    ledger_before, files_before = q(data, LEDGER), outbox_files(data)
    code, _, err = cli("--data-dir", str(data), "run", "--run-date", "2025-12-03")
    assert code == 1 and len(err) == 1 and err[0].startswith(
        f"redress: the ledger does not match the batches it was released in: batch {voucher}: the ledger holds")
    assert "nothing was planned or released" in err[0] and "recover-ledger" in err[0]
    assert q(data, LEDGER) == ledger_before and outbox_files(data) == files_before  # nobody paid again
    # the fix review's case: the row deleted and its batch's totals lowered to agree; the manifest still holds
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("UPDATE batches SET item_count = item_count - 1, control_sum = control_sum - ? WHERE batch_id = ?",
                    [paid, voucher])
    from redress.outbox.audit import batches_unlike_manifests

    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert f"batch {voucher}: the batches table holds {count - 1:,} payments for {total - paid:,}, its " \
               f"manifest.json {count:,} payments for {total:,} (minor units)" in batches_unlike_manifests(con, data)
    code, _, err = cli("--data-dir", str(data), "run", "--run-date", "2025-12-03")
    assert code == 1 and err[0].startswith("redress: the ledger does not match the batches it was released in: ")
    assert q(data, LEDGER) == ledger_before and outbox_files(data) == files_before
    code, _, err = cli("--data-dir", str(data), "verify", "no-such-batch")
    assert code == 1 and err == ["redress: the warehouse holds no batch 'no-such-batch': give a batch id of "
                                 "outbox/batches/"]


def test_a_run_says_which_released_money_has_no_batch_folder_in_the_outbox(folder, cli):
    """Found by the recovery review: a released batch folder deleted (or the outbox
    restored from an older copy), and every run went on without a word, its payments
    `issued` in no bank file. A run still pays everyone else, and says how many batches,
    payments and won have no folder, on its disburse line and in summary.md."""
    data, _ = folder
    gone = sorted(p.name for p in (data / "outbox" / "batches").iterdir() if "-voucher-" in p.name)[:2]
    manifests = [json.loads((data / "outbox" / "batches" / b / "manifest.json").read_text()) for b in gone]
    payments, amount = sum(m["item_count"] for m in manifests), sum(m["control_sum"] for m in manifests)
    for batch_id in gone:
        shutil.rmtree(data / "outbox" / "batches" / batch_id)
    ledger_before = q(data, LEDGER)
    code, out, err = cli("--data-dir", str(data), "run", "--run-date", "2025-12-03")
    assert code == 0, err
    line = [x for x in out.splitlines() if x.startswith("disburse")][-1]  # its progress, then its end
    assert f"2 released batch folders gone from the outbox ({amount:,} KRW; see summary.md)" in line
    (run_id,), = q(data, "SELECT max(run_id) FROM runs")
    page = (data / "reports" / run_id / "summary.md").read_text(encoding="utf-8")
    assert (f"**Released batch folders gone from the outbox**: 2 batches released before this run, {payments:,} "
            f"payments and {amount:,} KRW that the ledger holds as released (paid out, or held on claim), have no folder "
            "in `outbox/batches`") in page
    assert q(data, LEDGER) == ledger_before  # nobody paid again, nothing new owed
