"""The one-step benchmarks the README names (benchmarks/entitle_slices.py,
notify_steps.py, xlsx_benchmark.py) run on a real run's warehouse and print figures
that agree with it: a benchmark that no longer imports, or that measures other work
than the stage does, is caught here rather than by the next person who needs it.

Also benchmarks/kill_resume.py's parts: its comparison of two data folders finds a
changed payment, notification, notification file, batch payment or batch folder, and a
half-written one, and no difference between a folder and its copy; its kill takes the
command's whole process group; its count of leftover Prefect servers sees a process of
that Prefect home; its kill moments are spread over the command in order. The kills of real commands at scale are measured by the script itself
(README "Scale")."""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, strategies as st

from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false
from redress.generate import generate
from redress.inbox.hashing import sha256_of

import csv_quotes
import jsonl_keys
import entitle_slices
import held_open
import kill_resume
import notify_steps
import scratch
import xlsx_benchmark


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A 2,000-customer breach after one run that paid and notified."""
    from flows.remediation import remediation

    data = tmp_path_factory.mktemp("stepbench")
    generate(data, 2_000, seed=11)
    remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    return data


def one(con: duckdb.DuckDBPyConnection, query: str) -> tuple:
    return con.execute(query).fetchall()[0]


def run_main(module, argv: list[str], monkeypatch, capsys) -> tuple[object, str]:
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *argv])
    returned = module.main()
    return returned, capsys.readouterr().out


def test_entitle_slices_gives_the_runs_entitlements_for_any_slice_size(run_folder, monkeypatch, capsys):
    warehouse = run_folder / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows, won, digest = one(con, "SELECT count(*), sum(amount), bit_xor(hash(customer_id, reason, amount)) "
                                     "FROM entitlements")
    assert rows > 1_000 and won > 0
    printed = {}
    for size in (None, 700):
        _, out = run_main(entitle_slices, [str(warehouse)] + (["--slice-customers", str(size)] if size else []),
                          monkeypatch, capsys)
        found = re.search(r"slices (\d+): .* peak [\d,]+ MB; ([\d,]+) entitlements, ([\d,]+) won, digest (\d+)", out)
        assert found, out
        printed[size] = found.groups()
    assert printed[None][0] == "1" and int(printed[700][0]) == -(-rows // 700)
    for _, counted, summed, _ in printed.values():
        assert (int(counted.replace(",", "")), int(summed.replace(",", ""))) == (rows, won)
    assert printed[None][3] == printed[700][3] == str(digest)  # the rule's rows are the run's, each one


def test_entitle_slices_and_notify_steps_stop_in_one_line_on_a_path_that_is_not_a_file(tmp_path, monkeypatch,
                                                                                        capsys):
    for module in (entitle_slices, notify_steps):
        missing = tmp_path / module.__name__ / "warehouse.duckdb"
        with pytest.raises(SystemExit) as stopped:
            run_main(module, [str(missing)], monkeypatch, capsys)
        assert str(stopped.value.code) == f"{module.__name__}: {missing} is not a file: " + (
            "give a copy of a warehouse.duckdb" if module is notify_steps else "give a warehouse.duckdb")
        assert not missing.parent.exists()  # nothing created for a mistyped path


@pytest.mark.parametrize("how", ["itself", "symbolic link", "hard link"])
def test_notify_steps_refuses_a_real_data_folder_and_leaves_it_alone(run_folder, tmp_path, monkeypatch, capsys,
                                                                     how):
    warehouse = run_folder / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        before = con.execute("SELECT run_id, customer_id, reference_code FROM notifications ORDER BY ALL").fetchall()
    given = warehouse if how == "itself" else tmp_path / "elsewhere" / "warehouse.duckdb"
    if how != "itself":
        given.parent.mkdir()
        given.symlink_to(warehouse) if how == "symbolic link" else given.hardlink_to(warehouse)
    with pytest.raises(SystemExit) as stopped:
        run_main(notify_steps, [str(given)], monkeypatch, capsys)
    said = str(stopped.value.code)
    if how == "hard link":
        assert said == f"notify_steps: {given} has other names (hard links): give a copy of it"
    else:
        assert f"{run_folder} holds inbox, outbox" in said and "a data folder" in said
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT run_id, customer_id, reference_code FROM notifications ORDER BY ALL").fetchall() \
            == before
    assert not (run_folder / "notify-steps").exists()


def test_notify_steps_tells_the_runs_people_and_writes_the_same_bytes_twice(run_folder, tmp_path, monkeypatch, capsys):
    with duckdb.connect(str(run_folder / "warehouse.duckdb"), read_only=True) as con:
        (told,) = one(con, "SELECT count(*) FROM notifications")
    assert told > 1_000
    copy = tmp_path / "copy" / "warehouse.duckdb"
    copy.parent.mkdir()
    shutil.copy(run_folder / "warehouse.duckdb", copy)
    digests = []
    for attempt in ("a", "b"):
        _, out = run_main(notify_steps, [str(copy), "--policy", str(DEFAULT_POLICY), "--out", str(tmp_path / attempt)],
                          monkeypatch, capsys)
        assert re.search(rf"^total .*\({told:,} people\)$", out, re.M), out
        for step in ("new_people", "settle_codes", "sorted, rendered, 3 files written", "insert notifications"):
            assert re.search(rf"^{re.escape(step)}.* s   peak +\d+ MB$", out, re.M), step
        digests.append(re.findall(r"^sha256 (\S+) +([0-9a-f]{16})$", out, re.M))
        # each printed digest is the file's own
        assert [(name, hashlib.sha256((tmp_path / attempt / name).read_bytes()).hexdigest()[:16])
                for name, _ in digests[-1]] == digests[-1]
        with duckdb.connect(str(copy), read_only=True) as con:
            assert one(con, "SELECT count(*) FROM notifications") == (told,)
    assert [name for name, _ in digests[0]] == ["notifications.parquet", "index/notifications.parquet",
                                                "notification_rows.parquet"]
    assert digests[0] == digests[1]


def test_xlsx_benchmark_times_both_writers_on_the_same_cells(monkeypatch, capsys):
    returned, out = run_main(xlsx_benchmark, ["--rows", "300", "--repeat", "1"], monkeypatch, capsys)
    assert returned == 0
    assert "rows: 300 x 8 columns, best of 1" in out
    assert re.search(r"^old / new: +\d+\.\dx$", out, re.M), out


def test_csv_quotes_reads_each_file_whole_and_prints_its_ratio_to_the_plain_one(monkeypatch, capsys, tmp_path):
    """benchmarks/csv_quotes.py checks each file's rows and its quarantined stray rows
    before it prints (it returns 1 otherwise), and keeps the files in --out."""
    returned, out = run_main(csv_quotes, ["--rows", "3000", "--repeat", "1", "--out", str(tmp_path)], monkeypatch, capsys)
    assert returned == 0
    assert out.splitlines()[0] == "3,000 scope rows, best of 1; read and staged as ingest does"
    assert re.search(r"^  plain \(reference\) +[\d.]+ MB +[\d.]+ s +1\.00 x plain$", out, re.M), out
    for name in ("every source quoted", "quoted, one stray quote", "a quote inside every source",
                 "a stray over 2 lines each row", "a value reopened on each line"):
        assert re.search(rf"^  {name} +[\d.]+ MB +[\d.]+ s +[\d.]+ x plain$", out, re.M), out
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == [f"scope_{n}.csv" for n in range(6)]


def test_jsonl_keys_reads_both_files_whole_and_prints_the_wide_ones_ratio(monkeypatch, capsys, tmp_path):
    """benchmarks/jsonl_keys.py checks both files give every line with the same values
    before it prints (it returns 1 otherwise), each read in a child of its own."""
    returned, out = run_main(jsonl_keys, ["--lines", "500", "--extra", "20", "--out", str(tmp_path)], monkeypatch,
                             capsys)
    assert returned == 0
    assert out.splitlines()[0] == "500 scope lines of JSON Lines, read and staged as ingest does, each file in a child"
    assert re.search(r"^  no extra key \(reference\) +[\d.]+ MB +[\d.]+ s +[\d,]+ MB peak +1\.00 x reference$",
                     out, re.M), out
    assert re.search(r"^  20 extra keys a line +[\d.]+ MB +[\d.]+ s +[\d,]+ MB peak +[\d.]+ x reference$", out,
                     re.M), out
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["scope_0.jsonl", "scope_20.jsonl"]


def test_every_benchmark_script_is_run_by_a_test_of_this_tier():
    """A script added to benchmarks/ gets a test here too (the kind of break above): a
    test module of this tier imports it and calls something of it."""
    root = Path(__file__).resolve().parents[2]
    scripts = {p.stem for p in (root / "benchmarks").glob("*.py")}
    run = set()
    for test in Path(__file__).parent.glob("test_*.py"):
        text = test.read_text(encoding="utf-8")
        for script, alias in re.findall(r"^import (\w+)(?: as (\w+))?$", text, re.M):
            name = re.escape(alias or script)
            if re.search(rf"(?<![\w.]){name}\.\w+\(|run_main\({name}\b|for module in \([^)]*\b{name}\b", text):
                run.add(script)
    assert scripts - run == set()
    assert {"run_benchmark", "reference", "xlsx_benchmark"} <= scripts


def test_held_open_times_both_ways_and_leaves_no_folder(monkeypatch, capsys, tmp_path):
    """benchmarks/held_open.py runs the real flow both ways and prints the ratio of the
    totals it measured (its figures are the README's; here only that they are measured)."""
    import tempfile

    import redress.warehouse
    from prefect.settings import get_current_settings

    monkeypatch.setenv("PREFECT_API_URL", get_current_settings().api.url)  # the session's server
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shipped = redress.warehouse.HOLD_MAX_BYTES
    figures = held_open.main(["--customers", "100", "--rounds", "1", "--no-warm-up"])
    out = capsys.readouterr().out
    assert figures["held"] > 0 and figures["opened"] > 0
    assert figures["ratio"] == pytest.approx(figures["held"] / figures["opened"])
    assert f"held / opened {figures['ratio']:.2f}" in out.splitlines()[-1]
    assert redress.warehouse.HOLD_MAX_BYTES == shipped  # put back
    assert list(tmp_path.iterdir()) == []  # its folders removed


def test_a_folder_and_its_copy_agree_on_every_figure(run_folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_folder, copy)
    found = kill_resume.figures(run_folder)
    with duckdb.connect(str(run_folder / "warehouse.duckdb"), read_only=True) as con:
        (payments,), = con.execute("SELECT count(*) FROM ledger").fetchall()
        (told,), = con.execute("SELECT count(*) FROM notifications").fetchall()
    assert payments > 1_000 and found["ledger (every column but the ids, and its batch's value date)"][0] == payments
    assert found["batch payments (without payment id)"][0] == payments
    assert found["notification files' rows"][0] == told > 1_000
    assert found["batch folders (rail, value date, count, sum)"][0] >= 2
    assert found["batch folders failing their manifest"] == (0, ()) == found["half-written or unknown outbox entries"]
    assert kill_resume.differences(found, kill_resume.figures(copy)) == []


def test_each_kind_of_difference_is_named(run_folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_folder, copy)
    with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
        (payment,), = con.execute("SELECT min(payment_id) FROM ledger").fetchall()
        con.execute("UPDATE ledger SET amount = amount + 1 WHERE payment_id = ?", [payment])
        con.execute("DELETE FROM notifications WHERE person_key = (SELECT min(person_key) FROM notifications)")
    batches = copy / "outbox" / "batches"
    folder = sorted(p for p in batches.iterdir() if p.is_dir())[0]
    with (folder / "payments.csv").open("a", encoding="utf-8") as f:
        f.write("\n")  # its SHA-256 is no longer the manifest's
    (batches / ".tmp-left-by-a-kill").mkdir()
    lines = kill_resume.differences(kill_resume.figures(run_folder), kill_resume.figures(copy))
    named = {line.split(": ")[0].removeprefix("DIFFERS ") for line in lines}
    # the edited folder fails its manifest, so it is missing from the verified folders and
    # their payments too
    assert named == {"ledger (every column but the ids, and its batch's value date)",
                     "notifications (every column but the run id)",
                     "batch folders failing their manifest", "batch folders (rail, value date, count, sum)",
                     "batch payments (without payment id)", "half-written or unknown outbox entries"}
    assert all(line.startswith("DIFFERS ") for line in lines)


def test_an_approval_that_never_recorded_its_last_step_differs_from_a_completed_one(run_folder, tmp_path):
    """An approval killed after its release but before its page and exports were written
    again pays and tells the same people: only the plan's completion record and the
    report page tell the two apart, and both are figures."""
    sides = {}
    for name, completed in (("completed", True), ("unfinished", False)):
        side = sides[name] = tmp_path / name
        shutil.copytree(run_folder, side)
        with duckdb.connect(str(side / "warehouse.duckdb")) as con:
            con.execute("INSERT INTO plans (run_id, state, policy_id, policy_sha256, planned_at, expires_at, payments, "
                        "amount, batches, summary, decided_at, completed_at) VALUES ('R20251201-001', 'approved', 'p', "
                        "'', now(), now(), 1, 10000, 1, '{}', now(), CASE WHEN ? THEN now() END)", [completed])
            # a plan superseded by the rerun of a killed run is not counted
            con.execute("INSERT INTO plans (run_id, state, policy_id, policy_sha256, planned_at, expires_at, payments, "
                        "amount, batches, summary) VALUES ('R20251130-001', 'superseded', 'p', '', now(), now(), 1, "
                        "10000, 1, '{}')")
        page = next((side / "reports").glob("*/report.html"))
        text = page.read_text(encoding="utf-8")
        page.write_text(text + kill_resume.APPROVED_PAGE if completed else text, encoding="utf-8")
    found = kill_resume.figures(sides["completed"])
    assert found["plans decided (state, completed, payments, amount, batches)"][0] == 1
    assert found["report pages showing the approval"] == (1, (("approved",),))
    named = {line.split(": ")[0].removeprefix("DIFFERS ")
             for line in kill_resume.differences(found, kill_resume.figures(sides["unfinished"]))}
    assert named == {"plans decided (state, completed, payments, amount, batches)", "report pages showing the approval"}


def test_a_kill_takes_the_command_and_everything_in_its_process_group(tmp_path):
    marker = tmp_path / "grandchild.pid"
    # A command that starts a child of its own in its process group, then waits.
    script = (f"import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
              f" open({str(marker)!r}, 'w').write(str(c.pid)); time.sleep(60)")
    started = time.perf_counter()
    ran = kill_resume.killed_after([sys.executable, "-c", script], {}, 5.0, tmp_path / "log")
    assert ran is not None and 4.9 <= ran < 30 and time.perf_counter() - started < 30
    grandchild = int(marker.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{grandchild}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in Path(f"/proc/{grandchild}/stat").read_text().split()[2]


def test_a_command_that_ends_before_its_kill_is_said_so_and_a_failure_is_one_error(tmp_path):
    assert kill_resume.killed_after([sys.executable, "-c", "pass"], {}, 30.0, tmp_path / "log") is None
    with pytest.raises(RuntimeError, match=r"failed \(3\) before its kill: the last line"):
        kill_resume.killed_after([sys.executable, "-c", "print('the last line'); raise SystemExit(3)"],
                                 {}, 30.0, tmp_path / "log")


def test_a_process_of_the_prefect_home_is_counted_until_it_ends(tmp_path, monkeypatch):
    home = tmp_path / "prefect-home"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               env={"PREFECT_HOME": str(home)})
    try:
        deadline = time.monotonic() + 10
        while sleeper.pid not in kill_resume.processes_with(home) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kill_resume.processes_with(home) == [sleeper.pid]
        assert kill_resume.processes_with(tmp_path / "another") == []
        monkeypatch.setattr(kill_resume, "SERVER_GRACE_SECONDS", 0.5)
        assert kill_resume.servers_left(home) == 1
    finally:
        sleeper.kill()
        sleeper.wait()
    assert kill_resume.servers_left(home) == 0


@given(seconds=st.floats(0.1, 100_000), kills=st.integers(0, 20), seed=st.integers(0, 2**32))
def test_kill_moments_are_spread_over_the_command_in_order(seconds, kills, seed):
    moments = kill_resume.kill_moments(seconds, kills, random.Random(seed))
    low, high = kill_resume.KILL_WINDOW
    assert len(moments) == kills and moments == sorted(moments)
    width = (high - low) * seconds / max(kills, 1)
    for k, at in enumerate(moments):
        assert low * seconds + k * width - 1e-6 <= at <= low * seconds + (k + 1) * width + 1e-6


def test_same_bytes_lists_every_file_that_differs_or_is_on_one_side(run_folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_folder, copy)
    same, differ = kill_resume.same_bytes(run_folder, copy)
    assert differ == [] and any(n.startswith("outbox/batches/") for n in same)
    assert any(n.startswith("reports/") for n in same) and any(n.startswith("exports/") for n in same)
    assert not any(n.startswith(("inbox/", "warehouse")) for n in same)
    edited = next(n for n in same if n.endswith("manifest.json"))
    (copy / edited).write_bytes((copy / edited).read_bytes() + b" ")
    (copy / "reports" / "extra.txt").write_text("only here\n")
    (copy / "inbox" / "ignored.txt").write_text("the inbox is not compared\n")
    same_after, differ_after = kill_resume.same_bytes(run_folder, copy)
    assert differ_after == sorted([edited, "reports/extra.txt"])
    assert len(same_after) == len(same) - 1


def test_what_people_and_banks_get_is_compared_row_for_row(run_folder, tmp_path):
    """A notification file's text, or a batch's payments, changed with every record kept
    consistent (the manifest's hash written again, its count and sum unchanged): each is
    found in its own figure and nowhere else."""
    copy = tmp_path / "copy"
    shutil.copytree(run_folder, copy)
    note = sorted((copy / "outbox" / "notifications").glob("*.parquet"))[0]
    pl.read_parquet(note).with_columns(pl.col("message").str.replace("$", " ")).write_parquet(note)
    folder = sorted(p for p in (copy / "outbox" / "batches").iterdir() if p.is_dir())[0]
    payments = folder / "payments.parquet"
    # one won moved from one payment to the next: the count and sum the manifest holds stay
    row = pl.int_range(pl.len())
    pl.read_parquet(payments).with_columns(
        pl.when(row == 0).then(pl.col("amount") + 1).when(row == 1).then(pl.col("amount") - 1)
        .otherwise(pl.col("amount")).alias("amount")).write_parquet(payments)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["payments.parquet"] = sha256_of(payments)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    lines = kill_resume.differences(kill_resume.figures(run_folder), kill_resume.figures(copy))
    assert sorted(line.split(": ")[0] for line in lines) == [
        "DIFFERS batch payments (without payment id)", "DIFFERS notification files' rows"]


def test_a_step_benchmarks_folder_is_kept_when_named_and_removed_when_temporary_even_on_failure(tmp_path):
    named = tmp_path / "new" / "out"
    with scratch.files_folder(named, "unused-") as folder:
        (folder / "scope_0.csv").write_text("x\n", encoding="utf-8")
    assert folder == named and (named / "scope_0.csv").read_text(encoding="utf-8") == "x\n"
    with pytest.raises(RuntimeError), scratch.files_folder(None, "step-bench-") as temporary:
        (temporary / "scope_0.csv").write_text("x\n", encoding="utf-8")
        raise RuntimeError("a failed measurement")
    assert temporary.name.startswith("step-bench-") and not temporary.exists()
