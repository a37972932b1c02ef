"""Approval before release (SPEC "Approval before release", issue 12 section 2), end to
end with the shipped policy (`require_approval = true`): a run stops with its plan and
nothing reaches the ledger, the outbox or anyone's phone; `redress approve` releases
exactly the plan, once, whatever kill comes in between; rejected, superseded and expired
plans are refused in one line.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.cli import main
from flows.remediation import remediation
from redress.generate import generate
from redress.policy import DEFAULT_POLICY  # the shipped policy: require_approval = true
from redress.runtime.faults import KILLED_EXIT_CODE
from redress.warehouse.runs import run_context
from redress import escape
from tasks.report import note_decision, refresh_report_page
from paid_once import assert_paid_exactly_once, redress_killed_at

ACCOUNT = pwd.getpwuid(os.getuid()).pw_name  # the account these tests run as, recorded with a decision
RUN_ID = "R20251201-001"


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def cli(*args) -> tuple[int, str, list[str]]:
    """redress in this process, on the session's Prefect test server: (exit code,
    stdout, stderr lines)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue().splitlines()


def outbox(data: Path) -> list[str]:
    folder = data / "outbox"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def released_payments(data: Path) -> pl.DataFrame:
    files = sorted((data / "outbox" / "batches").glob("*/payments.parquet"))
    return pl.concat([pl.read_parquet(f).select("payment_id", "customer_id", "amount", "rail", "attempt")
                      for f in files]).sort("payment_id")


def planned_payments(data: Path, run_id: str) -> pl.DataFrame:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.sql("SELECT payment_id, customer_id, amount, rail, attempt FROM plan_payments "
                       "WHERE run_id = ? ORDER BY payment_id", params=[run_id]).pl()



@pytest.fixture(scope="module")
def waiting(tmp_path_factory):
    """A breach run once under the shipped policy: its plan waits."""
    data = tmp_path_factory.mktemp("approval") / "data"
    generate(data, 300, seed=12)
    summary = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    return data, summary


NOTIFY_SCRATCH = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'notify_people'"


@pytest.fixture
def copy(waiting, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(waiting[0], data)
    return data


def test_a_run_stops_with_its_plan_and_nothing_is_paid_or_told(waiting):
    data, summary = waiting
    disburse = summary["disburse"]
    assert disburse["awaiting_approval"] and disburse["payments"] > 0 and summary["notify"] is None
    assert q(data, "SELECT count(*) FROM ledger") == [(0,)] and q(data, "SELECT count(*) FROM batches") == [(0,)]
    assert q(data, "SELECT count(*) FROM notifications") == [(0,)]
    assert [p for p in outbox(data) if p not in ("batches",)] == []  # no batch, no notification file
    state, payments, amount, batches = q(data, "SELECT state, payments, amount, batches FROM plans")[0]
    assert (state, payments, amount, batches) == ("waiting", disburse["payments"], disburse["amount_krw"],
                                                   disburse["batches"])
    assert q(data, "SELECT count(*), sum(amount) FROM plan_payments") == [(payments, amount)]
    plan = (data / "reports" / RUN_ID / "plan.md").read_text()
    assert f"| {disburse['batches']:,} | {payments:,} | {amount:,} |" in plan
    assert f"redress --data-dir {data} approve {RUN_ID} --by YOUR_NAME" in plan  # pastes as it is
    assert q(data, "SELECT outcome, approved_by FROM runs") == [("succeeded", None)]
    summary_md = (data / "reports" / RUN_ID / "summary.md").read_text()
    assert "waiting for approval" in summary_md and "Nobody is told yet" in summary_md
    # the page says until when it can be decided, so it is not read as waiting after that
    (expires,), = q(data, "SELECT expires_at FROM plans")
    page = (data / "reports" / RUN_ID / "report.html").read_text(encoding="utf-8")
    assert f"It can be approved or rejected until {expires.isoformat()}; after that it expires" in page


def test_approve_releases_exactly_the_plan_once_and_records_who(copy):
    planned = planned_payments(copy, RUN_ID)
    waiting_md = (copy / "reports" / RUN_ID / "plan.md").read_text(encoding="utf-8")
    code, out, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim Treasury", "--note", "checked totals")
    assert code == 0, err
    assert f"released plan {RUN_ID}, {planned.height:,} payments" in out
    assert_frame_equal(released_payments(copy), planned)
    assert {p.name for p in (copy / "outbox" / "batches").iterdir()} == {
        r[0] for r in q(copy, "SELECT batch_id FROM plan_batches")}
    assert_paid_exactly_once(copy)
    assert q(copy, "SELECT DISTINCT run_id FROM ledger") == [(RUN_ID,)]
    (by, at, note), = q(copy, "SELECT approved_by, approved_at, approval_note FROM runs")
    assert (by, note) == ("Kim Treasury", "checked totals") and at is not None
    for manifest in (copy / "outbox" / "batches").glob("*/manifest.json"):
        doc = json.loads(manifest.read_text())
        assert (doc["approved_by"], doc["approval_note"]) == ("Kim Treasury", "checked totals")
        assert doc["approved_os_user"] == ACCOUNT  # found by review: only the name typed was recorded
        assert doc["approved_at"] == at.isoformat()
    assert q(copy, "SELECT state, decided_by, completed_by, decided_os_user FROM plans") == [
        ("approved", "Kim Treasury", "Kim Treasury", ACCOUNT)]
    page = (copy / "reports" / RUN_ID / "report.html").read_text(encoding="utf-8")
    assert f"Decided by Kim Treasury (operating-system account {ACCOUNT}) at" in page and "did not finish" not in page and "can be approved" not in page
    plan_md_after(copy, RUN_ID, waiting_md, "approved",
                  f"approved by Kim Treasury (operating-system account {ACCOUNT}) at {at.isoformat()}; its batches")
    # the people of the run are told once it is released
    told = q(copy, "SELECT count(*) FROM notifications WHERE run_id = ?", [RUN_ID])[0][0]
    assert told > 0 and (copy / "outbox" / "notifications" / f"{RUN_ID}.parquet").is_file()
    assert q(copy, NOTIFY_SCRATCH) == [(0,)]  # notify's table of the people it told is gone with it
    before = outbox(copy)
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Lee")
    assert code == 1 and len(err) == 1 and "it is approved" in err[0]
    assert outbox(copy) == before


@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_the_printed_placeholder_is_refused_as_who_decides(copy, verb):
    """plan.md prints `approve RUN_ID --by YOUR_NAME`: pasted as it is, it must not
    release the money in the name of nobody (found by review)."""
    plan = (copy / "reports" / RUN_ID / "plan.md").read_text()
    assert f"{verb} {RUN_ID} --by YOUR_NAME" in plan
    before = outbox(copy)
    for name in ("YOUR_NAME", "Your Name", "<your name>", "NAME", "your-name"):
        code, out, err = cli("--data-dir", copy, verb, RUN_ID, "--by", name)
        assert code == 1 and len(err) == 1 and "placeholder" in err[0] and "give your own name" in err[0], err
    assert outbox(copy) == before and q(copy, "SELECT state, decided_by FROM plans") == [("waiting", None)]
    assert q(copy, "SELECT approved_by FROM runs") == [(None,)]
    code, _, err = cli("--data-dir", copy, verb, RUN_ID, "--by", "Namgung Yuna")  # a name holding "name"
    assert code == 0, err
    assert q(copy, "SELECT decided_by FROM plans") == [("Namgung Yuna",)]


def test_a_plan_nothing_moved_under_is_released_without_running_its_suites_again(copy, monkeypatch):
    """The emission suites passed the plan when it was planned; with the same plan,
    entitlements, ledger, batches and policy (the same gate fingerprint), the approval
    does not run them again (their records stay as the run wrote them), nor stage the
    payments: the ledger rows come from the plan file the fingerprint read."""
    import flows.approval

    def suites_again(*args, **kwargs):
        raise AssertionError("the emission suites ran again on an unchanged plan")

    monkeypatch.setattr(flows.approval, "check_plan", suites_again)

    def staged_again(*args, **kwargs):
        raise AssertionError("the payments of an unchanged plan were staged again")

    monkeypatch.setattr(flows.approval, "stage_payments", staged_again)
    records = copy / "reports" / RUN_ID / "validations"
    before = {p.name: p.stat().st_mtime_ns for p in records.iterdir()}
    code, out, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim Treasury")
    assert code == 0, err
    assert_frame_equal(released_payments(copy), planned_payments(copy, RUN_ID))
    assert {p.name: p.stat().st_mtime_ns for p in records.iterdir()} == before


APPROVE_AND_LIST_MODULES = """
import json, sys
from flows.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "gx": "great_expectations" in sys.modules}))
"""


def test_an_approval_in_its_own_process_imports_no_great_expectations_for_an_unchanged_plan(copy):
    """`redress approve` is a process of its own: importing Great Expectations took 3 to
    4 s of it, for suites an unchanged plan does not run (redress/checks/suites.py
    imports it when a suite first runs). The pipeline's modules alone load none of it."""
    import os
    import subprocess
    import sys

    from prefect.settings import get_current_settings

    env = {**os.environ, "PREFECT_API_URL": get_current_settings().api.url}  # the session's test server
    done = subprocess.run([sys.executable, "-c", APPROVE_AND_LIST_MODULES, "--data-dir", str(copy), "approve",
                           RUN_ID, "--by", "Kim Treasury"], capture_output=True, text=True, env=env, timeout=300)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"code": 0, "gx": False}, done.stderr[-2000:]
    assert_frame_equal(released_payments(copy), planned_payments(copy, RUN_ID))
    loaded = subprocess.run([sys.executable, "-c", "import json, sys, flows.approval, tasks.disburse, tasks.validate; "
                             "print(json.dumps('great_expectations' in sys.modules))"],
                            capture_output=True, text=True, check=True)
    assert json.loads(loaded.stdout) is False


def test_a_plan_whose_entitlements_moved_is_checked_again_and_refused_in_one_line(copy):
    """Something moved under a waiting plan without a run (here an entitlement lowered
    by hand below a planned payment): the fingerprint differs, the suites run again on
    what would be released, and the ledger suite stops the approval in one line; nothing
    is paid or told and the plan still waits."""
    customer, amount = q(copy, "SELECT customer_id, amount FROM plan_payments WHERE run_id = ? "
                               "ORDER BY payment_id LIMIT 1", [RUN_ID])[0]
    with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
        con.execute("UPDATE entitlements SET amount = ? WHERE customer_id = ?", [amount - 1, customer])
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim Treasury")
    assert code == 1 and len(err) == 1, err
    assert "suite ledger failed" in err[0] and "overpays_entitlement" in err[0], err[0]
    assert q(copy, "SELECT count(*) FROM ledger") == [(0,)]
    assert q(copy, "SELECT count(*) FROM notifications") == [(0,)]
    assert q(copy, "SELECT state FROM plans") == [("waiting",)]
    assert not (copy / "outbox" / "batches").exists() or not any((copy / "outbox" / "batches").iterdir())


SHOWN = "is not the plan it showed: its stored batches differ from plan.md's days"
BANK_BATCH = "(SELECT batch_id FROM plan_payments WHERE payment_id = $p)"


@pytest.mark.parametrize("edit, said", [
    ("UPDATE plan_payments SET bank_code = '088', bank_account = '9999999999' WHERE payment_id = $p",
     ["suite ledger failed", "transfer_to_another_account"]),
    ("UPDATE plan_payments SET value_date = '2020-01-01' WHERE payment_id = $p",
     ["suite ledger failed", "payment_unlike_its_batch"]),
    ("DELETE FROM plan_payments WHERE payment_id = $p", ["suite batches failed", "item_count_mismatch"]),
    ("UPDATE plan_payments SET amount = amount - 1 WHERE payment_id = $p", ["suite batches failed", "control_sum_mismatch"]),
    # the same edit in payments and batches alike (a second review): a day unlike plan.md's
    (f"UPDATE plan_batches SET value_date = '2020-01-01' WHERE batch_id = {BANK_BATCH}; "
     "UPDATE plan_payments SET value_date = '2020-01-01' WHERE payment_id = $p", [SHOWN]),
    (f"UPDATE plan_batches SET control_sum = control_sum - 1 WHERE batch_id = {BANK_BATCH}; "
     "UPDATE plan_payments SET amount = amount - 1 WHERE payment_id = $p", [SHOWN]),
    # a batch renamed in both, its days unchanged: the id is no longer the policy's
    (f"UPDATE plan_payments SET batch_id = 'EVIL-' || batch_id WHERE batch_id = {BANK_BATCH}; "
     "UPDATE plan_batches SET batch_id = 'EVIL-' || batch_id WHERE batch_id NOT LIKE 'EVIL-%' AND rail = 'bank_transfer'",
     ["suite batches failed", "batch_id_names_another_batch"]),
], ids=["account", "value-date", "payment-deleted", "amount-lowered", "payment-and-batch-redated",
        "payment-and-batch-lowered", "batch-renamed"])
def test_a_plan_edited_by_hand_is_refused_in_one_line(copy, edit, said):
    """Found by review: plan_payments edited by hand between the run and its approval (a
    transfer's account, a value date years back, a payment deleted or lowered): the gate
    ran again (the fingerprint moved) on batches rebuilt from the edited payments, passed,
    and the bank file carried the edit. The approval now holds the stored batches to the
    days plan.md showed, stages them as planned (plan_batches), and the suites hold each
    payment to its batch and each batch to its id, and each transfer to the account the
    customer is paid to: refused, nothing is paid or told, and the plan still waits."""
    with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
        (payment,), = con.execute("SELECT payment_id FROM plan_payments WHERE run_id = ? AND rail = 'bank_transfer' "
                                  "ORDER BY payment_id LIMIT 1", [RUN_ID]).fetchall()
        for statement in edit.split("; "):
            con.execute(statement, {"p": payment} if "$p" in statement else None)
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim Treasury")
    assert code == 1 and len(err) == 1, err
    assert all(part in err[0] for part in said), err[0]
    assert q(copy, "SELECT count(*) FROM ledger") == [(0,)]
    assert q(copy, "SELECT count(*) FROM notifications") == [(0,)]
    assert q(copy, "SELECT state FROM plans") == [("waiting",)]
    assert not (copy / "outbox" / "batches").exists() or not any((copy / "outbox" / "batches").iterdir())


def test_an_approval_from_a_ledger_edited_by_hand_is_refused_in_one_line(copy):
    """Found by the audit review: the ledger edited by hand (here a row added that no
    batch holds) was paid on from; every batch's ledger rows must be its count and sum
    (redress/outbox/audit.py), or nothing is released."""
    with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
        con.execute("""INSERT INTO ledger (payment_id, customer_id, amount, currency, rail, batch_id, policy_id, run_id,
                                           attempt, status, updated_run_id)
                       VALUES ('X-1', 'C000000001', 50000, 'KRW', 'voucher', 'X-0001', 'p', 'R1', 1, 'issued', 'R1')""")
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim Treasury")
    assert code == 1 and err == [
        "redress: the ledger does not match the batches it was released in: ledger rows name batch X-0001, which "
        "the batches table does not hold (1 payment for 50,000). The warehouse was changed outside redress, and "
        "paying on from it could pay someone twice: nothing was planned or released. Restore warehouse.duckdb "
        "from a backup and run `redress recover-ledger` (it restores the batches released since from the outbox); "
        "`redress verify` lists every difference"]
    assert q(copy, "SELECT state FROM plans") == [("waiting",)]
    assert not (copy / "outbox" / "batches").exists() or not any((copy / "outbox" / "batches").iterdir())


def test_rejected_plan_is_refused_and_the_next_run_plans_afresh_with_new_batch_ids(copy):
    waiting_md = (copy / "reports" / RUN_ID / "plan.md").read_text(encoding="utf-8")
    code, out, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Park", "--note", "wrong cap")
    assert code == 0, err
    assert q(copy, "SELECT state, decided_by, note, decided_os_user FROM plans") == [
        ("rejected", "Park", "wrong cap", ACCOUNT)]
    plan_md_after(copy, RUN_ID, waiting_md, "rejected", f"rejected by Park (operating-system account {ACCOUNT}) at ")
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 1 and len(err) == 1 and "it is rejected" in err[0]
    assert outbox(copy) == [] or outbox(copy) == ["batches"]
    assert q(copy, "SELECT count(*) FROM ledger") == [(0,)]
    again = remediation(data_dir=copy, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    new_id = again["run_id"]
    assert again["disburse"]["payments"] == q(copy, "SELECT payments FROM plans WHERE run_id = ?", [RUN_ID])[0][0]
    old = {r[0] for r in q(copy, "SELECT batch_id FROM plan_batches WHERE run_id = ?", [RUN_ID])}
    new = {r[0] for r in q(copy, "SELECT batch_id FROM plan_batches WHERE run_id = ?", [new_id])}
    assert new and not old & new  # a batch id shown to finance is never given again
    assert cli("--data-dir", copy, "approve", new_id, "--by", "Kim")[0] == 0
    assert_paid_exactly_once(copy)


def plan_md_after(data: Path, run_id: str, waiting_text: str, state: str, decision: str) -> None:
    """plan.md written again once decided: its state and what became of it, no expiry and
    no commands to paste (approving again is refused), and every figure as it was shown."""
    text = (data / "reports" / run_id / "plan.md").read_text(encoding="utf-8")
    head = text.splitlines()[2]
    assert head.startswith(f"Policy coupang-2025-v1. State: **{state}**: {decision}") and head.endswith("."), head
    assert "expires at" not in text and "--by" not in text and "To release exactly" not in text
    tables = [line for line in text.splitlines() if line.startswith("|")]
    assert tables and tables == [line for line in waiting_text.splitlines() if line.startswith("|")]
    # the run's summary says so at its top, once, and keeps the rest as the run stopped
    summary = (data / "reports" / run_id / "summary.md").read_text(encoding="utf-8").splitlines()
    assert summary[2].startswith("Run date ") and summary[3] == "" and summary[5] == ""
    assert summary[4].startswith(f"**Since this run: its plan is {state}**: {escape.markdown(decision)}"), summary[4]
    assert sum("Since this run" in line for line in summary) == 1


def test_an_approval_that_must_be_refused_is_refused_before_a_prefect_server_starts(copy, monkeypatch):
    """Found by review: a superseded plan, or the placeholder pasted as the decider, was
    refused only after seconds of starting a temporary Prefect server."""
    import redress.runtime.prefect_server as prefect_server

    def no_server(*args, **kwargs):
        raise AssertionError("a Prefect server was started for an approval that is refused")

    monkeypatch.setattr(prefect_server, "temporary_server", no_server)
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "YOUR_NAME")
    assert code == 1 and len(err) == 1 and "placeholder" in err[0]
    code, _, err = cli("--data-dir", copy, "approve", "R20251201-009", "--by", "Kim Treasury")
    assert code == 1 and err == [f"redress: no run R20251201-009 in {copy}: nothing to decide"]
    code, _, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Kim Treasury")  # no server: a plain command
    assert code == 0, err
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim Treasury")
    assert code == 1 and len(err) == 1 and f"cannot approve the plan of run {RUN_ID}: it is rejected" in err[0]
    assert q(copy, "SELECT state FROM plans") == [("rejected",)] and q(copy, "SELECT count(*) FROM ledger") == [(0,)]


def test_a_decision_note_replaces_the_one_before(tmp_path):
    summary = tmp_path / "summary.md"
    original = "# redress run R1\n\nRun date 2025-12-01, policy p (file p.toml).\n\n## Files read\n\nNo new files.\n"
    summary.write_text(original, encoding="utf-8")
    note_decision(summary, "superseded", "superseded by run R2 at 2025-12-02T00:00:00+00:00")
    note_decision(summary, "approved", "approved by <b>Kim_x</b> at 2025-12-03; its batches are released")
    text = summary.read_text(encoding="utf-8")
    assert text.count("Since this run") == 1 and "superseded" not in text
    assert "approved by &lt;b&gt;Kim_x&lt;/b&gt;" in text and "<b>" not in text  # the decider's name is input
    lines = text.split("\n")
    assert lines[:4] == original.split("\n")[:4] and lines[6:] == original.split("\n")[4:]


def page_state(data: Path, run_id: str) -> str:
    """The plan's state as the run's report.html shows it (report.html.j2's approval section)."""
    page = (data / "reports" / run_id / "report.html").read_text(encoding="utf-8")
    return page.split("Approval: <strong>", 1)[1].split("</strong>", 1)[0]


def test_a_later_run_supersedes_a_waiting_plan_which_cannot_be_approved(copy):
    assert page_state(copy, RUN_ID) == "waiting"
    waiting_md = (copy / "reports" / RUN_ID / "plan.md").read_text(encoding="utf-8")
    # a bank's result for a payment of the plan, which the plan, superseded, never sent
    ((planned,),) = q(copy, "SELECT min(payment_id) FROM plan_payments WHERE run_id = ? AND rail = 'bank_transfer'",
                      [RUN_ID])
    (copy / "inbox" / "returns").mkdir(parents=True, exist_ok=True)
    (copy / "inbox" / "returns" / "results.csv").write_text(f"payment_id,status,reason\n{planned},returned,closed\n",
                                                          encoding="utf-8")
    later = remediation(data_dir=copy, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert q(copy, "SELECT reason, detail FROM quarantine WHERE kind = 'returns'") == [
        ("unknown_payment_id", f"planned by run {RUN_ID}, whose plan was superseded: never released, so no bank was "
                               "sent it")]
    plan_md_after(copy, RUN_ID, waiting_md, "superseded", f"superseded by run {later['run_id']} at ")
    # the later run says so, on the console and in its summary (found by the lifecycle review: nothing did)
    assert (f"The plan of run {RUN_ID}, which was waiting for approval, is superseded by this run: nothing of it "
            "is paid and approving it is refused; this run plans what is owed afresh.") in later["report"]
    assert later["report"].rstrip("\n") == (copy / "reports" / later["run_id"] / "summary.md").read_text("utf-8").rstrip("\n")
    assert q(copy, "SELECT run_id, state, decided_by FROM plans ORDER BY run_id") == [
        (RUN_ID, "superseded", later["run_id"]), (later["run_id"], "waiting", None)]
    # the earlier run's page says so, not that its plan still waits
    assert (page_state(copy, RUN_ID), page_state(copy, later["run_id"])) == ("superseded", "waiting")
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 1 and len(err) == 1 and "superseded" in err[0]
    assert q(copy, "SELECT count(*) FROM ledger") == [(0,)]
    assert cli("--data-dir", copy, "approve", later["run_id"], "--by", "Kim")[0] == 0
    assert_paid_exactly_once(copy)
    assert q(copy, "SELECT DISTINCT run_id FROM ledger") == [(later["run_id"],)]


def _backed_up(data: Path) -> Path:
    """A copy of the warehouse as it is now, as an operator's backup."""
    backup = data.parent / "backup"
    backup.mkdir()
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        if (data / name).exists():
            shutil.copy2(data / name, backup / name)
    return backup


def _restored(data: Path, backup: Path) -> None:
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        (data / name).unlink(missing_ok=True)
        if (backup / name).exists():
            shutil.copy2(backup / name, data / name)


def test_a_plan_an_older_warehouse_still_holds_waiting_is_not_released_after_a_restore(copy):
    """Found by the recovery review: run R1 planned (its plan waits), a second run
    superseded it and was approved; then the warehouse was restored from a backup taken
    before, in which R1 still waits. Approving R1 released it: 39 people paid twice. Now
    the approval is refused in one line, as a run is, before anything is written;
    recover-ledger restores the second run's batches and supersedes R1, which was made
    without them; the next run pays nobody twice."""
    backup = _backed_up(copy)
    later = remediation(data_dir=copy, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    assert cli("--data-dir", copy, "approve", later["run_id"], "--by", "Kim Finance")[0] == 0
    released = outbox(copy)
    _restored(copy, backup)
    assert q(copy, "SELECT run_id, state FROM plans") == [(RUN_ID, "waiting")]
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Lee Finance")
    assert code == 1 and len(err) == 1, err
    assert "that the warehouse does not know" in err[0] and "nothing was released" in err[0]
    assert "recover-ledger" in err[0] and outbox(copy) == released
    code, out, err = cli("--data-dir", copy, "recover-ledger")
    assert code == 0, err
    assert f"plan {RUN_ID} superseded (made without those batches: run again to plan afresh)" in out
    assert q(copy, "SELECT run_id, state, decided_by FROM plans") == [(RUN_ID, "superseded", later["run_id"])]
    # the restored run keeps who approved it, though the older warehouse held no plan of it (fix review)
    assert q(copy, "SELECT run_id, outcome, approved_by FROM runs ORDER BY 1") == [
        (RUN_ID, "succeeded", None), (later["run_id"], "recovered", "Kim Finance")]
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Lee Finance")
    assert code == 1 and "superseded" in err[0] and outbox(copy) == released
    nxt = remediation(data_dir=copy, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert nxt["disburse"]["payments"] == 0
    assert page_state(copy, RUN_ID) == "superseded"
    assert_paid_exactly_once(copy)


def test_recover_ledger_records_a_plan_an_older_warehouse_holds_waiting_as_approved_as_released(copy):
    """Found by the recovery review: the warehouse restored from a backup taken before
    R1's approval, recover-ledger restored R1's batches but left its plan waiting, and a
    rejection was then accepted: plan.md said nothing of it was paid, the ledger 1.95 M
    KRW. The plan is now approved as its manifests say (who, when, the note), its last
    steps left to the next run, and a rejection is refused."""
    backup = _backed_up(copy)
    assert cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim Finance", "--note", "checked")[0] == 0
    (at,), = q(copy, "SELECT approved_at FROM runs")
    _restored(copy, backup)
    released = outbox(copy)
    # nor rejected, which would record "nothing of it is paid" beside the paid batches (fix review)
    code, _, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Lee Finance")
    assert code == 1 and len(err) == 1 and "nothing was rejected" in err[0] and "recover-ledger" in err[0], err
    assert q(copy, "SELECT state FROM plans") == [("waiting",)] and outbox(copy) == released
    code, out, err = cli("--data-dir", copy, "recover-ledger")
    assert code == 0, err
    assert f"plan {RUN_ID} approved, as its batches' manifests say" in out and "superseded" not in out
    assert q(copy, "SELECT state, decided_by, decided_at, note, decided_os_user, completed_at FROM plans") == [
        ("approved", "Kim Finance", at, "checked", ACCOUNT, None)]
    assert q(copy, "SELECT approved_by, approved_at, approval_note FROM runs") == [("Kim Finance", at, "checked")]
    code, _, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Lee Finance")
    assert code == 1 and len(err) == 1 and "approved" in err[0], err
    nxt = remediation(data_dir=copy, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert nxt["disburse"]["payments"] == 0
    assert page_state(copy, RUN_ID) == "approved"
    assert q(copy, "SELECT completed_at IS NOT NULL FROM plans") == [(True,)]
    assert_paid_exactly_once(copy)


def test_a_plan_past_its_timeout_expires_and_is_refused(copy, monkeypatch):
    monkeypatch.setenv("REDRESS_APPROVAL_TIMEOUT_SECONDS", "0")
    later = remediation(data_dir=copy, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    monkeypatch.delenv("REDRESS_APPROVAL_TIMEOUT_SECONDS")
    code, _, err = cli("--data-dir", copy, "approve", later["run_id"], "--by", "Kim")
    assert code == 1 and len(err) == 1 and "it is expired" in err[0]
    assert q(copy, "SELECT state, completed_at IS NOT NULL FROM plans WHERE run_id = ?", [later["run_id"]]) == [
        ("expired", True)]  # its page shows it: no later run writes it again
    assert page_state(copy, later["run_id"]) == "expired"
    text = (copy / "reports" / later["run_id"] / "plan.md").read_text(encoding="utf-8")
    (expires,), = q(copy, "SELECT expires_at FROM plans WHERE run_id = ?", [later["run_id"]])
    assert f"State: **expired**: expired at {expires.isoformat()}, neither" in text and "--by" not in text
    assert q(copy, "SELECT count(*) FROM ledger") == [(0,)]


def test_a_run_that_is_not_there_or_has_no_plan_is_refused_in_one_line(copy, monkeypatch):
    code, _, err = cli("--data-dir", copy, "approve", "R20990101-001", "--by", "Kim")
    assert code == 1 and len(err) == 1 and "no run R20990101-001" in err[0]
    code, _, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "  ")
    assert code == 1 and len(err) == 1 and "--by" in err[0]
    # a crash test's misspelt step is refused by reject too, not silently never reached
    monkeypatch.setenv("REDRESS_FAIL_AT", "reject:decidde")
    code, _, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Park")
    assert code == 1 and len(err) == 1 and "REDRESS_FAIL_AT='reject:decidde' names no step" in err[0]
    assert q(copy, "SELECT state FROM plans") == [("waiting",)]
    monkeypatch.delenv("REDRESS_FAIL_AT")
    # a run row edited by hand so that it no longer names its policy file: one line, not a traceback
    for parameters in ("{}", "[" * 100_000):  # the second nests too deep for the JSON reader
        with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
            con.execute("UPDATE runs SET parameters = ? WHERE run_id = ?", [parameters, RUN_ID])
        code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
        assert code == 1 and err == [f"redress: run {RUN_ID}'s row in the warehouse does not name its policy file "
                                     "(runs.parameters must be JSON with a `policy` path): was it edited by hand?"]
    assert q(copy, "SELECT state FROM plans") == [("waiting",)] and q(copy, "SELECT count(*) FROM ledger") == [(0,)]



RELEASE_STEPS = ["disburse:folder-written", "disburse:folders-written", "disburse:committed",
                 "disburse:published-one", "notify:files-written", "notify:committed", "approve:report-written",
                 "approve:exports-written"]


WHO = "SELECT person_key, channel, reference_code FROM notifications ORDER BY person_key"


@pytest.fixture(scope="module")
def told_straight(waiting, tmp_path_factory) -> list[tuple]:
    """Whom the waiting plan's approval tells, approved without a kill (WHO's rows)."""
    data = tmp_path_factory.mktemp("straight") / "data"
    shutil.copytree(waiting[0], data)
    assert cli("--data-dir", data, "approve", RUN_ID, "--by", "Kim")[0] == 0
    return q(data, WHO)


@pytest.mark.parametrize("step", RELEASE_STEPS)
def test_an_approval_killed_at_any_release_step_then_approved_again_pays_once(copy, step, told_straight):
    planned = planned_payments(copy, RUN_ID)
    killed = redress_killed_at(step, copy, "approve", RUN_ID, "--by", "Kim")
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    assert q(copy, "SELECT completed_at IS NULL FROM plans") == [(True,)]  # never recorded as done
    code, out, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Lee")  # someone else finishes it
    assert code == 0, err
    committed = step != "disburse:folder-written" and step != "disburse:folders-written"
    if committed:  # released by the killed process: approving again finishes it (folders, notify, page, exports)
        assert "was already released by an approval that did not finish, now finished" in out
        told_before = step in ("notify:committed", "approve:report-written", "approve:exports-written")
        assert ("its people had been told" in out) == told_before, out
    # Either way the run's people are told once, the page and exports show the release,
    # and only then is a third approve refused.
    assert q(copy, "SELECT count(*) > 0 FROM notifications WHERE run_id = ?", [RUN_ID]) == [(True,)]
    assert q(copy, WHO) == told_straight and len(told_straight) > 100
    assert page_state(copy, RUN_ID) == "approved"
    # Kim's decision if it committed, finished by Lee's command, and the page says both;
    # else Lee's approval was the first to release it
    decider = "Kim" if committed else "Lee"
    assert q(copy, "SELECT decided_by, completed_by FROM plans") == [(decider, "Lee")]
    page = (copy / "reports" / RUN_ID / "report.html").read_text(encoding="utf-8")
    assert f"Decided by {decider} (operating-system account {ACCOUNT}) at" in page
    assert ("The decision did not finish at first; Lee gave it again to finish it." in page) == committed
    assert {json.loads(m.read_text())["approved_by"] for m in (copy / "outbox" / "batches").glob("*/manifest.json")
            } == {decider}
    exported = pl.read_parquet(copy / "exports" / "ledger" / f"{RUN_ID}.parquet", glob=False)
    assert exported.height == planned.height
    assert q(copy, "SELECT state, completed_at IS NOT NULL FROM plans") == [("approved", True)]
    again, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert again == 1 and len(err) == 1 and "it is approved" in err[0]
    assert_paid_exactly_once(copy)
    assert_frame_equal(released_payments(copy), planned)
    assert q(copy, NOTIFY_SCRATCH) == [(0,)]
    assert not (copy / "work").exists()  # no scratch file (people's contacts) left behind


def test_an_approval_whose_page_cannot_be_written_says_so_and_is_finished_by_approving_again(copy):
    page = copy / "reports" / RUN_ID / "report.html"
    page.unlink()
    page.mkdir()  # report.html cannot be written: a folder stands in its way
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 1 and len(err) == 1, err
    refused = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Park")[2]
    assert len(refused) == 1 and "it is approved" in refused[0] and "`approve` it again to finish it" in refused[0]
    assert f"plan {RUN_ID} is released and its people told, but its report page could not be written: " in err[0]
    assert "a folder where a file should be" in err[0] and f"approve {RUN_ID} --by Kim` again finishes it" in err[0]
    assert q(copy, "SELECT state, completed_at IS NULL FROM plans") == [("approved", True)]
    assert_paid_exactly_once(copy)
    page.rmdir()
    code, out, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 0, err
    assert "now finished" in out and "its people had been told" in out
    assert page_state(copy, RUN_ID) == "approved"
    assert q(copy, "SELECT completed_at IS NOT NULL FROM plans") == [(True,)]
    assert cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")[0] == 1


def test_an_approval_with_no_reports_folder_says_to_mount_or_create_it(copy):
    """Found by the recovery review: reports/ deleted (or a link to a share not mounted:
    tests/reports/test_report_task.py), the approval said "FileNotFoundError" and to
    approve again, which failed the same way for ever."""
    shutil.rmtree(copy / "reports")
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 1 and len(err) == 1, err
    assert ("its report page could not be written: the data folder's reports/ is not there (deleted, or a share "
            "not mounted?): mount it or create it") in err[0]
    assert_paid_exactly_once(copy)
    (copy / "reports").mkdir()
    code, out, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 0 and "now finished" in out, err


def edit_the_runs_policy(data: Path) -> tuple[Path, bytes]:
    """Point the run at a copy of its policy file in `data`, then edit the copy (a
    comment added): (the copy, its bytes as the run had them) to restore it."""
    policy = Path(q(data, "SELECT json_extract_string(parameters, '$.policy') FROM runs")[0][0])
    moved = data / "policy.toml"
    shutil.copy(policy, moved)
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:  # the run's policy is a copy we may edit
        con.execute("UPDATE runs SET parameters = json_object('policy', ?)::VARCHAR", [str(moved)])
    original = moved.read_bytes()
    moved.write_bytes(original + b"\n# edited after the run\n")
    return moved, original


def test_an_approval_finished_after_its_report_folder_was_deleted_says_it_wrote_no_page(copy):
    killed = redress_killed_at("approve:report-written", copy, "approve", RUN_ID, "--by", "Kim")
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    shutil.rmtree(copy / "reports" / RUN_ID)
    code, out, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 0, err
    assert out.rstrip().endswith("its people had been told, its exports written again; no report page: its report "
                                 "folder is gone"), out
    assert not (copy / "reports" / RUN_ID).exists()  # not made again with half a page
    assert q(copy, "SELECT state, completed_at IS NOT NULL FROM plans") == [("approved", True)]
    assert_paid_exactly_once(copy)


def suites_said(data: Path, run_id: str) -> str:
    """What the data-quality section of the run's report.html says about its suite runs."""
    page = (data / "reports" / run_id / "report.html").read_text(encoding="utf-8")
    return page.split('<section id="data-quality">', 1)[1].split("</section>", 1)[0]


def remove_records(folder: Path, damage: str) -> int:
    """Damage the run's suite records as a person might; how many are then missing."""
    paths = sorted(folder.glob("*.json"))
    if damage == "folder removed":
        shutil.rmtree(folder)
        return len(paths)
    if damage == "folder emptied":
        for path in paths:
            path.unlink()
        return len(paths)
    if damage == "a file in its place":
        shutil.rmtree(folder)
        folder.write_text("not a folder")
        return len(paths)
    if damage == "two removed":
        paths[0].unlink(), paths[-1].unlink()
        return 2
    if damage == "one cut short":
        paths[1].write_text('{"label": ')
        return 1
    if damage == "one not an object":
        paths[1].write_text("[1, 2]")
        return 1
    if damage == "one not a suite record":
        paths[1].write_text('{"label": "ledger"}')
        return 1
    if damage == "a folder in one's place":
        paths[1].unlink(), paths[1].mkdir()
        return 1
    if damage == "a broken link in one's place":
        paths[1].unlink(), paths[1].symlink_to(folder / "nowhere")
        return 1
    if damage == "a copy of one added, two removed":
        shutil.copy(paths[1], folder / "zz_copy.json")
        paths[0].unlink(), paths[-1].unlink()
        return 2
    if damage == "another run's record added":
        record = json.loads(paths[0].read_text())
        (folder / "zz_other.json").write_text(json.dumps(dict(record, label="claims_staging-other.csv")))
        return 0
    return 0


@pytest.mark.parametrize("damage", ["none", "folder removed", "folder emptied", "a file in its place",
                                    "two removed", "one cut short", "one not an object", "one not a suite record",
                                    "a folder in one's place", "a broken link in one's place",
                                    "a copy of one added, two removed", "another run's record added"])
def test_a_page_written_again_lists_the_runs_suites_or_says_which_records_are_gone(copy, damage):
    """A closed plan's page, written again, shows the suite runs the run recorded; when
    records were removed or spoilt since, it says how many, never that no suite ran,
    and a spoilt record never keeps the decision from finishing."""
    folder = copy / "reports" / RUN_ID / "validations"
    records = len(list(folder.glob("*.json")))
    assert records >= 5 and f"{records} suite runs: " in suites_said(copy, RUN_ID)  # as the run wrote it
    (counts,), = q(copy, "SELECT counts FROM runs WHERE run_id = ?", [RUN_ID])
    assert len(json.loads(counts)["suite_records"]) == records  # what the page compares against
    missing = remove_records(folder, damage)
    code, out, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Park")
    assert code == 0, err
    assert page_state(copy, RUN_ID) == "rejected"
    said = suites_said(copy, RUN_ID)
    assert "No suite ran" not in said
    if missing == records:
        assert f"This run's suite records ({records}) are no longer in the folder validations/" in said
        assert "gone from its folder" in said  # the chart's sentence
        assert "suite runs: " not in said
    elif missing:
        assert f"{records - missing} suite runs: " in said
        verb = "is" if missing == 1 else "are"
        assert f"{missing} of the {records} suite records this run wrote {verb} no longer in the folder" in said
    else:
        assert f"{records} suite runs: " in said and "no longer" not in said
    other = "1 other record in the folder validations/, not among those this run wrote, is left out."
    assert (other in said) == (damage == "another run's record added") and "claims_staging-other" not in said
    if damage == "folder removed":
        assert not folder.exists()  # never made again, empty


def test_an_approval_that_checks_its_plan_again_after_the_records_were_removed_counts_only_its_own(
        copy, monkeypatch):
    """The approval runs the emission suites again when something moved under the plan,
    writing validations/ afresh with only their records: the page lists those and says
    how many of the run's own are gone, rather than a short list read as the whole run."""
    import flows.approval

    folder = copy / "reports" / RUN_ID / "validations"
    (counts,), = q(copy, "SELECT counts FROM runs WHERE run_id = ?", [RUN_ID])
    recorded = set(json.loads(counts)["suite_records"])
    shutil.rmtree(folder)
    monkeypatch.setattr(flows.approval, "gate_fingerprint", lambda *a, **k: "moved")
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 0, err
    again = {json.loads(p.read_text())["label"] for p in folder.glob("*.json")}
    assert again and again < recorded  # the emission suites only
    said = suites_said(copy, RUN_ID)
    assert f"{len(again)} suite runs: " in said
    gone = len(recorded - again)
    assert (f"{gone} of the {len(recorded)} suite records this run wrote {'is' if gone == 1 else 'are'} no longer "
            "in the folder validations/") in said
    assert_paid_exactly_once(copy)


@pytest.mark.parametrize("damage", ["folder removed", "one cut short"])
def test_a_page_written_again_for_a_run_of_an_earlier_version_says_its_removed_records_are_gone(copy, damage):
    """A run whose row does not list its suite records (an earlier version, a run killed
    before its end): none found is all removed, since a run with a plan ran its suites;
    a spoilt one is counted."""
    with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
        con.execute("UPDATE runs SET counts = json_object('validate', counts->'validate', 'disburse', "
                    "counts->'disburse') WHERE run_id = ?", [RUN_ID])
    folder = copy / "reports" / RUN_ID / "validations"
    records = len(list(folder.glob("*.json")))
    remove_records(folder, damage)
    assert cli("--data-dir", copy, "reject", RUN_ID, "--by", "Park")[0] == 0
    said = suites_said(copy, RUN_ID)
    assert "No suite ran" not in said
    if damage == "folder removed":
        assert "This run's suite records are no longer in the folder validations/" in said
        assert "suite runs: " not in said
    else:
        assert f"{records - 1} suite runs: " in said
        assert ("1 file in the folder validations/ beside this page can no longer be read as suite records and is "
                "left out; records removed since the run cannot be counted") in said


@pytest.mark.parametrize("damage", ["edited", "moved away"])
def test_an_approval_whose_policy_file_changed_or_moved_says_how_to_go_on(copy, damage):
    """Found by the recovery review: the data folder (and the policy in it) moved, and
    `approve` said only "policy file not found"; it has no --policy to give."""
    moved, _ = edit_the_runs_policy(copy)
    if damage == "moved away":
        moved.rename(copy / "elsewhere.toml")
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 1 and len(err) == 1, err
    said = (f"policy file not found: {moved}" if damage == "moved away" else
            f"policy policy.toml changed since run {RUN_ID} started")
    assert said in err[0] and "put the file back as the run read it" in err[0], err
    assert err[0].endswith("or run again to plan afresh (the new run supersedes this plan)")
    assert q(copy, "SELECT state FROM plans") == [("waiting",)] and q(copy, "SELECT count(*) FROM ledger") == [(0,)]


def test_a_rejection_whose_page_cannot_be_written_for_a_changed_policy_says_why_and_is_finished_again(copy):
    moved, original = edit_the_runs_policy(copy)
    code, _, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Park")
    assert code == 1 and len(err) == 1, err
    assert f"plan {RUN_ID} is rejected, but its report page could not be written: policy policy.toml changed" in err[0]
    assert q(copy, "SELECT state, completed_at IS NULL FROM plans") == [("rejected", True)]
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")  # the other decision: how to finish
    assert code == 1 and len(err) == 1 and "it is rejected" in err[0] and "`reject` it again to finish it" in err[0]
    moved.write_bytes(original)
    code, out, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Park")
    assert code == 0 and "now finished" in out, err
    assert page_state(copy, RUN_ID) == "rejected"


def test_a_rejection_killed_before_its_page_is_written_is_finished_by_rejecting_again(copy):
    killed = redress_killed_at("reject:decided", copy, "reject", RUN_ID, "--by", "Park")
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    assert page_state(copy, RUN_ID) == "waiting"  # the kill's window
    code, out, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Park")
    assert code == 0, err
    assert "already rejected by a rejection that did not finish, now finished" in out
    assert page_state(copy, RUN_ID) == "rejected"
    assert q(copy, "SELECT state, decided_by, completed_by, completed_at IS NOT NULL FROM plans") == [
        ("rejected", "Park", "Park", True)]
    assert "did not finish" not in (copy / "reports" / RUN_ID / "report.html").read_text(encoding="utf-8")
    again, _, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Park")
    assert again == 1 and len(err) == 1 and "it is rejected" in err[0]
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 1 and len(err) == 1 and "it is rejected" in err[0]
    assert q(copy, "SELECT count(*) FROM ledger") == [(0,)] and not list((copy / "outbox").rglob("*.parquet"))


def test_a_page_a_killed_run_left_showing_its_superseded_plan_waiting_is_written_by_the_next_run(copy):
    killed = redress_killed_at("run:started", copy, "run", "--run-date", "2025-12-02")
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    # the killed run superseded the plan, then died before writing its page again
    assert q(copy, "SELECT state, completed_at IS NULL FROM plans WHERE run_id = ?", [RUN_ID]) == [
        ("superseded", True)]
    assert page_state(copy, RUN_ID) == "waiting"
    later = remediation(data_dir=copy, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert page_state(copy, RUN_ID) == "superseded"
    # recorded as written (the killed run planned nothing); the new plan waits
    assert q(copy, "SELECT run_id, state, completed_at IS NOT NULL FROM plans ORDER BY run_id") == [
        (RUN_ID, "superseded", True), (later["run_id"], "waiting", False)]
    # the killed run's report, which the later run wrote, says what it superseded (found by the fix review)
    ((killed_run,),) = q(copy, "SELECT decided_by FROM plans WHERE run_id = ?", [RUN_ID])
    assert (f"The plan of run {RUN_ID}, which was waiting for approval, is superseded by this run"
            in (copy / "reports" / killed_run / "summary.md").read_text("utf-8"))


def test_a_superseded_plan_whose_policy_file_changed_gets_its_page_from_the_policy_the_run_read(copy):
    """Found by the operations review: a waiting plan's policy file edited (its
    disbursement settings, which may change under one id), every later run warned that
    the plan's page could not be written, and it stayed "waiting" until the exact file
    was put back. The page only describes the run: it is written under the policy text
    the run recorded (runs.policy_text)."""
    edit_the_runs_policy(copy)
    code, out, err = cli("--data-dir", copy, "run", "--run-date", "2025-12-02")  # supersedes the plan
    assert code == 0, err
    assert "could not be written" not in out
    assert page_state(copy, RUN_ID) == "superseded"
    assert q(copy, "SELECT completed_at IS NOT NULL FROM plans WHERE run_id = ?", [RUN_ID]) == [(True,)]


def test_a_superseded_plan_of_a_run_that_kept_no_policy_text_gets_its_page_once_the_file_is_restored(copy, monkeypatch):
    """A run recorded by an earlier version kept no policy text: its page needs the file."""
    moved, original = edit_the_runs_policy(copy)
    with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
        con.execute("UPDATE runs SET policy_text = NULL")
    code, out, err = cli("--data-dir", copy, "run", "--run-date", "2025-12-02")  # supersedes the plan
    assert code == 0, err
    said = [line for line in out.splitlines() if "could not be written to show its plan" in line]
    assert len(said) == 1 and "Traceback" not in out + "\n".join(err)
    assert said[0].startswith(f"the report page of run {RUN_ID} could not be written to show its plan superseded: "
                              f"policy policy.toml changed since run {RUN_ID} started")
    assert said[0].endswith("(the next run tries again)")
    assert q(copy, "SELECT state, completed_at IS NULL FROM plans WHERE run_id = ?", [RUN_ID]) == [
        ("superseded", True)]
    assert page_state(copy, RUN_ID) == "waiting"
    # the policy is checked before any of the page's queries: a page that stays unwritable costs a run little
    monkeypatch.setattr("tasks.report.run_facts", lambda *a: pytest.fail("queried before the policy was checked"))
    assert "policy policy.toml changed" in refresh_report_page(run_context(copy, RUN_ID))
    monkeypatch.undo()
    moved.write_bytes(original)
    assert cli("--data-dir", copy, "run", "--run-date", "2025-12-03")[0] == 0
    assert page_state(copy, RUN_ID) == "superseded"
    assert q(copy, "SELECT completed_at IS NOT NULL FROM plans WHERE run_id = ?", [RUN_ID]) == [(True,)]


@pytest.mark.parametrize("damage", ["report folder deleted", "report folder replaced by a file", "run row edited"])
def test_an_old_plan_whose_page_cannot_be_written_never_stops_the_next_run(copy, damage):
    if damage == "report folder deleted":  # no page shows the plan: nothing to write, and it is done
        shutil.rmtree(copy / "reports" / RUN_ID)
    elif damage == "report folder replaced by a file":  # not gone: tried, said, and tried again next time
        shutil.rmtree(copy / "reports" / RUN_ID)
        (copy / "reports" / RUN_ID).write_text("not a folder")
    else:
        with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
            con.execute("UPDATE runs SET parameters = '{not json' WHERE run_id = ?", [RUN_ID])
    code, out, err = cli("--data-dir", copy, "run", "--run-date", "2025-12-02")
    assert code == 0, err
    said = [line for line in out.splitlines() if "could not be written to show its plan" in line]
    assert "Traceback" not in out + "\n".join(err)
    (done,), = q(copy, "SELECT completed_at IS NOT NULL FROM plans WHERE run_id = ?", [RUN_ID])
    if damage == "report folder deleted":
        assert said == [] and done and not (copy / "reports" / RUN_ID).exists()
    elif damage == "report folder replaced by a file":
        assert len(said) == 1 and f"reports/{RUN_ID}" in said[0] and not done, said
    else:
        assert said == [f"the report page of run {RUN_ID} could not be written to show its plan superseded: run "
                        f"{RUN_ID}'s row in the warehouse does not name its policy file (runs.parameters must be "
                        "JSON with a `policy` path): was it edited by hand? (the next run tries again)"]
        assert not done


def test_an_expired_plan_whose_page_could_not_be_written_gets_it_from_the_next_run(copy, monkeypatch):
    monkeypatch.setattr("flows.approval._now", lambda: datetime.now(timezone.utc) + timedelta(days=2))
    page = copy / "reports" / RUN_ID / "report.html"
    page.unlink()
    page.mkdir()  # the page cannot be written when the plan is found expired
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 1 and len(err) == 1 and "it is expired" in err[0]
    assert q(copy, "SELECT state, completed_at IS NULL FROM plans") == [("expired", True)]
    page.rmdir()
    remediation(data_dir=copy, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert page_state(copy, RUN_ID) == "expired"
    assert q(copy, "SELECT completed_at IS NOT NULL FROM plans WHERE run_id = ?", [RUN_ID]) == [(True,)]


def test_a_spoilt_suite_record_at_the_runs_end_never_keeps_its_end_from_being_recorded(waiting, tmp_path, monkeypatch):
    """finish_run lists the run's suite records for its row: a broken link or a folder
    among them is left out, and the run is still recorded with its figures."""
    import flows.remediation

    data = tmp_path / "data"
    shutil.copytree(waiting[0], data)
    finish = flows.remediation.finish_run

    def spoil_then_finish(ctx, *args, **kwargs):
        (ctx.report_dir / "validations" / "zz_link.json").symlink_to(ctx.report_dir / "nowhere")
        (ctx.report_dir / "validations" / "zz_folder.json").mkdir()
        return finish(ctx, *args, **kwargs)

    monkeypatch.setattr(flows.remediation, "finish_run", spoil_then_finish)
    later = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    (outcome, counts), = q(data, "SELECT outcome, counts FROM runs WHERE run_id = ?", [later["run_id"]])
    counts = json.loads(counts)
    labels = sorted(json.loads(p.read_text())["label"]
                    for p in (data / "reports" / later["run_id"] / "validations").glob("*.json") if p.is_file())
    assert outcome == "succeeded" and counts["disburse"] == later["disburse"]
    assert counts["suite_records"] == labels and len(labels) >= 3


def test_a_run_killed_once_its_plan_is_saved_is_superseded_by_the_rerun_which_pays_once(waiting, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(waiting[0] / "inbox", data / "inbox")
    killed = redress_killed_at("disburse:plan-saved", data, "run", "--run-date", "2025-12-01")
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    rerun = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    assert q(data, "SELECT state FROM plans ORDER BY run_id") == [("superseded",), ("waiting",)]
    # the killed run's report, written by the rerun, says its plan was superseded by it
    killed_report = (data / "reports" / "R20251201-001" / "summary.md").read_text(encoding="utf-8")
    assert f"**Since this run: its plan is superseded**: superseded by run {rerun['run_id']} at " in killed_report
    assert cli("--data-dir", data, "approve", rerun["run_id"], "--by", "Kim")[0] == 0
    assert_paid_exactly_once(data)


def test_an_approval_killed_after_its_release_is_finished_by_the_next_run(copy):
    """Found by review: a run after an approval killed once its release committed
    published the batches and told the people, but the approved run's pages said the plan
    waited, for good. The run's start now finishes the decision's pages."""
    killed = redress_killed_at("disburse:committed", copy, "approve", RUN_ID, "--by", "Kim Finance")
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    assert q(copy, "SELECT state, completed_at IS NULL FROM plans") == [("approved", True)]
    later = remediation(data_dir=copy, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert page_state(copy, RUN_ID) == "approved"
    assert q(copy, "SELECT run_id, state, completed_at IS NOT NULL FROM plans ORDER BY run_id")[0] == (
        RUN_ID, "approved", True)
    summary = (copy / "reports" / RUN_ID / "summary.md").read_text(encoding="utf-8")
    assert f"**Since this run: its plan is approved**: approved by Kim Finance (operating-system account {ACCOUNT}) at " in summary
    plan = (copy / "reports" / RUN_ID / "plan.md").read_text(encoding="utf-8")
    assert "State: **approved**" in plan and "--by" not in plan
    assert_paid_exactly_once(copy)  # its folders published, its people told by the later run
    assert later["notify"]["notifications"] > 0
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim Finance")
    assert code == 1 and len(err) == 1 and "it is approved" in err[0]


def test_run_from_the_command_line_stops_with_the_plan_and_says_how_to_approve(waiting, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(waiting[0] / "inbox", data / "inbox")
    code, out, err = cli("--data-dir", data, "run", "--run-date", "2025-12-01")
    assert code == 0, err
    assert "Disbursement plan of run R20251201-001" in out
    assert f"approve {RUN_ID} --by YOUR_NAME" in out
    assert q(data, "SELECT count(*) FROM ledger") == [(0,)]


def test_the_demo_approves_its_own_plan_and_says_so(tmp_path):
    out_dir = tmp_path / "demo"
    code, out, err = cli("demo", "--out", out_dir, "--customers", "200")
    assert code == 0, err
    assert "the demo approved its own plan" in out
    (run_id, by, note), = q(out_dir, "SELECT run_id, approved_by, approval_note FROM runs")
    assert (by, note) == ("redress demo", "the demo approves its own plan")
    assert q(out_dir, "SELECT state FROM plans") == [("approved",)]
    assert_paid_exactly_once(out_dir)
    assert (out_dir / "outbox" / "notifications" / f"{run_id}.parquet").is_file()


def test_the_plan_files_of_a_killed_approval_go_when_the_plan_is_rejected(copy):
    killed = redress_killed_at("disburse:folder-written", copy, "approve", RUN_ID, "--by", "Kim")
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]
    left = sorted(p.name for p in (copy / "work" / RUN_ID).iterdir())
    # bank details: private, and not kept; the warehouse's export of the plan went once read
    assert left == ["planned.parquet"]
    assert all(((copy / "work" / RUN_ID / name).stat().st_mode & 0o077) == 0 for name in left)
    code, _, err = cli("--data-dir", copy, "reject", RUN_ID, "--by", "Park")
    assert code == 0, err
    assert not (copy / "work").exists()


def test_a_run_and_its_approval_work_in_a_folder_named_with_glob_characters_and_a_quote(waiting, tmp_path):
    """Every file the plan passes through is read as itself, never as a pattern."""
    data = tmp_path / "k'o [1]*ü x"
    shutil.copytree(waiting[0], data)
    later = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    assert later["disburse"]["awaiting_approval"] and later["disburse"]["payments"] > 0
    code, _, err = cli("--data-dir", data, "approve", later["run_id"], "--by", "Kim")
    assert code == 0, err
    assert_paid_exactly_once(data)
    assert q(data, "SELECT count(*), sum(amount) FROM ledger") == q(
        data, "SELECT payments, amount FROM plans WHERE run_id = ?", [later["run_id"]])


def test_a_plan_made_for_its_own_day_is_not_approved_a_day_later_with_bank_files_dated_in_the_past(copy):
    """Found by review: a plan made in the evening (a run without --run-date plans for
    its own day) and approved next morning released bank files whose execution date had
    passed, which a bank refuses or moves, and the day's cash cap counted them on the
    wrong day. The fixture's run plans for 2025-12-01 on a later day (a catch-up, not
    refused); here its plan is made that very day, so approving it now is refused in one
    line and nothing is paid; rejecting it still works."""
    assert q(copy, "SELECT count(*) FROM plan_batches WHERE run_id = ? AND rail = 'bank_transfer'", [RUN_ID])[0][0]
    with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
        # started that day at 23:50 in Seoul, planned after midnight (found by the next review:
        # the planning time said the next day, and the plan was taken for a catch-up)
        con.execute("UPDATE runs SET started_at = TIMESTAMPTZ '2025-12-01 23:50:00+09' WHERE run_id = ?", [RUN_ID])
        con.execute("UPDATE plans SET planned_at = TIMESTAMPTZ '2025-12-02 00:40:00+09', "
                    "expires_at = now() + INTERVAL 1 DAY WHERE run_id = ?", [RUN_ID])
    code, _, err = cli("--data-dir", copy, "approve", RUN_ID, "--by", "Kim")
    assert code == 1 and len(err) == 1
    assert f"cannot approve the plan of run {RUN_ID} today: its bank transfers are dated from 2025-12-01" in err[0]
    assert "in Asia/Seoul" in err[0] and "run again to plan afresh" in err[0]
    assert q(copy, "SELECT state FROM plans") == [("waiting",)] and q(copy, "SELECT count(*) FROM ledger") == [(0,)]
    assert outbox(copy) == []
    assert cli("--data-dir", copy, "reject", RUN_ID, "--by", "Kim")[0] == 0
