"""redress/rules/batches.py: SPEC "Disbursement batches"."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redress.rules.batches import batches, value_days

RUN = date(2025, 12, 1)
SCHEMA = {"customer_id": pl.String, "amount": pl.Int64, "rail": pl.String, "attempt": pl.Int32}


def payments(*amounts: int, rail: str = "voucher", prefix: str = "c") -> pl.DataFrame:
    return pl.DataFrame(
        [(f"{prefix}{i:03d}", a, rail, 1) for i, a in enumerate(amounts)], schema=SCHEMA, orient="row"
    )


def summary(out: pl.DataFrame) -> list[tuple]:
    """(batch_id, value_date, item_count, control_sum) per batch, in batch order."""
    return (
        out.group_by("batch_id", "value_date", maintain_order=True)
        .agg(pl.len().alias("n"), pl.col("amount").sum().alias("sum"))
        .sort("batch_id").rows()
    )


def sizes(out: pl.DataFrame) -> list[int]:
    return [n for _, _, n, _ in summary(out)]


# ----------------------------------------------------------------- splits

@pytest.mark.parametrize("count, max_items, expected", [
    (7, 3, [3, 3, 1]),
    (6, 3, [3, 3]),      # exactly full: no empty batch
    (3, 3, [3]),
    (1, 1, [1]),
    (4, 1, [1, 1, 1, 1]),
])
def test_split_at_max_batch_items_exactly(count, max_items, expected, policy):
    out = batches(payments(*[1000] * count), policy(max_batch_items=max_items), RUN)
    assert sizes(out) == expected


@pytest.mark.parametrize("amounts, expected", [
    ([50000] * 5, [[50000, 50000], [50000, 50000], [50000]]),    # a batch may reach the cap exactly
    ([40000, 40000, 30000], [[40000, 40000], [30000]]),
    ([60000, 50000, 40000], [[60000], [50000, 40000]]),          # greedy, in customer order
    ([100000, 1, 99999], [[100000], [1, 99999]]),
])
def test_split_at_max_batch_amount_exactly(amounts, expected, policy):
    out = batches(payments(*amounts), policy(max_batch_amount=100000, max_batch_items=100), RUN)
    got = out.group_by("batch_id", maintain_order=True).agg("amount").sort("batch_id")["amount"].to_list()
    assert got == expected


def test_items_and_amount_caps_together(policy):
    out = batches(payments(*[10000] * 10), policy(max_batch_amount=35000, max_batch_items=2), RUN)
    assert sizes(out) == [2, 2, 2, 2, 2]
    out = batches(payments(*[10000] * 10), policy(max_batch_amount=25000, max_batch_items=3), RUN)
    assert sizes(out) == [2, 2, 2, 2, 2]


def test_ordered_by_customer_id_within_rail(policy):
    frame = pl.DataFrame(
        [("c3", 3, "voucher", 1), ("c1", 1, "voucher", 1), ("c2", 2, "voucher", 1), ("c0", 9, "claim", 1)],
        schema=SCHEMA, orient="row",
    )
    out = batches(frame, policy(max_batch_items=2), RUN)
    voucher = out.filter(pl.col("rail") == "voucher").sort("payment_id")
    assert voucher["customer_id"].to_list() == ["c1", "c2", "c3"]
    assert voucher["payment_id"].to_list() == ["20251201-V0001-000001", "20251201-V0001-000002",
                                               "20251201-V0002-000001"]
    assert out.filter(pl.col("rail") == "claim")["payment_id"].to_list() == ["20251201-C0001-000001"]
    assert out["attempt"].to_list() == [1, 1, 1, 1]   # other columns are carried along


def test_input_is_not_changed(policy):
    frame = payments(1000, 2000)
    before = frame.clone()
    batches(frame, policy(), RUN)
    assert frame.equals(before) and frame.columns == before.columns


def test_no_payments_no_batches(policy):
    out = batches(payments(), policy(), RUN)
    assert out.height == 0
    assert {"batch_id", "value_date", "seq", "payment_id"} <= set(out.columns)


# ----------------------------------------------------------------- ids

def test_batch_id_format(policy):
    frame = pl.concat([payments(1000, rail="voucher"), payments(1000, rail="claim", prefix="k"),
                       payments(1000, rail="bank_transfer", prefix="b")])
    out = batches(frame, policy(), RUN)
    assert sorted(set(out["batch_id"])) == [
        "coupang-2025-v1-20251201-bank_transfer-0001",
        "coupang-2025-v1-20251201-claim-0001",
        "coupang-2025-v1-20251201-voucher-0001",
    ]
    for bid in out["batch_id"]:
        assert re.fullmatch(r"coupang-2025-v1-\d{8}-(bank_transfer|voucher|claim)-\d{4}", bid)


def test_next_seq_continues_sequences(policy):
    frame = pl.concat([payments(1000, 1000, rail="voucher"), payments(1000, rail="bank_transfer", prefix="b")])
    earlier = {("voucher", RUN): 7, ("voucher", RUN - timedelta(days=1)): 40, ("claim", RUN): 3}
    out = batches(frame, policy(max_batch_items=1), RUN, next_seq=earlier)
    assert sorted(set(out["batch_id"])) == [
        "coupang-2025-v1-20251201-bank_transfer-0001",   # its own sequence starts at 1
        "coupang-2025-v1-20251201-voucher-0007",
        "coupang-2025-v1-20251201-voucher-0008",
    ]
    assert sorted(out["payment_id"]) == ["20251201-B0001-000001", "20251201-V0007-000001", "20251201-V0008-000001"]
    assert earlier == {("voucher", RUN): 7, ("voucher", RUN - timedelta(days=1)): 40, ("claim", RUN): 3}


def test_payment_ids_fit_end_to_end_id_and_are_unique(policy):
    frame = pl.concat([payments(*[1000] * 25, rail=r, prefix=r[0]) for r in ("voucher", "claim", "bank_transfer")])
    p = policy(max_batch_items=10, daily_cash_cap=12000)
    out = batches(frame, p, RUN, next_seq={("voucher", RUN): 9999})
    assert out["payment_id"].n_unique() == out.height == 75
    assert out["payment_id"].str.len_chars().max() <= 35
    assert "20251201-V10000-000001" in out["payment_id"].to_list()   # seq past 9999 still unique


def test_payment_id_position_widens_with_max_batch_items(policy):
    out = batches(payments(1000), policy(max_batch_items=10_000_000), RUN)
    assert out["payment_id"].to_list() == ["20251201-V0001-00000001"]


# ----------------------------------------------------------------- value dates

def test_vouchers_and_claims_take_the_run_date_bank_transfers_the_first_value_date(policy):
    frame = pl.concat([payments(1000, rail="voucher"), payments(1000, rail="claim", prefix="k"),
                       payments(1000, rail="bank_transfer", prefix="b")])
    out = batches(frame, policy(first_value_date=date(2025, 12, 5)), RUN)
    assert dict(zip(out["rail"], out["value_date"])) == {
        "voucher": RUN, "claim": RUN, "bank_transfer": date(2025, 12, 5)}
    assert out.filter(pl.col("rail") == "bank_transfer")["batch_id"].item() == \
        "coupang-2025-v1-20251205-bank_transfer-0001"


@pytest.mark.parametrize("first, run_date, dated", [
    (date(2025, 12, 1), date(2025, 12, 5), date(2025, 12, 5)),   # gone by: a later run's top-ups start that day
    (date(2025, 12, 5), date(2025, 12, 5), date(2025, 12, 5)),
    (date(2025, 12, 9), date(2025, 12, 5), date(2025, 12, 9)),   # still ahead: kept
])
def test_a_first_value_date_gone_by_never_dates_a_bank_batch_before_its_run(policy, first, run_date, dated):
    """Found by the mutation review: nothing failed when a first_value_date already past
    dated the bank batch before the run (the gate then stopped the run as
    value_date_before_run_date)."""
    out = batches(payments(1000, rail="bank_transfer"), policy(first_value_date=first), run_date)
    assert out["value_date"].to_list() == [dated]


@pytest.mark.parametrize("first, bank_from, dated", [
    (None, date(2025, 12, 2), date(2025, 12, 2)),               # planned after midnight: from the new day
    (None, date(2025, 11, 30), RUN),                            # never before the run date
    (date(2025, 12, 5), date(2025, 12, 2), date(2025, 12, 5)),  # the first value date still ahead
    (date(2025, 12, 5), date(2025, 12, 7), date(2025, 12, 7)),
    (None, None, RUN),                                          # a catch-up: its run date (SPEC)
])
def test_a_bank_batch_is_never_dated_before_today_where_the_run_is_not_a_catch_up(policy, first, bank_from, dated):
    """Found by the time review: a run started at 23:50 without approval released bank
    files dated the day before. `bank_from` (redress/rules/plans.py bank_days_from) moves
    bank transfers alone; vouchers and claims keep the run date."""
    frame = pl.concat([payments(1000, rail="voucher"), payments(1000, rail="bank_transfer", prefix="b")])
    out = batches(frame, policy(first_value_date=first), RUN, bank_from=bank_from)
    assert dict(zip(out["rail"], out["value_date"])) == {"voucher": RUN, "bank_transfer": dated}
    assert out.filter(pl.col("rail") == "bank_transfer")["batch_id"].item() == \
        f"coupang-2025-v1-{dated:%Y%m%d}-bank_transfer-0001"


@pytest.mark.parametrize("holidays, dated", [
    (frozenset(), [date(2025, 12, 5), date(2025, 12, 8), date(2025, 12, 9)]),         # Friday, then Monday
    (frozenset({date(2025, 12, 8)}), [date(2025, 12, 5), date(2025, 12, 9), date(2025, 12, 10)]),
])
def test_under_weekdays_a_bank_batch_is_never_dated_on_a_weekend_or_holiday(policy, holidays, dated):
    """Found by the time review: a bank settles a file dated Saturday or Sunday on Monday,
    so Friday's, Saturday's and Sunday's caps all left that day. Vouchers keep the run
    date, a Saturday."""
    p = policy(max_batch_amount=150000, daily_cash_cap=100000, max_batch_items=100, first_value_date=date(2025, 12, 5),
               bank_days="weekdays", bank_holidays=holidays)
    saturday = date(2025, 12, 6)
    frame = pl.concat([payments(*[40000] * 5, rail="bank_transfer"), payments(1000, rail="voucher", prefix="v")])
    out = batches(frame, p, saturday - timedelta(days=1), bank_from=saturday - timedelta(days=1))
    per_day = dict(out.filter(pl.col("rail") == "bank_transfer").group_by("value_date").agg(pl.col("amount").sum())
                   .iter_rows())
    assert sorted(per_day.items()) == list(zip(dated, [80000, 80000, 40000]))
    weekend = batches(frame, dataclasses.replace(p, first_value_date=None), saturday)
    assert weekend.filter(pl.col("rail") == "voucher")["value_date"].to_list() == [saturday]
    assert min(weekend.filter(pl.col("rail") == "bank_transfer")["value_date"]) == date(2025, 12, 8) + timedelta(
        days=len(holidays))


def test_bank_transfers_fill_each_day_up_to_the_cap(policy):
    p = policy(max_batch_amount=150000, daily_cash_cap=100000, max_batch_items=100)
    out = batches(payments(*[40000] * 5, rail="bank_transfer"), p, RUN)
    assert [(d, n, s) for _, d, n, s in summary(out)] == [
        (RUN, 2, 80000), (RUN + timedelta(days=1), 2, 80000), (RUN + timedelta(days=2), 1, 40000)]
    assert {bid[-4:] for bid in out["batch_id"]} == {"0001"}   # each day its own sequence


def test_several_batches_on_one_day(policy):
    p = policy(max_batch_amount=50000, daily_cash_cap=100000, max_batch_items=100)
    out = batches(payments(*[50000] * 5, rail="bank_transfer"), p, RUN)
    d1, d2 = RUN + timedelta(days=1), RUN + timedelta(days=2)
    assert [(bid.removeprefix("coupang-2025-v1-"), d, s) for bid, d, _, s in summary(out)] == [
        ("20251201-bank_transfer-0001", RUN, 50000), ("20251201-bank_transfer-0002", RUN, 50000),
        ("20251202-bank_transfer-0001", d1, 50000), ("20251202-bank_transfer-0002", d1, 50000),
        ("20251203-bank_transfer-0001", d2, 50000),
    ]


def test_vouchers_have_no_daily_cap(policy):
    p = policy(daily_cash_cap=50000, max_batch_amount=10**9)
    out = batches(payments(*[50000] * 5, rail="voucher"), p, RUN)
    assert summary(out) == [("coupang-2025-v1-20251201-voucher-0001", RUN, 5, 250000)]


@pytest.mark.parametrize("released, expected", [
    pytest.param({RUN: 20000}, [(RUN, 80000), (RUN + timedelta(days=1), 80000), (RUN + timedelta(days=2), 40000)],
                 id="room-left-for-two"),
    pytest.param({RUN: 70000}, [(RUN, 0), (RUN + timedelta(days=1), 80000), (RUN + timedelta(days=2), 80000),
                                (RUN + timedelta(days=3), 40000)], id="room-for-none-moves-on"),
    pytest.param({RUN: 250000}, [(RUN + timedelta(days=1), 80000), (RUN + timedelta(days=2), 80000),
                                 (RUN + timedelta(days=3), 40000)], id="already-over-cap"),
    pytest.param({RUN + timedelta(days=1): 60000},
                 [(RUN, 80000), (RUN + timedelta(days=1), 40000), (RUN + timedelta(days=2), 80000)],
                 id="later-day-partly-used"),
])
def test_released_amounts_count_against_the_day(released, expected, policy):
    p = policy(max_batch_amount=150000, daily_cash_cap=100000, max_batch_items=100)
    out = batches(payments(*[40000] * 5, rail="bank_transfer"), p, RUN, released=released)
    per_day = dict(out.group_by("value_date").agg(pl.col("amount").sum()).iter_rows())
    assert [(d, per_day.get(d, 0)) for d, _ in expected] == expected
    assert sum(per_day.values()) == 200000


def test_released_uses_the_first_value_date(policy):
    first = date(2025, 12, 10)
    p = policy(max_batch_amount=150000, daily_cash_cap=100000, first_value_date=first)
    out = batches(payments(40000, 40000, rail="bank_transfer"), p, RUN, released={first: 90000, RUN: 100000})
    assert set(out["value_date"]) == {first + timedelta(days=1)}


# ----------------------------------------------------------------- invariants

@st.composite
def scenario(draw):
    largest = draw(st.integers(1, 1000))
    max_items = draw(st.integers(1, 6))
    max_amount = draw(st.integers(largest, largest * 5))
    daily = draw(st.integers(largest, largest * 8))
    rails = ["voucher", "claim", "bank_transfer"]
    rows = draw(st.lists(st.tuples(st.sampled_from(rails), st.integers(1, largest)), max_size=60))
    released = draw(st.dictionaries(st.integers(0, 4), st.integers(0, daily * 2), max_size=3))
    first = draw(st.none() | st.just(RUN + timedelta(days=2)))
    # today, for a run dated the day it started (redress/rules/plans.py bank_days_from)
    bank_from = draw(st.none() | st.integers(-1, 4).map(lambda d: RUN + timedelta(days=d)))
    # weekdays but some holidays (bank_days = "weekdays"), or every day (the SPEC's)
    holidays = draw(st.none() | st.sets(st.integers(0, 12).map(lambda d: RUN + timedelta(days=d)), max_size=4))
    return largest, max_items, max_amount, daily, rows, released, first, bank_from, holidays


@settings(max_examples=150, deadline=None)
@given(scenario())
def test_batch_invariants(policy, case):
    largest, max_items, max_amount, daily, rows, released_days, first, bank_from, holidays = case
    p = policy(tiers={1: largest}, max_batch_items=max_items, max_batch_amount=max_amount,
               daily_cash_cap=daily, first_value_date=first,
               **({} if holidays is None else {"bank_days": "weekdays", "bank_holidays": frozenset(holidays)}))
    frame = pl.DataFrame([(f"c{i:03d}", a, r, 1) for i, (r, a) in enumerate(rows)], schema=SCHEMA, orient="row")
    bank_start = max(first or RUN, bank_from or RUN)  # never before the run date, the first value date or today
    released = {bank_start + timedelta(days=d): amount for d, amount in released_days.items()}
    out = batches(frame, p, RUN, released=released, bank_from=bank_from)

    # every payment in exactly one batch, amounts unchanged
    assert out.height == frame.height
    assert sorted(out.select("customer_id", "amount", "rail").rows()) == sorted(
        frame.select("customer_id", "amount", "rail").rows())
    assert out["payment_id"].n_unique() == out.height
    if out.height == 0:
        return
    # in the order every reader of a plan relies on (the batch folders are cut from it)
    assert out.equals(out.sort("batch_id", "payment_id"))
    # each payment's id is its batch's date, rail and sequence, then its place in the batch
    expected = out.with_columns(pl.int_range(1, pl.len() + 1).over("batch_id").alias("place")).select(
        pl.col("value_date").dt.strftime("%Y%m%d") + "-" + pl.col("rail").replace_strict(
            {"bank_transfer": "B", "voucher": "V", "claim": "C"}) + pl.col("seq").cast(pl.String).str.zfill(4)
        + "-" + pl.col("place").cast(pl.String).str.zfill(6))
    assert out["payment_id"].to_list() == expected.to_series().to_list()
    per_batch = out.group_by("batch_id").agg(
        pl.len().alias("n"), pl.col("amount").sum().alias("sum"),
        pl.col("rail").n_unique().alias("rails"), pl.col("value_date").n_unique().alias("days"),
        pl.col("rail").first(), pl.col("value_date").first(),
    )
    # no batch over its caps; one rail and one day per batch
    assert (per_batch["n"] <= max_items).all()
    assert (per_batch["sum"] <= max_amount).all()
    assert (per_batch["rails"] == 1).all() and (per_batch["days"] == 1).all()
    # control sums equal: the batches hold exactly the money of the payments
    assert per_batch["sum"].sum() == frame["amount"].sum()
    # no day over the treasury cap, counting what was already released
    bank = out.filter(pl.col("rail") == "bank_transfer")
    for day, amount in bank.group_by("value_date").agg(pl.col("amount").sum()).iter_rows():
        assert day >= bank_start and p.is_bank_day(day)  # never a weekend or holiday under "weekdays"
        assert amount + released.get(day, 0) <= daily
    # vouchers and claims take the run date
    assert set(out.filter(pl.col("rail") != "bank_transfer")["value_date"]) <= {RUN}
    # within a rail, customer order follows batch order (and days never go back)
    for rail_name in out["rail"].unique():
        part = out.filter(pl.col("rail") == rail_name).sort("value_date", "seq", "payment_id")
        assert part["customer_id"].to_list() == sorted(part["customer_id"].to_list())
    # greedy: a batch ends only when the next payment would break a cap, and a day is
    # left only when the next payment no longer fits what is left of it
    day_total = dict(bank.group_by("value_date").agg(pl.col("amount").sum()).iter_rows())
    for rail_name in out["rail"].unique():
        ordered = per_batch.filter(pl.col("rail") == rail_name).sort("value_date", "batch_id")
        firsts = [out.filter(pl.col("batch_id") == b).sort("payment_id")["amount"][0] for b in ordered["batch_id"]]
        day = bank_start if rail_name == "bank_transfer" else RUN
        for i, batch in enumerate(ordered.to_dicts()):
            while day < batch["value_date"]:   # every day skipped had no room for this payment, or is no bank day
                assert (rail_name == "bank_transfer" and not p.is_bank_day(day)
                        or day_total.get(day, 0) + released.get(day, 0) + firsts[i] > daily)
                day += timedelta(days=1)
            if i + 1 < len(firsts) and ordered["value_date"][i + 1] == day:
                assert batch["n"] == max_items or batch["sum"] + firsts[i + 1] > max_amount


@pytest.mark.parametrize("rail, changes", [
    ("voucher", {"max_batch_amount": 49999}),
    ("claim", {"max_batch_amount": 49999}),
    ("bank_transfer", {"max_batch_amount": 49999}),
    ("bank_transfer", {"daily_cash_cap": 49999}),
])
def test_a_payment_that_can_never_fit_is_an_error_not_an_endless_loop(rail, changes, policy):
    # load_policy refuses such a policy; a hand-built one must not hang the run
    with pytest.raises(ValueError, match="exceeds what one batch may hold"):
        batches(payments(1000, 50000, rail=rail), policy(**changes), RUN)


def test_a_voucher_is_not_limited_by_the_bank_daily_cap(policy):
    out = batches(payments(50000, rail="voucher"), policy(daily_cash_cap=1000), RUN)
    assert out["amount"].to_list() == [50000]


@settings(max_examples=100, deadline=None)
@given(scenario())
def test_value_days_are_the_days_of_the_batches_without_building_them(policy, case):
    """rules.batches.value_days (what a what-if reads) gives, batch by batch, the value
    date and size of the batches `batches` cuts from the same payments."""
    largest, max_items, max_amount, daily, rows, released_days, first, bank_from, holidays = case
    p = policy(tiers={1: largest}, max_batch_items=max_items, max_batch_amount=max_amount,
               daily_cash_cap=daily, first_value_date=first,
               **({} if holidays is None else {"bank_days": "weekdays", "bank_holidays": frozenset(holidays)}))
    frame = pl.DataFrame([(f"c{i:03d}", a, r, 1) for i, (r, a) in enumerate(rows)], schema=SCHEMA, orient="row")
    released = {max(first or RUN, bank_from or RUN) + timedelta(days=d): amount for d, amount in released_days.items()}
    out = batches(frame, p, RUN, released=released, bank_from=bank_from)
    for rail_name in ("bank_transfer", "voucher", "claim"):
        part = out.filter(pl.col("rail") == rail_name)
        cut = part.group_by("batch_id").agg(pl.col("value_date").first(), pl.len()).sort("batch_id")
        amounts = frame.filter(pl.col("rail") == rail_name).sort("customer_id")["amount"].to_numpy()
        assert sorted(value_days(amounts, rail_name, p, RUN, released, bank_from)) == sorted(
            cut.select("value_date", "len").rows())


@given(policy_ids=st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True), min_size=2,
                           max_size=2, unique=True),
       day=st.dates(date(1900, 1, 1), date(2999, 12, 31)), seq=st.integers(1, 99_999))
def test_a_bank_file_reference_fits_msg_id_and_differs_between_programmes(policy_ids, day, seq):
    """Found by review: two data folders paying from one debtor account both sent MsgId
    `20251205-B0001`, which a bank refuses the second time. The reference is the payment
    ids' prefix and a tag of the policy id: the same for one programme, another for
    another, and within Max35Text."""
    from redress.rules.batches import bank_file_reference
    prefix = f"{day:%Y%m%d}-B{seq:04d}-"
    first, second = (bank_file_reference(prefix, p) for p in policy_ids)
    assert re.fullmatch(rf"{prefix}[0-9A-F]{{8}}", first) and len(first) <= 35
    assert first != second
    assert bank_file_reference(prefix, policy_ids[0]) == first
