"""redress/checks/input_checks.py: the SPEC's input rules in SQL for Great Expectations, and the
cross-check against the Polars classification. Every warehouse lives in tmp_path."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redress.errors import RedressError
from redress.warehouse import SCHEMA, connect
from redress.checks import input_checks
from redress.rules.classify import classified_scope
from redress.rules.identity import normalised_master
from redress.checks.suites import ExpectationResult, SuiteResult, failing_rows_of, validate_table

CATEGORIES = ["email", "name", "phone"]
CREATED = "2025-07-01 09:00:00+09"
LATER = "2025-08-01 12:00:00+09"

# c1 is unique by every identifier; c2 and c3 share an email and a phone.
CUSTOMERS = [
    ("c1", "kim@example.com", "+821011112222"),
    ("c2", "shared@example.com", "+821099998888"),
    ("c3", "shared@example.com", "+821099998888"),
]

CLEAN = {"customer_id": "c1", "email": None, "phone": None, "data_category": "email",
         "accessed_at": LATER, "confidence": "confirmed"}
NO_ID = {"customer_id": None, "email": None, "phone": None}

# (change to the clean row, the reason of its first failing rule or None): every rule,
# and rows that break two rules, where the earlier one must win.
SCOPE_ROWS = [
    ({}, None),
    (NO_ID | {"data_category": "ssn", "accessed_at": None}, "missing_identifier"),
    ({"data_category": "ssn", "accessed_at": None}, "unknown_category"),
    ({"data_category": None, "confidence": "maybe"}, "unknown_category"),
    ({"data_category": "Email"}, "unknown_category"),
    ({"accessed_at": None, "confidence": "maybe"}, "invalid_timestamp"),
    ({"confidence": "maybe", "customer_id": "c9"}, "invalid_confidence"),
    ({"confidence": "Confirmed"}, "invalid_confidence"),
    ({"confidence": None}, None),
    ({"customer_id": "c9", "email": "kim@example.com"}, "unknown_customer_id"),
    (NO_ID | {"email": "bad", "phone": "12"}, "invalid_identifier"),
    (NO_ID | {"email": "kim\u3000x@example.com"}, "invalid_identifier"),
    (NO_ID | {"email": "SHARED@Example.com"}, "ambiguous_identifier"),
    (NO_ID | {"phone": "+82 10-9999-8888"}, "ambiguous_identifier"),
    (NO_ID | {"email": "shared@example.com", "phone": "010-1111-2222"}, "ambiguous_identifier"),
    (NO_ID | {"email": "nobody@example.com"}, None),
    (NO_ID | {"email": "nobody@example.com", "phone": "01011112222"}, None),
    (NO_ID | {"email": "not-an-email", "phone": "+821011112222"}, None),
    (NO_ID | {"phone": "010-1111-2222", "accessed_at": "2025-06-30 23:59:59+09"},
     "exposure_before_account_created"),
    ({"customer_id": "c9", "accessed_at": "2020-01-01 00:00:00+09"}, "unknown_customer_id"),
    ({"accessed_at": CREATED}, None),
    # a row the reader could not split into the header's fields: before every SPEC rule,
    # whatever its columns hold (the reader leaves them empty; here they are not)
    ({"malformed": "more fields than the header"}, "malformed_row"),
    (NO_ID | {"data_category": "ssn", "malformed": "the line is not a JSON object"}, "malformed_row"),
]


def scope_warehouse(path: Path, changes: list[dict]) -> Path:
    """A warehouse with the customers above and one scope row per change to CLEAN."""
    with connect(path) as con:
        for cid, email, phone in CUSTOMERS:
            con.execute(
                "INSERT INTO customers VALUES (?, ?, ?, ?, ?, 'active', NULL, NULL, ?::TIMESTAMPTZ, NULL, false,"
                " 'voucher', NULL, NULL, false, 'sha')",
                [cid, email, phone, email, phone, CREATED],
            )
        for n, change in enumerate(changes, start=1):
            r = CLEAN | change
            con.execute(
                "INSERT INTO scope_rows VALUES ('f1', ?, ?, ?, ?, ?, coalesce(?, 'garbage'), ?::TIMESTAMPTZ, ?, NULL,"
                " ?)",
                [n, r["customer_id"], r["email"], r["phone"], r["data_category"], r["accessed_at"],
                 r["accessed_at"], r["confidence"], r.get("malformed")],
            )
    return path


def polars_outcomes(path: Path, categories: list[str] = CATEGORIES) -> pl.DataFrame:
    """The classification of the warehouse's scope rows (one file), in row order."""
    with connect(path) as con:
        rows = con.sql("SELECT * FROM scope_rows ORDER BY row_number").pl().lazy()
        master = con.sql("SELECT customer_id, email_norm, phone_e164, created_at FROM customers").pl().lazy()
    return classified_scope(rows, master, categories).collect()


def create_checked(path: Path, categories: list[str] = CATEGORIES) -> Path:
    """scope_rows_checked against the classification of the same warehouse, which is
    written beside it as Parquet with the rows it read, row for row (as the validate
    stage does)."""
    classified, scope = path.with_suffix(".classified.parquet"), path.with_suffix(".scope.parquet")
    with connect(path) as con:
        con.execute("COPY (SELECT * FROM scope_rows ORDER BY row_number) TO ? (FORMAT parquet)", [str(scope)])
    polars_outcomes(path, categories).write_parquet(classified)
    with connect(path) as con:
        input_checks.create_scope_rows_checked(con, categories, scope, classified)
    return classified


def checked(path: Path) -> SuiteResult:
    create_checked(path)
    return validate_table(path, "scope_rows_checked", "scope_rows", parameters={"categories": CATEGORIES})


# --------------------------------------------------------------------- scope rows


def test_each_row_is_flagged_by_its_first_failing_rule_only(tmp_path):
    path = scope_warehouse(tmp_path / "w.duckdb", [change for change, _ in SCOPE_ROWS])
    result = checked(path)
    assert not result.success  # bad rows exist: the suite reports them
    assert all(e.success for e in result.results if e.reason not in input_checks.SCOPE_ROW_RULES)
    flagged = failing_rows_of(path, result)
    assert flagged["row_number"].is_unique().all()
    expected = [(n, reason) for n, (_, reason) in enumerate(SCOPE_ROWS, start=1) if reason]
    assert sorted(flagged.rows()) == expected


def test_the_sql_rules_agree_with_the_polars_classification_row_by_row(tmp_path):
    path = scope_warehouse(tmp_path / "w.duckdb", [change for change, _ in SCOPE_ROWS])
    flagged = dict(failing_rows_of(path, checked(path)).rows())
    classified = polars_outcomes(path)
    polars_reasons = {
        n: reason for n, dest, reason in classified.select("row_number", "destination", "reason").rows()
        if dest in ("quarantine", "review")
    }
    assert flagged == polars_reasons


def test_the_cross_check_agrees_with_the_recorded_classification(tmp_path):
    path = scope_warehouse(tmp_path / "w.duckdb", [change for change, _ in SCOPE_ROWS])
    classified = polars_outcomes(path)
    result = checked(path)
    with connect(path) as con:
        con.register("c", classified)
        con.execute("""INSERT INTO quarantine SELECT 'R1', 'scope', file_sha256, 'f.csv', row_number,
                       reason, NULL, NULL, NULL FROM c WHERE destination = 'quarantine'""")
        con.execute("""INSERT INTO review BY NAME SELECT file_sha256, row_number, reason, matched_by, candidates,
                       email, phone, data_category, accessed_at, confidence FROM c WHERE destination = 'review'""")
        counts = input_checks.classification_counts(con)
    agreed = input_checks.cross_check(result, counts)
    assert agreed == {reason: sum(1 for _, r in SCOPE_ROWS if r == reason) for reason in input_checks.HELD_REASONS}
    assert agreed["checks_disagree"] == 0
    assert agreed["unknown_category"] == 3 and agreed["ambiguous_identifier"] == 3


def test_a_clean_file_passes_and_the_view_can_be_dropped(tmp_path):
    path = scope_warehouse(tmp_path / "w.duckdb", [{}, {"confidence": "suspected"}, NO_ID | {"email": "kim@example.com"}])
    result = checked(path)
    assert result.success
    assert input_checks.cross_check(result, {}) == dict.fromkeys(input_checks.HELD_REASONS, 0)
    with connect(path) as con:
        input_checks.drop_scope_rows_checked(con)
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'scope_rows_checked'").fetchall() == [(0,)]


def test_no_scope_rows_at_all_pass(tmp_path):
    result = checked(scope_warehouse(tmp_path / "w.duckdb", []))
    assert result.success
    assert input_checks.cross_check(result, {}) == dict.fromkeys(input_checks.HELD_REASONS, 0)


def test_categories_with_quotes_are_read_as_values(tmp_path):
    path = scope_warehouse(tmp_path / "w.duckdb", [{"data_category": "o'brien"}, {"data_category": "x"}])
    cats = ["o'brien"]
    create_checked(path, cats)
    result = validate_table(path, "scope_rows_checked", "scope_rows", parameters={"categories": cats})
    assert failing_rows_of(path, result).rows() == [(2, "unknown_category")]


def test_a_row_loaded_twice_is_a_structural_failure(tmp_path):
    path = scope_warehouse(tmp_path / "w.duckdb", [{}, {}])
    with connect(path) as con:
        con.execute("UPDATE scope_rows SET row_number = 1")
    with pytest.raises(RedressError, match=r"duplicate_row"):
        input_checks.cross_check(checked(path), {})


def result_of(*expectations: tuple[str, int], error: str | None = None) -> SuiteResult:
    results = tuple(
        ExpectationResult("expect_column_values_to_be_in_set", reason, reason, n == 0, n, 10, error=error)
        for reason, n in expectations
    )
    return SuiteResult("scope_rows", "scope_rows_checked", all(r.success for r in results), results)


def test_a_disagreement_stops_the_run_naming_the_reason_and_both_counts():
    result = result_of(("missing_identifier", 2), ("invalid_timestamp", 3))
    with pytest.raises(RedressError, match=r"invalid_timestamp: suite scope_rows counts 3 rows, the classification 4"):
        input_checks.cross_check(result, {"missing_identifier": 2, "invalid_timestamp": 4})
    with pytest.raises(RedressError, match=r"unknown_category: suite scope_rows counts 0 rows, the classification 1"):
        input_checks.cross_check(result, {"missing_identifier": 2, "invalid_timestamp": 3, "unknown_category": 1})


def test_two_expectations_of_one_reason_are_summed():
    result = result_of(("unknown_category", 2), ("unknown_category", 1))
    assert input_checks.cross_check(result, {"unknown_category": 3})["unknown_category"] == 3


def test_a_reason_outside_the_spec_or_an_expectation_gx_could_not_run_stops_the_run():
    with pytest.raises(RedressError, match="bogus"):
        input_checks.cross_check(result_of(), {"bogus": 1})
    with pytest.raises(RedressError, match="could not be evaluated"):
        input_checks.cross_check(result_of(("invalid_timestamp", 0), error="no such column"), {})


# ------------------------------------------- one normalisation, row by row (issue 8)

REALISTIC_EMAILS = [
    "DENİZ@EXAMPLE.COM", "deniz@example.com", "denİz@example.com", "ΣΟΦΙΑΣ@EXAMPLE.GR", "σοφιας@example.gr",
    "kim＠example.com", "\u3000Kim@Example.com\u00a0", "ＫＩＭ＠ＥＸＡＭＰＬＥ．ＣＯＭ", "kim lee@example.com",
    "a@@b", "@b", "a@", "ǅ@x", "ß@x", "ﬀ@x", "K@x",   # U+212A KELVIN SIGN: NFKC makes it K
]
REALISTIC_PHONES = [
    "０１０-３３３３-４４４４", "010-3333-4444", "+82 10 3333 4444", "\u3000010\u30003333\u30004444\u00a0",
    "02-123-4567", "070-1234-5678", "＋８２ ２ １２３ ４５６７", "010-12", "١٢٣", "+8201", "⁰¹⁰-3333-4444",
]
# Any Unicode text but the NUL character, which no text file or Parquet string of the
# field carries through ingest.
any_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=14)
emails = st.one_of(st.none(), any_text, st.sampled_from(REALISTIC_EMAILS),
                   st.builds(lambda a, b: f"{a}@{b}", any_text, any_text))
phones = st.one_of(st.none(), any_text, st.sampled_from(REALISTIC_PHONES),
                   st.text(st.sampled_from("0123456789０１２３４５６７８９+-＋ \u3000\u00a0()"), max_size=16))


def _as_ingested(value: str | None) -> str | None:
    """What ingest stores: trimmed of Unicode whitespace, blank as NULL."""
    if value is None:
        return None
    value = value.strip()
    return value or None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), master_ids=st.lists(st.tuples(emails, phones), min_size=1, max_size=6))
def test_the_sql_checks_and_the_classifier_agree_on_any_unicode_identifier(scratch_root, data, master_ids):
    master = normalised_master(pl.LazyFrame(
        {"customer_id": [f"c{i}" for i in range(len(master_ids))],
         "email": [e for e, _ in master_ids], "phone": [p for _, p in master_ids],
         "created_at": [datetime(2025, 7, 1, tzinfo=timezone.utc)] * len(master_ids)},
        schema={"customer_id": pl.String, "email": pl.String, "phone": pl.String,
                "created_at": pl.Datetime("us", "UTC")},
    )).collect()
    # Scope rows name master values as given (so they match), or anything at all.
    given_emails = st.one_of(emails, st.sampled_from([e for e, _ in master_ids]))
    given_phones = st.one_of(phones, st.sampled_from([p for _, p in master_ids]))
    rows = data.draw(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["c0", "c9"])), given_emails,
                                        given_phones, st.booleans()), min_size=1, max_size=12))
    scope = pl.DataFrame(
        {"file_sha256": ["f1"] * len(rows), "row_number": list(range(1, len(rows) + 1)),
         "customer_id": [c for c, _, _, _ in rows],
         "email": [_as_ingested(e) for _, e, _, _ in rows], "phone": [_as_ingested(p) for _, _, p, _ in rows],
         "data_category": ["email"] * len(rows), "accessed_at_raw": ["x"] * len(rows),
         # half before every account was created: exposure_before_account_created
         "accessed_at": [datetime(2025, 6 if early else 8, 1, tzinfo=timezone.utc) for _, _, _, early in rows],
         "confidence": [None] * len(rows), "source": [None] * len(rows)},
        schema={"file_sha256": pl.String, "row_number": pl.Int64, "customer_id": pl.String, "email": pl.String,
                "phone": pl.String, "data_category": pl.String, "accessed_at_raw": pl.String,
                "accessed_at": pl.Datetime("us", "UTC"), "confidence": pl.String, "source": pl.String},
    )
    classified = classified_scope(scope.lazy(), master.lazy(), CATEGORIES).collect().sort("row_number")
    with tempfile.TemporaryDirectory(dir=scratch_root) as tmp, duckdb.connect(":memory:") as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(SCHEMA)
        con.execute("""INSERT INTO customers BY NAME SELECT customer_id, email, phone, email_norm,
                           phone_e164, 'active' AS status, created_at, false AS is_test, 'voucher' AS payout_method,
                           false AS bank_valid, 'f0' AS file_sha256 FROM master""")
        con.execute("INSERT INTO scope_rows BY NAME SELECT * FROM scope")
        classified.write_parquet(Path(tmp) / "classified.parquet")
        con.execute("COPY (SELECT * FROM scope_rows ORDER BY row_number) TO ? (FORMAT parquet)",
                    [str(Path(tmp) / "scope.parquet")])
        input_checks.create_scope_rows_checked(con, CATEGORIES, Path(tmp) / "scope.parquet",
                                               Path(tmp) / "classified.parquet")
        judged = con.execute("""SELECT row_number, first_failed_rule, checked_as, classified_as, checks_disagree
                                FROM scope_rows_checked ORDER BY row_number""").fetchall()
    assert [r[4] for r in judged] == [False] * len(rows), judged
    held = classified.select(pl.when(pl.col("destination").is_in(["quarantine", "review"])).then("reason"))
    assert [r[1] for r in judged] == held.to_series().to_list()
    assert [r[2] for r in judged] == classified.select(pl.coalesce("reason", "destination")).to_series().to_list()
