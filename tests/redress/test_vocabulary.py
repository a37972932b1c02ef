"""redress/vocabulary.py: every code has its text, and the rules emit only vocabulary codes.

The rules run here on small inline frames built to reach every branch, so the test also
shows that each family is exactly what the rules can produce (no dead code, no code
the vocabulary lacks)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from redress import vocabulary as v
from redress.checks import input_checks, returns_checks
from redress.customer_service import wording
from redress.rules.classify import classified_scope
from redress.rules.entitlements import entitlements
from redress.rules.payments import new_payments

KST = ZoneInfo("Asia/Seoul")
CREATED = datetime(2025, 7, 1, 9, 0, tzinfo=KST)
INSIDE = datetime(2025, 8, 1, 12, 0, tzinfo=KST)


@pytest.mark.parametrize("family", sorted(v.FAMILIES), ids=str)
def test_every_code_has_a_text_unique_in_its_family(family):
    texts = v.FAMILIES[family]
    assert texts, family
    assert all(isinstance(code, str) and code.strip() == code and code for code in texts)
    assert all(isinstance(text, str) and text.strip() for text in texts.values())
    assert len(set(texts.values())) == len(texts), f"{family}: two codes share a text"


def test_the_texts_and_checks_read_the_vocabulary():
    # explain has a sentence for every reason and every rail (a new code without one fails)
    assert list(wording.REASON_WHY) == list(v.ENTITLEMENT_REASONS)
    assert set(wording.RAIL_WHY) == set(v.RAILS)
    assert input_checks.SCOPE_ROW_RULES == tuple(v.SCOPE_ROW_REASONS)
    assert set(input_checks.HELD_REASONS) == {*v.SCOPE_ROW_REASONS, *v.REVIEW_REASONS}
    assert set(returns_checks.RETURN_RULES.values()) == set(v.RETURN_REASONS)


def test_sql_text_is_built_from_codes_only():
    assert v.sql_list(v.LIVE_STATUSES) == "('issued', 'settled')"
    with pytest.raises(ValueError, match="not a vocabulary code: \"x' OR 1=1 --\""):
        v.sql_literal("x' OR 1=1 --")
    with pytest.raises(ValueError):
        v.sql_list(())


# ----------------------------------------------------------------- the rules emit the vocabulary

ROWS = {"customer_id": pl.String, "email": pl.String, "phone": pl.String, "data_category": pl.String,
        "accessed_at_raw": pl.String, "accessed_at": pl.Datetime("us", "UTC"), "confidence": pl.String,
        "malformed": pl.String}
MASTER = pl.LazyFrame(
    {"customer_id": ["c1", "c2", "c3"],
     "email_norm": ["kim@example.com", "shared@example.com", "shared@example.com"],
     "phone_e164": ["+821011112222", "+821033334444", "+821055556666"],
     "created_at": [CREATED] * 3},
    schema={"customer_id": pl.String, "email_norm": pl.String, "phone_e164": pl.String,
            "created_at": pl.Datetime("us", "UTC")})


def scope_row(**changes) -> dict:
    return {"customer_id": "c1", "email": None, "phone": None, "data_category": "email",
            "accessed_at_raw": "x", "accessed_at": INSIDE, "confidence": "confirmed", "malformed": None} | changes


NO_ID = {"customer_id": None}
SCOPE = [
    scope_row(),                                                          # exposure
    scope_row(**NO_ID),                                                   # missing_identifier
    scope_row(data_category="ssn"),                                       # unknown_category
    scope_row(accessed_at=None),                                          # invalid_timestamp
    scope_row(confidence="maybe"),                                        # invalid_confidence
    scope_row(customer_id="nobody"),                                      # unknown_customer_id
    scope_row(**NO_ID, email="not-an-email"),                             # invalid_identifier
    scope_row(**NO_ID, email="shared@example.com"),                       # ambiguous_identifier -> review
    scope_row(accessed_at=CREATED - timedelta(days=1)),                   # exposure_before_account_created
    scope_row(**NO_ID, email="friend@example.com"),                       # non_member
    scope_row(malformed="more fields than the header"),                   # malformed_row
]


def test_classification_emits_every_destination_and_scope_reason_and_nothing_else():
    out = classified_scope(pl.LazyFrame(SCOPE, schema=ROWS), MASTER, ["email", "name"]).collect()
    assert set(out["destination"]) == set(v.DESTINATIONS)
    assert set(out["reason"].drop_nulls()) == set(v.SCOPE_ROW_REASONS)


EXPOSURES = {"customer_id": pl.String, "data_category": pl.String, "accessed_at": pl.Datetime("us", "UTC"),
             "confidence": pl.String}
CUSTOMERS = {"customer_id": pl.String, "status": pl.String, "closed_at": pl.Datetime("us", "UTC"),
             "is_test": pl.Boolean, "payout_method": pl.String, "bank_valid": pl.Boolean}


def test_entitlements_and_payments_emit_every_reason_and_rail_and_nothing_else(policy):
    before = datetime(2025, 1, 1, tzinfo=KST)
    cases = [  # (customer id, exposure confidence, accessed_at, status, closed_at, is_test, method, bank)
        ("eligible-voucher", "confirmed", INSIDE, "active", None, False, "voucher", False),
        ("eligible-bank", "confirmed", INSIDE, "active", None, False, "bank_transfer", True),
        ("eligible-claim", "confirmed", INSIDE, "closed", INSIDE, False, "voucher", False),
        ("test", "confirmed", INSIDE, "active", None, True, "voucher", False),
        ("suspected", "suspected", INSIDE, "active", None, False, "voucher", False),
        ("outside", "confirmed", before, "active", None, False, "voucher", False),
        ("dormant", "confirmed", INSIDE, "dormant", None, False, "voucher", False),
        ("closed-early", "confirmed", INSIDE, "closed", before, False, "voucher", False),
    ]
    exposures = pl.LazyFrame([{"customer_id": c[0], "data_category": "email", "accessed_at": c[2],
                               "confidence": c[1]} for c in cases], schema=EXPOSURES)
    customers = pl.LazyFrame([{"customer_id": c[0], "status": c[3], "closed_at": c[4], "is_test": c[5],
                               "payout_method": c[6], "bank_valid": c[7]} for c in cases], schema=CUSTOMERS)
    strict = policy(statuses=("active", "closed"))
    ent = entitlements(exposures, customers, strict)
    below = entitlements(exposures.head(1), customers.head(1), policy(minimum_amount=60000))
    reasons = {*ent["reason"], *below["reason"]}
    assert reasons == set(v.ENTITLEMENT_REASONS)
    assert set(ent["rail"]) == set(v.RAILS)
    ledger = pl.LazyFrame({"customer_id": ["eligible-bank"] * 3, "amount": [50000] * 3,
                           "status": [v.RETURNED] * 3, "rail": [v.BANK_TRANSFER] * 3, "attempt": [1, 2, 3]})
    paid = new_payments(ent.lazy(), ledger, strict)
    assert set(paid["rail"]) <= set(v.RAILS)
    assert paid.filter(pl.col("customer_id") == "eligible-bank")["rail"].to_list() == [v.CLAIM]


def test_every_reason_an_expectation_gives_has_its_plain_words():
    """Each meta.reason of expectations/*.json reads as words on the data-quality page."""
    import json

    from redress.checks.suites import EXPECTATIONS_DIR

    reasons = {e["meta"]["reason"] for f in sorted(EXPECTATIONS_DIR.glob("*.json"))
               for e in json.loads(f.read_text(encoding="utf-8"))["expectations"]}
    assert len(reasons) > 50
    assert not sorted(r for r in reasons if v.reason_text(r) == r)
    assert v.reason_text("no_such_code") == "no_such_code"  # an old record still renders


def test_every_review_reason_says_what_to_do():
    assert set(v.REVIEW_ACTIONS) == set(v.REVIEW_REASONS)
    assert all(text.strip() for text in v.REVIEW_ACTIONS.values())


def test_a_code_two_families_word_apart_reads_as_its_kind_says():
    """Found by the oracle review: a customers snapshot refused for a created_at read in
    summary.md as "accessed_at is not a timestamp". Every code two families hold with
    different words gets each family's words for its kind."""
    families = {"scope": v.SCOPE_ROW_REASONS, "customers": v.CUSTOMER_ROW_REASONS, "returns": v.RETURN_REASONS,
                "claims": v.CLAIM_REASONS}
    for kind, family in families.items():
        for code, words in family.items():
            assert v.reason_text(code, kind) == words, (kind, code)
    assert v.reason_text(v.INVALID_TIMESTAMP, "customers") == "created_at or closed_at is not a timestamp"
    assert v.reason_text(v.INVALID_TIMESTAMP, "scope") == "accessed_at is not a timestamp"
    assert v.reason_text(v.INVALID_TIMESTAMP, "returns") == "accessed_at is not a timestamp"  # none of its own: the first
