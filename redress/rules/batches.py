"""Disbursement batches: SPEC "Disbursement batches".

New payments are grouped by rail and ordered by customer_id; each batch holds at most
max_batch_items payments and max_batch_amount. Bank transfers fill each value date up
to daily_cash_cap (counting what earlier runs already released that day) and the rest
moves to the next day; a batch never spans two days. Vouchers and claims take the run
date.

The split is greedy and exact. It walks batch by batch, not row by row: each batch end
is found with a binary search on the running total, so 33.7 million payments take a
few hundred steps. batch_cuts is the split alone (what each batch is: its rows, id and
value date); batches applies it to payments held in memory, and the disburse stage
applies it to a file (redress/disbursement/planning.py).
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import TypeVar

import numpy as np
import polars as pl

from redress.policy import Policy
from redress.vocabulary import BANK_TRANSFER, CLAIM, VOUCHER

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

RAIL_LETTER = {BANK_TRANSFER: "B", VOUCHER: "V", CLAIM: "C"}


def bank_file_reference(payment_prefix: str, policy_id: str) -> str:
    """A bank file's MsgId and PmtInfId (ISO 20022 Max35Text; at most 29 characters here):
    the batch's payment-id prefix (`batch_cuts`' `prefix`: value date, rail letter,
    sequence, unique for ever within a data folder) and the first 8 hex digits of the
    SHA-256 of `policy_id` (upper case). Two data folders paying from one debtor account,
    two programmes, number their batches alike (`20251205-B0001` in each): a bank refuses
    a second file with a MsgId it has seen (found by review); their policy ids tell them
    apart. The manifest names it as `bank_file_reference`."""
    tag = hashlib.sha256(policy_id.encode("utf-8")).hexdigest()[:8].upper()
    return f"{payment_prefix.rstrip('-')}-{tag}"


def _splits(amounts: np.ndarray, max_items: int, max_amount: int, day_room) -> list[tuple[int, int, int]]:
    """(start, end, day offset) of each batch. day_room(d) is the cash still allowed on
    day offset d, or None when the rail has no daily cap."""
    cum = np.cumsum(amounts, dtype=np.int64)
    out, start, day = [], 0, 0
    room = day_room(day)
    while start < len(amounts):
        before = int(cum[start - 1]) if start else 0
        cap = max_amount if room is None else min(max_amount, room)
        end = min(int(np.searchsorted(cum, before + cap, side="right")), start + max_items)
        if end == start:  # the next payment does not fit what is left of this day
            day += 1
            room = day_room(day)
            continue
        out.append((start, end, day))
        if room is not None:
            room -= int(cum[end - 1]) - before
        start = end
    return out


def _days(rail_name: str, policy: Policy, run_date: date, released: dict[date, int], bank_from: date | None):
    """(first value date, day_room) of a rail: bank transfers start on the policy's first
    value date, never before the run date nor `bank_from` (redress/rules/plans.py
    bank_days_from: today, unless the run is a catch-up), and fill each bank day
    (Policy.is_bank_day) up to daily_cash_cap less what is already `released` that day;
    the other rails take the run date, uncapped."""
    if rail_name != BANK_TRANSFER:
        return run_date, lambda d: None
    # A value date is never in the past: a later run (top-ups, reissues) under a policy
    # whose first_value_date has gone by starts on its own run date.
    start_day = max(policy.first_value_date or run_date, run_date, bank_from or run_date)

    def day_room(d: int) -> int:
        day = start_day + timedelta(days=d)
        if not policy.is_bank_day(day):  # a weekend or holiday under bank_days = "weekdays": no room
            return 0
        return max(policy.daily_cash_cap - released.get(day, 0), 0)
    return start_day, day_room


def _check_fits(amounts: np.ndarray, rail_name: str, policy: Policy) -> None:
    """A payment above a batch (or a bank day) could never be placed and _splits would
    look for room for ever; load_policy refuses such a policy, a hand-built one may not."""
    limit = policy.max_batch_amount
    if rail_name == BANK_TRANSFER:
        limit = min(limit, policy.daily_cash_cap)
    if len(amounts) and int(amounts.max()) > limit:
        raise ValueError(f"a {rail_name} payment of {int(amounts.max())} exceeds what one batch may hold ({limit})")


def value_days(amounts: np.ndarray, rail_name: str, policy: Policy, run_date: date,
               released: dict[date, int] | None = None, bank_from: date | None = None) -> list[tuple[date, int]]:
    """(value date, payments) of each batch `batches` would cut from one rail's payment
    amounts (KRW, in customer_id order), without building the batches: what a
    what-if needs to say how many days the transfers take. Same split, same dates."""
    _check_fits(amounts, rail_name, policy)
    start_day, day_room = _days(rail_name, policy, run_date, released or {}, bank_from)
    return [(start_day + timedelta(days=d), end - start)
            for start, end, d in _splits(amounts, policy.max_batch_items, policy.max_batch_amount, day_room)]


CUT_SCHEMA = {"rail": pl.String, "start": pl.Int64, "end": pl.Int64, "batch_id": pl.String,
              "value_date": pl.Date, "seq": pl.Int64, "prefix": pl.String}


def position_width(policy: Policy) -> int:
    """Digits of a payment's position in its batch, the last part of its payment_id."""
    return max(6, len(str(policy.max_batch_items)))


def batch_cuts(
    amounts: dict[str, np.ndarray],
    policy: Policy,
    run_date: date,
    *,
    next_seq: dict[tuple[str, date], int] | None = None,
    released: dict[date, int] | None = None,
    bank_from: date | None = None,
) -> pl.DataFrame:
    """The batches cut from each rail's new payments, one row per batch, by batch_id
    (CUT_SCHEMA): rail; start, end: the batch's payments, rows [start, end) of its rail's
    payments in customer_id order; batch_id, value_date, seq; prefix: the batch's
    payment ids less the payment's position in it (1-based, position_width digits).

    amounts: per rail, its payments' amounts (KRW) in customer_id order. next_seq: the
    next free sequence number per (rail, value_date), from earlier batches, so ids stay
    unique for ever. released: bank-transfer cash already scheduled per date. bank_from:
    the earliest value date of a bank transfer beside the run date and the policy's
    first_value_date (redress/rules/plans.py bank_days_from; None: those alone).
    Raises ValueError for a payment no batch (or bank day) could hold.
    """
    next_seq = dict(next_seq or {})
    released = released or {}
    rows = []
    for rail_name in sorted(amounts):
        rail_amounts = amounts[rail_name]
        _check_fits(rail_amounts, rail_name, policy)
        start_day, day_room = _days(rail_name, policy, run_date, released, bank_from)
        for start, end, d in _splits(rail_amounts, policy.max_batch_items, policy.max_batch_amount, day_room):
            value_date = start_day + timedelta(days=d)
            seq = next_seq.get((rail_name, value_date), 1)
            next_seq[(rail_name, value_date)] = seq + 1
            # payment_id fits ISO 20022's EndToEndId (35 characters): the value date,
            # rail and sequence make the batch unique for ever, the position the payment.
            rows.append((rail_name, start, end, f"{policy.id}-{value_date:%Y%m%d}-{rail_name}-{seq:04d}",
                         value_date, seq, f"{value_date:%Y%m%d}-{RAIL_LETTER[rail_name]}{seq:04d}-"))
    return pl.DataFrame(rows, schema=CUT_SCHEMA, orient="row").sort("batch_id")


def batches(
    payments: pl.DataFrame,
    policy: Policy,
    run_date: date,
    *,
    next_seq: dict[tuple[str, date], int] | None = None,
    released: dict[date, int] | None = None,
    bank_from: date | None = None,
) -> pl.DataFrame:
    """Adds batch_id, value_date, seq and payment_id to payments (customer_id, amount,
    rail, ...), in memory, by batch_id and payment_id; next_seq, released and bank_from
    as in batch_cuts. The disburse stage cuts the same batches from a file, without holding
    the payments (redress/disbursement/planning.py).
    """
    parts = {rail_name: payments.filter(pl.col("rail") == rail_name).sort("customer_id")
             for rail_name in sorted(payments["rail"].unique().to_list())}
    cuts = batch_cuts({rail_name: part["amount"].to_numpy() for rail_name, part in parts.items()},
                      policy, run_date, next_seq=next_seq, released=released, bank_from=bank_from)
    if cuts.is_empty():
        return payments.with_columns(
            pl.lit(None, pl.String).alias("batch_id"), pl.lit(None, pl.Date).alias("value_date"),
            pl.lit(None, pl.Int64).alias("seq"), pl.lit(None, pl.String).alias("payment_id"),
        )
    width = position_width(policy)
    for rail_name, part in parts.items():
        # One row per batch, gathered onto its payments: a string gathered shares the
        # batch's bytes, where one built per payment would cost tens of bytes each.
        each = cuts.filter(pl.col("rail") == rail_name).sort("start")
        sizes = (each["end"] - each["start"]).to_numpy()
        index = pl.Series(np.repeat(np.arange(each.height, dtype=np.int64), sizes))
        position = np.arange(part.height, dtype=np.int64) - np.repeat(each["start"].to_numpy(), sizes) + 1
        parts[rail_name] = part.with_columns(
            each["batch_id"].gather(index), each["value_date"].gather(index), each["seq"].gather(index),
            (each["prefix"].gather(index) + pl.Series(position).cast(pl.String).str.zfill(width))
            .alias("payment_id"),
        )
    # By batch_id, then payment_id: each batch is a run of its rail's rows, in position
    # order, so the plan is those runs in batch_id order, without sorting every row.
    return pl.concat([parts[rail_name].slice(start, end - start)
                      for rail_name, start, end in cuts.select("rail", "start", "end").iter_rows()])


def batch_summary(planned: Frame) -> Frame:
    """One row per planned batch (batch_id, rail, value_date, item_count, control_sum),
    by batch_id: the item count and control sum its manifest carries."""
    return (
        planned.group_by("batch_id", "rail", "value_date")
        .agg(pl.len().alias("item_count"), pl.col("amount").sum().alias("control_sum"))
        .sort("batch_id")
    )
