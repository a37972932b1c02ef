"""The console side of a run's progress (redress/runtime/progress.py, stage_counts.py):
plain lines for a pipe, a rich bar for a terminal, counts with thousands separators."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st
from rich.console import Console

from redress import results as r
from redress.runtime import progress
from redress.runtime.stage_counts import counts_text

ESCAPE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # any control character but tab and newline


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_have_no_control_characters_and_steps_are_throttled():
    out, clock = io.StringIO(), Clock()
    plain = progress.PlainReporter(out, clock, heartbeat=0)
    plain.stage_started("ingest")
    for done in range(0, 1001):
        clock.now = done / 100  # 10 s over the whole loop: a line at 0 s, 5 s and the last (10 s)
        plain.step("ingest", "reading files", done, 1000)
    plain.stage_done("ingest", 12.44, "3,370,000 customers rows")
    lines = out.getvalue().splitlines()
    assert lines == ["ingest      started",
                     "ingest      reading files: 0 of 1,000",
                     "ingest      reading files: 500 of 1,000",
                     "ingest      reading files: 1,000 of 1,000",
                     "ingest      done in 12.4 s · 3,370,000 customers rows"]
    assert not ESCAPE.search(out.getvalue())


def test_a_long_stage_without_a_count_is_never_silent_on_a_pipe():
    out, clock = io.StringIO(), Clock()
    plain = progress.PlainReporter(out, clock, heartbeat=20)
    plain._stop.set()  # the beats are driven by hand here, not by the background thread
    plain.stage_started("validate")
    for now in (5, 19.9, 20, 30, 40.5, 61):
        clock.now = now
        plain.beat()
    plain.stage_done("validate", 65.0, "")
    clock.now = 200
    plain.beat()  # nothing running: nothing to say
    assert out.getvalue().splitlines() == ["validate    started",
                                           "validate    still running, 20 s so far",
                                           "validate    still running, 40 s so far",
                                           "validate    still running, 61 s so far",
                                           "validate    done in 65.0 s"]


def test_the_heartbeat_thread_prints_and_stops_with_the_reporter():
    out = io.StringIO()
    plain = progress.PlainReporter(out, heartbeat=0.2)
    plain.stage_started("entitle")
    import time
    time.sleep(0.6)
    plain.stage_done("entitle", 0.6, "")
    plain.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "entitle     started" and lines[-1] == "entitle     done in 0.6 s"
    assert any(line.startswith("entitle     still running, ") for line in lines[1:-1]), lines
    assert plain._thread is None


def test_a_pipe_gets_plain_lines():
    assert isinstance(progress.reporter_for(io.StringIO()), progress.PlainReporter)


def test_the_terminal_renderer_draws_a_bar_then_prints_the_stage_line():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system="standard")
    terminal = progress.TerminalReporter(console)
    terminal.stage_started("disburse")
    terminal.step("disburse", "batches written", 3, 7)
    terminal.bars.refresh()
    drawn = out.getvalue()
    assert "disburse    batches written" in drawn and "3/7" in drawn
    terminal.stage_done("disburse", 2.0, "1,769 payments · 3 batches")
    terminal.finish()
    text = out.getvalue()
    assert "\x1b[" in text  # a terminal: the bar is drawn and taken down with escape codes
    assert "disburse    done in 2.0 s · 1,769 payments · 3 batches" in text
    assert not terminal._tasks


def test_timed_reports_the_counts_of_the_result_and_no_done_on_failure():
    out = io.StringIO()
    result = r.NotifyResult(notifications=1234567, per_channel={"sms": 1234567}, per_template={})
    with progress.reporting(progress.PlainReporter(out)):
        assert progress.timed("notify", lambda: result) is result
        with pytest.raises(ValueError):
            progress.timed("report", _fails)
    lines = out.getvalue().splitlines()
    assert lines[0] == "notify      started"
    assert re.fullmatch(r"notify      done in \d+\.\d s · 1,234,567 people notified", lines[1])
    assert lines[2:] == ["report      started"]  # the error is the command's to print
    progress.timed("notify", lambda: result)  # outside `reporting`: nothing printed, nothing raised
    assert len(out.getvalue().splitlines()) == 3


def _fails():
    raise ValueError("boom")


counts = st.integers(min_value=0, max_value=10**9)


@given(rows=counts, exposure=counts, non_member=counts, review=counts, quarantine=counts)
def test_validate_counts_are_the_result_fields_with_separators(rows, exposure, non_member, review, quarantine):
    result = r.ValidateResult(
        mode="full", why="", classified_files=1,
        destinations=r.Destinations(rows, exposure, non_member, review, quarantine),
        quarantine_reasons={}, input_checks={}, checks_disagree=r.Disagreements(0, ()), files=())
    assert counts_text("validate", result) == (
        f"all accepted files: {rows:,} scope rows · {exposure:,} exposures · {non_member:,} non-member · "
        f"{review:,} in review · {quarantine:,} quarantined")


def test_ingest_counts_accepted_rows_per_kind_and_files_by_status():
    files = (r.FileRead("customers", "c.parquet", "a", "accepted", 3_370_000),
             r.FileRead("scope", "s1.csv", "b", "accepted", 6_412_118),
             r.FileRead("scope", "s2.csv", "c", "empty_file", None),
             r.FileRead("scope", "s3.csv", "b", "duplicate_file", None),
             r.FileRead("scope", "s4.csv", None, "not_read", None, "still changing"))
    assert counts_text("ingest", r.IngestResult(files=files)) == (
        "3,370,000 customers rows · 6,412,118 scope rows read · 3 new files · 1 quarantined whole · "
        "1 duplicate · 1 not read (the log and the summary say why)")


def test_disburse_counts_say_when_the_plan_waits():
    result = r.DisburseResult(batches=12, payments=33_700_000, amount_krw=1_685_000_000_000, per_rail={},
                              treasury=(), overpayments=r.Overpayments(0, 0), recovered_batches=(),
                              awaiting_approval=True)
    assert counts_text("disburse", result) == \
        "33,700,000 payments · 12 batches · 1,685,000,000,000 KRW to pay out · waiting for approval"
    assert counts_text("report", "the summary text") == ""
    sharing = r.DisburseResult(batches=2, payments=7, amount_krw=350_000, per_rail={}, treasury=(),
                               overpayments=r.Overpayments(0, 0), recovered_batches=(), shared_accounts=1,
                               payees_sharing=6, shared_krw=300_000)
    assert counts_text("disburse", sharing) == \
        "7 payments · 2 batches · 350,000 KRW to pay out · 6 payees sharing 1 bank account (see summary.md)"
    changed = r.DisburseResult(batches=2, payments=7, amount_krw=350_000, per_rail={}, treasury=(),
                               overpayments=r.Overpayments(0, 0), recovered_batches=(), changed_payees=2,
                               changed_krw=100_000, awaiting_approval=True)
    assert counts_text("disburse", changed) == ("7 payments · 2 batches · 350,000 KRW to pay out · "
                                                "2 payees paid to a changed bank account (see summary.md) · "
                                                "waiting for approval")
    catch_up = r.DisburseResult(batches=2, payments=7, amount_krw=350_000, per_rail={}, treasury=(),
                                overpayments=r.Overpayments(0, 0), recovered_batches=(), before_today_payments=3,
                                before_today_krw=150_000, before_today_from="2026-12-04",
                                before_today_until="2026-12-05", today="2026-12-08")
    assert counts_text("disburse", catch_up) == ("7 payments · 2 batches · 350,000 KRW to pay out · "
                                                 "3 bank transfers dated before today (150,000 KRW; see summary.md)")


def test_notify_counts_name_the_customers_paid_now_who_were_told_otherwise_only_when_some_were():
    told = r.NotifyResult(notifications=0, per_channel={}, per_template={})
    assert counts_text("notify", told) == "0 people notified"
    otherwise = r.NotifyResult(notifications=0, per_channel={}, per_template={}, told_otherwise=1,
                               told_otherwise_krw=50_000, told_otherwise_list="quarantine/R20251201-001/told_otherwise.csv")
    # found by the lifecycle review: a placeholder, where approve's list is in the planning run's folder
    assert counts_text("notify", otherwise) == ("0 people notified · 1 customer paid now, told otherwise before "
                                                "(listed in quarantine/R20251201-001/told_otherwise.csv)")


def test_claims_counts_name_claimants_sharing_an_account_only_when_some_do():
    alone = r.ClaimsResult(files=(), claims_applied=2, payments_cancelled=2, cancelled_krw=100_000, rows_quarantined=0)
    assert counts_text("apply claims", alone) == "0 new files · 2 claims applied · 0 rows quarantined"
    shared = r.ClaimsResult(files=(), claims_applied=1, payments_cancelled=1, cancelled_krw=50_000, rows_quarantined=1,
                            shared_accounts=1, claimants_sharing=3)
    assert counts_text("apply claims", shared) == (
        "0 new files · 1 claim applied · 1 row quarantined · 3 claimants sharing 1 bank account (see summary.md)")


def test_money_held_on_claim_is_never_counted_as_paid_out():
    """Found by review: `approve` said "87,750,000 KRW released" of a plan holding
    2,150,000 on the claim rail, which leaves nobody's account until claimed."""
    rails = {"bank_transfer": r.RailTotal(1_000, 50_000_000), "claim": r.RailTotal(43, 2_150_000),
             "voucher": r.RailTotal(712, 35_600_000)}
    planned = r.DisburseResult(batches=3, payments=1_755, amount_krw=87_750_000, per_rail=rails, treasury=(),
                               overpayments=r.Overpayments(0, 0), recovered_batches=())
    assert counts_text("disburse", planned) == (
        "1,755 payments · 3 batches · 85,600,000 KRW to pay out · 2,150,000 KRW held on claim (43 payments)")
    released = r.ReleaseResult(batches=1, payments=1, amount_krw=50_000, held_payments=1, held_krw=50_000)
    assert counts_text("release", released) == \
        "1 payment · 1 batch · 0 KRW to pay out · 50,000 KRW held on claim (1 payment)"
    # past the claim deadline that money is unclaimed, as the reports call it (audit review)
    import dataclasses
    assert counts_text("disburse", dataclasses.replace(planned, claim_deadline_passed=True)) == (
        "1,755 payments · 3 batches · 85,600,000 KRW to pay out · 2,150,000 KRW unclaimed on claim, deadline passed "
        "(43 payments)")
    assert counts_text("release", dataclasses.replace(released, claim_deadline_passed=True)) == (
        "1 payment · 1 batch · 0 KRW to pay out · 50,000 KRW unclaimed on claim, deadline passed (1 payment)")


@given(n=st.integers(min_value=0, max_value=10**7))
def test_counts_are_singular_for_one_only(n):
    from redress.runtime.stage_counts import counted

    assert counted(n, "batch") == ("1 batch" if n == 1 else f"{n:,} batches")
    assert counted(n, "row") == ("1 row" if n == 1 else f"{n:,} rows")


@pytest.mark.parametrize("passed, state", [(False, "held on claim until claimed"),
                                           (True, "unclaimed on claim, deadline passed")])
def test_approve_calls_claim_money_unclaimed_past_the_deadline_as_the_reports_do(passed, state):
    """Found by the lifecycle review: approve said "held on claim until claimed" of money
    the run's line and plan.md called unclaimed, the claim deadline passed."""
    from flows.cli_approval import approved_line

    done = {"run_id": "R20251210-001", "payments": 3, "amount_krw": 150_000, "held_krw": 50_000, "batches": 2,
            "notifications": 3, "claim_deadline_passed": passed}
    assert approved_line(done, "Kim  Min", Path("/d/outbox/batches")) == (
        f"approved by Kim Min: released plan R20251210-001, 3 payments (150,000 KRW: 100,000 to pay out, 50,000 "
        f"{state}) in 2 batches to /d/outbox/batches/; 3 people notified")
    assert "claim" not in approved_line(done | {"held_krw": 0}, "Kim", Path("/d"))
