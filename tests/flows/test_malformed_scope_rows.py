"""A scope file with rows the reader cannot split into the header's fields, end to end:
one odd row never holds back the file's others (the brief's standard; SPEC "Input:
returns from finance" quarantines such a returns row alone, and scope files now do the
same). A CSV row with an unquoted comma in its free-text source, a JSON Lines line that
is no object, gives a key twice or a key only like a column's (`Confidence`): each is
quarantined alone as `malformed_row`, named by file and row number (not kept as written:
it may hold columns beyond the SPEC's), counted in the run's balance and by the input checks, and everyone else in the
file is paid; the same row fixed and dropped in again is paid once, on the incremental
path, as a run from scratch pays it."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.remediation import remediation
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false
from redress.inbox.jsonl_reader import key_twice, look_alike_key

HEADER = "customer_id,email,phone,data_category,accessed_at,confidence,source"
CUSTOMERS = "customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account\n" + \
    "".join(f"C{n},Kim,c{n}@example.com,010-3000-000{n},active,2020-01-01,,false,,,\n" for n in range(1, 8))
BEYOND = "more fields than the header (quote values that contain commas)"

SCOPE_CSV = (f"{HEADER}\n"
             "C1,,,name,2025-07-01T10:00:00,,waf\n"
             "C3,,,name,2025-07-01T10:00:00,,waf log, server 3\n"          # unquoted comma: malformed
             "\n"
             "C2,,,email,2025-07-01T10:00:00,,\"db, audit\"\n"              # quoted comma: sound
             ",c6@example.com,,phone,2025-07-01T10:00:00,confirmed,\"two\nlines\",extra\n"  # wide across lines
             "C7,,,name,2025-07-01T10:00:00,,\"edr\nalert\"\n")             # quoted line break: sound
SCOPE_JSONL = ('{"customer_id": "C4", "data_category": "name", "accessed_at": "2025-07-01T10:00:00"}\n'
               '["C5", "name"]\n'
               '{"customer_id": "C5", "customer_id": "C5", "data_category": "name", "accessed_at": "2025-07-01"}\n'
               # a key only like `confidence`, beside lines without it: which was meant is a guess
               '{"customer_id": "C6", "data_category": "name", "accessed_at": "2025-07-01", "Confidence": "suspected"}\n')


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def folder(root: Path) -> Path:
    data = root / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (data / "inbox" / "scope" / "scope_01.csv").write_text(SCOPE_CSV, encoding="utf-8")
    (data / "inbox" / "scope" / "scope_02.jsonl").write_text(SCOPE_JSONL, encoding="utf-8")
    return data


def run(data: Path, day: int = 1) -> dict:
    return remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, day))


def paid(data: Path) -> dict[str, int]:
    return dict(q(data, "SELECT customer_id, sum(amount) FROM ledger GROUP BY ALL ORDER BY ALL"))


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    data = folder(tmp_path_factory.mktemp("malformed-scope"))
    return data, run(data)


def test_the_files_are_accepted_and_everyone_else_in_them_is_paid(first):
    data, _ = first
    assert q(data, "SELECT file_name, status, rows_read FROM ingested_files WHERE kind = 'scope' ORDER BY 1") == [
        ("scope_01.csv", "accepted", 5), ("scope_02.jsonl", "accepted", 4)]
    assert q(data, "SELECT outcome FROM runs") == [("succeeded",)]
    assert paid(data) == {"C1": 50_000, "C2": 50_000, "C4": 50_000, "C7": 50_000}


def test_each_malformed_row_is_quarantined_alone_by_file_and_row(first):
    data, _ = first
    got = q(data, """SELECT file_name, row_number, reason, row_json FROM quarantine
                     WHERE kind = 'scope' ORDER BY file_name, row_number""")
    assert [(f, n, r, json.loads(j)) for f, n, r, j in got] == [
        ("scope_01.csv", 2, "malformed_row", {"malformed": BEYOND}),
        ("scope_01.csv", 5, "malformed_row", {"malformed": BEYOND}),
        ("scope_02.jsonl", 2, "malformed_row", {"malformed": "the line is not a JSON object"}),
        ("scope_02.jsonl", 3, "malformed_row", {"malformed": "the line gives the key 'customer_id' twice"}),
        ("scope_02.jsonl", 4, "malformed_row", {"malformed": look_alike_key("Confidence", "confidence")})]
    assert key_twice("customer_id") == "the line gives the key 'customer_id' twice"
    assert look_alike_key("Confidence", "confidence") == (
        "the line gives the key 'Confidence', which reads as the column confidence without being it, and the file's "
        "other lines do not: name it exactly")
    # nothing of a malformed row is read as evidence: its values may sit under the wrong names
    assert q(data, "SELECT count(*) FROM scope_rows WHERE malformed IS NOT NULL AND "
                   "coalesce(customer_id, email, phone, data_category, accessed_at_raw, confidence, source) IS NOT NULL"
             ) == [(0,)]
    # nor kept as written: it may hold columns beyond the SPEC's, as no sound row does
    assert "as_written" not in {c for (c,) in q(data, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'scope_rows'")}
    assert q(data, "SELECT count(*) FROM non_member_exposures") == [(0,)]


def test_every_row_is_counted_once_and_the_checks_agree(first):
    data, summary = first
    validate = summary["validate"]
    assert validate["quarantine_reasons"] == {"malformed_row": 5}
    assert validate["input_checks"]["malformed_row"] == 5
    assert q(data, "SELECT count(*) FROM review") == [(0,)]
    # rows read = exposures + non-member + review + quarantine, per file
    assert q(data, """
        SELECT f.file_name, f.rows_read,
               (SELECT count(*) FROM scope_exposures e WHERE e.file_sha256 = f.file_sha256)
             + (SELECT count(*) FROM quarantine x WHERE x.file_sha256 = f.file_sha256 AND x.row_number IS NOT NULL)
        FROM ingested_files f WHERE kind = 'scope' ORDER BY 1""") == [("scope_01.csv", 5, 5), ("scope_02.jsonl", 4, 4)]


def test_the_summary_and_the_quarantine_file_name_the_reason(first):
    data, summary = first
    run_id = summary["run_id"]
    text = (data / "reports" / run_id / "summary.md").read_text(encoding="utf-8")
    assert "| scope | malformed_row | the row could not be read as the header's fields" in text
    listed = (data / "quarantine" / run_id / "quarantine.csv").read_text(encoding="utf-8")
    assert listed.count("malformed_row") == 5 and "server 3" not in listed and "suspected" not in listed


def test_the_rows_fixed_and_dropped_again_are_paid_once_as_a_run_from_scratch_pays(first, tmp_path):
    data, _ = first
    data = shutil.copytree(data, tmp_path / "copy" / "data")
    fixed = f'{HEADER}\nC3,,,name,2025-07-01T10:00:00,,"waf log, server 3"\nC5,,,name,2025-07-01,,\n'
    (data / "inbox" / "scope" / "scope_03_fixed.csv").write_text(fixed, encoding="utf-8")
    summary = run(data, day=2)
    assert summary["validate"]["mode"] == "incremental"
    assert paid(data) == {"C1": 50_000, "C2": 50_000, "C3": 50_000, "C4": 50_000, "C5": 50_000, "C7": 50_000}
    fresh = tmp_path / "fresh" / "data"
    shutil.copytree(data / "inbox", fresh / "inbox")
    run(fresh, day=2)
    assert paid(fresh) == paid(data)
    scope_quarantine = """SELECT file_name, row_number, reason, row_json FROM quarantine
                          WHERE kind = 'scope' AND row_number IS NOT NULL ORDER BY ALL"""
    assert q(fresh, scope_quarantine) == q(data, scope_quarantine)


def test_explain_says_rows_could_not_be_read_and_where(first, tmp_path):
    """Found by review: `redress explain C3` said only that no accepted exposure names C3,
    while C3's row sat in quarantine unread; a malformed row names nobody (its values may
    be shifted), so every lookup says how many there are and in which files."""
    from redress.customer_service.explain import explain

    data, _ = first
    data = shutil.copytree(data, tmp_path / "copy" / "data")  # explain records each lookup
    text = explain(data, "C3")
    assert "No accepted exposure names this customer" in text
    assert ("5 scope rows could not be split into their columns (malformed_row), so none of their values was "
            "read, in scope_01.csv, scope_02.jsonl. If this person's exposure is in one, it counts only once the "
            "forensics team fixes it and sends it again") in text
    assert "server 3" not in text
    # and a file refused whole is named too, at most three names of each kind
    for n in range(4):  # saved as UTF-16: the SPEC refuses such a file whole
        (data / "inbox" / "scope" / f"utf16_{n}.csv").write_bytes(
            f"{HEADER}\nC{n},,,name,2025-07-01T10:00:00,,x\n".encode("utf-16"))
    run(data, day=2)
    text = explain(data, "C3")
    assert ("4 scope files could not be read at all (utf16_0.csv, utf16_1.csv, utf16_2.csv and 1 more). If this "
            "person's exposure is in one") in text


# ------------------------------------------------------------------ stray quotes

STRAY = ('a stray " (text after a closing quote, or a quote never closed): quote the whole value and double each '
         '" inside it (5" rain as "5"" rain")')
QUOTES_CSV = (f"{HEADER}\n"
              "C1,,,name,2025-07-01T10:00:00,,\"printer \"\"5\"\" tray\"\n"   # doubled quotes: sound
              "C6,,,name,2025-07-01T10:00:00,,printer 5\" tray\n"            # a quote inside a value: as written
              "C2,,,email,2025-07-01T10:00:00,,\"db, audit\"\n"
              "C5,,,name,2025-07-01T10:00:00,,\"printer\" tray\n"            # text after a closing quote: malformed
              "C3,,,name,2025-07-01T10:00:00,,\"never closed\n"              # a quote never closed: malformed
              "C4,,,name,2025-07-01T10:00:00,,waf\n"                         # read as its own row all the same
              "C7,,,name,2025-07-01T10:00:00,,\"edr\nalert\"\n")             # quoted line break: sound


def test_a_stray_quote_holds_back_its_row_alone_and_the_row_fixed_is_paid_once(tmp_path):
    """Found as left open by the last review: `printer 5" tray` in a forensics CSV made the
    whole file unreadable_file, and everyone in it went unpaid. Now a quote inside a value
    is read as written (as Excel and DuckDB read it), each row with a stray quote (text
    after a closing quote, a quote never closed) is quarantined alone (its values unread,
    not kept as written), everyone else is paid, the reader's copy of the file does not
    outlive the run, and the rows fixed and dropped in again are paid once, as a run from
    scratch pays them."""
    data = tmp_path / "data"
    for kind in ("customers", "scope"):
        (data / "inbox" / kind).mkdir(parents=True)
    # a customers snapshot with a quote inside a name is read as written too
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS.replace("C6,Kim,", 'C6,Kim "K,'),
                                                                encoding="utf-8")
    (data / "inbox" / "scope" / "scope_01.csv").write_text(QUOTES_CSV, encoding="utf-8")
    summary = run(data)
    assert q(data, "SELECT kind, status, rows_read FROM ingested_files ORDER BY kind") == [
        ("customers", "accepted", 7), ("scope", "accepted", 7)]
    assert paid(data) == {"C1": 50_000, "C2": 50_000, "C4": 50_000, "C6": 50_000, "C7": 50_000}
    assert q(data, "SELECT source FROM scope_rows WHERE customer_id IN ('C1', 'C6', 'C7') ORDER BY customer_id") == [
        ('printer "5" tray',), ('printer 5" tray',), ("edr\nalert",)]
    got = q(data, "SELECT row_number, reason, row_json FROM quarantine WHERE kind = 'scope' ORDER BY row_number")
    assert [(n, r, json.loads(j)) for n, r, j in got] == [(n, "malformed_row", {"malformed": STRAY}) for n in (4, 5)]
    assert summary["validate"]["input_checks"]["malformed_row"] == 2
    assert q(data, "SELECT count(*) FROM review") == [(0,)]
    assert not [p.name for p in data.rglob("stray-quotes-*")]  # the reader's copy is the run's work file
    listed = (data / "quarantine" / summary["run_id"] / "quarantine.csv").read_text(encoding="utf-8")
    assert listed.count("malformed_row") == 2 and "printer" not in listed and "2025-07-01" not in listed

    fixed = (f"{HEADER}\n"
             "C5,,,name,2025-07-01T10:00:00,,\"printer tray\"\nC3,,,name,2025-07-01T10:00:00,,never closed\n")
    (data / "inbox" / "scope" / "scope_02_fixed.csv").write_text(fixed, encoding="utf-8")
    assert run(data, day=2)["validate"]["mode"] == "incremental"
    assert paid(data) == {f"C{n}": 50_000 for n in range(1, 8)}
    fresh = tmp_path / "fresh" / "data"
    shutil.copytree(data / "inbox", fresh / "inbox")
    run(fresh, day=2)
    assert paid(fresh) == paid(data)
