"""Hand-made bad scope files end to end: each is quarantined whole with its SPEC reason
while the run goes on with the other files and still pays; typed Parquet timestamps
and numbers in JSON Lines are read as the SPEC says; quarantined rows, fixed and
dropped in again, are paid once (issue 3)."""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.cli import main
from flows.remediation import remediation
from redress.inbox import listing
from redress.errors import RedressError
from redress.policy import load_policy
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

RUN_DATE = date(2025, 12, 1)
HEADER = "customer_id,email,phone,data_category,accessed_at,confidence,source"

CUSTOMERS = """customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account
C1,Kim,c1@example.com,010-3000-0001,active,2020-01-01,,false,,,
C2,Lee,c2@example.com,010-3000-0002,active,2020-01-01,,false,,,
C3,Park,c3@example.com,010-3000-0003,active,2020-01-01,,false,,,
C4,Choi,c4@example.com,010-3000-0004,active,2020-01-01,,false,,,
C5,Jung,c5@example.com,010-3000-0005,active,2020-01-01,,false,,,
1001,Kang,k1001@example.com,010-3000-1001,active,2020-01-01,,false,,,
1002,Yoon,k1002@example.com,010-3000-1002,active,2020-01-01,,false,,,
"""


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def inbox(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    return data


def run(data: Path, run_date: date = RUN_DATE) -> dict:
    return remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=run_date)


def paid(data: Path) -> dict[str, int]:
    return dict(q(data, "SELECT customer_id, sum(amount) FROM ledger GROUP BY ALL"))


# ------------------------------------------------------------------ bad files, one run

# file name -> (status in ingested_files, quarantine reason or None, a phrase of its detail)
EXPECTED_FILES = {
    "good.csv": ("accepted", None, None),
    "garbage.parquet": ("unreadable_file", "unreadable_file", "cannot be read as parquet"),
    "zero_bytes.csv": ("empty_file", "empty_file", "empty"),
    "header_only.csv": ("empty_file", "empty_file", "no data rows"),
    "no_accessed_at.csv": ("missing_column", "missing_column", "accessed_at"),
    "korean_cp949.csv": ("unreadable_file", "unreadable_file", "not UTF-8"),
    "accents_latin1.csv": ("unreadable_file", "unreadable_file", "not UTF-8"),
    "typed_aware.parquet": ("accepted", None, None),
    "typed_naive.parquet": ("accepted", None, None),
    "numbers.jsonl": ("accepted", None, None),
    # a fixed offset Polars cannot parse: it panicked, and the whole run stopped; then
    # the file was refused whole; it is the UTC instant Arrow stores (found by review)
    "india_offset.parquet": ("accepted", None, None),
}

# 2025-06-23 15:30 UTC is 00:30 on the 24th in Seoul: inside the breach window (which
# opens 2025-06-24 00:00 +09:00) only if the zone is honoured.
AWARE_AT = datetime(2025, 6, 23, 15, 30, tzinfo=timezone.utc)
# A naive 23:30 on the 23rd is Seoul time, so before the window (14:30 UTC); read as
# UTC it would be inside.
NAIVE_AT = datetime(2025, 6, 23, 23, 30)


def drop_bad_and_good_files(scope: Path) -> None:
    (scope / "good.csv").write_text(f"{HEADER}\nC1,,,name,2025-07-01T10:00:00,,log\n", encoding="utf-8")
    (scope / "garbage.parquet").write_bytes(b"PAR1 this was never a parquet file PAR1")
    (scope / "zero_bytes.csv").write_bytes(b"")
    (scope / "header_only.csv").write_text(HEADER + "\n", encoding="utf-8")
    (scope / "no_accessed_at.csv").write_text("customer_id,data_category\nC2,name\n", encoding="utf-8")
    (scope / "korean_cp949.csv").write_bytes(
        f"{HEADER}\nC2,,,name,2025-07-01,,접속 기록 서버\n".encode("cp949"))
    (scope / "accents_latin1.csv").write_bytes(
        f"{HEADER}\nC3,,,email,2025-07-01,,journal d'accès café\n".encode("latin-1"))
    pl.DataFrame({"customer_id": ["C4"], "data_category": ["email"], "accessed_at": [AWARE_AT]},
                 schema={"customer_id": pl.String, "data_category": pl.String,
                         "accessed_at": pl.Datetime("ns", "UTC")}).write_parquet(scope / "typed_aware.parquet")
    pl.DataFrame({"customer_id": ["C5"], "data_category": ["phone"], "accessed_at": [NAIVE_AT]},
                 schema={"customer_id": pl.String, "data_category": pl.String,
                         "accessed_at": pl.Datetime("us")}).write_parquet(scope / "typed_naive.parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"customer_id": ["C2"], "data_category": ["name"],
                             "accessed_at": pa.array([AWARE_AT], pa.timestamp("us", tz="+05:30"))}),
                   scope / "india_offset.parquet")
    (scope / "numbers.jsonl").write_text(
        '{"customer_id": 1001, "data_category": "name", "accessed_at": "2025-07-02T09:00:00+09:00", "score": 0.93}\n'
        '{"phone": "010-3000-1002", "data_category": "phone", "accessed_at": "2025-07-02", "row": 7, "source": 42}\n',
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def bad_files_run(tmp_path_factory):
    data = inbox(tmp_path_factory.mktemp("bad-files"))
    drop_bad_and_good_files(data / "inbox" / "scope")
    summary = run(data)
    return data, summary


def test_the_run_goes_on_and_succeeds(bad_files_run):
    data, summary = bad_files_run
    assert q(data, "SELECT outcome FROM runs") == [("succeeded",)]
    statuses = {f["file_name"]: f["status"] for f in summary["ingest"]["files"] if f["kind"] == "scope"}
    assert statuses == {name: status for name, (status, _, _) in EXPECTED_FILES.items()}


@pytest.mark.parametrize("name", [n for n, (_, reason, _) in EXPECTED_FILES.items() if reason])
def test_each_bad_file_is_quarantined_whole_with_its_reason(bad_files_run, name):
    data, _ = bad_files_run
    _, reason, phrase = EXPECTED_FILES[name]
    (row_number, got, detail), = q(data, "SELECT row_number, reason, detail FROM quarantine WHERE file_name = ?", [name])
    assert (row_number, got) == (None, reason)
    assert phrase in detail
    # nothing of it was loaded
    assert q(data, """SELECT count(*) FROM scope_rows JOIN ingested_files f USING (file_sha256)
                      WHERE f.file_name = ?""", [name]) == [(0,)]


def test_the_quarantine_file_lists_every_rejected_file(bad_files_run):
    data, summary = bad_files_run
    listed = pl.read_csv(data / "quarantine" / summary["run_id"] / "quarantine.csv")
    assert sorted(listed["file_name"]) == sorted(n for n, (_, r, _) in EXPECTED_FILES.items() if r)
    assert listed["row_number"].is_null().all()


def test_the_good_files_are_paid_and_nobody_from_a_bad_file(bad_files_run):
    data, _ = bad_files_run
    # C3 appears only in a rejected file; C5's naive time is before the window; C2 is in
    # a rejected file and in the file of India's offset, whose instant is in it.
    assert paid(data) == {"C1": 50000, "C2": 50000, "C4": 50000, "1001": 50000, "1002": 50000}
    assert dict(q(data, "SELECT customer_id, reason FROM entitlements")) == {
        "C1": "ELIGIBLE", "C2": "ELIGIBLE", "C4": "ELIGIBLE", "C5": "OUTSIDE_WINDOW", "1001": "ELIGIBLE",
        "1002": "ELIGIBLE"}


def test_typed_parquet_timestamps_keep_their_zone_or_take_the_policy_one(bad_files_run):
    data, _ = bad_files_run
    at = dict(q(data, "SELECT customer_id, accessed_at FROM scope_exposures WHERE customer_id IN ('C2', 'C4', 'C5')"))
    assert at["C4"] == at["C2"] == AWARE_AT  # C2's written with India's offset, the same instant
    assert at["C5"] == datetime(2025, 6, 23, 14, 30, tzinfo=timezone.utc)


def test_numbers_in_json_lines_are_read_as_their_text(bad_files_run):
    data, _ = bad_files_run
    rows = q(data, """SELECT customer_id, phone, source FROM scope_rows JOIN ingested_files f USING (file_sha256)
                      WHERE f.file_name = 'numbers.jsonl' ORDER BY row_number""")
    assert rows == [("1001", None, None), (None, "010-3000-1002", "42")]
    assert q(data, """SELECT customer_id, matched_by FROM scope_exposures JOIN ingested_files f USING (file_sha256)
                      WHERE f.file_name = 'numbers.jsonl' ORDER BY row_number""") == [
        ("1001", "customer_id"), ("1002", "phone")]


def test_the_input_checks_ran_and_agreed(bad_files_run):
    data, summary = bad_files_run
    assert set(summary["validate"]["input_checks"].values()) == {0}
    record = json.loads((data / "reports" / summary["run_id"] / "validations" / "scope_rows.json").read_text())
    assert record["success"] is True
    # the view is a working object of the check, not a warehouse table
    assert q(data, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scope_rows_checked'") == [(0,)]


# ---------------------------------------------------------------- fix and drop again

FIRST_FILE = f"""{HEADER}
C1,,,name,2025-07-01T10:00:00,,log A
C2,,,Name,2025-07-01T10:00:00,,log A
C2,,,email,2025/07/01 10:00,,log A
C3,,,phone,2025-07-01T10:00:00,Confirmed,log A
,,,name,2025-07-01T10:00:00,,log A
"""


def fixed(row: dict) -> dict:
    """What a forensics analyst would correct: the case of a category or confidence, a
    date written with slashes."""
    return row | {
        "data_category": row["data_category"].lower(),
        "accessed_at": row["accessed_at"].replace("/", "-"),
        "confidence": row["confidence"].lower() if row["confidence"] else None,
    }


def test_quarantined_rows_fixed_and_dropped_again_are_paid_once(tmp_path):
    data = inbox(tmp_path)
    (data / "inbox" / "scope" / "scope_day1.csv").write_text(FIRST_FILE, encoding="utf-8")
    first = run(data)
    assert paid(data) == {"C1": 50000}
    assert first["validate"]["quarantine_reasons"] == {
        "unknown_category": 1, "invalid_timestamp": 1, "invalid_confidence": 1, "missing_identifier": 1}
    assert first["validate"]["input_checks"]["unknown_category"] == 1

    listed = pl.read_csv(data / "quarantine" / first["run_id"] / "quarantine.csv", infer_schema=False)
    rows = [json.loads(r) for r in listed.filter(pl.col("reason") != "missing_identifier")["row_json"]]
    assert sorted(r["customer_id"] for r in rows) == ["C2", "C2", "C3"]
    fixes = pl.DataFrame([fixed(r) for r in rows]).select(HEADER.split(","))
    fixes.write_csv(data / "inbox" / "scope" / "scope_day1_fixed.csv")

    second = run(data, date(2025, 12, 2))
    exposures = q(data, """SELECT e.customer_id, e.data_category FROM scope_exposures e
                           JOIN ingested_files f USING (file_sha256)
                           WHERE f.file_name = 'scope_day1_fixed.csv' ORDER BY ALL""")
    assert exposures == [("C2", "email"), ("C2", "name"), ("C3", "phone")]
    assert paid(data) == {"C1": 50000, "C2": 50000, "C3": 50000}
    assert q(data, "SELECT customer_id, count(*) FROM ledger GROUP BY ALL ORDER BY 1") == [
        ("C1", 1), ("C2", 1), ("C3", 1)]
    # the first file is unchanged, so its bad rows are still quarantined: nothing is lost
    assert second["validate"]["quarantine_reasons"] == first["validate"]["quarantine_reasons"]
    d = second["validate"]["destinations"]
    assert (d["rows_read"], d["exposure"], d["quarantine"]) == (8, 4, 4)

    third = run(data, date(2025, 12, 3))
    assert third["disburse"]["payments"] == 0
    assert paid(data) == {"C1": 50000, "C2": 50000, "C3": 50000}


def test_a_file_cut_short_while_it_is_read_is_read_whole_by_a_later_run(tmp_path, monkeypatch):
    """The sender rewrites a file while the run reads it: what the reader saw was cut
    short and refused, but that is not the file the sha256 names. It is not recorded as
    unreadable (which would pass the whole, good file over for ever once it is back);
    a later run reads it whole and pays its people once."""
    from redress import inbox as io

    data = inbox(tmp_path)
    late = data / "inbox" / "scope" / "late.parquet"
    pl.DataFrame({"customer_id": ["C1", "C2"], "data_category": ["name", "email"],
                  "accessed_at": ["2025-07-01T10:00:00", "2025-07-02T10:00:00"]}).write_parquet(late)
    whole = late.read_bytes()
    original = io.scope_frame

    def cut_while_read(path, scratch=None):
        if path.name == "late.parquet" and path.stat().st_size == len(whole):
            path.write_bytes(whole[: len(whole) // 2])  # the sender is writing it again
        return original(path, scratch)

    monkeypatch.setattr(io, "scope_frame", cut_while_read)
    first = run(data)
    (entry,) = [e for e in first["ingest"]["files"] if e["file_name"] == "late.parquet"]
    assert entry["status"] == "not_read"
    assert q(data, "SELECT count(*) FROM quarantine WHERE file_name = 'late.parquet'") == [(0,)]
    assert paid(data) == {}
    monkeypatch.setattr(io, "scope_frame", original)
    late.write_bytes(whole)  # the copy is complete: the very content first hashed
    run(data, date(2025, 12, 2))
    assert q(data, "SELECT status, rows_read FROM ingested_files WHERE file_name = 'late.parquet'") == [("accepted", 2)]
    assert paid(data) == {"C1": 50000, "C2": 50000}


# ------------------------------------------------------------------ names and permissions the run cannot use

def test_files_it_cannot_name_or_open_are_passed_over_and_everyone_else_is_paid(tmp_path, monkeypatch):
    """Found by review: a scope file named in CP949 (a zip from Korean Windows) failed
    every run with a traceback, a sub-folder so named failed the report after payment,
    and a file redress may not open held every run back for 8 minutes of retries. Each
    is now named in the summary, with its bytes escaped, and the run pays the others;
    renamed or opened up, the file is read by the next run."""
    data = inbox(tmp_path)
    scope = data / "inbox" / "scope"
    (scope / "good.csv").write_text(f"{HEADER}\nC1,,,name,2025-07-01T00:00:00+09:00,,log\n", encoding="utf-8")
    cp949 = os.fsencode(scope) + b"/scope_\xb1\xe2\xba.csv"
    with open(cp949, "wb") as fh:
        fh.write(f"{HEADER}\nC2,,,name,2025-07-01T00:00:00+09:00,,log\n".encode())
    os.mkdir(os.fsencode(scope) + b"/dir_\xc7\xd1")
    locked = scope / "locked.csv"
    locked.write_text(f"{HEADER}\nC3,,,name,2025-07-01T00:00:00+09:00,,log\n", encoding="utf-8")
    real_hash = listing.hash_file

    def refused(f, check_text):  # as os.open refuses a file without read permission to a non-root account
        if f.path == locked:
            raise PermissionError(13, "Permission denied", str(f.path))
        return real_hash(f, check_text)

    monkeypatch.setattr(listing, "hash_file", refused)
    summary = run(data)
    assert paid(data) == {"C1": 50000}
    report = (data / "reports" / summary["run_id"] / "summary.md").read_text(encoding="utf-8")
    assert "| scope | scope\\_\\\\xb1\\\\xe2\\\\xba.csv | not_read: its name is not UTF-8" in report
    assert "| scope | dir\\_\\\\xc7\\\\xd1 | not_read: a folder" in report
    assert "| scope | locked.csv | not_read: cannot be opened: permission denied" in report
    assert q(data, "SELECT count(*) FROM ingested_files WHERE kind = 'scope'") == [(1,)]  # only good.csv recorded

    os.rename(cp949, scope / "scope_renamed.csv")
    monkeypatch.setattr(listing, "hash_file", real_hash)
    run(data, date(2025, 12, 2))
    assert paid(data) == {"C1": 50000, "C2": 50000, "C3": 50000}


def test_a_data_folder_whose_name_is_not_utf8_is_one_line(tmp_path, capsys):
    folder = os.fsdecode(os.fsencode(tmp_path) + b"/data_\xb1")
    os.makedirs(folder)
    inbox(tmp_path).rename(folder)  # a whole inbox: refused for its name, not for what it lacks
    assert main(["--data-dir", folder, "run", "--policy", str(DEFAULT_POLICY)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data_\\xb1" in err[0] and "is not UTF-8" in err[0]
    assert sorted(os.listdir(folder)) == ["inbox"]  # nothing written


@pytest.mark.parametrize("char, shown", [("\n", "\\x0a"), ("\r", "\\x0d"), ("\x1b", "\\x1b"), ("\t", "\\x09"),
                                         ("\u202e", "\\u202e"), ("\u200b", "\\u200b"), ("\u2028", "\\u2028")])
def test_a_data_folder_whose_name_holds_a_control_character_is_one_line(tmp_path, capsys, char, shown):
    """Found by the standards review: a folder named `nl<newline># INJECTED <img ...>`
    ran, and plan.md's command to paste (and its Prefect artifact) ended at the newline,
    the rest a Markdown heading of raw HTML. Every command refuses such a folder before
    writing anything, as it does one whose name is not UTF-8."""
    folder = tmp_path / f"data{char}# INJECTED"
    inbox(tmp_path).rename(folder)
    for args in (["run", "--policy", str(DEFAULT_POLICY)], ["approve", "R20251201-001", "--by", "Kim"], ["verify"]):
        assert main(["--data-dir", str(folder), *args]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"data{shown}# INJECTED holds a control or invisible character" in err[0], err
    assert sorted(os.listdir(folder)) == ["inbox"]  # nothing written


def test_a_policy_file_whose_name_is_not_utf8_is_one_line(tmp_path, capsys):
    data = inbox(tmp_path)
    policy = os.fsencode(tmp_path) + b"/policy_\xb1.toml"
    with open(policy, "wb") as fh:
        fh.write(DEFAULT_POLICY.read_bytes())
    assert main(["--data-dir", str(data), "run", "--policy", os.fsdecode(policy)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "policy_\\xb1.toml is not UTF-8" in err[0]
    with pytest.raises(RedressError, match=r"policy file .*policy_\\xb1\.toml is not UTF-8"):
        load_policy(Path(os.fsdecode(policy)))  # a served run's policy comes here, not by the command line
    assert sorted(os.listdir(data)) == ["inbox"]


def test_a_list_no_workbook_can_hold_is_told_all_the_same(tmp_path, monkeypatch):
    """The notifications workbook is for people; a value a sheet cannot hold must never
    stop the people being told (found by review: a 40,000-character message failed
    notify on every run after payment). The Parquet file and the CSV hold the list."""
    import tasks.notify

    def refuse(frame, path, created, sheet="payments"):
        path.write_bytes(b"half")
        raise ValueError(f"{path.name}: column message holds a text longer than 32767 characters")

    monkeypatch.setattr(tasks.notify, "write_xlsx", refuse)
    data = inbox(tmp_path)
    (data / "inbox" / "scope" / "good.csv").write_text(f"{HEADER}\nC1,,,name,2025-07-01T00:00:00+09:00,,log\n",
                                                      encoding="utf-8")
    summary = run(data)
    notes = data / "outbox" / "notifications"
    assert summary["notify"]["notifications"] == 1 and paid(data) == {"C1": 50000}
    assert sorted(p.name for p in notes.iterdir() if p.is_file()) == [f"{summary['run_id']}.csv",
                                                                       f"{summary['run_id']}.parquet"]


@pytest.mark.parametrize("args", [["explain", "C00\udcb1"], ["approve", "R20251201-001", "--by", "Kim\udcb1"],
                                  ["approve", "R20251201-001", "--by", "Kim", "--note", "ok\udcb1"],
                                  ["run", "--run-date", "2025-12-0\udcb1"]])
def test_an_argument_that_is_not_utf8_is_one_line(tmp_path, capsys, args):
    """Found by review: `explain`, `--by` and `--note` given bytes of another encoding
    (os.fsdecode keeps each as a lone surrogate) gave tracebacks from DuckDB and Prefect."""
    data = inbox(tmp_path)
    assert main(["--data-dir", str(data), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "\\xb1" in err[0] and "is not UTF-8" in err[0], err
    assert sorted(os.listdir(data)) == ["inbox"]


def test_the_only_snapshot_not_read_is_named_in_the_runs_one_line(tmp_path):
    """Found by review: with the only customers snapshot passed over (its name not UTF-8,
    or not readable), the run said "drop one into inbox/customers/" though one was there."""
    data = inbox(tmp_path)
    snapshot = data / "inbox" / "customers" / "customers.csv"
    snapshot.rename(os.fsdecode(os.fsencode(snapshot.parent) + b"/customers_\xb1.csv"))
    (data / "inbox" / "scope" / "good.csv").write_text(f"{HEADER}\nC1,,,name,2025-07-01T00:00:00+09:00,,log\n",
                                                      encoding="utf-8")
    with pytest.raises(RedressError) as failed:
        run(data)
    line = str(failed.value)
    assert "\n" not in line and line.startswith("no valid customers snapshot")
    assert "1 file(s) in inbox/customers/ not read, first customers_\\xb1.csv: its name is not UTF-8" in line
