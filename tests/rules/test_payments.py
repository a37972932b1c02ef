"""redress/rules/payments.py: SPEC "Ledger: paying exactly once, whatever the scope does"."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from redress.rules.payments import (bank_returns, bank_returns_sql, new_payments, overpayments, payment_history,
                                     pending, pending_sql)

ENT_SCHEMA = {"customer_id": pl.String, "reason": pl.String, "amount": pl.Int64, "rail": pl.String}
LEDGER_SCHEMA = {"customer_id": pl.String, "amount": pl.Int64, "status": pl.String, "rail": pl.String}


def ent(*rows) -> pl.LazyFrame:
    return pl.LazyFrame(list(rows), schema=ENT_SCHEMA, orient="row")


def ledger(*rows) -> pl.LazyFrame:
    """Ledger rows (customer_id, amount, status, rail) of a history in the order it
    happened, each with the attempt the run that issued it gave: 1 + how many of the
    customer's payments came back (returned or cancelled) before it, each in its own run."""
    back: dict[str, int] = {}
    numbered = []
    for customer, amount, status, rail in rows:
        numbered.append((customer, amount, status, rail, back.get(customer, 0) + 1))
        back[customer] = back.get(customer, 0) + (status in ("returned", "cancelled"))
    return pl.LazyFrame(numbered, schema=LEDGER_SCHEMA | {"attempt": pl.Int32}, orient="row")


def pay(entitlements, led, policy) -> list[tuple]:
    out = new_payments(entitlements, led, policy)
    assert out.columns == ["customer_id", "amount", "rail", "attempt"]
    return out.rows()


# ----------------------------------------------------------------- new payments

def test_first_payment_for_every_eligible_customer(policy):
    got = pay(ent(("b", "ELIGIBLE", 50000, "bank_transfer"), ("a", "ELIGIBLE", 50000, "voucher"),
                  ("c", "OUTSIDE_WINDOW", 0, "voucher"), ("d", "BELOW_MINIMUM", 0, "voucher")),
              ledger(), policy())
    assert got == [("a", 50000, "voucher", 1), ("b", 50000, "bank_transfer", 1)]


@pytest.mark.parametrize("history, expected", [
    pytest.param([(30000, "settled", "voucher")], [("a", 20000, "voucher", 1)], id="top-up-after-increase"),
    pytest.param([(30000, "issued", "voucher")], [("a", 20000, "voucher", 1)], id="issued-counts-as-paid"),
    pytest.param([(20000, "settled", "voucher"), (10000, "issued", "voucher")], [("a", 20000, "voucher", 1)],
                 id="settled-and-issued-add-up"),
    pytest.param([(50000, "settled", "voucher")], [], id="paid-in-full"),
    pytest.param([(49001, "settled", "voucher")], [], id="owed-below-minimum-stays-owed"),
    pytest.param([(49000, "settled", "voucher")], [("a", 1000, "voucher", 1)], id="owed-exactly-minimum"),
    pytest.param([(60000, "settled", "voucher")], [], id="overpaid-no-clawback"),
    pytest.param([(50000, "cancelled", "claim")], [("a", 50000, "voucher", 2)], id="cancelled-is-not-paid"),
])
def test_owed_after_history(history, expected, policy):
    led = ledger(*[("a", *h) for h in history])
    assert pay(ent(("a", "ELIGIBLE", 50000, "voucher")), led, policy()) == expected


def test_minimum_zero_still_pays_nothing_when_nothing_is_owed(policy):
    led = ledger(("a", 50000, "settled", "voucher"), ("b", 49999, "settled", "voucher"))
    got = pay(ent(("a", "ELIGIBLE", 50000, "voucher"), ("b", "ELIGIBLE", 50000, "voucher")), led,
              policy(minimum_amount=0))
    assert got == [("b", 1, "voucher", 1)]


def test_returned_payments_do_not_count_and_raise_the_attempt(policy):
    led = ledger(("a", 50000, "returned", "bank_transfer"))
    got = pay(ent(("a", "ELIGIBLE", 50000, "bank_transfer")), led, policy())
    assert got == [("a", 50000, "bank_transfer", 2)]


def test_reissue_after_return_on_top_of_a_settled_part(policy):
    led = ledger(("a", 30000, "settled", "voucher"), ("a", 20000, "returned", "voucher"))
    assert pay(ent(("a", "ELIGIBLE", 50000, "voucher")), led, policy()) == [("a", 20000, "voucher", 2)]


@pytest.mark.parametrize("returns, max_attempts, expected_rail", [
    (1, 3, "bank_transfer"),
    (2, 3, "bank_transfer"),
    (3, 3, "claim"),
    (4, 3, "claim"),
    (1, 1, "claim"),
])
def test_bank_transfer_returned_max_attempts_times_moves_to_claim(returns, max_attempts, expected_rail, policy):
    led = ledger(*[("a", 50000, "returned", "bank_transfer")] * returns)
    got = pay(ent(("a", "ELIGIBLE", 50000, "bank_transfer")), led, policy(max_attempts=max_attempts))
    assert got == [("a", 50000, expected_rail, returns + 1)]


def test_returned_vouchers_do_not_count_as_bank_returns(policy):
    led = ledger(*[("a", 50000, "returned", "voucher")] * 3)
    got = pay(ent(("a", "ELIGIBLE", 50000, "bank_transfer")), led, policy(max_attempts=3))
    assert got == [("a", 50000, "bank_transfer", 4)]


def test_other_customers_history_does_not_leak(policy):
    led = ledger(*[("b", 50000, "returned", "bank_transfer")] * 3, ("b", 50000, "settled", "voucher"))
    got = pay(ent(("a", "ELIGIBLE", 50000, "bank_transfer"), ("b", "ELIGIBLE", 50000, "voucher")), led, policy())
    assert got == [("a", 50000, "bank_transfer", 1)]


# ----------------------------------------------------------------- claims (SPEC "Input: claims from customer service")

ATTEMPT_SCHEMA = {**LEDGER_SCHEMA, "attempt": pl.Int32}


def attempts(*rows) -> pl.LazyFrame:
    return pl.LazyFrame(list(rows), schema=ATTEMPT_SCHEMA, orient="row")


def claimed(*customers) -> pl.LazyFrame:
    return pl.LazyFrame({"customer_id": list(customers)}, schema={"customer_id": pl.String})


@pytest.mark.parametrize("rail", ["claim", "bank_transfer"])
def test_a_claim_pays_what_was_held_by_bank_transfer_attempt_plus_one(rail, policy):
    """Held on claim (a closed account without bank details, or after max_attempts bank
    returns), then claimed: the cancelled payment is owed again, by transfer."""
    history = [("a", 50000, "returned", "bank_transfer", n) for n in (1, 2, 3)] if rail == "bank_transfer" else []
    held = ("a", 50000, "cancelled", "claim", len(history) + 1)
    out = new_payments(ent(("a", "ELIGIBLE", 50000, rail)), attempts(*history, held), policy(), claimed("a"))
    assert out.rows() == [("a", 50000, "bank_transfer", len(history) + 2)]


def test_a_held_claim_is_not_paid_again_before_it_is_claimed(policy):
    led = attempts(("a", 50000, "issued", "claim", 1))
    assert new_payments(ent(("a", "ELIGIBLE", 50000, "claim")), led, policy(), claimed()).height == 0


@pytest.mark.parametrize("returns_since_claim, expected_rail", [(0, "bank_transfer"), (1, "bank_transfer"),
                                                              (2, "bank_transfer"), (3, "claim")])
def test_a_claimed_transfer_follows_the_reissue_then_claim_path(returns_since_claim, expected_rail, policy):
    """Bank returns before the claim do not count again: only those since the latest
    cancellation move a claimant back to claim after max_attempts."""
    before = [("a", 50000, "returned", "bank_transfer", n) for n in (1, 2, 3)]
    since = [("a", 50000, "returned", "bank_transfer", 5 + n) for n in range(returns_since_claim)]
    led = attempts(*before, ("a", 50000, "cancelled", "claim", 4), *since)
    out = new_payments(ent(("a", "ELIGIBLE", 50000, "bank_transfer")), led, policy(max_attempts=3), claimed("a"))
    assert out.rows() == [("a", 50000, expected_rail, 5 + returns_since_claim)]


def test_a_top_up_issued_while_the_first_transfer_was_out_is_the_same_attempt(policy):
    """A top-up issued while the first transfer was still out takes its attempt number
    (1): both returned, the money came back once, so the reissue of both is attempt 2 and
    on the bank rail (SPEC "Payout rail": a transfer returned max_attempts times goes to
    claim); then that reissue returned is twice, and a third return is max_attempts (3).
    Session 45 counted each returned payment instead, so a history of a first payment
    and two top-ups, all returned together, went to claim at once with attempt 4, never
    reissued (found by review)."""
    pays = ent(("a", "ELIGIBLE", 80000, "bank_transfer"))
    sent = [("a", 50000, "returned", "bank_transfer", 1), ("a", 20000, "returned", "bank_transfer", 1),
            ("a", 10000, "returned", "bank_transfer", 1)]
    assert new_payments(pays, attempts(*sent), policy(max_attempts=3), claimed()).rows() == [
        ("a", 80000, "bank_transfer", 2)]
    again = [*sent, ("a", 80000, "returned", "bank_transfer", 2)]
    assert new_payments(pays, attempts(*again), policy(max_attempts=3), claimed()).rows() == [
        ("a", 80000, "bank_transfer", 3)]
    third = [*again, ("a", 80000, "returned", "bank_transfer", 3)]
    assert new_payments(pays, attempts(*third), policy(max_attempts=3), claimed()).rows() == [
        ("a", 80000, "claim", 4)]
    # a top-up issued while the reissue (attempt 2) was out is attempt 2 too
    mixed = [("a", 50000, "returned", "bank_transfer", 1), ("a", 50000, "returned", "bank_transfer", 2),
             ("a", 10000, "returned", "bank_transfer", 2)]
    assert new_payments(ent(("a", "ELIGIBLE", 60000, "bank_transfer")), attempts(*mixed), policy(max_attempts=3),
                        claimed()).rows() == [("a", 60000, "bank_transfer", 3)]


ORDERED = {**ATTEMPT_SCHEMA, "issued_seq": pl.Int64, "back_seq": pl.Int64}


def in_runs(*rows) -> pl.LazyFrame:
    """Ledger rows with the run order (rules.payments.LEDGER_SQL): customer_id, amount,
    status, rail, attempt, the run that issued it and the run that applied its return."""
    return pl.LazyFrame(list(rows), schema=ORDERED, orient="row")


def test_a_top_up_after_money_was_sent_again_is_its_own_first_sending(policy):
    """Found by the review of the rule above: attempts 1 and 2 came back, 3 settled; a
    top-up five runs later took attempt 3 (the highest that came back + 1) and, returned
    once, went to claim, and explain said it came back 3 times. With the run order, a
    payment that came back in a run that then paid again is sent again: the top-up is
    attempt 1, and returned once, it is reissued by transfer as attempt 2."""
    chain = [("a", 30000, "returned", "bank_transfer", 1, 1, 2), ("a", 30000, "returned", "bank_transfer", 2, 2, 3),
             ("a", 30000, "settled", "bank_transfer", 3, 3, None)]
    pays = ent(("a", "ELIGIBLE", 50000, "bank_transfer"))
    assert new_payments(pays, in_runs(*chain), policy(max_attempts=3), claimed()).rows() == [
        ("a", 20000, "bank_transfer", 1)]
    back = [*chain, ("a", 20000, "returned", "bank_transfer", 1, 5, 6)]
    assert new_payments(pays, in_runs(*back), policy(max_attempts=3), claimed()).rows() == [
        ("a", 20000, "bank_transfer", 2)]
    # the chain itself still goes to claim at its third return, whatever came before
    third = [*chain[:2], ("a", 30000, "returned", "bank_transfer", 3, 3, 4)]
    assert new_payments(ent(("a", "ELIGIBLE", 30000, "bank_transfer")), in_runs(*third), policy(max_attempts=3),
                        claimed()).rows() == [("a", 30000, "claim", 4)]
    # a top-up issued while a reissue was out, the reissue settled, the top-up returned:
    # the top-up's money was sent once (it is attempt 1: nothing was pending at its run)
    mixed = [("a", 30000, "returned", "bank_transfer", 1, 1, 2), ("a", 30000, "settled", "bank_transfer", 2, 2, None),
             ("a", 20000, "returned", "bank_transfer", 1, 3, 4)]
    assert new_payments(pays, in_runs(*mixed), policy(max_attempts=2), claimed()).rows() == [
        ("a", 20000, "bank_transfer", 2)]


def test_money_held_on_claim_stays_held_for_a_top_up_until_a_claim(policy):
    """Three returns held the money on claim (attempt 4, in the run after the third
    return); a top-up later goes on claim too, not by transfer to the account that
    failed three times; a claim cancels both and pays by transfer, attempt + 1."""
    held = [("a", 50000, "returned", "bank_transfer", n, n, n + 1) for n in (1, 2, 3)]
    held.append(("a", 50000, "issued", "claim", 4, 4, None))
    pays = ent(("a", "ELIGIBLE", 70000, "bank_transfer"))
    assert new_payments(pays, in_runs(*held), policy(max_attempts=3), claimed()).rows() == [
        ("a", 20000, "claim", 1)]
    cancelled = [*held[:3], ("a", 50000, "cancelled", "claim", 4, 4, 6), ("a", 20000, "cancelled", "claim", 1, 5, 6)]
    assert new_payments(pays, in_runs(*cancelled), policy(max_attempts=3), claimed("a")).rows() == [
        ("a", 70000, "bank_transfer", 5)]


def test_a_return_applied_in_a_run_that_paid_nothing_is_still_pending(policy):
    """Money that came back in a run that issued nothing to the person (owed below the
    minimum, say) is not sent again until a later run pays it."""
    led = in_runs(("a", 50000, "returned", "bank_transfer", 1, 1, 2), ("a", 50000, "returned", "bank_transfer", 2, 2, 4))
    got = payment_history(led).collect().row(0, named=True)
    assert (got["came_back"], got["bank_returns"]) == (2, 2)


def test_a_claim_of_several_held_payments_is_paid_at_their_attempt_plus_one(policy):
    """A closed account without bank details held a first payment and a top-up on claim
    (both attempt 1); the claim cancels both, and the transfer to the claimed account is
    attempt 2 (SPEC "Input: claims": attempt + 1), not 3 (found by review)."""
    led = attempts(("a", 50000, "cancelled", "claim", 1), ("a", 10000, "cancelled", "claim", 1))
    got = new_payments(ent(("a", "ELIGIBLE", 60000, "claim")), led, policy(), claimed("a"))
    assert got.rows() == [("a", 60000, "bank_transfer", 2)]


@pytest.mark.parametrize("rail", ["voucher", "bank_transfer", "claim"])
def test_a_claimant_is_paid_by_transfer_whatever_the_master_says_now(rail, policy):
    """Found by review: held after three bank returns, then the master's bank details
    went (the rail became voucher), then a claim: the claim's run issued vouchers, and
    the claimed account was never paid (SPEC "Input: claims": the same run issues a bank
    transfer to it). A later top-up goes to the same account too."""
    returned = [("a", 50000, "returned", "bank_transfer", n) for n in (1, 2, 3)]
    led = attempts(*returned, ("a", 50000, "cancelled", "claim", 4), ("b", 50000, "issued", "claim", 1))
    out = new_payments(ent(("a", "ELIGIBLE", 50000, rail), ("b", "ELIGIBLE", 50000, "claim")), led, policy(),
                       claimed("a"))
    assert out.rows() == [("a", 50000, "bank_transfer", 5)]  # b: held, not claimed, not paid again
    topped = attempts(*returned, ("a", 50000, "cancelled", "claim", 4), ("a", 50000, "settled", "bank_transfer", 5))
    out = new_payments(ent(("a", "ELIGIBLE", 70000, rail)), topped, policy(), claimed("a"))
    assert out.rows() == [("a", 20000, "bank_transfer", 1)]  # new money: its first sending


# ----------------------------------------------------------------- overpayments

def test_overpayment_exception_when_entitlement_fell():
    entitlements = ent(("a", "ELIGIBLE", 33333, "voucher"), ("b", "OUTSIDE_WINDOW", 0, "voucher"),
                       ("c", "ELIGIBLE", 50000, "voucher"), ("d", "ELIGIBLE", 50000, "voucher"))
    led = ledger(
        ("a", 50000, "settled", "voucher"),               # pro rata fell
        ("b", 50000, "issued", "voucher"),                # no longer eligible
        ("c", 50000, "settled", "voucher"),               # paid exactly
        ("d", 50000, "returned", "voucher"),              # returned money is not paid
        ("e", 10000, "settled", "voucher"),               # no entitlement at all any more
    )
    out = overpayments(entitlements, led)
    assert out.columns == ["customer_id", "entitled", "paid", "overpaid", "held_above", "paid_out_above"]
    assert out.rows() == [("a", 33333, 50000, 16667, 0, 16667), ("b", 0, 50000, 50000, 0, 50000),
                          ("e", 0, 10000, 10000, 0, 10000)]


def test_money_held_on_claim_is_the_first_in_excess_and_not_paid_out():
    """Found by finance review: held claim money above a lowered entitlement read as
    overpaid. f: BELOW_MINIMUM now, 900,000 held; g: 30,000 paid out and 15,000 held
    against 10,000 (15,000 held above, 20,000 paid out above); h: held within it; a
    cancelled claim payment is neither."""
    entitlements = ent(("f", "BELOW_MINIMUM", 0, "claim"), ("g", "ELIGIBLE", 10000, "voucher"),
                       ("h", "ELIGIBLE", 50000, "claim"))
    led = ledger(("f", 900000, "issued", "claim"), ("g", 30000, "settled", "voucher"),
                 ("g", 15000, "issued", "claim"), ("g", 5000, "cancelled", "claim"),
                 ("h", 50000, "issued", "claim"))
    assert overpayments(entitlements, led).rows() == [("f", 0, 900000, 900000, 900000, 0),
                                                      ("g", 10000, 45000, 35000, 15000, 20000)]


def test_no_overpayment_on_an_empty_ledger():
    assert overpayments(ent(("a", "ELIGIBLE", 50000, "voucher")), ledger()).height == 0


# ----------------------------------------------------------------- the per-customer history, as a property

ledger_rows = st.lists(st.tuples(
    st.sampled_from(["a", "b", "c"]), st.integers(1, 90000),
    st.sampled_from(["issued", "settled", "returned", "cancelled"]),
    st.sampled_from(["bank_transfer", "voucher", "claim"]), st.integers(1, 5),
), max_size=30)


@given(rows=ledger_rows)
def test_the_payment_history_is_the_ledger_read_one_customer_at_a_time(rows):
    """payment_history over many customers equals the SPEC's reading of each one's ledger
    alone: paid = issued + settled, came_back = the highest attempt returned or cancelled,
    bank_returns = how many distinct attempts of returned transfers lie above the latest
    cancellation's and within the chain owed now (up to came_back, or below the attempt
    of money held on claim), 0 when none."""
    frame = pl.LazyFrame(rows, schema=LEDGER_SCHEMA | {"attempt": pl.Int32}, orient="row")
    got = {r["customer_id"]: r for r in payment_history(frame).collect().to_dicts()}
    assert set(got) == {r[0] for r in rows}
    for customer, row in got.items():
        mine = [r for r in rows if r[0] == customer]
        last_cancel = max((r[4] for r in mine if r[2] == "cancelled"), default=0)
        assert row["paid"] == sum(r[1] for r in mine if r[2] in ("issued", "settled"))
        # without the run order, a payment that came back is not sent again yet while no
        # payment has a higher attempt (rules.payments.pending)
        last = max(r[4] for r in mine)
        assert row["came_back"] == max((r[4] for r in mine if r[2] in ("returned", "cancelled") and r[4] >= last),
                                       default=0)
        held = max((r[4] for r in mine if r[2] in ("issued", "settled") and r[3] == "claim"), default=0)
        chain = max(row["came_back"], held - 1)
        assert row["bank_returns"] == len({r[4] for r in mine if r[2] == "returned" and r[3] == "bank_transfer"
                                            and last_cancel < r[4] <= chain})
        assert row["claimed"] is None


# Ledger rows with the run order: (customer, status, rail, attempt, issued_seq, back_seq).
ordered_rows = st.lists(st.tuples(
    st.sampled_from(["a", "b", "c"]), st.sampled_from(["issued", "settled", "returned", "cancelled"]),
    st.sampled_from(["bank_transfer", "voucher", "claim"]), st.integers(1, 5),
    st.one_of(st.none(), st.integers(1, 6)), st.one_of(st.none(), st.integers(1, 7)),
), max_size=30)


@given(rows=ordered_rows)
def test_bank_returns_count_each_sending_by_transfer_that_came_back_since_the_latest_claim(rows):
    """bank_returns, and its SQL twin bank_returns_sql (the report's kinds and the
    reconciliation), over any ledger with the run order, equal one customer's reading:
    the distinct attempts of their returned transfers issued in or after the run that
    applied their latest cancellation (above its attempt when a run is unknown). A voucher
    that came back raised the attempt but is no bank return; a claimant's top-up starts
    at attempt 1 and still counts (both found by review)."""
    frame = pl.DataFrame(rows, schema={"customer_id": pl.String, "status": pl.String, "rail": pl.String,
                                       "attempt": pl.Int32, "issued_seq": pl.Int64, "back_seq": pl.Int64},
                         orient="row").with_columns(pl.lit(1000, pl.Int64).alias("amount"))
    got = dict(bank_returns(frame.lazy()).collect().iter_rows())
    with duckdb.connect() as con:
        con.register("ordered_ledger", frame)
        in_sql = dict(con.execute(bank_returns_sql("ordered_ledger")).fetchall())
        # pending in SQL (the report's kinds, bank_returns_sql) is pending in Polars
        assert dict(con.execute(pending_sql("ordered_ledger")).fetchall()) == dict(
            pending(frame.lazy()).group_by("customer_id").agg(pl.col("attempt").max()).collect().iter_rows())
    expected = {}
    for customer in {r[0] for r in rows}:
        mine = [r for r in rows if r[0] == customer]
        cancels = [r for r in mine if r[1] == "cancelled"]
        cancel_seq = max((r[5] for r in cancels if r[5] is not None), default=None)
        cancel_attempt = max((r[3] for r in cancels), default=0)
        # the chain owed now: what came back and was not sent again (rules.payments.pending),
        # else what is held on claim below its held payment's attempt
        last_issue = max((r[4] for r in mine if r[4] is not None), default=None)
        last_attempt = max(r[3] for r in mine)
        came_back = max((r[3] for r in mine if r[1] in ("returned", "cancelled")
                         and (r[5] > last_issue if r[5] is not None and last_issue is not None
                              else r[3] >= last_attempt)), default=0)
        held = max((r[3] for r in mine if r[1] in ("issued", "settled") and r[2] == "claim"), default=0)
        chain = max(came_back, held - 1)
        since = [r for r in mine if r[1] == "returned" and r[2] == "bank_transfer" and r[3] <= chain
                 and (r[4] >= cancel_seq if cancel_seq is not None and r[4] is not None else r[3] > cancel_attempt)]
        if since:  # the attempts, or the runs that applied the returns (a return without one its own)
            expected[customer] = min(len({r[3] for r in since}),
                                     len({r[5] if r[5] is not None else -r[3] for r in since}))
    assert got == expected
    assert in_sql == expected


def test_a_voucher_that_came_back_is_no_bank_return(policy):
    """The review's case: a voucher returned (attempt 1), the money sent again by
    transfer (the master changed), returned once (attempt 2): under max_attempts = 2 it
    is sent by transfer again (attempt 3), not held on claim; the next return holds it."""
    pays = ent(("a", "ELIGIBLE", 50000, "bank_transfer"))
    back = [("a", 50000, "returned", "voucher", 1, 1, 2), ("a", 50000, "returned", "bank_transfer", 2, 2, 3)]
    assert new_payments(pays, in_runs(*back), policy(max_attempts=2), claimed()).rows() == [
        ("a", 50000, "bank_transfer", 3)]
    again = [*back, ("a", 50000, "returned", "bank_transfer", 3, 3, 4)]
    assert new_payments(pays, in_runs(*again), policy(max_attempts=2), claimed()).rows() == [
        ("a", 50000, "claim", 4)]


def test_a_claimant_s_top_up_returned_max_attempts_times_is_held_on_claim(policy):
    """The review's case: held on claim (attempt 1), claimed in run 2 (cancelled; the
    claimed transfer, attempt 2, settled), then a top-up by transfer (attempt 1, run 3)
    returned once: under max_attempts = 1 it is held on claim, not sent to the account
    that returned it."""
    claimed_chain = [("a", 50000, "cancelled", "claim", 1, 1, 2), ("a", 50000, "settled", "bank_transfer", 2, 2, None)]
    pays = ent(("a", "ELIGIBLE", 60000, "claim"))
    assert new_payments(pays, in_runs(*claimed_chain), policy(max_attempts=1), claimed("a")).rows() == [
        ("a", 10000, "bank_transfer", 1)]
    back = [*claimed_chain, ("a", 10000, "returned", "bank_transfer", 1, 3, 4)]
    assert new_payments(pays, in_runs(*back), policy(max_attempts=1), claimed("a")).rows() == [
        ("a", 10000, "claim", 2)]
    # under max_attempts = 2 it is sent by transfer once more
    assert new_payments(pays, in_runs(*back), policy(max_attempts=2), claimed("a")).rows() == [
        ("a", 10000, "bank_transfer", 2)]


def test_a_top_up_returned_once_is_sent_again_whatever_an_earlier_chain_came_back_at(policy):
    """Found by the review of the fix above: three people whose first transfer came back
    and whose resend settled, then a top-up returned once, under max_attempts = 2: y
    (paid by transfer from the start) was sent again; x (a voucher first, returned) and z
    (a claimant) were held on claim, because their earlier transfer return was attempt 2
    and the top-up's attempt 1. The money owed now, the top-up, came back once for all
    three."""
    pays = ent(("x", "ELIGIBLE", 60000, "bank_transfer"), ("y", "ELIGIBLE", 60000, "bank_transfer"),
               ("z", "ELIGIBLE", 60000, "claim"))
    rows = [("y", 50000, "returned", "bank_transfer", 1, 1, 2), ("y", 50000, "settled", "bank_transfer", 2, 2, None),
            ("y", 10000, "returned", "bank_transfer", 1, 4, 5),
            ("x", 50000, "returned", "voucher", 1, 1, 2), ("x", 50000, "returned", "bank_transfer", 2, 2, 3),
            ("x", 50000, "settled", "bank_transfer", 3, 3, None), ("x", 10000, "returned", "bank_transfer", 1, 4, 5),
            ("z", 50000, "cancelled", "claim", 1, 1, 2), ("z", 50000, "returned", "bank_transfer", 2, 2, 3),
            ("z", 50000, "settled", "bank_transfer", 3, 3, None), ("z", 10000, "returned", "bank_transfer", 1, 4, 5)]
    assert new_payments(pays, in_runs(*rows), policy(max_attempts=2), claimed("z")).rows() == [
        ("x", 10000, "bank_transfer", 2), ("y", 10000, "bank_transfer", 2), ("z", 10000, "bank_transfer", 2)]
    # a second return of the top-up is its second: held on claim, all three alike
    again = [*rows, *((p, 10000, "returned", "bank_transfer", 2, 5, 6) for p in "xyz")]
    assert new_payments(pays, in_runs(*again), policy(max_attempts=2), claimed("z")).rows() == [
        ("x", 10000, "claim", 3), ("y", 10000, "claim", 3), ("z", 10000, "claim", 3)]


def test_a_top_up_sent_beside_a_resend_that_came_back_does_not_hide_the_resend_s_returns(policy):
    """A transfer returned twice, its third sending out; a top-up by transfer (attempt 1:
    nothing had come back at its run); both returned together: the money of the chain
    came back three times, so under max_attempts = 3 what is owed is held on claim."""
    rows = [("a", 50000, "returned", "bank_transfer", 1, 1, 2), ("a", 50000, "returned", "bank_transfer", 2, 2, 3),
            ("a", 50000, "returned", "bank_transfer", 3, 3, 5), ("a", 10000, "returned", "bank_transfer", 1, 4, 5)]
    assert new_payments(ent(("a", "ELIGIBLE", 60000, "bank_transfer")), in_runs(*rows), policy(max_attempts=3),
                        claimed()).rows() == [("a", 60000, "claim", 4)]


def test_a_claimed_transfer_and_a_top_up_returned_together_came_back_once(policy):
    """Found by the third review: held after three returns, claimed (run 5: the held
    payment at attempt 4 cancelled, the claimed account paid at attempt 5), a top-up
    (attempt 1, run 6); both came back in run 7 and were sent again as one payment
    (attempt 6), which came back in run 8. Since the claim that money came back twice,
    as b's did (a first payment and a top-up returned together, then their resend):
    under max_attempts = 3 both are sent by transfer again, a was held on claim."""
    rows = [*(("a", 50000, "returned", "bank_transfer", n, n, n + 1) for n in (1, 2, 3)),
            ("a", 50000, "cancelled", "claim", 4, 4, 5), ("a", 50000, "returned", "bank_transfer", 5, 5, 7),
            ("a", 20000, "returned", "bank_transfer", 1, 6, 7), ("a", 70000, "returned", "bank_transfer", 6, 7, 8),
            ("b", 50000, "returned", "bank_transfer", 1, 1, 3), ("b", 20000, "returned", "bank_transfer", 1, 2, 3),
            ("b", 70000, "returned", "bank_transfer", 2, 3, 4)]
    pays = ent(("a", "ELIGIBLE", 70000, "claim"), ("b", "ELIGIBLE", 70000, "bank_transfer"))
    assert new_payments(pays, in_runs(*rows), policy(max_attempts=3), claimed("a")).rows() == [
        ("a", 70000, "bank_transfer", 7), ("b", 70000, "bank_transfer", 3)]
