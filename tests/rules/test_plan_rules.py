"""The plan finance reads before approving, and which decisions a plan still takes
(redress/rules/plans.py; SPEC "Approval before release")."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redress.rules.plans import KINDS, payment_kinds, plan_summary, refusal
from redress.vocabulary import APPROVED, EXPIRED, PLAN_STATES, REJECTED, SUPERSEDED, WAITING

NOW = datetime(2025, 12, 1, 9, tzinfo=timezone.utc)
LATER = NOW + timedelta(hours=1)
DAY = date(2025, 12, 1)


@pytest.mark.parametrize("decision", [APPROVED, REJECTED])
def test_only_a_waiting_plan_before_its_expiry_takes_a_decision(decision):
    assert refusal("R1", WAITING, LATER, NOW, decision) is None


@pytest.mark.parametrize("decision, verb", [(APPROVED, "approve"), (REJECTED, "reject")])
@pytest.mark.parametrize("state", [APPROVED, REJECTED, SUPERSEDED, EXPIRED])
def test_a_decided_plan_is_refused_naming_its_state(state, decision, verb):
    line = refusal("R1", state, LATER, NOW, decision)
    assert line == f"cannot {verb} the plan of run R1: it is {state} ({PLAN_STATES[state]})"
    assert "\n" not in line


@pytest.mark.parametrize("decision", [APPROVED, REJECTED])
@pytest.mark.parametrize("state, finish", [(APPROVED, "approve"), (REJECTED, "reject")])
def test_a_decision_that_did_not_finish_is_refused_with_the_way_to_finish_it(state, finish, decision):
    line = refusal("R1", state, LATER, NOW, decision, completed=False)
    assert line.endswith(f"it is {state} ({PLAN_STATES[state]}); that decision did not finish: "
                         f"`{finish}` it again to finish it") and "\n" not in line
    for other in (SUPERSEDED, EXPIRED):  # no decision of anyone's to finish
        assert refusal("R1", other, LATER, NOW, decision, completed=False).endswith(f"({PLAN_STATES[other]})")


def test_a_waiting_plan_at_or_past_its_expiry_is_refused_as_expired():
    assert "it is expired" in refusal("R1", WAITING, NOW, NOW, APPROVED)
    assert "it is expired" in refusal("R1", WAITING, NOW - timedelta(seconds=1), NOW, REJECTED)


def test_no_plan_is_refused():
    assert refusal("R9", None, None, NOW, APPROVED) == "run R9 has no disbursement plan: nothing to approve"


PLANNED = pl.DataFrame({
    "customer_id": ["A", "B", "C", "D", "E", "F", "G", "H", "I"],
    "amount": [50000, 20000, 50000, 50000, 50000, 30000, 20000, 50000, 20000],
    "rail": ["voucher", "voucher", "bank_transfer", "bank_transfer", "claim", "bank_transfer", "bank_transfer",
             "bank_transfer", "bank_transfer"],
    "attempt": [1, 1, 2, 1, 1, 2, 2, 3, 2],
    "batch_id": ["P-V-0001", "P-V-0001", "P-B-0001", "P-B-0001", "P-C-0001", "P-B-0001", "P-B-0001", "P-B-0001",
                 "P-B-0001"],
    "value_date": [DAY] * 9,
}, schema_overrides={"attempt": pl.Int32}).vstack(pl.DataFrame({
    "customer_id": ["P", "Q"], "amount": [10000, 10000], "rail": ["bank_transfer"] * 2, "attempt": [2, 5],
    "batch_id": ["P-B-0001"] * 2, "value_date": [DAY] * 2}, schema_overrides={"attempt": pl.Int32}))
# B paid before: a top-up. C returned: a reissue. F claimed: the held claim payment a claim
# cancelled, the transfer pays the claim. Found by review, counted as claims paid or
# reissues before: G claimed earlier and its claimed transfer settled (now a top-up); H
# claimed and its claimed transfer came back (a reissue); I came back once, its reissue
# settled (now a top-up).
LEDGER = pl.DataFrame({
    "customer_id": ["B", "C", "X", "F", "G", "G", "H", "H", "I", "I"],
    "rail": ["voucher", "bank_transfer", "voucher", "claim", "claim", "bank_transfer", "claim", "bank_transfer",
             "bank_transfer", "bank_transfer"],
    "status": ["issued", "returned", "settled", "cancelled", "cancelled", "settled", "cancelled", "returned",
               "returned", "settled"],
    "attempt": [1, 1, 1, 1, 1, 2, 1, 2, 1, 2]}, schema_overrides={"attempt": pl.Int32}).vstack(pl.DataFrame({
    # found by the next review: P was paid 50,000 and its 10,000 top-up came back: the plan
    # sends that again (a reissue, not a top-up); Q's top-up came back 3 times, was held and
    # claimed: the plan pays the claim
    "customer_id": ["P", "P", "Q", "Q", "Q", "Q", "Q"],
    "rail": ["bank_transfer", "bank_transfer", "bank_transfer", "bank_transfer", "bank_transfer", "bank_transfer",
             "claim"],
    "status": ["settled", "returned", "settled", "returned", "returned", "returned", "cancelled"],
    "attempt": [1, 1, 1, 1, 2, 3, 4]}, schema_overrides={"attempt": pl.Int32}))
CLAIMANTS = pl.DataFrame({"customer_id": ["F", "G", "H", "Q"]})
KIND_OF = ["first", "top_up", "reissue", "first", "claim", "claimed", "top_up", "reissue", "top_up", "reissue",
           "claimed"]


def test_each_planned_payment_gets_its_kind():
    kinds = payment_kinds(PLANNED.lazy(), LEDGER.lazy(), CLAIMANTS.lazy()).collect()
    assert kinds["kind"].to_list() == KIND_OF
    assert kinds.drop("kind").equals(PLANNED)


def test_the_summary_counts_per_rail_and_day_against_the_cap_and_per_kind():
    s = plan_summary(payment_kinds(PLANNED.lazy(), LEDGER.lazy(), CLAIMANTS.lazy()), {DAY: 400_000}, 1_000_000)
    assert s["totals"] == {"batches": 3, "payments": 11, "amount_krw": 360_000}
    bank = next(d for d in s["days"] if d["rail"] == "bank_transfer")
    assert bank == {"rail": "bank_transfer", "value_date": "2025-12-01", "batches": 1, "payments": 8,
                    "amount_krw": 240_000, "released_before_krw": 400_000, "daily_cash_cap_krw": 1_000_000,
                    "cap_left_krw": 360_000}
    assert "daily_cash_cap_krw" not in next(d for d in s["days"] if d["rail"] == "voucher")
    assert s["kinds"] == {"first": {"payments": 2, "amount_krw": 100_000}, "top_up": {"payments": 3, "amount_krw": 60_000},
                          "reissue": {"payments": 3, "amount_krw": 110_000}, "claimed": {"payments": 2, "amount_krw": 40_000},
                          "claim": {"payments": 1, "amount_krw": 50_000}}
    assert s["shared_claim_accounts"] == {"payments": 0, "amount_krw": 0}  # nobody shares: none


def test_the_summary_counts_the_bank_transfers_to_claimants_sharing_an_account():
    """Only bank transfers count (E's money held on claim is not paid to any account);
    a claimant sharing an account with nothing planned (Z) adds nothing."""
    sharing = pl.DataFrame({"customer_id": ["F", "H", "E", "Z", "F"]})
    s = plan_summary(payment_kinds(PLANNED.lazy(), LEDGER.lazy(), CLAIMANTS.lazy()), {}, 10**12, sharing)
    assert s["shared_claim_accounts"] == {"payments": 2, "amount_krw": 80_000}


HISTORY = st.lists(st.tuples(st.sampled_from(["voucher", "bank_transfer", "claim"]),
                             st.sampled_from(["issued", "settled", "returned", "cancelled"]), st.integers(1, 3)),
                   max_size=4)


@settings(max_examples=40, deadline=None)
@given(people=st.lists(st.tuples(HISTORY, st.booleans(), st.sampled_from(["voucher", "bank_transfer", "claim"])),
                       min_size=1, max_size=12))
def test_the_reports_sql_kinds_are_the_plans_kinds(people):
    """report.html counts a released run's payments per kind in SQL over the ledger
    (redress/reports/report_facts.py), the plan in Polars (payment_kinds): one rule, over
    any history (each person's earlier payments, whether they claimed, the rail of this
    run's payment), the same counts and amounts; a later run's payments and claims, there
    when an older run's page is written again, change nothing (found by review)."""
    from redress.reports.report_facts import _kinds

    before, now, claimants = [], [], []
    for n, (history, claimed, rail) in enumerate(people):
        cid = f"C{n}"
        before += [(cid, r, s, a) for r, s, a in history]
        now.append((cid, 1000 * (n + 1), rail, max((a for _, _, a in history), default=0) + 1))
        claimants += [cid] if claimed else []
    ledger = pl.DataFrame(before, schema={"customer_id": pl.String, "rail": pl.String, "status": pl.String,
                                          "attempt": pl.Int32}, orient="row")
    planned = pl.DataFrame(now, schema={"customer_id": pl.String, "amount": pl.Int64, "rail": pl.String,
                                        "attempt": pl.Int32}, orient="row").with_columns(
        pl.lit("B1").alias("batch_id"), pl.lit(DAY).alias("value_date"))
    claimants_frame = pl.DataFrame({"customer_id": claimants}, schema={"customer_id": pl.String})
    plan = plan_summary(payment_kinds(planned.lazy(), ledger.lazy(), claimants_frame.lazy()), {}, 10**12)["kinds"]
    con = duckdb.connect()
    con.execute("CREATE TABLE plans (run_id VARCHAR, state VARCHAR, summary VARCHAR)")
    con.execute("CREATE TABLE claims (customer_id VARCHAR, run_id VARCHAR)")
    con.execute("CREATE TABLE ledger (customer_id VARCHAR, rail VARCHAR, status VARCHAR, attempt INTEGER, "
                "amount BIGINT, run_id VARCHAR, updated_run_id VARCHAR)")
    # runs not recorded: the attempts stand for their order, in SQL as in Polars (payments.pending)
    con.execute("CREATE TABLE runs (run_id VARCHAR, started_at TIMESTAMPTZ)")
    for c in claimants:
        con.execute("INSERT INTO claims VALUES (?, 'R0')", [c])
    for cid, *_ in now:  # a later run: a claim, a returned payment and a top-up, all after this one
        con.execute("INSERT INTO claims VALUES (?, 'R9')", [cid])
        con.execute("INSERT INTO ledger VALUES (?, 'bank_transfer', 'returned', 9, 5, 'R9', 'R9')", [cid])
    for r in before:
        con.execute("INSERT INTO ledger VALUES (?, ?, ?, ?, 0, 'R0', 'R0')", list(r))
    con.executemany("INSERT INTO ledger VALUES (?, ?, 'issued', ?, ?, 'R1', 'R1')",
                    [[cid, rail, attempt, amount] for cid, amount, rail, attempt in now])
    sql = {k.kind: {"payments": k.payments, "amount_krw": k.amount_krw} for k in _kinds(con, "R1")}
    assert sql == plan


# A history in runs: each payment (rail, status, attempt, the run that issued it, and for
# one that came back the run that applied that, that one or a later one of runs 0 to 4).
ORDERED_HISTORY = st.lists(st.tuples(st.sampled_from(["voucher", "bank_transfer", "claim"]),
                                     st.sampled_from(["issued", "settled", "returned", "cancelled"]),
                                     st.integers(1, 3), st.integers(0, 4), st.integers(0, 4)), max_size=4)


@settings(max_examples=40, deadline=None)
@given(people=st.lists(st.tuples(ORDERED_HISTORY, st.booleans(), st.sampled_from(["voucher", "bank_transfer", "claim"])),
                       min_size=1, max_size=12))
def test_the_reports_sql_kinds_are_the_plans_kinds_in_the_order_of_the_runs(people):
    """The same as above with the order of the runs recorded (runs.started_at, as the
    warehouse has it): money that came back in a run that then paid the person again is
    no reissue. The report's SQL reads the order from `runs`, the plan's Polars from the
    ledger's issued_seq and back_seq (rules.payments.LEDGER_SQL)."""
    from redress.reports.report_facts import _kinds

    runs = [f"R0-{i}" for i in range(5)]  # before this run, R1, in the order they started
    before, now, claimants = [], [], []
    for n, (history, claimed, rail) in enumerate(people):
        cid = f"C{n}"
        for r, st_, a, issued, back in history:
            came_back = st_ in ("returned", "cancelled")
            before.append((cid, r, st_, a, issued, max(issued, back) if came_back else None))
        now.append((cid, 1000 * (n + 1), rail, 1))
        claimants += [cid] if claimed else []
    ledger = pl.DataFrame(before, schema={"customer_id": pl.String, "rail": pl.String, "status": pl.String,
                                          "attempt": pl.Int32, "issued_seq": pl.Int64, "back_seq": pl.Int64},
                          orient="row")
    planned = pl.DataFrame(now, schema={"customer_id": pl.String, "amount": pl.Int64, "rail": pl.String,
                                        "attempt": pl.Int32}, orient="row").with_columns(
        pl.lit("B1").alias("batch_id"), pl.lit(DAY).alias("value_date"))
    claimants_frame = pl.DataFrame({"customer_id": claimants}, schema={"customer_id": pl.String})
    plan = plan_summary(payment_kinds(planned.lazy(), ledger.lazy(), claimants_frame.lazy()), {}, 10**12)["kinds"]
    con = duckdb.connect()
    con.execute("CREATE TABLE plans (run_id VARCHAR, state VARCHAR, summary VARCHAR)")
    con.execute("CREATE TABLE claims (customer_id VARCHAR, run_id VARCHAR)")
    con.execute("CREATE TABLE ledger (customer_id VARCHAR, rail VARCHAR, status VARCHAR, attempt INTEGER, "
                "amount BIGINT, run_id VARCHAR, updated_run_id VARCHAR)")
    con.execute("CREATE TABLE runs (run_id VARCHAR, started_at TIMESTAMPTZ)")
    start = datetime(2025, 12, 1, tzinfo=timezone.utc)
    for i, run_id in enumerate([*runs, "R1"]):
        con.execute("INSERT INTO runs VALUES (?, ?)", [run_id, start + timedelta(hours=i)])
    for c in claimants:
        con.execute("INSERT INTO claims VALUES (?, 'R0-0')", [c])
    for cid, r, st_, a, issued, back in before:
        con.execute("INSERT INTO ledger VALUES (?, ?, ?, ?, 0, ?, ?)",
                    [cid, r, st_, a, runs[issued], runs[back] if back is not None else runs[issued]])
    con.executemany("INSERT INTO ledger VALUES (?, ?, 'issued', ?, ?, 'R1', 'R1')",
                    [[cid, rail, attempt, amount] for cid, amount, rail, attempt in now])
    sql = {k.kind: {"payments": k.payments, "amount_krw": k.amount_krw} for k in _kinds(con, "R1")}
    assert sql == plan


@given(amounts=st.lists(st.integers(1, 10**9), min_size=1, max_size=30), data=st.data())
def test_kinds_and_days_each_add_up_to_the_plan(amounts, data):
    n = len(amounts)
    planned = pl.DataFrame({
        "customer_id": [f"C{i}" for i in range(n)], "amount": amounts,
        "rail": data.draw(st.lists(st.sampled_from(["voucher", "bank_transfer", "claim"]), min_size=n, max_size=n)),
        "attempt": data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)),
        "batch_id": [f"B{i % 3}" for i in range(n)],
        "value_date": [DAY + timedelta(days=i % 2) for i in range(n)],
    }, schema_overrides={"attempt": pl.Int32})
    ledger = pl.DataFrame({"customer_id": [f"C{i}" for i in range(0, n, 2)], "rail": ["claim"] * len(range(0, n, 2)),
                           "status": data.draw(st.lists(st.sampled_from(["issued", "cancelled"]),
                                                        min_size=len(range(0, n, 2)), max_size=len(range(0, n, 2))))})
    s = plan_summary(payment_kinds(planned.lazy(), ledger.lazy().with_columns(pl.lit(1).alias("attempt")),
                                   pl.LazyFrame(schema={"customer_id": pl.String})), {}, 10**12)
    assert set(s["kinds"]) == set(KINDS)
    for part in (list(s["kinds"].values()), s["days"]):
        assert sum(k["payments"] for k in part) == n
        assert sum(k["amount_krw"] for k in part) == sum(amounts) == s["totals"]["amount_krw"]


def test_a_plan_an_earlier_version_saved_without_a_kind_renders_it_as_none():
    """Found by review: plans saved before `claimed` existed failed plan.md's rewrite with
    a KeyError, so a superseded one was retried by every run and an approval could never
    finish its last step."""
    from redress.reports.plan import plan_markdown

    summary = plan_summary(payment_kinds(PLANNED.lazy(), LEDGER.lazy(), CLAIMANTS.lazy()), {}, 10**12)
    del summary["kinds"]["claimed"]
    text = plan_markdown("R1", "p", "superseded", NOW, summary, [], decision="superseded by run R2 at now")
    assert "| claims paid: transfers to an account the person gave customer service | 0 | 0 |" in text


@pytest.mark.parametrize("run_date, started_on, today, first_bank, refused", [
    (date(2026, 12, 5), date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 5), True),   # approved next morning
    (date(2026, 12, 5), date(2026, 12, 5), date(2026, 12, 5), date(2026, 12, 5), False),  # the same day
    (date(2026, 12, 5), date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 6), False),  # cap spilled to today
    (date(2026, 12, 5), date(2026, 12, 5), date(2026, 12, 6), None, False),               # no bank transfer
    (date(2025, 12, 1), date(2026, 12, 5), date(2026, 12, 6), date(2025, 12, 1), False),  # a catch-up run
    (date(2026, 12, 6), date(2026, 12, 5), date(2026, 12, 7), date(2026, 12, 6), True),   # dated tomorrow, 2 days on
    (date(2026, 12, 6), date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 6), False),
])
@pytest.mark.parametrize("approving", [True, False])
def test_a_plan_for_its_own_day_is_refused_once_its_first_bank_day_has_passed(run_date, started_on, today,
                                                                               first_bank, refused, approving):
    """Approved later, or released by its own run once midnight passed while it was
    checked (found by the time review: that run released files dated the day before)."""
    from redress.rules.plans import dated_in_the_past

    why = dated_in_the_past("R1", run_date, started_on, today, first_bank, "Asia/Seoul", approving=approving)
    assert (why is not None) == refused
    if refused:
        assert why.startswith("cannot approve the plan of run R1 today" if approving
                              else "cannot release the plan of run R1:") and "\n" not in why
        assert f"dated from {first_bank.isoformat()}, and today is {today.isoformat()} in Asia/Seoul" in why


@pytest.mark.parametrize("run_date, started_on, today, bank_from", [
    (date(2026, 12, 5), date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 6)),  # planned after midnight
    (date(2026, 12, 5), date(2026, 12, 5), date(2026, 12, 5), date(2026, 12, 5)),
    (date(2026, 12, 6), date(2026, 12, 5), date(2026, 12, 5), date(2026, 12, 5)),  # dated tomorrow: max() keeps it
    (date(2025, 12, 1), date(2026, 12, 5), date(2026, 12, 5), None),               # a catch-up plans for its date
])
def test_a_run_not_a_catch_up_dates_its_bank_transfers_from_today(run_date, started_on, today, bank_from):
    from redress.rules.plans import bank_days_from

    assert bank_days_from(run_date, started_on, today) == bank_from


def test_what_a_catch_up_dates_before_today_is_counted_by_bank_batch_only():
    """Found by the time review: a catch-up of four days put four days' cash cap on one
    day at the bank, with nothing said."""
    from redress.rules.plans import dated_before_today

    batches = pl.DataFrame({"rail": ["bank_transfer", "bank_transfer", "bank_transfer", "voucher"],
                            "value_date": [date(2026, 12, 4), date(2026, 12, 7), date(2026, 12, 8), date(2026, 12, 4)],
                            "item_count": [2, 3, 5, 7], "control_sum": [100_000, 150_000, 250_000, 350_000]})
    assert dated_before_today(batches, date(2026, 12, 8)) == {
        "payments": 5, "amount_krw": 250_000, "first": "2026-12-04", "last": "2026-12-07", "today": "2026-12-08"}
    assert dated_before_today(batches, date(2026, 12, 4)) == {
        "payments": 0, "amount_krw": 0, "first": None, "last": None, "today": "2026-12-04"}


def test_past_the_claim_deadline_a_plan_calls_its_claim_money_unclaimed_not_held():
    """Found by finance review: past payout.claim_deadline money put on claim can no longer
    be claimed, yet the reports called it held."""
    from redress.reports.plan import plan_markdown

    summary = plan_summary(payment_kinds(PLANNED.lazy(), LEDGER.lazy(), CLAIMANTS.lazy()), {}, 10**12)
    claim = summary["kinds"]["claim"]
    before = plan_markdown("R1", "p", "waiting", NOW, summary, [])
    after = plan_markdown("R1", "p", "waiting", NOW, summary, [], past_claim_deadline=True)
    assert f"| held on the claim rail | {claim['payments']:,} | {claim['amount_krw']:,} |" in before
    assert (f"| unclaimed on the claim rail (the claim deadline has passed) | {claim['payments']:,} | "
            f"{claim['amount_krw']:,} |") in after
    assert "held on the claim rail" not in after


def test_a_plan_says_how_many_transfers_go_to_an_account_that_replaced_another():
    """Found by the security review: transfers to accounts a later customers snapshot
    changed were planned with nothing said; a plan saved by an earlier version has no
    such figure and shows none."""
    from redress.reports.plan import plan_markdown

    summary = plan_summary(payment_kinds(PLANNED.lazy(), LEDGER.lazy(), CLAIMANTS.lazy()), {}, 10**12)
    assert "changed since an earlier customers snapshot" not in plan_markdown("R1", "p", "waiting", NOW, summary, [])
    summary["changed_payee_accounts"] = {"payees": 3, "amount_krw": 150_000}
    waiting = plan_markdown("R1", "p", "waiting", NOW, summary, [])
    assert ("## Bank accounts changed since an earlier customers snapshot\n\n3 of this plan's bank transfers, "
            "150,000 KRW, go to customers whose bank account in the customer master replaced another, or none, "
            "in a later snapshot") in waiting
    assert "tell apart. Check them before approving." in waiting
    decided = plan_markdown("R1", "p", "approved", NOW, summary, [], decision="approved by Kim at now")
    assert "3 of this plan's bank transfers, 150,000 KRW" in decided and "before approving" not in decided


WHY = ("Payments are never clawed back and the pro rata share applies to entitlements: when a revision lowers "
       "the share, people paid before keep what they got while the people added are paid too.")


@pytest.mark.parametrize("state, cap, lines", [
    # the finance review's case: 149,998,940 paid in a first run, a revision's plan of 17,732,550 more
    (WAITING, 150_000_000, [
        "Fund cap (budget.total_cap): 150,000,000 KRW.",
        "Paid or held in all, once this plan is released, the ledger now plus this plan (issued + settled, "
        "held claim money included: it is owed): 167,731,490 KRW.",
        f"WARNING: 17,731,490 KRW over the fund cap. {WHY}"]),
    (WAITING, 170_000_000, [
        "Fund cap (budget.total_cap): 170,000,000 KRW.",
        "Paid or held in all, once this plan is released, the ledger now plus this plan (issued + settled, "
        "held claim money included: it is owed): 167,731,490 KRW.",
        "Within the fund cap: 2,268,510 KRW of it left."]),
    # decided: an approved plan's payments are in the ledger already, any other paid nothing
    (APPROVED, 150_000_000, [
        "Fund cap (budget.total_cap): 150,000,000 KRW.",
        "Paid or held in all, the whole ledger now (issued + settled, held claim money included: it is owed): "
        "149,998,940 KRW.",
        "Within the fund cap: 1,060 KRW of it left."]),
    (WAITING, 0, []),
], ids=["waiting-over", "waiting-under", "decided", "no-cap"])
def test_plan_md_states_the_fund_cap_against_what_is_paid_in_all_once_released(state, cap, lines):
    """Found by finance review: the plan finance approved took the fund 17.7 M KRW over its
    cap, and plan.md said nothing of the cap."""
    from redress.reports.plan import plan_fund, plan_markdown

    summary = {"totals": {"batches": 2, "payments": 2_630, "amount_krw": 17_732_550}, "days": [], "kinds": {}}
    text = plan_markdown("R2", "p", state, NOW, summary, [], decision=None if state == WAITING else "approved",
                         fund=plan_fund(149_998_940, cap, state, summary))
    if not lines:
        assert "Fund cap" not in text and "fund cap" not in text
        return
    section = text.split("## Fund cap\n\n", 1)[1].split("\n## ", 1)[0]
    assert [line for line in section.split("\n") if line] == lines


TODAY = date(2026, 12, 7)


def test_a_run_dated_before_the_latest_run_or_past_tomorrow_is_refused_in_one_line():
    from redress.rules.plans import run_date_refusal

    latest = ("R20251205-002", date(2025, 12, 5))
    assert run_date_refusal(date(2025, 12, 1), latest, TODAY, "Asia/Seoul") == (
        "run date 2025-12-01 is before 2025-12-05, the date of run R20251205-002: runs go forward in time "
        "(--run-date 2025-12-05 or later)")
    assert run_date_refusal(date(2027, 12, 8), latest, TODAY, "Asia/Seoul") == (
        "run date 2027-12-08 is after tomorrow (2026-12-08 in Asia/Seoul): a run is dated the day it pays, "
        "at most a day ahead")
    for accepted in (date(2025, 12, 5), date(2025, 12, 6), TODAY, date(2026, 12, 8)):
        assert run_date_refusal(accepted, latest, TODAY, "Asia/Seoul") is None
    assert run_date_refusal(date(2020, 1, 1), None, TODAY, "Asia/Seoul") is None  # a first run: a catch-up
    assert run_date_refusal(date(1970, 1, 1), None, TODAY, "Asia/Seoul") is None
    # found by review: year 1 ran, and a batch check failed with nothing said of the date
    for ancient in (date(1, 1, 1), date(999, 6, 1), date(1899, 12, 31)):
        assert run_date_refusal(ancient, None, TODAY, "Asia/Seoul") == (
            f"run date {ancient.isoformat()} is not in the years 1900 to 2999: a run is dated the day it pays (a "
            "catch-up of a missed day takes that day)")


def test_a_switch_date_no_run_could_take_is_refused_and_any_later_day_is_priced():
    """`redress whatif --run-date`: found by review, year 1 and year 9999 were priced."""
    from redress.rules.plans import switch_date_refusal
    latest = ("R20251205-001", date(2025, 12, 5))
    for never in (date(1, 1, 1), date(1899, 12, 31), date(3000, 1, 1), date(9999, 12, 31)):
        assert switch_date_refusal(never, latest) == (
            f"run date {never.isoformat()} is not in the years 1900 to 2999: a run is dated the day it pays (a "
            "catch-up of a missed day takes that day)")
    assert switch_date_refusal(date(2025, 12, 4), latest) == (
        "run date 2025-12-04 is before 2025-12-05, the date of run R20251205-001: runs go forward in time "
        "(--run-date 2025-12-05 or later)")
    for later in (date(2025, 12, 5), date(2026, 3, 1), date(2999, 12, 31)):
        assert switch_date_refusal(later, latest) is None
    assert switch_date_refusal(date(1900, 1, 1), None) is None


@given(run=st.dates(date(2024, 1, 1), date(2028, 1, 1)), latest=st.none() | st.dates(date(2024, 1, 1), date(2026, 12, 8)))
def test_a_run_date_is_refused_exactly_when_it_goes_back_or_lies_past_tomorrow(run, latest):
    from redress.rules.plans import run_date_refusal

    why = run_date_refusal(run, None if latest is None else ("R1", latest), TODAY, "UTC")
    assert (why is not None) == (run > date(2026, 12, 8) or (latest is not None and run < latest))
    assert why is None or ("\n" not in why and why.startswith(f"run date {run.isoformat()} is "))


def test_a_plan_says_what_a_catch_up_dated_before_the_day_it_was_planned():
    """Found by the time review; a plan an earlier version saved has no such figure and
    shows none; once decided, the advice before approving goes."""
    from redress.reports.plan import plan_markdown

    summary = plan_summary(payment_kinds(PLANNED.lazy(), LEDGER.lazy(), CLAIMANTS.lazy()), {}, 10**12)
    assert "dated before" not in plan_markdown("R1", "p", "waiting", NOW, summary, [])
    summary["dated_before_today"] = {"payments": 3, "amount_krw": 150_000, "first": "2026-12-04",
                                     "last": "2026-12-05", "today": "2026-12-08"}
    waiting = plan_markdown("R1", "p", "waiting", NOW, summary, [])
    assert ("## Bank transfers dated before today\n\n3 of this plan's bank transfers, 150,000 KRW, are dated "
            "2026-12-04 to 2026-12-05, before the day it was planned (2026-12-08 where the policy pays)") in waiting
    assert "before approving" in waiting.split("## Bank transfers dated before today")[1]
    decided = plan_markdown("R1", "p", "approved", NOW, summary, [], decision="approved by Kim at now")
    assert "## Bank transfers dated before today" in decided
    assert "before approving" not in decided.split("## Bank transfers dated before today")[1]
