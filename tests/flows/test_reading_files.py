"""Inbox files as the field sends them, end to end (issue 8, SPEC "Reading files"): an
Excel CSV, a JSON Lines key that first appears after line 10,000, names that look like
glob patterns, a 236-character name, links, snapshots dropped together, and files still
being copied in."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest

from flows.remediation import remediation
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

RUN_DATE = date(2025, 12, 1)
HEADER = "customer_id,email,phone,data_category,accessed_at,confidence,source"
CUSTOMER_HEADER = "customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account"
LONG_NAME = "customers_" + "x" * 222 + ".csv"  # 236 characters
OLD = datetime(2025, 11, 1, 9, 0, tzinfo=timezone.utc).timestamp()


def customer(cid: str, name: str = "Kim") -> str:
    return f"{cid},{name},{cid.lower()}@example.com,010-3000-{abs(hash(cid)) % 10000:04d},active,2020-01-01,,false,,,"


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def folders(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    return data


def scope_csv(*customer_ids: str) -> str:
    return HEADER + "\n" + "".join(f"{c},,,name,2025-07-01T10:00:00,,log\n" for c in customer_ids)


def run(data: Path) -> dict:
    return remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=RUN_DATE)


def paid(data: Path) -> dict[str, int]:
    return dict(q(data, "SELECT customer_id, sum(amount) FROM ledger GROUP BY ALL"))


def status_of(summary: dict, name: str) -> str:
    return next(e["status"] for e in summary["ingest"]["files"] if e["file_name"] == name)


# ------------------------------------------------------------------ one run, many field files


@pytest.fixture(scope="module")
def field_files(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("field")
    data = folders(tmp_path)
    ids = ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    # Excel: BOM, CRLF, one empty line at the end; and a legal 236-character name
    excel = "\ufeff" + "\r\n".join([CUSTOMER_HEADER, *(customer(c) for c in ids)]) + "\r\n\r\n"
    (data / "inbox" / "customers" / LONG_NAME).write_bytes(excel.encode("utf-8"))
    scope = data / "inbox" / "scope"
    # JSON Lines: 10,000 lines by customer_id, then one line with only an email
    lines = [json.dumps({"customer_id": "C1", "data_category": "name", "accessed_at": "2025-07-01T10:00:00"})] * 10_000
    lines.append(json.dumps({"email": "c2@example.com", "data_category": "name", "accessed_at": "2025-07-01T10:00:00"}))
    (scope / "forensics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # names that are glob patterns
    (scope / "extra_1.csv").write_text(scope_csv("C3"), encoding="utf-8")
    (scope / "extra_[1].csv").write_text(scope_csv("C4"), encoding="utf-8")
    (scope / "scope_*.csv").write_text(scope_csv("C5"), encoding="utf-8")
    # a link to a file outside the inbox, and one to the process environment
    outside = tmp_path / "outside.csv"
    outside.write_text(scope_csv("C6"), encoding="utf-8")
    (scope / "linked.csv").symlink_to(outside)
    (scope / "environ.csv").symlink_to("/proc/self/environ")
    # a CSV whose blank lines hold delimiters and whitespace
    (scope / "blank_lines.csv").write_text(HEADER + "\n,,,,,,\n" + scope_csv("C7").split("\n", 1)[1] + " , ,\n,,,,,,,,,,\n\n",
                                           encoding="utf-8")
    summary = run(data)
    return data, summary


def test_an_excel_snapshot_with_a_trailing_empty_line_is_current_and_pays(field_files):
    data, summary = field_files
    assert status_of(summary, LONG_NAME) == "accepted"
    assert q(data, "SELECT rows_read FROM ingested_files WHERE kind = 'customers'") == [(7,)]
    assert q(data, "SELECT count(*) FROM customers") == [(7,)]
    assert paid(data)["C1"] > 0 and paid(data)["C2"] > 0


def test_a_jsonl_key_first_seen_after_line_10000_is_read(field_files):
    data, summary = field_files
    assert status_of(summary, "forensics.jsonl") == "accepted"
    assert q(data, "SELECT rows_read FROM ingested_files WHERE file_name = 'forensics.jsonl'") == [(10_001,)]
    assert q(data, "SELECT customer_id, email FROM scope_rows WHERE row_number = 10001") == [(None, "c2@example.com")]
    assert "C2" in paid(data)


def test_names_with_glob_characters_are_read_as_themselves(field_files):
    data, summary = field_files
    for name in ("extra_1.csv", "extra_[1].csv", "scope_*.csv"):
        assert status_of(summary, name) == "accepted"
    by_file = dict(q(data, """SELECT f.file_name, string_agg(s.customer_id, ',') FROM scope_rows s
                              JOIN ingested_files f USING (file_sha256) GROUP BY ALL"""))
    assert (by_file["extra_1.csv"], by_file["extra_[1].csv"], by_file["scope_*.csv"]) == ("C3", "C4", "C5")
    assert {"C3", "C4", "C5"} <= set(paid(data))


def test_a_236_character_name_gets_bounded_report_file_names(field_files):
    data, summary = field_files
    report = data / "reports" / summary["run_id"]
    names = [p.name for p in report.rglob("*")]
    assert names and max(len(n.encode()) for n in names) <= 100
    labels = [json.loads(p.read_text())["label"] for p in (report / "validations").glob("*.json")]
    assert f"customers_staging-{LONG_NAME}" in labels  # readers still see the name


def test_links_are_not_read_and_are_named_in_the_stage_result(field_files):
    data, summary = field_files
    not_read = sorted((e["file_name"], e["detail"].split(" (")[0]) for e in summary["ingest"]["files"] if e["status"] == "not_read")
    assert not_read == [("environ.csv", "a symbolic link"), ("linked.csv", "a symbolic link")]
    # and the summary's table says why, where the reader looks (found by a new user: it said only not_read)
    text = (data / "reports" / summary["run_id"] / "summary.md").read_text(encoding="utf-8")
    assert "| scope | linked.csv | not_read: a symbolic link (only regular files in the inbox are read) |" in text
    assert q(data, "SELECT count(*) FROM ingested_files WHERE file_name IN ('environ.csv', 'linked.csv')") == [(0,)]
    assert "C6" not in paid(data)


def test_blank_csv_lines_are_not_rows(field_files):
    data, summary = field_files
    assert q(data, "SELECT rows_read FROM ingested_files WHERE file_name = 'blank_lines.csv'") == [(1,)]
    assert q(data, """SELECT s.row_number, s.customer_id FROM scope_rows s JOIN ingested_files f USING (file_sha256)
                      WHERE f.file_name = 'blank_lines.csv'""") == [(2, "C7")]
    assert "C7" in paid(data)


# ------------------------------------------------------------------ snapshots dropped together


def test_snapshots_dropped_together_are_read_in_natural_order(tmp_path):
    data = folders(tmp_path)
    folder = data / "inbox" / "customers"
    v9 = "\n".join([CUSTOMER_HEADER, customer("C1")]) + "\n"
    v10 = "\n".join([CUSTOMER_HEADER, customer("C1"), customer("C10")]) + "\n"
    (folder / "customers_v10.csv").write_text(v10, encoding="utf-8")  # copied first, as `cp *` does
    (folder / "customers_v9.csv").write_text(v9, encoding="utf-8")
    os.utime(folder / "customers_v10.csv", (OLD, OLD + 0.1))
    os.utime(folder / "customers_v9.csv", (OLD, OLD + 0.6))
    (data / "inbox" / "scope" / "s.csv").write_text(scope_csv("C10"), encoding="utf-8")
    summary = run(data)
    assert [e["file_name"] for e in summary["ingest"]["files"] if e["kind"] == "customers"] == ["customers_v9.csv", "customers_v10.csv"]
    assert q(data, "SELECT DISTINCT file_sha256 FROM customers") == [(hashlib.sha256(v10.encode()).hexdigest(),)]
    assert "C10" in paid(data)


# ------------------------------------------------------------------ files still being copied in


def test_a_file_still_being_copied_is_left_for_the_next_run(tmp_path, monkeypatch):
    data = folders(tmp_path)
    (data / "inbox" / "customers" / "c.csv").write_text("\n".join([CUSTOMER_HEADER, customer("C1"), customer("C2")]) + "\n")
    done = data / "inbox" / "scope" / "done.csv"
    done.write_text(scope_csv("C1"), encoding="utf-8")
    for path in (data / "inbox" / "customers" / "c.csv", done):
        os.utime(path, (OLD, OLD))
    copying = data / "inbox" / "scope" / "copying.csv"
    copying.write_text(scope_csv("C2").rstrip("\n")[:-10], encoding="utf-8")  # cut mid-row, modified now
    monkeypatch.setenv("REDRESS_INBOX_QUIET_SECONDS", "3600")
    monkeypatch.setenv("REDRESS_INBOX_WAIT_SECONDS", "0.5")
    first = run(data)
    assert status_of(first, "copying.csv") == "not_read"
    assert "still being changed" in next(e["detail"] for e in first["ingest"]["files"] if e["file_name"] == "copying.csv")
    assert status_of(first, "done.csv") == "accepted"
    assert set(paid(data)) == {"C1"}
    assert q(data, "SELECT count(*) FROM ingested_files WHERE file_name = 'copying.csv'") == [(0,)]

    copying.write_text(scope_csv("C2"), encoding="utf-8")  # the copy completes
    monkeypatch.setenv("REDRESS_INBOX_QUIET_SECONDS", "1")
    monkeypatch.setenv("REDRESS_INBOX_WAIT_SECONDS", "30")
    second = run(data)
    assert status_of(second, "copying.csv") == "accepted"
    assert q(data, "SELECT rows_read FROM ingested_files WHERE file_name = 'copying.csv'") == [(1,)]
    assert set(paid(data)) == {"C1", "C2"}
