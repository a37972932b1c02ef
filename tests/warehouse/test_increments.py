"""redress/warehouse/increments.py: the one rule for full or incremental, read from the warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from redress.warehouse import connect
from redress.warehouse import increments


def warehouse(tmp_path: Path) -> Path:
    """A master from snapshot 'm1' and two accepted scope files, 'a' and 'b', plus a
    duplicate of 'a' under another name and a rejected file."""
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        con.execute("""INSERT INTO customers VALUES ('c1', NULL, NULL, NULL, NULL, 'active', NULL, NULL,
                       '2020-01-01 00:00:00+00', NULL, false, 'voucher', NULL, NULL, false, 'm1')""")
        for sha, name, status in (("a", "s1.csv", "accepted"), ("b", "s2.csv", "accepted"),
                                  ("a", "s1-again.csv", "duplicate_file"), ("z", "bad.csv", "unreadable_file")):
            con.execute("INSERT INTO ingested_files VALUES (?, ?, 'scope', 1, ?, NULL, 1, 'R0', now(), NULL)",
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
        con.execute("INSERT INTO ingested_files VALUES ('b', 's2.csv', 'scope', 1, 'accepted', NULL, 1, 'R2', now(), NULL)")
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
        con.execute("INSERT INTO ingested_files VALUES ('m1', 'c.csv', 'customers', 1, 'accepted', NULL, 1, 'R5', now(), NULL)")
        assert increments.plan(con, "p1", "R5").renormalise is False  # its keys are this code's
        assert increments.plan(con, "p1", "R6").renormalise is True  # promoted by an earlier run


# ------------------------------------------------- incremental entitlement, as a property

from datetime import datetime, timedelta, timezone  # noqa: E402

import polars as pl  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from redress.rules.entitlements import entitlements  # noqa: E402

EXPOSURE_SCHEMA = {"customer_id": pl.String, "data_category": pl.String,
                   "accessed_at": pl.Datetime("us", "UTC"), "confidence": pl.String}
CUSTOMERS = pl.DataFrame({
    "customer_id": ["c1", "c2", "c3", "c4", "c5"],
    "status": ["active", "active", "dormant", "closed", "closed"],
    "closed_at": [None, None, None, datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 9, 1, tzinfo=timezone.utc)],
    "is_test": [False, False, False, False, True],
    "payout_method": ["voucher", "bank_transfer", "voucher", "voucher", "voucher"],
    "bank_valid": [False, True, False, True, False],
}, schema_overrides={"closed_at": pl.Datetime("us", "UTC")})
WINDOW_EDGE = datetime(2025, 6, 23, 15, 0, tzinfo=timezone.utc)  # the shipped window's start

exposure_rows = st.lists(st.fixed_dictionaries({
    "customer_id": st.sampled_from(CUSTOMERS["customer_id"].to_list()),
    "data_category": st.sampled_from(["name", "email", "shipping_address", "entrance_code"]),
    "accessed_at": st.sampled_from([WINDOW_EDGE - timedelta(days=3), WINDOW_EDGE, WINDOW_EDGE + timedelta(days=40)]),
    "confidence": st.sampled_from(["confirmed", "suspected"]),
}), min_size=1, max_size=30)


def incremental(earlier: pl.DataFrame, new: pl.DataFrame, policy) -> pl.DataFrame:
    """What the entitle stage does on the incremental path: entitlements of the earlier
    exposures, then those of the customers the new exposures touch, recomputed from all
    of their exposures, replacing theirs."""
    before = entitlements(earlier.lazy(), CUSTOMERS.lazy(), policy)
    touched = new["customer_id"].unique().implode()
    everything = pl.concat([earlier, new])
    redone = entitlements(everything.filter(pl.col("customer_id").is_in(touched)).lazy(), CUSTOMERS.lazy(), policy)
    return pl.concat([before.filter(~pl.col("customer_id").is_in(touched)), redone]).sort("customer_id")


@settings(max_examples=60, deadline=None)
@given(rows=exposure_rows, cut=st.integers(min_value=0, max_value=30), data=st.data())
def test_incremental_entitlements_equal_full_ones_without_a_cap(policy, rows, cut, data):
    """Any split of the exposures into earlier and new files: recomputing only the
    touched customers gives the entitlements of one full computation, row for row.
    (With a budget cap it would not: the stage takes the full path then.)"""
    p = policy(categories={"name": 1, "email": 1, "shipping_address": 2, "entrance_code": 3},
               tiers={1: 20000, 2: 50000, 3: 100000}, minimum_amount=data.draw(st.sampled_from([1000, 30000])))
    frame = pl.DataFrame(rows, schema=EXPOSURE_SCHEMA)
    earlier, new = frame.head(min(cut, frame.height)), frame.tail(frame.height - min(cut, frame.height))
    assert incremental(earlier, new, p).equals(entitlements(frame.lazy(), CUSTOMERS.lazy(), p))


def test_with_a_cap_one_new_exposure_changes_other_customers_amounts(policy):
    """Why a capped budget takes the full path: c2's new exposure lowers c1's share."""
    p = policy(categories={"name": 1}, tiers={1: 20000}, total_cap=30000, minimum_amount=1000)
    at = WINDOW_EDGE + timedelta(days=40)
    earlier = pl.DataFrame([{"customer_id": "c1", "data_category": "name", "accessed_at": at, "confidence": "confirmed"}],
                           schema=EXPOSURE_SCHEMA)
    new = earlier.with_columns(pl.lit("c2").alias("customer_id"))
    full = entitlements(pl.concat([earlier, new]).lazy(), CUSTOMERS.lazy(), p)
    assert full["amount"].to_list() == [15000, 15000]
    assert incremental(earlier, new, p)["amount"].to_list() == [20000, 20000]  # each alone under the cap
