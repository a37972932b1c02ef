"""The review list for forensics (redress/reports/review.py) on a hand-built warehouse:
one row per `review` row, the file named, the identifiers as given, the candidates found
with the pipeline's own normalisation, the reason in words and what to do."""

from __future__ import annotations

import polars as pl
import pytest

from redress import vocabulary as v
from redress.reports.review import REVIEW_COLUMNS, review_list
from redress.warehouse import connect

CUSTOMERS = [  # customer_id, email_norm, phone_e164 (as the master stores them)
    ("C1", "kim@example.com", "+821011112222"),
    ("C2", "kim@example.com", "+821033334444"),
    ("C3", "lee@example.com", "+821033334444"),
    ("C4", "park@example.com", "+821055556666"),
]
SCOPE = [  # file, row, customer_id, email, phone as given
    ("f1", 3, None, "ＫＩＭ@example.com", None),           # fullwidth: NFKC then lower-cased
    ("f1", 9, None, "nobody@example.com", "010-3333-4444"),  # email matched nobody: phone shared
    ("f2", 1, "C4", None, "010-1111-2222"),                  # checks_disagree: any identifier it gives
]
REVIEW = [  # file, row, reason, matched_by, candidates, classified_as, checked_as
    ("f1", 3, v.AMBIGUOUS_IDENTIFIER, "email", 2, None, None),
    ("f1", 9, v.AMBIGUOUS_IDENTIFIER, "phone", 2, None, None),
    ("f2", 1, v.CHECKS_DISAGREE, None, 0, "exposure", "unknown_customer_id"),
]


@pytest.fixture
def warehouse(tmp_path):
    con = connect(tmp_path / "warehouse.duckdb")
    for sha, name in (("f1", "scope_b.csv"), ("f2", "scope_a.csv"), ("f2", "scope_a_again.csv")):
        con.execute("INSERT INTO ingested_files VALUES (?, ?, 'scope', 1, 'accepted', NULL, 1, 'R1', now(), NULL)", [sha, name])
    for cid, email, phone in CUSTOMERS:
        con.execute("INSERT INTO customers VALUES (?, NULL, NULL, ?, ?, 'active', NULL, NULL, now(), NULL, false, 'voucher', "
                    "NULL, NULL, false, 'm')", [cid, email, phone])
    for sha, row, cid, email, phone in SCOPE:
        con.execute("INSERT INTO scope_rows VALUES (?, ?, ?, ?, ?, 'email', '2025-07-01', now(), NULL, 'web log', NULL)",
                    [sha, row, cid, email, phone])
    for sha, row, reason, by, n, classified, checked in REVIEW:
        con.execute("INSERT INTO review VALUES (?, ?, ?, ?, ?, NULL, NULL, 'email', now(), 'confirmed', ?, ?)",
                    [sha, row, reason, by, n, classified, checked])
    yield con
    con.close()


def test_every_review_row_is_listed_with_what_resolves_it(warehouse):
    listed = review_list(warehouse)
    assert listed.columns == list(REVIEW_COLUMNS)
    assert listed.select("file_name", "row_number", "reason", "matched_by", "candidate_customer_ids",
                         "customer_id", "email", "phone", "source").rows() == [
        ("scope_a.csv", 1, v.CHECKS_DISAGREE, None, "C1 C4", "C4", None, "010-1111-2222", "web log"),
        ("scope_b.csv", 3, v.AMBIGUOUS_IDENTIFIER, "email", "C1 C2", None, "ＫＩＭ@example.com", None, "web log"),
        ("scope_b.csv", 9, v.AMBIGUOUS_IDENTIFIER, "phone", "C2 C3", None, "nobody@example.com", "010-3333-4444",
         "web log"),
    ]
    assert listed["reason_text"].to_list() == [v.REVIEW_REASONS[r] for r in listed["reason"]]
    assert listed["what_to_do"].to_list() == [v.REVIEW_ACTIONS[r] for r in listed["reason"]]
    assert listed.schema["row_number"] == pl.Int64 and listed.schema["candidates"] == pl.Int64
    assert listed.filter(pl.col("reason") == v.CHECKS_DISAGREE).row(0, named=True)["checked_as"] == "unknown_customer_id"


def test_an_empty_review_table_gives_an_empty_list_with_its_columns(tmp_path):
    with connect(tmp_path / "warehouse.duckdb") as con:
        listed = review_list(con)
    assert listed.height == 0 and listed.columns == list(REVIEW_COLUMNS)
