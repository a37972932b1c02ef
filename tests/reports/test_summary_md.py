"""summary.md (redress/reports/summary.py, templates/summary.md.j2), from hand-made stage
results and suite records: what it lists, that it escapes, and that it is byte for byte
the text the string-building renderer wrote before the templates (golden/), except the
returns files now listed under "Files read"."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import jinja2
import pytest

from redress.reports import rendering
from redress.reports.summary import FILE_ROLES, report_files, summary_markdown, treasury_schedule
from redress.reports.facts import BatchTotal, CashDay, QuarantineCount, RunFacts
from redress.results import (
    Destinations, DisagreeingRow, Disagreements, DisburseResult, EntitleResult, FileRead, IngestResult,
    NotifyResult, Overpayments, RailTotal, ReasonTotal, ReturnsFileRead, ReturnsResult, RunSummary, TreasuryDay,
    ValidateResult,
)

GOLDEN = Path(__file__).parent / "golden"
RUN_DATE = date(2025, 12, 1)


def scope_file(name: str, status: str, rows: int | None) -> FileRead:
    return FileRead(kind="scope", file_name=name, file_sha256=None, status=status, rows_read=rows)


def validate(**changes) -> ValidateResult:
    return dataclasses.replace(ValidateResult(
        mode="full", why="full: nothing classified yet", classified_files=1,
        destinations=Destinations(rows_read=1200, exposure=1100, non_member=50, review=20, quarantine=30),
        quarantine_reasons={"unknown_category": 30}, input_checks={}, checks_disagree=Disagreements(0, ()),
        files=()), **changes)


SUMMARY = RunSummary(
    run_id="R20251201-001",
    ingest=IngestResult(files=(scope_file("scope_01.csv", "accepted", 1200),
                               scope_file("scope_04.parquet", "unreadable_file", None))),
    validate=validate(),
    entitle=EntitleResult(mode="full", why="full: nothing classified yet", customers_recomputed=903,
                          by_reason={"ELIGIBLE": ReasonTotal(900, 45_000_000), "TEST_ACCOUNT": ReasonTotal(3, 0)}),
    disburse=DisburseResult(
        batches=2, payments=900, amount_krw=45_000_000,
        per_rail={"voucher": RailTotal(880, 44_000_000), "bank_transfer": RailTotal(20, 1_000_000)},
        treasury=(TreasuryDay("2025-12-01", 1_000_000, 1_500_000),),
        overpayments=Overpayments(customers=2, amount_krw=100_000), recovered_batches=()),
    notify=NotifyResult(notifications=950, per_channel={"sms": 900, "email": 50}, per_template={}),
)
FACTS = RunFacts(
    files=(),
    quarantine=(QuarantineCount("scope", "unknown_category", 0, 30), QuarantineCount("scope", "unreadable_file", 1, 0)),
    batches=(BatchTotal("bank_transfer", "2025-12-01", 1, 20, 1_000_000), BatchTotal("voucher", "2025-12-01", 1, 880, 44_000_000)),
    cash=(CashDay("2025-12-01", 1_000_000, 1_200_000),),
)
HELD = Disagreements(rows=3, listed=(
    DisagreeingRow("scope_01.csv", 7, "invalid_identifier", "exposure"),
    DisagreeingRow("scope_01.csv", 9, "non_member", "exposure_before_account_created")))


def render(summary: RunSummary, policy_name: str = "coupang-2025-v1.toml", **kw) -> str:
    return summary_markdown(summary, run_date=RUN_DATE, policy_name=policy_name, **kw)


def test_summary_lists_every_section(records):
    text = render(SUMMARY, facts=FACTS, records=records)
    for heading in ("Files read", "Scope rows", "Quarantine by reason", "Data quality", "Entitlements by reason",
                    "New payments by rail", "Batches by rail and value date", "Treasury schedule",
                    "Overpayment exceptions", "Notifications"):
        assert f"# {heading}" in text, heading
    assert "| scope | scope_04.parquet | unreadable_file |  |" in text
    assert "| scope | unreadable_file | the file cannot be read as its type says | 1 | 0 |" in text
    assert "| bank_transfer | 2025-12-01 | 1 | 20 | 1,000,000 |" in text
    assert "| 2025-12-01 | 1,000,000 | 1,200,000 | 1,500,000 | 300,000 |" in text  # headroom under the cap
    assert "| sms | 900 |" in text and "| ELIGIBLE | 900 | 45,000,000 |" in text
    assert "failed" not in text.split("## Data quality")[0]


def test_summary_lists_suites_passed_and_failed(records, personal):
    text = render(SUMMARY, facts=FACTS, records=records)
    assert "2 suite runs: 1 passed, 0 with defects found and handled, 1 stopped the run" in text
    assert "data_quality.html" in text
    assert "| customers_staging-customers_2025-11-29.parquet | customers_staging | customers_staging | passed | 2 | 0 |  |" in text
    assert "| scope_exposures | scope_exposures | scope_exposures | **gate stopped the run** | 2 | 1 | gate_failed_unknown_matched_by |" in text
    assert not [v for v in personal if v in text]


def test_a_failed_run_shows_the_error_what_was_done_and_what_was_not(records):
    partial = RunSummary(run_id="R20251201-001", ingest=SUMMARY.ingest)
    error = "suite scope_exposures failed: expect_column_values_to_be_in_set on matched_by, 37 rows"
    text = render(partial, facts=dataclasses.replace(FACTS, batches=(), cash=()), records=records, error=error)
    assert f"**The run failed**: {error}" in text
    assert "scope_01.csv" in text and "**gate stopped the run**" in text
    for heading in ("Scope rows", "Entitlements by reason", "New payments by rail", "Notifications"):
        assert f"## {heading} (all accepted files)\n\nNo figures" in text or f"## {heading}\n\nNo figures" in text


def test_summary_without_warehouse_facts_falls_back_to_the_stage_results():
    text = render(SUMMARY)
    assert "| scope | unknown_category | a data category the policy does not list | 0 | 30 |  |" in text
    assert "| 2025-12-01 | 1,000,000 |  | 1,500,000 |  |" in text
    assert "No suite ran." in text


def test_rows_the_checks_disagree_on_are_named_by_file_and_row_only():
    text = render(dataclasses.replace(SUMMARY, validate=validate(checks_disagree=HELD)), facts=FACTS)
    section = text.split("### Rows the input checks disagree on (held in review, not paid)")[1].split("##")[0]
    assert "| scope_01.csv | 7 | invalid_identifier | exposure |" in section
    assert "| scope_01.csv | 9 | non_member | exposure_before_account_created |" in section
    assert "... and 1 more in the `review` table" in section
    assert "disagree" not in render(SUMMARY)


def test_a_table_cell_cannot_break_the_markdown_table():
    odd = dataclasses.replace(SUMMARY, ingest=IngestResult(files=(scope_file("a|b\nc.csv", "accepted", 1),)))
    # the newline shown as \x0a (redress/escape.py), its backslash escaped for Markdown
    assert "| scope | a\\|b\\\\x0ac.csv | accepted | 1 |" in render(odd)


def test_files_read_lists_the_returns_files_after_the_inbox_files():
    returns = ReturnsResult(files=(ReturnsFileRead(kind="returns", file_name="returns_*1*.csv", file_sha256="ab",
                                                   status="accepted", rows_read=3, payments_applied=2,
                                                   rows_quarantined=1),),
                            payments_applied=2, already_settled=0, rows_quarantined=1)
    text = render(dataclasses.replace(SUMMARY, returns=returns), facts=FACTS)
    files = text.split("## Files read\n\n")[1].split("\n\n")[0].splitlines()
    assert files[2:] == ["| scope | scope_01.csv | accepted | 1,200 |",
                         "| scope | scope_04.parquet | unreadable_file |  |",
                         "| returns | returns\\_\\*1\\*.csv | accepted | 3 |"]


def test_treasury_schedule_uses_the_cap_disburse_applied():
    assert treasury_schedule(SUMMARY.disburse, FACTS) == [{"value_date": "2025-12-01", "this_run": 1_000_000,
                                                           "all_runs": 1_200_000, "daily_cash_cap": 1_500_000,
                                                           "headroom": 300_000}]


# --------------------------------------------------------------------------- golden: the text before templates

HOSTILE_INGEST = IngestResult(files=(
    scope_file("a|b\nc<img src=x>[l](u)*e*_x_.csv", "accepted", 1),
    FileRead(kind="customers", file_name="\x1b[31mred\u202e.csv", file_sha256=None, status="rejected", rows_read=12345)))
EMPTY = RunSummary(
    run_id="R20251201-001", ingest=IngestResult(files=()),
    validate=validate(destinations=Destinations(0, 0, 0, 0, 0), quarantine_reasons={}),
    entitle=EntitleResult(mode="full", why="", customers_recomputed=0, by_reason={}),
    disburse=DisburseResult(batches=0, payments=0, amount_krw=0, per_rail={}, treasury=(),
                            overpayments=Overpayments(0, 0), recovered_batches=()),
    notify=NotifyResult(notifications=0, per_channel={}, per_template={}))


@pytest.fixture
def golden_cases(records, hostile_records) -> dict:
    """Each golden file's inputs: (summary, policy file name, keyword arguments)."""
    policy = "coupang-2025-v1.toml"
    return {
        "full": (SUMMARY, policy, dict(facts=FACTS, records=records)),
        "failed": (RunSummary(run_id="R20251201-001", ingest=SUMMARY.ingest), policy,
                   dict(facts=dataclasses.replace(FACTS, batches=(), cash=()), records=records,
                        error="suite scope_exposures failed: <b>x</b> | *y* on `m`")),
        "no_facts": (SUMMARY, policy, {}),
        "disagree": (dataclasses.replace(SUMMARY, validate=validate(checks_disagree=dataclasses.replace(
            HELD, listed=(HELD.listed[0], dataclasses.replace(HELD.listed[1], file_name="a|b*c*.csv"))))),
            policy, dict(facts=FACTS)),
        "hostile": (dataclasses.replace(SUMMARY, ingest=HOSTILE_INGEST), "<b>*p*|[x](y)_.toml",
                    dict(facts=dataclasses.replace(FACTS, quarantine=(QuarantineCount("scope", "a|<b>", 1, 0),)),
                         records=hostile_records)),
        "empty": (EMPTY, policy, dict(facts=RunFacts(), records=[])),
    }


@pytest.mark.parametrize("name", ["full", "failed", "no_facts", "disagree", "hostile", "empty"])
def test_summary_is_byte_identical_to_the_one_before_templates(golden_cases, name):
    summary, policy_name, kw = golden_cases[name]
    assert render(summary, policy_name, **kw) == (GOLDEN / f"summary_{name}.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the template environment


def test_a_text_written_without_markdown_escaping_fails_the_render():
    template = rendering.markdown_environment().from_string("| {{ name }} |")
    with pytest.raises(rendering.UnescapedText):
        template.render(name="<img src=x>")
    assert template.render(name=rendering.md("<img src=x>")) == "| &lt;img src=x&gt; |"
    assert template.render(name=1234) == "| 1234 |"  # numbers are written as they are


def test_a_value_the_template_names_but_is_not_given_fails_the_render():
    with pytest.raises(jinja2.UndefinedError):
        rendering.markdown_environment().get_template("summary.md.j2").render(run_id="R1")


@pytest.mark.parametrize("rails", [
    {"voucher": (880, 44_000_000), "bank_transfer": (20, 1_000_000), "claim": (7, 350_000)},
    {"claim": (1, 50_000)},
    {"voucher": (3, 150_000)},
])
def test_payments_have_a_grand_total_and_claim_money_is_held_not_paid(rails):
    per_rail = {rail: RailTotal(n, amount) for rail, (n, amount) in rails.items()}
    disburse = dataclasses.replace(SUMMARY.disburse, per_rail=per_rail)
    text = render(dataclasses.replace(SUMMARY, disburse=disburse), facts=FACTS)
    paid = sum(a for r, (_, a) in rails.items() if r != "claim")
    held = rails.get("claim", (0, 0))[1]
    count = sum(n for n, _ in rails.values())
    assert "| rail | payments | paid out (KRW) | held on claim, not paid out (KRW) |" in text
    assert f"| **TOTAL** | **{count:,}** | **{paid:,}** | **{held:,}** |" in text
    if "claim" in rails:
        assert f"| claim | {rails['claim'][0]:,} | 0 | {held:,} |" in text


LEDGER = {"held_payments": 4, "held": 110_000, "claimed_payments": 2, "claimed": 60_000,
          "unclaimed_payments": 0, "unclaimed": 0}
UNCLAIMED = dict(LEDGER, held_payments=0, held=0, unclaimed_payments=98, unclaimed=2_940_000)


@pytest.mark.parametrize("awaiting", [False, True])
def test_held_money_before_the_claim_deadline_and_unclaimed_money_after_it_with_counts(awaiting):
    """Found by finance review: summary.md never mentioned unclaimed money, and called
    this run's claim money held past the deadline. `ledger` is the reconciliation's
    TOTAL row; the run date is 2025-12-01."""
    per_rail = {"voucher": RailTotal(880, 44_000_000), "claim": RailTotal(7, 350_000)}
    summary = dataclasses.replace(SUMMARY, disburse=dataclasses.replace(
        SUMMARY.disburse, per_rail=per_rail, awaiting_approval=awaiting))
    before = render(summary, facts=FACTS, ledger=LEDGER, claim_deadline=date(2025, 12, 1))
    assert ("**4 payments, 110,000 KRW held** on the `claim` rail, not paid out until the person claims it "
            "(claim deadline 2025-12-01).\nClaimed so far: 2 payments, 60,000 KRW, held and then cancelled by a claim") in before
    assert "unclaimed" not in before.split("## New payments by rail")[1].split("## ")[0]
    assert "## Money on the claim rail (whole ledger)" in before
    after = render(summary, facts=FACTS, ledger=UNCLAIMED, claim_deadline=date(2025, 11, 30))
    assert ("The claim deadline 2025-11-30 has passed: **98 payments, 2,940,000 KRW unclaimed**, never paid "
            "automatically, for finance to decide") in after
    new = after.split("## New payments by rail")[1].split("## ")[0]
    assert "held" not in new and "unclaimed" in new
    assert (("to leave unclaimed on claim, deadline passed (KRW) |" if awaiting
             else "| unclaimed on claim, deadline passed, not paid out (KRW) |") in new)
    assert "**4 payments, 110,000 KRW held** on the `claim` rail, not paid out until the person claims it " \
           "(no claim deadline)." in render(summary, facts=FACTS, ledger=LEDGER)


def test_a_plan_waiting_for_approval_is_not_called_paid_out():
    disburse = dataclasses.replace(SUMMARY.disburse, awaiting_approval=True)
    text = render(dataclasses.replace(SUMMARY, disburse=disburse), facts=FACTS)
    assert "| rail | payments | to pay once approved (KRW) | to hold on claim (KRW) |" in text
    assert "paid out (KRW)" not in text


def test_each_quarantine_reason_names_its_files_and_says_what_it_means():
    facts = dataclasses.replace(FACTS, quarantine=(
        QuarantineCount("scope", "unknown_category", 0, 30, ("scope_01.csv", "scope_|02*.csv")),
        QuarantineCount("returns", "unknown_payment_id", 0, 2, ("returns_1.csv",)),
        QuarantineCount("customers", "invalid_timestamp", 1, 1, ("customers_2.csv",))))
    text = render(SUMMARY, facts=facts)
    # found by the oracle review: it read "accessed_at is not a timestamp", a column customers have not
    assert "| customers | invalid_timestamp | created_at or closed_at is not a timestamp | 1 | 1 | customers_2.csv |" in text
    assert ("| scope | unknown_category | a data category the policy does not list | 0 | 30 | "
            "scope_01.csv, scope\\_\\|02\\*.csv |") in text
    assert "| returns | unknown_payment_id | no such payment in the ledger | 0 | 2 | returns_1.csv |" in text


def test_the_files_of_the_run_are_listed_by_path_and_linked_from_the_summary(tmp_path):
    data = tmp_path / "data"
    report = data / "reports" / "R20251201-001"
    written = [report / "reconciliation.md", data / "quarantine" / "R20251201-001" / "review.csv"]
    outputs = report_files(data, report, written)
    assert outputs == [
        {"what": FILE_ROLES["review.csv"], "path": "quarantine/R20251201-001/review.csv",
         "link": "../../quarantine/R20251201-001/review.csv"},
        {"what": FILE_ROLES["reconciliation.md"], "path": "reports/R20251201-001/reconciliation.md",
         "link": "reconciliation.md"},
    ]
    text = render(SUMMARY, facts=FACTS, outputs=outputs)
    section = text.split("## Files of this run")[1]
    assert "[quarantine/R20251201-001/review.csv](../../quarantine/R20251201-001/review.csv)" in section
    assert "[reports/R20251201-001/reconciliation.md](reconciliation.md)" in section


# --------------------------------------------------------------------------- the fund cap

CAP_LINE = "Fund cap (budget.total_cap): {:,} KRW."
PAID_LINE = ("Paid or held in all, the whole ledger (issued + settled, held claim money included: it is owed): "
             "167,731,490 KRW.")
WHY = ("Payments are never clawed back and the pro rata share applies to entitlements: when a revision lowers "
       "the share, people paid before keep what they got while the people added are paid too.")


@pytest.mark.parametrize("cap, lines", [
    (150_000_000, [CAP_LINE.format(150_000_000), PAID_LINE, f"WARNING: 17,731,490 KRW over the fund cap. {WHY}"]),
    (170_000_000, [CAP_LINE.format(170_000_000), PAID_LINE, "Within the fund cap: 2,268,510 KRW of it left."]),
    (0, []),
], ids=["over", "under", "no-cap"])
def test_the_summary_states_the_fund_cap_against_what_is_paid_or_held_in_all(overspent_fund, cap, lines):
    """Found by finance review: 163,988,384 KRW paid and 3,743,106 KRW held against a fund
    of 150,000,000, and summary.md said nothing of the cap."""
    _, recon = overspent_fund
    text = render(SUMMARY, facts=FACTS, ledger=recon.row(recon.height - 1, named=True), total_cap=cap)
    if not lines:
        assert "Fund cap" not in text and "fund cap" not in text
        return
    section = text.split("## Fund cap\n\n", 1)[1].split("\n## ", 1)[0]
    assert [line for line in section.split("\n") if line] == lines


def test_a_plan_waiting_for_approval_is_counted_once_released(overspent_fund):
    """A plan waiting for approval: the whole ledger, then the ledger once it is released
    (its 45,000,000 KRW on top), each against the same cap."""
    _, recon = overspent_fund
    waiting = dataclasses.replace(SUMMARY, disburse=dataclasses.replace(SUMMARY.disburse, awaiting_approval=True))
    text = render(waiting, facts=FACTS, ledger=recon.row(recon.height - 1, named=True), total_cap=170_000_000)
    section = text.split("## Fund cap\n\n", 1)[1].split("\n## ", 1)[0]
    assert [line for line in section.split("\n") if line] == [
        CAP_LINE.format(170_000_000), PAID_LINE, "Within the fund cap: 2,268,510 KRW of it left.",
        "Paid or held in all, once the plan waiting for approval is released (issued + settled, held claim money "
        "included: it is owed): 212,731,490 KRW.", f"WARNING: 42,731,490 KRW over the fund cap. {WHY}"]


def test_money_held_above_the_entitlement_is_shown_apart_from_the_overpaid():
    """Found by finance review: held claim money above a lowered entitlement was in the
    overpaid figure though it never left the bank."""
    summary = dataclasses.replace(SUMMARY, disburse=dataclasses.replace(
        SUMMARY.disburse, overpayments=Overpayments(customers=1, amount_krw=20_000, held_customers=2,
                                                    held_krw=915_000)))
    text = render(summary, facts=FACTS)
    assert ("| overpaid (paid out, no clawback) | 1 | 20,000 |\n"
            "| held above entitlement (on the `claim` rail, not paid out) | 2 | 915,000 |\n") in text
    held_only = dataclasses.replace(SUMMARY, disburse=dataclasses.replace(
        SUMMARY.disburse, overpayments=Overpayments(customers=0, amount_krw=0, held_customers=1, held_krw=900_000)))
    assert "| overpaid (paid out, no clawback) | 0 | 0 |" in render(held_only, facts=FACTS)
