"""redress/checks/emission_checks.py: the suites that gate emission (expectations/entitlements.json,
ledger.json, batches.json), on a tiny warehouse in tmp_path.

One correct plan passes all three; each plan below is broken in one way on purpose and
must fail exactly the expectations named, with their reasons."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest

from redress.context import RunContext
from redress.errors import RedressError
from redress.policy import DEFAULT_POLICY
from redress.settings import load_settings
from redress.warehouse import connect
from redress.disbursement.release import release
from redress.checks import emission_checks
from redress.checks.emission_checks import TABLES, VIEWS, check_plan, drop_plan, stage_plan
from redress.rules.batches import batch_summary
from redress.rules.vouchers import with_voucher_parts
from redress.checks.suites import validate_table

RUN = date(2025, 12, 1)
AT = datetime(2025, 12, 1, 9, 0, tzinfo=timezone.utc)
POLICY_ID = "coupang-2025-v1"
V1 = f"{POLICY_ID}-20251201-voucher-0001"
B2 = f"{POLICY_ID}-20251201-bank_transfer-0002"
EARLIER_B1 = f"{POLICY_ID}-20251201-bank_transfer-0001"
EARLIER_V1 = f"{POLICY_ID}-20251130-voucher-0001"

ENTITLEMENTS = [  # customer_id, reason, base_amount, amount, rail
    ("c1", "ELIGIBLE", 50000, 50000, "voucher"),
    ("c2", "ELIGIBLE", 50000, 50000, "bank_transfer"),
    ("c3", "ELIGIBLE", 50000, 50000, "bank_transfer"),  # 20,000 paid by an earlier run
    ("c4", "TEST_ACCOUNT", 50000, 0, "voucher"),
    ("c5", "ELIGIBLE", 50000, 30000, "voucher"),  # paid 50,000 before the fund was shared
]
EARLIER_BATCHES = [  # batch_id, rail, value_date, item_count, control_sum
    (EARLIER_B1, "bank_transfer", RUN, 1, 20000),  # released on the run date already
    (EARLIER_V1, "voucher", date(2025, 11, 30), 1, 50000),
]
EARLIER_LEDGER = [  # payment_id, customer_id, amount, rail, batch_id, status
    ("20251201-B0001-000001", "c3", 20000, "bank_transfer", EARLIER_B1, "settled"),
    ("20251130-V0001-000001", "c5", 50000, "voucher", EARLIER_V1, "issued"),  # overpaid now: no clawback
]
PLAN = [  # payment_id, customer_id, amount, rail, batch_id, value_date
    ("20251201-V0001-000001", "c1", 50000, "voucher", V1, RUN),
    ("20251201-B0002-000001", "c2", 50000, "bank_transfer", B2, RUN),
    ("20251201-B0002-000002", "c3", 30000, "bank_transfer", B2, RUN),  # the top-up
]
# Bank cash on the run date: 20,000 released earlier + 80,000 planned = the cap exactly.
CAPS = {"max_batch_items": 2, "max_batch_amount": 100000, "daily_cash_cap": 100000}
PLAN_SCHEMA = {"payment_id": pl.String, "customer_id": pl.String, "amount": pl.Int64,
               "rail": pl.String, "batch_id": pl.String, "value_date": pl.Date}
SUITES = {"entitlements": "entitlements_checked", "ledger": "ledger_after", "batches": "planned_batches_checked"}


def plan_frames(rows: list[tuple], policy) -> tuple[pl.DataFrame, pl.DataFrame]:
    planned = pl.DataFrame(rows, schema=PLAN_SCHEMA, orient="row").with_columns(
        pl.lit(1, pl.Int32).alias("attempt"), pl.lit("004").alias("bank_code"), pl.lit("1234567890").alias("bank_account"))
    planned = with_voucher_parts(planned, policy)
    return planned, batch_summary(planned)


def plan_file(planned: pl.DataFrame, folder: Path) -> Path:
    """The planned payments as the Parquet file stage_plan reads: by batch_id, payment_id."""
    path = folder / "planned.parquet"
    planned.sort("batch_id", "payment_id").write_parquet(path)
    return path


# customer_id, bank_code, bank_account, bank_valid: the master's bank details
CUSTOMERS = [("c1", None, None, False), ("c2", "004", "1234567890", True), ("c3", "004", "1234567890", True),
             ("c4", None, None, False), ("c5", "011", "9876543210", False)]


def warehouse(tmp_path: Path, *, earlier: bool = True) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with connect(path) as con:
        con.executemany(
            "INSERT INTO customers (customer_id, status, created_at, is_test, payout_method, bank_code, bank_account, "
            "bank_valid, file_sha256) VALUES (?, 'active', '2020-01-01', false, 'bank_transfer', ?, ?, ?, 'snapshot')",
            CUSTOMERS)
        con.executemany(
            "INSERT INTO entitlements VALUES (?, ?, 'R0', ?, 1, 'name', 'name', ?, ?, ?)",
            [(c, POLICY_ID, reason, base, amount, rail) for c, reason, base, amount, rail in ENTITLEMENTS],
        )
        if earlier:
            con.executemany(
                "INSERT INTO batches VALUES (?, ?, 'KRW', ?, ?, ?, ?, 'R0', now(), 'outbox/batches/' || ?, NULL)",
                [(b, rail, day, n, total, POLICY_ID, b) for b, rail, day, n, total in EARLIER_BATCHES],
            )
            con.executemany(
                "INSERT INTO ledger VALUES (?, ?, ?, 'KRW', ?, ?, ?, 'R0', 1, ?, NULL, 'R0')",
                [(p, c, amount, rail, b, POLICY_ID, status) for p, c, amount, rail, b, status in EARLIER_LEDGER],
            )
    return path


def staged(tmp_path: Path, policy, *, payments=PLAN, planned=None, summary=None, sql=(), earlier=True,
           **run) -> Path:
    """The warehouse with a plan staged: `planned` and `summary` change the frames built
    from `payments`, `sql` changes the warehouse before staging; `run`: the policy_id and
    run_date stage_plan holds the batches to."""
    path = warehouse(tmp_path, earlier=earlier)
    planned_frame, summary_frame = plan_frames(list(payments), policy)
    planned_frame = planned(planned_frame) if planned else planned_frame
    summary_frame = summary(summary_frame) if summary else summary_frame
    with connect(path) as con:
        for statement in sql:
            con.execute(statement)
        stage_plan(con, plan_file(planned_frame, tmp_path), summary_frame, policy.voucher_products, **run)
    return path


def failed_reasons(path: Path, suite: str, policy) -> set[str]:
    parameters = {
        "entitlements": {"policy_id": [policy.id]},
        "ledger": None,
        "batches": {k: getattr(policy, k) for k in CAPS},
    }[suite]
    result = validate_table(path, SUITES[suite], suite, parameters=parameters, index_column=None)
    assert not any(r.error for r in result.results), [r.error for r in result.results if r.error]
    return {r.reason for r in result.failed}


@pytest.fixture
def caps(policy):
    return policy(**CAPS)


@pytest.fixture(params=["whole", "sliced"])
def slicing(request, monkeypatch):
    """ledger_after built at once, and a planned payment per slice (stage_checked):
    every verdict below must come out the same either way."""
    if request.param == "sliced":
        monkeypatch.setattr(emission_checks, "SLICE_PAYMENTS", 1)
    return request.param


@pytest.mark.parametrize("suite", list(SUITES))
def test_a_correct_plan_passes(tmp_path, caps, suite, slicing):
    """Includes an old overpayment (c5) and a top-up (c3): neither fails."""
    assert failed_reasons(staged(tmp_path, caps), suite, caps) == set()


def with_amount(payment_id: str, amount: int) -> list[tuple]:
    return [(p, c, amount if p == payment_id else a, r, b, d) for p, c, a, r, b, d in PLAN]


def set_where(customer_id: str, **values):
    """A change of the planned frame: the columns given set on one customer's payment."""
    return lambda frame: frame.with_columns(
        pl.when(pl.col("customer_id") == customer_id).then(pl.lit(v)).otherwise(pl.col(c)).alias(c)
        for c, v in values.items())


# c1's voucher payment and its batch moved to the next day, both
REDATED = {"planned": lambda f: set_where("c1", value_date=date(2025, 12, 2))(f),
           "summary": lambda s: s.with_columns(pl.when(pl.col("batch_id") == V1).then(pl.lit(date(2025, 12, 2)))
                                                .otherwise(pl.col("value_date")).alias("value_date"))}
CLAIM_OF_C3 = ("INSERT INTO claims VALUES ('ABCDEFGH', 'c3', '020', '5555555555', '2025-11-30', 'CS1', 0, 'claims', "
               "1, 'R0', '2025-11-30')")


@pytest.mark.parametrize("run, reasons", [
    ({"policy_id": POLICY_ID, "run_date": RUN}, set()),
    ({"policy_id": POLICY_ID, "run_date": date(2025, 12, 2)}, {"value_date_before_run_date"}),
    ({"policy_id": "coupang-2025", "run_date": RUN}, {"batch_id_names_another_batch"}),
    ({"policy_id": POLICY_ID + "-x", "run_date": RUN}, {"batch_id_names_another_batch"}),
], ids=["as-planned", "dated-before-its-run", "another-policy-s-prefix", "another-policy"])
def test_batches_are_named_by_their_policy_and_dated_from_their_run(tmp_path, caps, run, reasons):
    """A batch id is the plan's policy id, the batch's value date, rail and a sequence,
    and no batch is dated before its plan's run (a second review: a plan moved to 2020,
    ids and all, was released)."""
    assert failed_reasons(staged(tmp_path, caps, **run), "batches", caps) == reasons


def test_a_claimant_paid_to_their_latest_claim_s_account_passes(tmp_path, caps, slicing):
    later = CLAIM_OF_C3.replace("'5555555555'", "'6666666666'").replace("'2025-11-30')", "'2025-12-01')")
    path = staged(tmp_path, caps, sql=[CLAIM_OF_C3, later],
                  planned=set_where("c3", bank_code="020", bank_account="6666666666"))
    assert failed_reasons(path, "ledger", caps) == set()


def add_one_to(column: str, batch_id: str):
    return lambda frame: frame.with_columns(
        pl.when(pl.col("batch_id") == batch_id).then(pl.col(column) + 1).otherwise(pl.col(column)).alias(column)
    )


BROKEN = [
    # --- batches
    pytest.param("batches", {"summary": add_one_to("control_sum", V1)}, {}, {"control_sum_mismatch"},
                 id="wrong-control-sum"),
    pytest.param("batches", {"summary": add_one_to("item_count", V1)}, {}, {"item_count_mismatch"},
                 id="wrong-item-count"),
    pytest.param("batches", {}, {"max_batch_items": 1}, {"batch_over_item_cap"}, id="batch-over-item-cap"),
    pytest.param("batches", {}, {"max_batch_amount": 79999}, {"batch_over_amount_cap"},
                 id="batch-over-amount-cap"),
    # 80,000 planned fits 99,999 alone: only the 20,000 an earlier batch released that
    # day takes it over.
    pytest.param("batches", {}, {"daily_cash_cap": 99999}, {"day_over_cash_cap"}, id="day-over-cash-cap"),
    pytest.param("batches", {"sql": ["UPDATE batches SET batch_id = "
                                     f"'{V1}' WHERE batch_id = '{EARLIER_V1}'"]}, {},
                 {"batch_id_already_used"}, id="batch-id-already-used"),
    pytest.param("batches", {"summary": lambda s: pl.concat([s, s.filter(pl.col("batch_id") == V1)])}, {},
                 {"duplicate_batch_id"}, id="duplicate-batch-id"),
    # a value date edited into a stored plan, its payment's and its batch's alike (found by
    # review: released in a bank file dated years back): the ids still name the planned date
    pytest.param("batches", REDATED, {}, {"batch_id_names_another_batch"}, id="batch-redated"),
    pytest.param("ledger", REDATED, {}, {"payment_unlike_its_batch"}, id="payment-and-batch-redated"),
    # --- ledger
    pytest.param("ledger", {"payments": with_amount("20251201-V0001-000001", 50001)}, {},
                 {"overpays_entitlement"}, id="payment-above-entitlement"),
    pytest.param("ledger", {"payments": with_amount("20251201-B0002-000002", 30001)}, {},
                 {"overpays_entitlement"}, id="top-up-above-entitlement"),
    pytest.param("ledger", {"payments": [*PLAN, ("20251201-V0001-000002", "c5", 1000, "voucher", V1, RUN)]}, {},
                 {"overpays_entitlement"}, id="more-to-the-already-overpaid"),
    pytest.param("ledger", {"payments": [PLAN[0], PLAN[1], (PLAN[1][0], *PLAN[2][1:])]}, {},
                 {"duplicate_payment_id"}, id="duplicate-payment-id"),
    pytest.param("ledger", {"payments": [(EARLIER_LEDGER[0][0], *PLAN[0][1:]), *PLAN[1:]]}, {},
                 {"duplicate_payment_id"}, id="payment-id-already-in-ledger"),
    # a gate never loses a row: hash(NULL) is not NULL, so the sliced ledger_after keeps it
    pytest.param("ledger", {"payments": [*PLAN[:2], (PLAN[2][0], None, *PLAN[2][2:])]}, {},
                 {"missing_customer_id", "overpays_entitlement", "transfer_to_another_account"},
                 id="payment-without-customer"),
    pytest.param("ledger", {"planned": add_one_to("voucher_travel", V1)}, {}, {"voucher_parts_mismatch"},
                 id="voucher-parts-not-summing"),
    pytest.param("ledger", {"planned": lambda f: f.with_columns(pl.lit(None, pl.Int64).alias("voucher_beauty"))},
                 {}, {"voucher_parts_mismatch"}, id="voucher-part-missing"),
    pytest.param("ledger", {"summary": lambda s: s.filter(pl.col("batch_id") != V1)}, {},
                 {"payment_not_in_one_batch"}, id="payment-without-batch"),
    # a plan moved after it was checked (an approval runs the gate again): found by review,
    # an account changed in plan_payments went to the bank file
    pytest.param("ledger", {"planned": set_where("c2", bank_account="9999999999")}, {},
                 {"transfer_to_another_account"}, id="transfer-to-another-account"),
    pytest.param("ledger", {"planned": set_where("c2", bank_code="088")}, {},
                 {"transfer_to_another_account"}, id="transfer-to-another-bank"),
    pytest.param("ledger", {"sql": ["UPDATE customers SET bank_valid = false WHERE customer_id = 'c2'"]}, {},
                 {"transfer_to_another_account"}, id="transfer-to-details-not-valid"),
    # a claimant is paid to their latest claim's account, never the master's
    pytest.param("ledger", {"sql": [CLAIM_OF_C3]}, {}, {"transfer_to_another_account"},
                 id="claimant-paid-to-the-master-s-account"),
    pytest.param("ledger", {"planned": set_where("c1", rail="bank_transfer")}, {},
                 {"payment_unlike_its_batch", "transfer_to_another_account"}, id="voucher-made-a-transfer"),
    pytest.param("ledger", {"planned": set_where("c2", value_date=date(2025, 12, 2))}, {},
                 {"payment_unlike_its_batch"}, id="payment-dated-unlike-its-batch"),
    pytest.param("ledger", {"planned": lambda f: f.with_columns(pl.col("amount").cast(pl.Float64))}, {},
                 {"amount_not_whole_minor_units"}, id="fractional-amount-type"),
    pytest.param("ledger", {"payments": with_amount("20251201-V0001-000001", 0)}, {}, {"amount_not_positive"},
                 id="zero-payment"),
    # --- entitlements
    pytest.param("entitlements", {"sql": ["UPDATE entitlements SET amount = 1 WHERE customer_id = 'c4'"]}, {},
                 {"amount_without_eligibility"}, id="amount-without-eligibility"),
    pytest.param("entitlements", {"sql": ["UPDATE entitlements SET base_amount = 40000 WHERE customer_id = 'c2'"]},
                 {}, {"amount_above_base"}, id="amount-above-base"),
    pytest.param("entitlements", {"sql": ["UPDATE entitlements SET amount = -1 WHERE customer_id = 'c4'"]}, {},
                 {"negative_amount", "amount_without_eligibility"}, id="negative-amount"),
    pytest.param("entitlements", {"sql": ["UPDATE entitlements SET reason = 'eligible' WHERE customer_id = 'c4'"]},
                 {}, {"unknown_reason_code"}, id="unknown-reason"),
    pytest.param("entitlements", {"sql": ["UPDATE entitlements SET rail = 'cash' WHERE customer_id = 'c4'"]}, {},
                 {"unknown_rail"}, id="unknown-rail"),
    pytest.param("entitlements", {"sql": ["UPDATE entitlements SET policy_id = 'other-v2' WHERE customer_id = 'c4'"]},
                 {}, {"wrong_policy_id"}, id="wrong-policy-id"),
]


@pytest.mark.parametrize("suite, change, policy_change, reasons", BROKEN)
def test_a_broken_plan_fails_with_its_reason(tmp_path, policy, suite, change, policy_change, reasons, slicing):
    run_policy = policy(**{**CAPS, **policy_change})
    path = staged(tmp_path, run_policy, **change)
    assert failed_reasons(path, suite, run_policy) == reasons


def context(tmp_path: Path) -> RunContext:
    return RunContext(tmp_path, "R20251201-001", RUN, DEFAULT_POLICY, "not-checked-here")


def test_check_plan_records_all_three_and_stops_naming_suite_and_expectation(tmp_path, policy):
    run_policy = policy(**{**CAPS, "max_batch_items": 1})
    staged(tmp_path, run_policy, summary=add_one_to("control_sum", V1))
    with pytest.raises(RedressError) as raised:
        check_plan(context(tmp_path), run_policy)
    message = str(raised.value)
    assert message.startswith("suite batches failed: expect_column_values_to_be_in_set on sum_ok, 1 rows")
    assert "[control_sum_mismatch] (and 1 more)" in message and "\n" not in message
    recorded = {p.stem for p in (tmp_path / "reports" / "R20251201-001" / "validations").glob("*.json")}
    assert recorded == {"entitlements", "ledger", "batches"}


def test_check_plan_passes_a_correct_plan_and_drop_plan_clears_the_staging(tmp_path, caps):
    path = staged(tmp_path, caps)
    results = check_plan(context(tmp_path), caps)
    assert [r.suite for r in results] == ["entitlements", "ledger", "batches"]
    with connect(path) as con:
        drop_plan(con)
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert not names & {*TABLES, *VIEWS}


def test_an_empty_plan_passes(tmp_path, caps):
    """A run with nothing owed still checks the entitlements and the ledger."""
    staged(tmp_path, caps, payments=[])
    assert len(check_plan(context(tmp_path), caps)) == 3


def test_a_first_run_has_no_earlier_ledger_or_batches(tmp_path, caps, slicing):
    staged(tmp_path, caps, earlier=False, payments=with_amount("20251201-B0002-000002", 50000))
    check_plan(context(tmp_path), caps)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*), bool_and(planned) FROM ledger_after").fetchall() == [(3, True)]


def test_ledger_after_holds_the_plan_and_only_the_ledger_rows_it_touches(tmp_path, caps, slicing):
    """Issue 10: the ledger suite checks the planned rows, the earlier rows of customers
    the plan pays (c3's settled 20,000, so its top-up is judged against it) and earlier
    rows whose payment id the plan reuses; c5's earlier payment, untouched, is left out."""
    reused = [(EARLIER_LEDGER[1][0], *PLAN[0][1:]), *PLAN[1:]]  # c1's payment takes c5's earlier id
    path = staged(tmp_path, caps, payments=reused)
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT payment_id, customer_id, planned, paid_before, paid_after FROM ledger_after "
                           "ORDER BY planned, payment_id, customer_id").fetchall()
    assert rows == [
        ("20251130-V0001-000001", "c5", False, 50000, 50000),
        ("20251201-B0001-000001", "c3", False, 20000, 50000),
        ("20251130-V0001-000001", "c1", True, 0, 50000),
        ("20251201-B0002-000001", "c2", True, 0, 50000),
        ("20251201-B0002-000002", "c3", True, 20000, 50000),
    ]
    # the reused id also names another value date than its payment's
    assert failed_reasons(path, "ledger", caps) == {"duplicate_payment_id", "payment_unlike_its_batch"}
    (tmp_path / "plain").mkdir()
    path = staged(tmp_path / "plain", caps)  # nobody's payment id reused: c5 is not touched
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*), count(*) FILTER (customer_id = 'c5') FROM ledger_after").fetchall() == [
            (4, 0)]


def test_a_plan_staged_as_views_by_an_earlier_version_is_replaced_and_dropped(tmp_path, caps):
    path = warehouse(tmp_path)
    with connect(path) as con:
        con.execute("CREATE VIEW ledger_after AS SELECT 1 AS x")
        con.execute("CREATE VIEW planned_batches_checked AS SELECT 1 AS x")
    with connect(path) as con:
        planned, summary = plan_frames(PLAN, caps)
        stage_plan(con, plan_file(planned, tmp_path), summary, caps.voucher_products)
        kinds = dict(con.execute("SELECT table_name, table_type FROM information_schema.tables "
                                 "WHERE table_name IN ('ledger_after', 'planned_batches_checked')").fetchall())
        assert kinds == {"ledger_after": "BASE TABLE", "planned_batches_checked": "BASE TABLE"}
        drop_plan(con)
        assert not con.execute("SELECT table_name FROM information_schema.tables WHERE table_name IN "
                               "('ledger_after', 'planned_batches_checked', 'entitlements_checked')").fetchall()


def release_settings(tmp_path: Path):
    return load_settings({"REDRESS_HMAC_KEY": "k", "REDRESS_DEBTOR_NAME": "Payer", "REDRESS_DEBTOR_ACCOUNT": "1002003004005",
                          "REDRESS_DEBTOR_BANK_CODE": "020"}, data_dir=tmp_path)


def test_the_release_writes_each_batch_from_the_staged_plan_file(tmp_path, caps):
    path = staged(tmp_path, caps)
    planned = pl.read_parquet(tmp_path / "planned.parquet")
    with connect(path) as con:
        summary = con.sql("SELECT * FROM planned_batches ORDER BY batch_id").pl()
    release(context(tmp_path), release_settings(tmp_path), caps, tmp_path / "planned.parquet", summary, AT)
    for batch_id in (V1, B2):
        written = pl.read_parquet(tmp_path / "outbox" / "batches" / batch_id / "payments.parquet")
        expected = planned.filter(pl.col("batch_id") == batch_id).sort("payment_id")
        assert written["payment_id"].to_list() == expected["payment_id"].to_list()
        assert written["amount"].to_list() == expected["amount"].to_list()
    with connect(path) as con:
        assert con.execute("SELECT count(*), sum(amount) FROM ledger WHERE run_id = 'R20251201-001'").fetchall() == [
            (3, 130000)]


@pytest.mark.parametrize("change", [
    lambda plan: plan.filter(pl.col("payment_id") != "20251201-B0002-000002"),  # a row lost
    lambda plan: plan.sort("batch_id", "payment_id", descending=[False, True]),  # out of order
    lambda plan: plan.sort("batch_id", descending=True),  # the batches out of order
])
def test_a_plan_file_unlike_the_checked_plan_stops_the_release_before_the_commit(tmp_path, caps, change):
    path = staged(tmp_path, caps)
    plan = tmp_path / "planned.parquet"
    change(pl.read_parquet(plan)).write_parquet(plan)
    with connect(path) as con:
        summary = con.sql("SELECT * FROM planned_batches ORDER BY batch_id").pl()
        ledger_before = con.execute("SELECT count(*) FROM ledger").fetchall()
    with pytest.raises(RuntimeError, match=f"batch {B2}: the plan file.s rows are not the batch.s 2 checked payments"):
        release(context(tmp_path), release_settings(tmp_path), caps, plan, summary, AT)
    with connect(path) as con:
        assert con.execute("SELECT count(*) FROM ledger").fetchall() == ledger_before
    assert not (tmp_path / "outbox" / "batches" / B2).exists()


def test_a_batch_folder_that_cannot_be_written_stops_the_release_before_the_commit(tmp_path, caps, monkeypatch):
    """Folders are written two at a time (release.WRITERS): an error in a writer's
    thread (here a full disk on the first batch while the second is being written)
    reaches the caller as it is, and nothing is committed or published."""
    import redress.disbursement.release as release_module

    path = staged(tmp_path, caps)
    with connect(path) as con:
        summary = con.sql("SELECT * FROM planned_batches ORDER BY batch_id").pl()
    real = release_module.outbox.write_batch

    def write_batch(batches_dir, manifest, payments, extra=None):
        if manifest["batch_id"] == V1:
            raise OSError(28, "No space left on device")
        return real(batches_dir, manifest, payments, extra)

    monkeypatch.setattr(release_module.outbox, "write_batch", write_batch)
    with pytest.raises(OSError, match="No space left"):
        release(context(tmp_path), release_settings(tmp_path), caps, tmp_path / "planned.parquet", summary, AT)
    with connect(path) as con:
        assert con.execute("SELECT count(*) FROM ledger WHERE run_id = 'R20251201-001'").fetchall() == [(0,)]
    assert not [p for p in (tmp_path / "outbox" / "batches").iterdir() if not p.name.startswith(".tmp-")]


# ------------------------------------------------------------------ the gate's fingerprint

GATE_CHANGES = {  # one value of one input the gate reads, changed
    "planned_payments": "UPDATE planned_payments SET bank_account = '1234567891' WHERE customer_id = 'c2'",
    "planned_batches": "UPDATE planned_batches SET value_date = value_date + 1 WHERE rail = 'voucher'",
    "entitlements": "UPDATE entitlements SET amount = amount - 1 WHERE customer_id = 'c1'",
    "ledger": "UPDATE ledger SET status = 'returned' WHERE customer_id = 'c3'",
    "batches": "UPDATE batches SET control_sum = control_sum + 1 WHERE rail = 'voucher'",
}


@pytest.mark.parametrize("table", sorted(GATE_CHANGES))
def test_the_gate_fingerprint_moves_with_any_value_the_gate_reads_and_not_with_row_order(tmp_path, caps, table):
    """gate_fingerprint: the same plan staged again, or the same rows in another order,
    give the same fingerprint (the approval stages the plan afresh); one value changed in
    any table the gate reads, or another policy, gives another."""
    from redress.checks.emission_checks import GATE_INPUTS, gate_fingerprint

    assert set(GATE_CHANGES) == set(GATE_INPUTS)
    path = staged(tmp_path, caps)
    planned, summary = plan_frames(PLAN, caps)
    with connect(path) as con:
        before = gate_fingerprint(con, caps)
        stage_plan(con, plan_file(planned, tmp_path), summary, caps.voucher_products)
        assert gate_fingerprint(con, caps) == before
        con.execute(f"CREATE TABLE shuffled AS SELECT * FROM {table} ORDER BY rowid DESC")  # the rows reversed
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} SELECT * FROM shuffled")
        con.execute("DROP TABLE shuffled")
        assert gate_fingerprint(con, caps) == before
        assert gate_fingerprint(con, dataclasses.replace(caps, sha256="0" * 64)) != before  # another policy
        con.execute(GATE_CHANGES[table])
        assert gate_fingerprint(con, caps) != before


@pytest.mark.parametrize("column, value", [
    (None, None), ("bank_account", "1234567891"), ("amount", 49999), ("attempt", 2),
    ("value_date", date(2025, 12, 2)), ("payment_id", "20251201-V0001-000009"),
])
def test_the_gate_fingerprint_of_the_plan_file_is_that_of_the_plan_staged_from_it(tmp_path, caps, column, value):
    """An approval reads the plan's payments from the plan file instead of staging them
    (gate_fingerprint(planned=)): the file gives the fingerprint its staged table gives,
    and a file with one value changed gives another, as staging that file would."""
    from redress.checks.emission_checks import gate_fingerprint, planned_payments_sql, stage_batches

    path = staged(tmp_path, caps)
    staged_file = tmp_path / "planned.parquet"
    edited = tmp_path / "edited" / "planned.parquet"
    edited.parent.mkdir()
    frame = pl.read_parquet(staged_file)
    if column is not None:
        frame = frame.with_columns(pl.when(pl.col("customer_id") == "c2").then(pl.lit(value))
                                   .otherwise(pl.col(column)).cast(frame.schema[column]).alias(column))
    frame.write_parquet(edited)
    _, summary = plan_frames(PLAN, caps)
    with connect(path) as con:
        from_table = gate_fingerprint(con, caps)
        con.execute("DROP TABLE planned_payments")
        stage_batches(con, summary)
        assert (gate_fingerprint(con, caps, edited) == from_table) == (column is None)
        # the rows the commit reads from the file are the staged rows, column for column
        con.execute(f"CREATE TABLE from_file AS {planned_payments_sql(caps.voucher_products)}", [str(edited)])
        stage_plan(con, edited, summary, caps.voucher_products)
        assert gate_fingerprint(con, caps) == gate_fingerprint(con, caps, edited)
        assert con.execute("SELECT * FROM from_file EXCEPT ALL SELECT * FROM planned_payments").fetchall() == []
        assert con.execute("SELECT count(*) FROM from_file").fetchall() == [(len(PLAN),)]


@pytest.mark.parametrize("payments, rows", [
    # the 4 planned rows and c3's earlier one
    pytest.param([*PLAN, ("20251201-V0001-000002", None, 1000, "voucher", V1, RUN)], 5, id="null-customer"),
    # and c5's earlier one, c5 being paid now
    pytest.param([*PLAN, (PLAN[0][0], "c5", 1000, "voucher", V1, RUN)], 6, id="payment-id-reused-across-customers"),
])
def test_ledger_after_sliced_is_the_whole_row_for_row(tmp_path, policy, monkeypatch, payments, rows):
    """Review of d3dac4c: a planned row without a customer (hash(NULL) is not NULL in
    DuckDB, so it lands in one slice) and a payment id two customers share come out of
    the slices exactly as out of the whole; a second staging on the same connection,
    inside a transaction, replaces the temp table and leaves none behind."""
    run_policy = policy(**CAPS)
    path = staged(tmp_path, run_policy, payments=payments)
    query = "SELECT * FROM ledger_after ORDER BY ALL"
    with connect(path) as con:
        whole = con.execute(query).fetchall()
        for slice_payments in (1, 2, 3):
            monkeypatch.setattr(emission_checks, "SLICE_PAYMENTS", slice_payments)
            con.execute("BEGIN")
            emission_checks.stage_checked(con, run_policy.voucher_products)
            con.execute("COMMIT")
            assert con.execute(query).fetchall() == whole
        assert not con.execute("SELECT * FROM duckdb_tables() WHERE table_name = 'ledger_touched'").fetchall()
    assert len(whole) == rows
