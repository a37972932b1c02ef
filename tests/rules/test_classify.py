"""redress/rules/classify.py: SPEC "Row rules, then identity", the first failing rule decides."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from redress.rules.classify import DESTINATIONS, classified_scope

KST = ZoneInfo("Asia/Seoul")
CATEGORIES = ["email", "name", "phone"]
CREATED = datetime(2025, 7, 1, 9, 0, tzinfo=KST)
LATER = datetime(2025, 8, 1, 12, 0, tzinfo=KST)

ROW_SCHEMA = {
    "customer_id": pl.String, "email": pl.String, "phone": pl.String, "data_category": pl.String,
    "accessed_at_raw": pl.String, "accessed_at": pl.Datetime("us", "UTC"), "confidence": pl.String,
}

MASTER = pl.LazyFrame(
    {
        "customer_id": ["c1", "c2", "c3"],
        "email_norm": ["kim@example.com", "shared@example.com", "shared@example.com"],
        "phone_e164": ["+821011112222", "+821033334444", "+821055556666"],
        "created_at": [CREATED, CREATED, CREATED],
    },
    schema={"customer_id": pl.String, "email_norm": pl.String, "phone_e164": pl.String,
            "created_at": pl.Datetime("us", "UTC")},
)


def row(**changes) -> dict:
    """A clean member row for c1; each test changes what it is about."""
    base = {"customer_id": "c1", "email": None, "phone": None, "data_category": "email",
            "accessed_at_raw": "2025-08-01T12:00:00+09:00", "accessed_at": LATER, "confidence": "confirmed"}
    return base | changes


def classify(*rows: dict) -> pl.DataFrame:
    frame = pl.LazyFrame(list(rows), schema=ROW_SCHEMA).with_row_index("n")
    return classified_scope(frame, MASTER, CATEGORIES).collect().sort("n")


def outcome(r: dict) -> tuple:
    return classify(r).select("destination", "reason").row(0)


NO_ID = {"customer_id": None, "email": None, "phone": None}


@pytest.mark.parametrize("changes, expected", [
    pytest.param({}, ("exposure", None), id="clean"),
    # each row breaks two rules: the earlier one wins
    pytest.param(NO_ID | {"data_category": "ssn"}, ("quarantine", "missing_identifier"), id="1-before-2"),
    pytest.param(NO_ID | {"accessed_at": None, "confidence": "maybe"}, ("quarantine", "missing_identifier"),
                 id="1-before-3-and-4"),
    pytest.param({"data_category": "ssn", "accessed_at": None}, ("quarantine", "unknown_category"), id="2-before-3"),
    pytest.param({"data_category": None, "confidence": "maybe"}, ("quarantine", "unknown_category"),
                 id="2-missing-category"),
    pytest.param({"data_category": "Email"}, ("quarantine", "unknown_category"), id="2-case-matters"),
    pytest.param({"accessed_at": None, "confidence": "maybe"}, ("quarantine", "invalid_timestamp"), id="3-before-4"),
    pytest.param({"accessed_at": None, "customer_id": "c9"}, ("quarantine", "invalid_timestamp"), id="3-before-5"),
    pytest.param({"confidence": "maybe", "customer_id": "c9"}, ("quarantine", "invalid_confidence"), id="4-before-5"),
    pytest.param({"confidence": "Confirmed"}, ("quarantine", "invalid_confidence"), id="4-case-matters"),
    pytest.param({"customer_id": "c9", "accessed_at": datetime(2020, 1, 1, tzinfo=KST)},
                 ("quarantine", "unknown_customer_id"), id="5-before-6"),
    pytest.param({"customer_id": None, "email": "bad", "phone": "12"}, ("quarantine", "invalid_identifier"),
                 id="5-invalid-identifier"),
    pytest.param({"customer_id": None, "email": "shared@example.com"}, ("review", "ambiguous_identifier"),
                 id="5-review"),
    pytest.param({"customer_id": None, "email": "nobody@example.com"}, ("non_member", None), id="5-non-member"),
    pytest.param({"customer_id": None, "phone": "010-1111-2222"}, ("exposure", None), id="5-member-by-phone"),
])
def test_row_rules_in_spec_order(changes, expected):
    assert outcome(row(**changes)) == expected


@pytest.mark.parametrize("accessed_at, expected", [
    pytest.param(datetime(2025, 7, 1, 8, 59, 59, 999999, tzinfo=KST),
                 ("quarantine", "exposure_before_account_created"), id="strictly-before"),
    pytest.param(CREATED, ("exposure", None), id="equal-is-fine"),
    pytest.param(datetime(2025, 7, 1, 0, 0, 0, tzinfo=ZoneInfo("UTC")), ("exposure", None),
                 id="after-in-another-zone"),
])
def test_exposure_before_account_created(accessed_at, expected):
    assert outcome(row(accessed_at=accessed_at)) == expected


def test_before_created_applies_only_to_members():
    early = datetime(2020, 1, 1, tzinfo=KST)
    non_member = row(customer_id=None, email="nobody@example.com", accessed_at=early)
    review = row(customer_id=None, email="shared@example.com", accessed_at=early)
    out = classify(non_member, review)
    assert out.select("destination", "reason").rows() == [("non_member", None), ("review", "ambiguous_identifier")]


@pytest.mark.parametrize("given, expected", [(None, "confirmed"), ("confirmed", "confirmed"),
                                             ("suspected", "suspected")])
def test_confidence_defaults_to_confirmed_when_empty(given, expected):
    out = classify(row(confidence=given))
    assert out.select("confidence", "destination").row(0) == (expected, "exposure")


def test_every_row_ends_in_exactly_one_destination_with_identity_columns():
    rows = [row(), row(**NO_ID), row(customer_id=None, email=" KIM@example.com "),
            row(customer_id=None, email="shared@example.com"), row(customer_id=None, phone="010-9999-0000")]
    out = classify(*rows)
    assert out["n"].to_list() == list(range(len(rows)))
    assert set(out["destination"]) <= set(DESTINATIONS)
    assert out.select("destination", "resolved_id", "matched_by", "candidates").rows() == [
        ("exposure", "c1", "customer_id", 0),
        ("quarantine", None, None, 0),
        ("exposure", "c1", "email", 0),
        ("review", None, "email", 2),
        ("non_member", None, None, 0),
    ]
    assert out["email_norm"][2] == "kim@example.com"
    assert out["phone_e164"][4] == "+821099990000"
    assert {"row_reason", "identity", "identity_reason", "_created_at"}.isdisjoint(out.columns)


def test_created_at_and_accessed_at_in_different_zones():
    """The same instants, one frame in Asia/Seoul and the other in UTC."""
    master = MASTER.with_columns(pl.col("created_at").dt.convert_time_zone("Asia/Seoul"))
    frame = pl.LazyFrame([row(accessed_at=CREATED), row(accessed_at=datetime(2025, 7, 1, 8, 59, tzinfo=KST))],
                         schema=ROW_SCHEMA)
    out = classified_scope(frame, master, CATEGORIES).collect()
    assert out.select("destination", "reason").rows() == [
        ("exposure", None), ("quarantine", "exposure_before_account_created")]
