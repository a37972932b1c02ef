"""Scope files read before that are no longer in the inbox as they were read (found by
review: a removed file, or a name rewritten with other content, went unmentioned while
its rows kept paying). Their rows stay evidence (evidence only accumulates; removing a
file retracts nothing), and every later run's summary lists each such file, by name and
row count, never a row value (redress/inbox/new_files.py evidence_gone)."""

from __future__ import annotations

from datetime import date

import pytest

from approval_off import DEFAULT_POLICY
from flows.remediation import remediation
from redress.generate import generate
from test_incremental import HEADER, drop, q, table

ODD = "it's \"odd\" *[a] 한글.csv"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gone")
    data = root / "data"
    generate(data, 300, seed=3)
    scope = data / "inbox" / "scope"
    drop(scope / ODD, HEADER + "C000000011,,,name,2025-08-01T00:00:00+09:00,,odd\n")
    drop(scope / "keep.csv", HEADER + "C000000012,,,name,2025-08-01T00:00:00+09:00,,keep\n")
    drop(scope / "rewritten.csv", HEADER + "C000000013,,,name,2025-08-01T00:00:00+09:00,,first\n")
    first = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    entitled = table(data, "SELECT customer_id, reason, amount FROM entitlements")
    (scope / ODD).unlink()
    (scope / "scope_01_initial.csv").unlink()  # its resent copy, the same content, stays: not gone
    (scope / "scope_02_revision.parquet").unlink()
    drop(scope / "rewritten.csv", HEADER + "C000000014,,,name,2025-08-01T00:00:00+09:00,,second\n")
    second = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    third = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 3))
    return {"data": data, "first": first, "second": second, "third": third, "entitled": entitled}


def test_each_file_no_longer_as_read_is_listed_by_every_later_run(runs):
    first_run = runs["first"]["run_id"]
    revision_rows = q(runs["data"], "SELECT rows_read FROM ingested_files WHERE file_name = 'scope_02_revision.parquet'")[0][0]
    expected = (f"scope/{ODD} (1 row, read by run {first_run}): no longer in the inbox",
                f"scope/rewritten.csv (1 row, read by run {first_run}): its name now holds other content",
                f"scope/scope_02_revision.parquet ({revision_rows:,} rows, read by run {first_run}): no longer in the inbox")
    assert tuple(runs["first"]["ingest"]["gone"]) == ()
    assert tuple(runs["second"]["ingest"]["gone"]) == expected
    assert tuple(runs["third"]["ingest"]["gone"]) == expected


def test_their_rows_stay_evidence_and_the_new_content_is_read_as_a_new_file(runs):
    data = runs["data"]
    now = dict(q(data, "SELECT customer_id, reason FROM entitlements"))
    for cid, reason, _ in runs["entitled"]:
        assert now[cid] == reason  # nothing retracted
    assert now["C000000014"] == "ELIGIBLE"  # the rewritten file's new row
    assert q(data, "SELECT count(*) FROM ingested_files WHERE file_name = 'rewritten.csv' AND status = 'accepted'") == [(2,)]


def test_the_summary_lists_them_with_the_name_escaped(runs):
    summary = (runs["data"] / "reports" / runs["third"]["run_id"] / "summary.md").read_text(encoding="utf-8")
    section = summary.split("### Read before, no longer in the inbox as read", 1)[1].split("\n## ", 1)[0]
    assert "Their rows stay evidence and count toward payment" in section
    assert section.count("\n- ") == 3
    assert "scope/rewritten.csv (1 row, read by run" in section
    assert "*[a]" not in section  # Markdown-escaped, not a link or emphasis
