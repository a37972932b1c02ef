"""redress/partitions.py: N customer partitions give the classification, entitlements and
ledger of one (issue 10 "Beyond one machine")."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from redress.policy import DEFAULT_POLICY, load_policy
from redress.warehouse import SCHEMA
from redress.rules.batches import batches
from redress.rules.classify import classified_scope
from redress.rules.entitlements import entitlements
from redress.partitions import (
    CUSTOMER_FIELDS, KEY_FIELDS, ledger_rows, partition_of, partitioned_run, routed_scope, split, with_partition,
)
from redress.rules.payments import new_payments

KST = ZoneInfo("Asia/Seoul")
RUN = date(2025, 12, 1)
START = datetime(2025, 6, 24, tzinfo=KST)          # the shipped policies' window
INSIDE = datetime(2025, 8, 1, 12, 0, tzinfo=KST)
CREATED = datetime(2025, 7, 1, 9, 0, tzinfo=KST)
EARLY = datetime(2024, 1, 1, tzinfo=KST)
CAPPED = load_policy(DEFAULT_POLICY.parent / "tiered-capped-example.toml")
SHIPPED = load_policy(DEFAULT_POLICY)
# Small batches and a small bank day, so the single writer splits, numbers and defers.
WRITER = dict(max_batch_items=3, max_batch_amount=200_000, daily_cash_cap=150_000)
NEXT_SEQ = {("voucher", RUN): 4}
RELEASED = {RUN: 100_000}

MASTER_SCHEMA = {
    "customer_id": pl.String, "email_norm": pl.String, "phone_e164": pl.String,
    "created_at": pl.Datetime("us", "UTC"), "status": pl.String, "closed_at": pl.Datetime("us", "UTC"),
    "is_test": pl.Boolean, "payout_method": pl.String, "bank_valid": pl.Boolean,
}
ROW_SCHEMA = {
    "n": pl.Int64, "customer_id": pl.String, "email": pl.String, "phone": pl.String, "data_category": pl.String,
    "accessed_at_raw": pl.String, "accessed_at": pl.Datetime("us", "UTC"), "confidence": pl.String,
}
LEDGER_SCHEMA = {"customer_id": pl.String, "amount": pl.Int64, "status": pl.String, "rail": pl.String}

IDS = [f"c{i:02d}" for i in range(20)]
# Normalised keys in the master; the same people as scope files spell them.
EMAILS = ["kim@example.test", "lee@example.test", "shared@example.test", None]
PHONES = ["+821011112222", "+821033334444", "+82212345678", None]
RAW_EMAILS = ["kim@example.test", " KIM@example.test", "lee@example.test", "shared@example.test", "nobody@example.test",
              "bad", None]
RAW_PHONES = ["010-1111-2222", "+82 10 3333 4444", "02-1234-5678", "010-9999-0000", "12", None]
CATEGORIES = sorted(SHIPPED.categories) + ["ssn"]


def master_frame(people: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(people, schema=MASTER_SCHEMA)


def rows_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([r | {"n": i, "accessed_at_raw": "as given"} for i, r in enumerate(rows)],
                        schema=ROW_SCHEMA)


def ledger_frame(history: list[tuple]) -> pl.DataFrame:
    """customer_id, amount, status, rail of a history in the order it happened, with the
    attempt each payment's run gave it: 1 + the customer's payments that came back
    before it (rules.payments)."""
    back: dict[str, int] = {}
    numbered = []
    for customer, amount, status, rail in history:
        numbered.append((customer, amount, status, rail, back.get(customer, 0) + 1))
        back[customer] = back.get(customer, 0) + (status == "returned")
    return pl.DataFrame(numbered, schema=LEDGER_SCHEMA | {"attempt": pl.Int32}, orient="row")


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.rechunk().write_parquet(buffer)
    return buffer.getvalue()


def run(case, policy, n):
    rows, master, ledger = case
    return partitioned_run(rows, master, ledger, policy, n, run_date=RUN, run_id="run-1", row_key=["n"],
                           next_seq=NEXT_SEQ, released=RELEASED)


def unpartitioned(case, policy):
    """The rules called once over everything, as the stages do: what N = 1 must equal."""
    rows, master, ledger = case
    classified = classified_scope(rows.lazy(), master.select(KEY_FIELDS).lazy(), sorted(policy.categories))
    classified = classified.collect().sort("n")
    exposures = classified.filter(pl.col("destination") == "exposure").select(
        pl.col("resolved_id").alias("customer_id"), "data_category", "accessed_at", "confidence")
    entitled = entitlements(exposures.lazy(), master.select(CUSTOMER_FIELDS).lazy(), policy)
    owed = new_payments(entitled.lazy(), ledger.lazy(), policy)
    planned = batches(owed, policy, RUN, next_seq=NEXT_SEQ, released=RELEASED)
    return classified, entitled, ledger_rows(planned, policy, "run-1")


def assert_same(got: pl.DataFrame, expected: pl.DataFrame):
    assert_frame_equal(got, expected)
    assert parquet_bytes(got) == parquet_bytes(expected)


# ----------------------------------------------------------------- the partition function

def test_partition_is_md5_so_any_engine_and_machine_agrees():
    keys = ["c1", "C0000001", "고객-17", "İstanbul", "x" * 300, ""]
    expected = [int.from_bytes(hashlib.md5(k.encode()).digest()[:8], "little") % 7 for k in keys]
    assert partition_of(pl.Series(keys), 7).to_list() == expected
    assert partition_of(pl.Series(["c1", None]), 7).to_list() == [expected[0], None]


@pytest.mark.parametrize("n", [0, -1])
def test_fewer_than_one_partition_is_an_error(n):
    with pytest.raises(ValueError, match="at least 1"):
        partition_of(pl.Series(["c1"]), n)


@pytest.mark.parametrize("n", range(1, 9))
def test_every_customer_in_exactly_one_partition_and_balanced(n):
    master = pl.DataFrame({"customer_id": [f"C{i:08d}" for i in range(20_000)]})
    parts = split(with_partition(master, "customer_id", n), n)
    sizes = [p.height for p in parts]
    assert sum(sizes) == master.height
    assert pl.concat(parts)["customer_id"].sort().equals(master["customer_id"])
    # MD5 spreads evenly: 5 standard deviations of a uniform split at 20,000 ids and N = 8.
    assert max(sizes) <= 1.1 * master.height / n and min(sizes) >= 0.9 * master.height / n


# ----------------------------------------------------------------- routing by key

def _ids_in_two_partitions() -> tuple[str, str]:
    """Two customer ids whose partitions differ at N = 2 (found, not assumed)."""
    ids = pl.Series([f"c{i:02d}" for i in range(10)])
    parts = partition_of(ids, 2).to_list()
    return ids[parts.index(0)], ids[parts.index(1)]


def test_a_shared_email_held_in_two_partitions_still_goes_to_review():
    a, b = _ids_in_two_partitions()
    master = master_frame([
        dict(customer_id=a, email_norm="shared@example.test", phone_e164="+821011112222", created_at=EARLY,
             status="active", is_test=False, payout_method="voucher", bank_valid=False),
        dict(customer_id=b, email_norm="shared@example.test", phone_e164="+821033334444", created_at=EARLY,
             status="active", is_test=False, payout_method="voucher", bank_valid=False),
    ])
    rows = rows_frame([
        dict(email=" Shared@example.test", data_category="email", accessed_at=INSIDE, confidence="confirmed"),
        dict(email="nobody@example.test", phone="010-3333-4444", data_category="name", accessed_at=INSIDE),
        dict(customer_id=a, data_category="phone", accessed_at=INSIDE),
    ])
    routed, needs = routed_scope(rows, master, 2)
    assert routed.height == rows.height and routed["partition"].null_count() == 0
    got = run((rows, master, ledger_frame([])), SHIPPED, 2)
    assert got.classified.select("destination", "reason", "resolved_id", "matched_by", "candidates").rows() == [
        ("review", "ambiguous_identifier", None, "email", 2),
        ("exposure", None, b, "phone", 0),        # no one holds the email: the phone decides
        ("exposure", None, a, "customer_id", 0),
    ]
    assert got.entitlements.select("customer_id", "reason", "amount").rows() == [
        (a, "ELIGIBLE", 50000), (b, "ELIGIBLE", 50000)] if a < b else [
        (b, "ELIGIBLE", 50000), (a, "ELIGIBLE", 50000)]
    # the review row's partition holds both candidates, one of them borrowed
    review_part = routed.filter(pl.col("n") == 0)["partition"][0]
    assert set(needs.filter(pl.col("partition") == review_part)["customer_id"]) == {a, b}


# ----------------------------------------------------------------- N partitions = 1

@st.composite
def cases(draw):
    people = []
    for cid in sorted(draw(st.sets(st.sampled_from(IDS), min_size=1, max_size=14))):
        status = draw(st.sampled_from(["active", "dormant", "closed"]))
        people.append(dict(
            customer_id=cid, email_norm=draw(st.sampled_from(EMAILS)), phone_e164=draw(st.sampled_from(PHONES)),
            created_at=draw(st.sampled_from([EARLY, CREATED])), status=status,
            closed_at=draw(st.sampled_from([START - timedelta(days=3), INSIDE])) if status == "closed" else None,
            is_test=draw(st.booleans()) and draw(st.booleans()),
            payout_method=draw(st.sampled_from(["voucher", "bank_transfer"])), bank_valid=draw(st.booleans()),
        ))
    rows = [
        dict(customer_id=draw(st.sampled_from(IDS + ["ghost", None, None, None])),
             email=draw(st.sampled_from(RAW_EMAILS)), phone=draw(st.sampled_from(RAW_PHONES)),
             data_category=draw(st.sampled_from(CATEGORIES)),
             accessed_at=draw(st.sampled_from([INSIDE, INSIDE, START - timedelta(days=1), None])),
             confidence=draw(st.sampled_from(["confirmed", "confirmed", "suspected", None, "maybe"])))
        for _ in range(draw(st.integers(0, 40)))
    ]
    history = draw(st.lists(st.tuples(
        st.sampled_from(IDS), st.integers(1000, 60000), st.sampled_from(["issued", "settled", "returned"]),
        st.sampled_from(["voucher", "bank_transfer"])), max_size=10))
    return rows_frame(rows), master_frame(people), ledger_frame(history)


@settings(max_examples=20, deadline=None)
@given(case=cases(), n=st.integers(2, 8), capped=st.booleans(), cap=st.integers(20_000, 600_000))
def test_n_partitions_give_the_entitlements_and_ledger_of_one(case, n, capped, cap):
    policy = dataclasses.replace(CAPPED, total_cap=cap, **WRITER) if capped else dataclasses.replace(SHIPPED, **WRITER)
    one = run(case, policy, 1)
    classified, entitled, ledger = unpartitioned(case, policy)
    assert_same(one.classified, classified)
    assert_same(one.entitlements, entitled)
    assert_same(one.ledger, ledger)

    many = run(case, policy, n)
    assert_same(many.classified, one.classified)
    assert_same(many.entitlements, one.entitlements)
    assert_same(many.planned, one.planned)
    assert_same(many.ledger, one.ledger)
    assert len(many.customers) == n and sum(many.customers) == case[1].height


def _fixed_case():
    """Twenty customers, every one exposed at tier 3 or 2, some by email or phone only,
    a history with a return and a part payment."""
    people, rows = [], []
    for i, cid in enumerate(IDS):
        people.append(dict(customer_id=cid, email_norm=f"p{i}@example.test", phone_e164=f"+8210555500{i:02d}",
                           created_at=EARLY, status="closed" if i % 5 == 0 else "active",
                           closed_at=INSIDE if i % 5 == 0 else None, is_test=i == 7,
                           payout_method="bank_transfer" if i % 2 else "voucher", bank_valid=i % 3 != 0))
        category = "entrance_code" if i % 2 else "order_history"
        by = [dict(customer_id=cid), dict(email=f"P{i}@example.test"), dict(phone=f"010-5555-00{i:02d}")][i % 3]
        rows.append(by | dict(data_category=category, accessed_at=INSIDE, confidence="confirmed"))
    history = [("c01", 30000, "settled", "bank_transfer"), ("c03", 80000, "returned", "bank_transfer")]
    return rows_frame(rows), master_frame(people), ledger_frame(history)


@pytest.mark.parametrize("policy_name", ["shipped", "capped"])
@pytest.mark.parametrize("n", range(2, 9))
def test_every_n_up_to_8_on_a_case_where_the_cap_binds(n, policy_name):
    policy = (dataclasses.replace(CAPPED, total_cap=1_000_000, **WRITER) if policy_name == "capped"
              else dataclasses.replace(SHIPPED, **WRITER))
    case = _fixed_case()
    one, many = run(case, policy, 1), run(case, policy, n)
    for field in ("classified", "entitlements", "planned", "ledger"):
        assert_same(getattr(many, field), getattr(one, field))
    eligible = one.entitlements.filter(pl.col("reason") == "ELIGIBLE")
    assert eligible.height == 19 and one.classified["destination"].to_list() == ["exposure"] * 20
    if policy_name == "capped":
        # 9 at tier 3 (100,000; c07 is a test account) and 10 at tier 2 (50,000) pass:
        # 1,400,000 over a cap of 1,000,000, so every amount is floor(base x 1,000,000 /
        # 1,400,000), whichever partition the customer is in
        assert sorted(set(eligible["amount"])) == [35714, 71428]
    # the single writer: batches of 3, numbered on from NEXT_SEQ, bank days capped
    assert one.ledger["payment_id"].is_unique().all() and one.ledger.height == one.planned.height
    assert one.planned.filter(pl.col("rail") == "voucher")["batch_id"].min().endswith("-voucher-0004")
    bank = one.planned.filter(pl.col("rail") == "bank_transfer").group_by("value_date").agg(pl.col("amount").sum())
    day_room = {d: 150_000 - RELEASED.get(d, 0) for d in bank["value_date"]}
    assert all(total <= day_room[d] for d, total in bank.rows()) and bank.height > 1


def test_ledger_rows_are_the_warehouse_ledger_table():
    """The proof compares the rows tasks/disburse.py would insert: same columns, same types."""
    one = run(_fixed_case(), dataclasses.replace(SHIPPED, **WRITER), 1)
    con = duckdb.connect()
    con.execute(SCHEMA)
    table = con.sql("SELECT column_name, column_type FROM (DESCRIBE ledger)").fetchall()
    frame = one.ledger  # noqa: F841 (read by DuckDB by name)
    assert con.sql("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM frame)").fetchall() == table
    assert one.ledger.height == 19 and set(one.ledger["status"]) == {"issued"}
    # c01 was paid 30,000 of 50,000: the top-up; c03's returned transfer is its attempt 2
    top_up = one.ledger.filter(pl.col("customer_id").is_in(["c01", "c03"])).select("customer_id", "amount", "attempt")
    assert top_up.sort("customer_id").rows() == [("c01", 20000, 1), ("c03", 50000, 2)]
