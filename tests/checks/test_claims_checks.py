"""redress/checks/claims_checks.py: customer service's claims rules in SQL for Great
Expectations (claims_staging and its suite, expectations/claims_staging.json), one
reason per rule (SPEC "Input: claims from customer service"). Every warehouse lives in
tmp_path."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from redress import inbox as io
from redress import vocabulary
from redress.checks.claims_checks import CLAIM_RULES, create_claims_staging
from redress.checks.suites import failing_rows
from redress.inbox.customers import bank_details
from redress.warehouse import connect

HEADER = "reference_code,bank_code,bank_account,verified_at,verified_by"
# reference code -> (customer, what the ledger holds for them: (rail, status, amount))
PEOPLE = {
    "HELDAAAA": ("c-held", [("claim", "issued", 50000)]),
    "HELDBBBB": ("c-held2", [("bank_transfer", "returned", 50000)] * 3 + [("claim", "issued", 50000)]),
    "HELDCCCC": ("c-held3", [("claim", "issued", 30000)]),
    **{f"HELD{c * 4}": (f"c-held-{c}", [("claim", "issued", 10000)]) for c in "DEFGHJK"},
    "PAIDAAAA": ("c-paid", [("bank_transfer", "issued", 50000)]),
    "DONEAAAA": ("c-done", [("claim", "cancelled", 50000), ("bank_transfer", "settled", 50000)]),
    "LEFTAAAA": ("c-left", [("claim", "issued", 50000)]),  # held, then left out of the customer master
}
# The customers of the current master: all of PEOPLE but c-left.
IN_MASTER = sorted(customer for customer, _ in PEOPLE.values() if customer != "c-left")
GOOD = ("004", "123-4567-8901", "2025-12-02T10:00:00+09:00", "CS042")

CLAIM_ROWS = [  # a claims row as customer service writes it; the expected reason (None: applied)
    (("HELDAAAA", *GOOD), None),
    (("heldbbbb", "088", "2234567890123456", "2025-12-02", "CS007"), None),  # lower-case code, date only
    (("NOSUCHAA", *GOOD), vocabulary.UNKNOWN_REFERENCE_CODE),
    (("NONMEMBA", *GOOD), vocabulary.UNKNOWN_REFERENCE_CODE),  # a non-member's code: nobody to pay
    (("", *GOOD), vocabulary.UNKNOWN_REFERENCE_CODE),
    (("HELDDDDD", "004", "1234567890", "", "CS042"), vocabulary.UNVERIFIED_CLAIM),
    (("HELDEEEE", "004", "1234567890", "2025-12-02", ""), vocabulary.UNVERIFIED_CLAIM),
    (("HELDFFFF", "004", "1234567890", "yesterday", "CS042"), vocabulary.UNVERIFIED_CLAIM),
    (("HELDGGGG", "04", "1234567890", "2025-12-02", "CS042"), vocabulary.INVALID_BANK_DETAILS),
    (("HELDHHHH", "004", "123456789", "2025-12-02", "CS042"), vocabulary.INVALID_BANK_DETAILS),
    (("HELDJJJJ", "004", "", "2025-12-02", "CS042"), vocabulary.INVALID_BANK_DETAILS),
    (("HELDCCCC", "004", "1234567890", "2025-12-31T23:59:59+09:00", "CS042"), None),
    (("PAIDAAAA", *GOOD), vocabulary.NOTHING_TO_CLAIM),
    (("DONEAAAA", *GOOD), vocabulary.NOTHING_TO_CLAIM),
    # found by the operations review: applied, it cancelled the held money and paid nothing
    (("LEFTAAAA", *GOOD), vocabulary.CLAIMANT_NOT_IN_MASTER),
    # an account written with an unquoted comma: six fields under five names, the digits'
    # end under verified_at. None of its values is trusted: quarantined alone.
    (("HELDKKKK", "004", "123", "4567890", "2025-12-02", "CS042"), vocabulary.MALFORMED_ROW),
]
DEADLINE = date(2025, 12, 31)
AFTER_DEADLINE = [  # verified_at after the deadline, in the policy's timezone (Asia/Seoul)
    (("HELDAAAA", "004", "1234567890", "2026-01-01T00:00:00+09:00", "CS042"), vocabulary.CLAIM_AFTER_DEADLINE),
    (("HELDBBBB", "004", "1234567890", "2025-12-31T15:00:00Z", "CS042"), vocabulary.CLAIM_AFTER_DEADLINE),
    (("HELDCCCC", "004", "1234567890", "2025-12-31T14:59:59Z", "CS042"), None),
]


# When the claims are checked (create_claims_staging's checked_at): fixed, so that no
# case above turns into a claim verified in the future as the years pass.
CHECKED_AT = datetime(2026, 1, 15, tzinfo=timezone.utc)
FUTURE = [  # verified_at over a day after the check: no verification yet (found by review: one in 2031 was paid)
    (("HELDAAAA", "004", "1234567890", "2026-01-16T09:00:00+09:00", "CS042"), None),  # a day ahead: a clock's error
    (("HELDBBBB", "004", "1234567890", "2026-01-16T09:00:00.000001+09:00", "CS042"), vocabulary.UNVERIFIED_CLAIM),
    (("HELDCCCC", "004", "1234567890", "2031-01-01", "CS042"), vocabulary.UNVERIFIED_CLAIM),
    (("HELDDDDD", "004", "1234567890", "2026-01-15T09:03:00+09:00", "CS042"), None),  # minutes ahead
]


# The run that gave the codes, dated 2025-12-01, started at 2025-12-01T12:00Z (when
# recorded; midnight of its date in Seoul, 2025-11-30T15:00Z, is earlier): a claim
# verified over a day before that used a code nobody had yet (found by review: a
# `2015-12-02` for `2025-12-02` was paid).
CODED_AT = datetime(2025, 12, 1, 12, tzinfo=timezone.utc)
BEFORE_THE_CODE = [
    (("HELDAAAA", "004", "1234567890", "2025-11-29T15:00:00Z", "CS042"), None),  # a day before: a clock's error
    (("HELDBBBB", "004", "1234567890", "2025-11-29T14:59:59Z", "CS042"), vocabulary.UNVERIFIED_CLAIM),
    (("HELDCCCC", "004", "1234567890", "2015-12-02", "CS042"), vocabulary.UNVERIFIED_CLAIM),
    (("HELDDDDD", "004", "1234567890", "2025-12-02T09:00:00+09:00", "CS042"), None),
]


def claims_warehouse(tmp_path: Path, rows: list[tuple], deadline: date | None = DEADLINE,
                     checked_at: datetime = CHECKED_AT, coded_at: datetime | None = None) -> Path:
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        if coded_at is not None:
            con.execute("INSERT INTO runs (run_id, started_at, run_date, parameters, policy_id, policy_sha256, outcome) "
                        "VALUES ('R1', ?, '2025-12-01', '{}', 'pol', 'x', 'succeeded')", [coded_at])
        n = 0
        for code, (customer, history) in PEOPLE.items():
            con.execute("INSERT INTO notifications VALUES (?, ?, 'x', 'sms', ?, 't', 'ko', 'R1')",
                        [f"customer:{customer}", customer, code])
            for rail, status, amount in history:
                n += 1
                con.execute("INSERT INTO ledger VALUES (?, ?, ?, 'KRW', ?, 'B1', 'pol', 'R1', 1, ?, NULL, 'R1')",
                            [f"P{n}", customer, amount, rail, status])
        con.execute("INSERT INTO notifications VALUES ('nonmember:+821099998888', NULL, '+821099998888', 'sms', "
                    "'NONMEMBA', 't', 'ko', 'R1')")
        for customer in IN_MASTER:
            con.execute("INSERT INTO customers (customer_id, status, created_at, is_test, payout_method, bank_valid, "
                        "file_sha256) VALUES (?, 'closed', '2020-01-01', false, 'voucher', false, 's1')", [customer])
    csv = tmp_path / "claims.csv"
    csv.write_text(HEADER + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    staged = io.stage(io.claims_frame(csv), tmp_path / "claims.parquet")
    assert staged == len(rows)
    with connect(path) as con:
        create_claims_staging(con, tmp_path / "claims.parquet", "Asia/Seoul", deadline, checked_at)
    return path


def expected(rows) -> list[tuple[int, str]]:
    return [(n, reason) for n, (_, reason) in enumerate(rows, start=1) if reason]


def test_each_bad_claims_row_is_reported_once_with_its_reason(tmp_path):
    path = claims_warehouse(tmp_path, [r for r, _ in CLAIM_ROWS])
    assert failing_rows(path, "claims_staging", "claims_staging").rows() == expected(CLAIM_ROWS)


def test_a_claim_verified_after_the_deadline_is_refused_by_the_policy_timezone_date(tmp_path):
    path = claims_warehouse(tmp_path, [r for r, _ in AFTER_DEADLINE])
    assert failing_rows(path, "claims_staging", "claims_staging").rows() == expected(AFTER_DEADLINE)


def test_a_claim_verified_after_the_check_is_unverified_with_or_without_a_deadline(tmp_path):
    for deadline, where in ((None, "none"), (date(2040, 1, 1), "late")):
        (tmp_path / where).mkdir()
        path = claims_warehouse(tmp_path / where, [r for r, _ in FUTURE], deadline=deadline)
        assert failing_rows(path, "claims_staging", "claims_staging").rows() == expected(FUTURE)


def test_a_claim_verified_over_a_day_before_its_code_was_given_is_unverified(tmp_path):
    path = claims_warehouse(tmp_path, [r for r, _ in BEFORE_THE_CODE], coded_at=CODED_AT)
    assert failing_rows(path, "claims_staging", "claims_staging").rows() == expected(BEFORE_THE_CODE)
    # a run started long after the date it is given (a catch-up): bound by its date
    (tmp_path / "catch-up").mkdir()
    path = claims_warehouse(tmp_path / "catch-up", [r for r, _ in BEFORE_THE_CODE], coded_at=datetime(2026, 6, 1, tzinfo=timezone.utc))
    assert failing_rows(path, "claims_staging", "claims_staging").rows() == expected(BEFORE_THE_CODE)
    # the run unknown (codes given by a run the warehouse does not record): no bound from it
    (tmp_path / "unknown").mkdir()
    path = claims_warehouse(tmp_path / "unknown", [r for r, _ in BEFORE_THE_CODE])
    assert failing_rows(path, "claims_staging", "claims_staging").height == 0


def test_an_unverified_claim_says_what_of_it_to_fix(tmp_path):
    """Found by review: quarantine gave no detail, and the reason read "verified_at or
    verified_by is missing" beside a verified_by given. detail (quarantine's
    detail) names the field and its fault; NULL for every other row."""
    rows = [("HELDDDDD", "004", "1234567890", "", "CS042"), ("HELDEEEE", "004", "1234567890", "2025-12-02", ""),
            ("HELDFFFF", "004", "1234567890", "2025-12-02 오전 10:00", "CS042"),
            ("HELDBBBB", "004", "1234567890", "2026-01-17", "CS042"),
            ("HELDCCCC", "004", "1234567890", "2015-12-02", "CS042"), ("HELDAAAA", *GOOD),
            ("HELDGGGG", "04", "1234567890", "2025-12-02", "CS042"), ("HELDHHHH", "004", "1234567890", "", ""),
            # found by review: an escape sequence or a right-to-left override as who verified
            ("HELDJJJJ", "004", "1234567890", "2025-12-02", "CS\x1b[31m042"),
            ("HELDKKKK", "004", "1234567890", "2025-12-02", "CS\u202e240")]
    path = claims_warehouse(tmp_path, rows, coded_at=CODED_AT)
    with connect(path, read_only=True) as con:
        why = [r for (r,) in con.execute("SELECT detail FROM claims_staging ORDER BY row_number").fetchall()]
    assert why == ["verified_at is missing", "verified_by is missing",
                   "verified_at is not an ISO 8601 time such as 2025-12-02T10:00:00+09:00 or 2025-12-02",
                   "verified_at is more than a day ahead of the clock of the run reading it",
                   "verified_at is more than a day before the run that gave the reference code started",
                   None, None, "verified_at and verified_by are missing",
                   *["verified_by holds a control or invisible character: give the staff id as it reads"] * 2]


def test_a_claim_quoting_a_code_given_to_a_non_member_says_so(tmp_path):
    """Found by the lifecycle review: such a claim was unknown_reference_code with nothing
    said, as if the code were mistyped; one nobody was given keeps no detail."""
    from redress.checks.claims_checks import NON_MEMBER_CODE

    path = claims_warehouse(tmp_path, [("nonmemba", *GOOD), ("NOSUCHAA", *GOOD)])
    with connect(path, read_only=True) as con:
        assert con.execute("SELECT code_unknown, detail FROM claims_staging ORDER BY row_number").fetchall() == [
            (True, NON_MEMBER_CODE), (True, None)]


def test_without_a_deadline_no_claim_is_late(tmp_path):
    path = claims_warehouse(tmp_path, [r for r, _ in AFTER_DEADLINE], deadline=None)
    assert failing_rows(path, "claims_staging", "claims_staging").height == 0


def test_a_code_named_twice_applies_neither_row(tmp_path):
    rows = [("HELDAAAA", *GOOD), ("HELDCCCC", *GOOD), ("heldaaaa", "088", "2234567890", "2025-12-02", "CS007")]
    path = claims_warehouse(tmp_path, rows)
    assert failing_rows(path, "claims_staging", "claims_staging").rows() == [
        (1, vocabulary.REPEATED_REFERENCE_CODE), (3, vocabulary.REPEATED_REFERENCE_CODE)]


@pytest.mark.parametrize("typed", ["ＨＥＬＤＡＡＡＡ", "HELD-AAAA", "held aaaa", "ｈｅｌｄ－ａａａａ", "HELD\u3000AAAA",
                                   "HELDㅡAAAA", "HELD\u2013AAAA", "HELDㆍAAAA", "HELD·AAAA", "HELD_AAAA"])
def test_a_code_typed_full_width_spaced_or_hyphenated_is_the_code(tmp_path, typed):
    """Found by review: a code typed with a Korean input method's full-width letters, or
    with a hyphen, was an unknown_reference_code. It is read as `redress explain` reads it
    (redress/warehouse/reference_codes.py typed_code), and two rows naming it so are one
    code named twice."""
    path = claims_warehouse(tmp_path, [(typed, *GOOD)])
    assert failing_rows(path, "claims_staging", "claims_staging").height == 0
    with connect(path, read_only=True) as con:
        assert con.execute("SELECT reference_code, customer_id FROM claims_staging").fetchall() == [
            ("HELDAAAA", "c-held")]
    (tmp_path / "twice").mkdir()
    path = claims_warehouse(tmp_path / "twice", [(typed, *GOOD), ("HELDAAAA", *GOOD)])
    assert failing_rows(path, "claims_staging", "claims_staging")["reason"].to_list() == [
        vocabulary.REPEATED_REFERENCE_CODE] * 2


@pytest.mark.parametrize("named", ["HELDAAAA", "ＨＥＬＤ-ＡＡＡＡ"])  # typed as a typed code is read too
def test_a_code_a_malformed_row_names_anywhere_applies_no_row(tmp_path, named):
    """Found by review: under a header in another order, a malformed row's reference_code
    column held account digits, so a sound row for the same code was applied and paid."""
    path = claims_warehouse(tmp_path, [("HELDDDDD", *GOOD)])
    (tmp_path / "c.csv").write_text(
        "bank_code,bank_account,reference_code,verified_at,verified_by\n"
        f"004,123,4567-8901,{named},2025-12-02,CS042\n"            # split account: malformed
        "004,9988776655,heldaaaa,2025-12-02T10:00:00+09:00,CS042\n"  # the same code, sound
        "004,9988776655,HELDCCCC,2025-12-02T10:00:00+09:00,CS042\n", encoding="utf-8")
    io.stage(io.claims_frame(tmp_path / "c.csv"), tmp_path / "claims.parquet")
    with connect(path) as con:
        create_claims_staging(con, tmp_path / "claims.parquet", "Asia/Seoul", DEADLINE)
    assert failing_rows(path, "claims_staging", "claims_staging").rows() == [
        (1, vocabulary.MALFORMED_ROW), (2, vocabulary.REPEATED_REFERENCE_CODE)]


@pytest.mark.parametrize("stray", ['"CS042" desk', '"CS042'])
def test_a_row_with_a_stray_quote_is_malformed_and_its_code_blocks_the_sound_one(tmp_path, stray):
    """A stray quote in one claims row no longer refuses the file: that row alone is
    malformed, the code it names as written is claimed by no row of the file, and the
    file's other rows are checked as usual."""
    path = claims_warehouse(tmp_path, [("HELDDDDD", *GOOD)])
    (tmp_path / "c.csv").write_text(
        "bank_code,bank_account,reference_code,verified_at,verified_by\n"
        f"004,9988776655,HELDAAAA,2025-12-02,{stray}\n"                # a stray quote: malformed
        "004,9988776655,heldaaaa,2025-12-02T10:00:00+09:00,CS042\n"  # the same code, sound
        "004,9988776655,HELDCCCC,2025-12-02T10:00:00+09:00,CS042\n", encoding="utf-8")
    io.stage(io.claims_frame(tmp_path / "c.csv", tmp_path / "work"), tmp_path / "claims.parquet")
    with connect(path) as con:
        create_claims_staging(con, tmp_path / "claims.parquet", "Asia/Seoul", DEADLINE)
    assert failing_rows(path, "claims_staging", "claims_staging").rows() == [
        (1, vocabulary.MALFORMED_ROW), (2, vocabulary.REPEATED_REFERENCE_CODE)]


# A claimant's transfers since their latest claim (applied in run R2; R1 before it, R3
# after): what decides whether a later claim corrects the account or has nothing to claim.
SINCE_THE_CLAIM = {  # code: transfers since (issued in run, status, run that applied its result), reason
    "NONEAAAA": ([], None),                                                        # plan rejected: nothing sent
    "SENTAAAA": ([("R2", "issued", "R2")], vocabulary.NOTHING_TO_CLAIM),           # on its way
    "PAIDBBBB": ([("R3", "settled", "R4")], vocabulary.NOTHING_TO_CLAIM),          # paid
    "BACKAAAA": ([("R2", "returned", "R3")], None),                                # returned by the bank
    "BACKBBBB": ([("R2", "returned", "R3"), ("R3", "issued", "R3")], vocabulary.NOTHING_TO_CLAIM),  # sent again
    "OLDAAAAA": ([("R1", "settled", "R2")], None),                                 # before the claim
    "TWOAAAAA": ([("R2", "returned", "R3"), ("R3", "returned", "R4")], None),       # returned twice: sent again
    # returned max_attempts (3) times: the run holds the money on claim again, so a claim
    # that cancels nothing would change nothing (found by review): nothing to claim yet
    "MAXAAAAA": ([("R2", "returned", "R3"), ("R3", "returned", "R4"), ("R4", "returned", "R5")],
                 vocabulary.NOTHING_TO_CLAIM),
}


def test_a_later_claim_corrects_the_account_exactly_while_nothing_was_sent_since_the_latest_claim(tmp_path):
    """Found by review: a claim for a person whose earlier claim had cancelled their held
    payments was nothing_to_claim even when nothing had been sent to the claimed account
    (its plan rejected for a mistyped account), so the account could never be corrected.
    Now a later claim applies exactly when no bank transfer is issued or settled in the
    latest claim's run or after it (by the runs' order) and fewer than max_attempts came
    back; else nothing_to_claim."""
    path = claims_warehouse(tmp_path, [("HELDAAAA", *GOOD)])
    with connect(path) as con:
        for n, run in enumerate(("R1", "R2", "R3", "R4", "R5")):
            con.execute("INSERT INTO runs (run_id, started_at, run_date, parameters, policy_id, policy_sha256, outcome) "
                        "VALUES (?, ?, '2025-12-01', '{}', 'pol', 'x', 'succeeded')",
                        [run, datetime(2025, 12, 1 + n, tzinfo=timezone.utc)])
        for code, (sent, _) in SINCE_THE_CLAIM.items():
            customer = f"c-{code.lower()}"
            con.execute("INSERT INTO notifications VALUES (?, ?, 'x', 'sms', ?, 't', 'ko', 'R1')",
                        [f"customer:{customer}", customer, code])
            con.execute("INSERT INTO customers (customer_id, status, created_at, is_test, payout_method, bank_valid, "
                        "file_sha256) VALUES (?, 'closed', '2020-01-01', false, 'voucher', false, 's1')", [customer])
            con.execute("INSERT INTO ledger VALUES (?, ?, 10000, 'KRW', 'claim', 'B1', 'pol', 'R1', 1, 'cancelled', "
                        "NULL, 'R2')", [f"H-{code}", customer])
            con.execute("INSERT INTO claims VALUES (?, ?, '004', '1111111111', ?, 'CS1', 10000, 'f', 1, 'R2', ?)",
                        [code, customer, datetime(2025, 12, 2, tzinfo=timezone.utc),
                         datetime(2025, 12, 2, 1, tzinfo=timezone.utc)])
            for i, (run, status, back) in enumerate(sent, start=2):
                con.execute("INSERT INTO ledger VALUES (?, ?, 10000, 'KRW', 'bank_transfer', 'B2', 'pol', ?, ?, ?, "
                            "NULL, ?)", [f"T-{code}-{i}", customer, run, i, status, back])
    rows = [(code, *GOOD) for code in SINCE_THE_CLAIM]
    csv = tmp_path / "later.csv"
    csv.write_text(HEADER + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    io.stage(io.claims_frame(csv), tmp_path / "later.parquet")
    with connect(path) as con:
        create_claims_staging(con, tmp_path / "later.parquet", "Asia/Seoul", DEADLINE, CHECKED_AT, max_attempts=3)
    assert failing_rows(path, "claims_staging", "claims_staging").rows() == [
        (n, reason) for n, (_, reason) in enumerate(SINCE_THE_CLAIM.values(), start=1) if reason]
