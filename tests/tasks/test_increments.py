"""tasks/increments.py: the one rule for full or incremental, read from the warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from redress.warehouse import connect
from tasks import increments


def warehouse(tmp_path: Path) -> Path:
    """A master from snapshot 'm1' and two accepted scope files, 'a' and 'b', plus a
    duplicate of 'a' under another name and a rejected file."""
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        con.execute("""INSERT INTO customers VALUES ('c1', NULL, NULL, NULL, NULL, 'active',
                       '2020-01-01 00:00:00+00', NULL, false, 'voucher', NULL, NULL, false, 'm1')""")
        for sha, name, status in (("a", "s1.csv", "accepted"), ("b", "s2.csv", "accepted"),
                                  ("a", "s1-again.csv", "duplicate_file"), ("z", "bad.csv", "unreadable_file")):
            con.execute("INSERT INTO ingested_files VALUES (?, ?, 'scope', 1, ?, NULL, 1, 'R0', now())",
                        [sha, name, status])
    return path


def test_nothing_recorded_is_full_and_renormalises(tmp_path):
    with connect(warehouse(tmp_path)) as con:
        p = increments.plan(con, "p1")
    assert (p.mode, p.files, p.why, p.renormalise) == ("full", ("a", "b"), "full: nothing classified yet", True)
    assert p.basis == increments.Basis("m1", "p1", increments.RULES_VERSION)


@pytest.mark.parametrize("change, why", [
    ("UPDATE customers SET file_sha256 = 'm2'", "full: new customers snapshot"),
    ("UPDATE classified_files SET policy_sha256 = 'p0'", "full: policy changed"),
    ("UPDATE classified_files SET rules_version = 'old'", f"full: classification rules changed (old -> {increments.RULES_VERSION})"),
    ("UPDATE ingested_files SET status = 'rejected' WHERE file_sha256 = 'a'", "full: a classified scope file is no longer accepted"),
])
def test_any_change_of_basis_is_full(tmp_path, change, why):
    with connect(warehouse(tmp_path)) as con:
        full = increments.plan(con, "p1")
        increments.record_classified(con, full, "R1")
        assert increments.plan(con, "p1").why == "incremental: 0 new files"
        con.execute(change)
        p = increments.plan(con, "p1")
    assert (p.mode, p.why) == ("full", why)
    # only a new rule version makes the master's stored keys suspect
    assert p.renormalise == why.startswith("full: classification rules")


def test_new_files_are_incremental_and_entitlement_follows(tmp_path):
    with connect(warehouse(tmp_path)) as con:
        con.execute("DELETE FROM ingested_files WHERE file_sha256 = 'b'")
        increments.record_classified(con, increments.plan(con, "p1"), "R1")
        assert increments.pending_entitlement(con) == (False, ["a"])  # after full: everyone
        increments.mark_entitled(con)
        con.execute("INSERT INTO ingested_files VALUES ('b', 's2.csv', 'scope', 1, 'accepted', NULL, 1, 'R2', now())")
        p = increments.plan(con, "p1")
        assert (p.mode, p.files, p.why, p.renormalise) == ("incremental", ("b",), "incremental: 1 new file", False)
        increments.record_classified(con, p, "R2")
        assert increments.pending_entitlement(con) == (True, ["b"])
        assert con.execute("SELECT file_sha256, run_id FROM classified_files ORDER BY 1").fetchall() == [
            ("a", "R1"), ("b", "R2")]
        # a full classification replaces every record
        increments.record_classified(con, increments.Plan("full", p.basis, ("a", "b"), "full"), "R3")
        assert con.execute("SELECT file_sha256, run_id, entitled FROM classified_files ORDER BY 1").fetchall() == [
            ("a", "R3", False), ("b", "R3", False)]


def test_a_master_promoted_by_this_run_is_not_normalised_again(tmp_path):
    with connect(warehouse(tmp_path)) as con:
        con.execute("INSERT INTO ingested_files VALUES ('m1', 'c.csv', 'customers', 1, 'accepted', NULL, 1, 'R5', now())")
        assert increments.plan(con, "p1", "R5").renormalise is False  # its keys are this code's
        assert increments.plan(con, "p1", "R6").renormalise is True  # promoted by an earlier run
