"""The suite records and GX's own Data Docs (redress/reports/data_docs.py): records read
in the run's order, one overview row per suite run, and no row value in GX's pages."""

from __future__ import annotations

import json
import os

import duckdb
import great_expectations as gx
import pytest

from redress.checks.gx_duckdb import table_batch
from redress.reports.data_docs import build_gx_data_docs, gx_result_without_rows, suite_overview, validation_records


def test_records_are_read_in_the_order_they_were_written(tmp_path, records):
    folder = tmp_path / "validations"
    (folder / "gx").mkdir(parents=True)
    for i, (name, rec) in enumerate(zip(["zzz", "aaa"], records)):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(rec))
        stamp = 1_700_000_000_000_000_000 + i
        os.utime(path, ns=(stamp, stamp))
    (folder / "gx" / "ignored.json").write_text("{}")  # GX's own results are not records
    assert [r["label"] for r in validation_records(tmp_path)] == [r["label"] for r in records]
    assert validation_records(tmp_path / "missing") == []


def test_suite_overview(records):
    assert suite_overview(records)[1] == {
        "suite_run": "scope_exposures", "suite": "scope_exposures", "table": "scope_exposures", "passed": False,
        "expectations": 2, "failed_expectations": 1, "failed_reasons": "gate_failed_unknown_matched_by",
    }


# --------------------------------------------------------------------------- GX Data Docs


@pytest.fixture
def gx_result(tmp_path, personal) -> dict:
    """GX's own result JSON for a table of people, asked for row values on purpose."""
    warehouse = tmp_path / "people.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE people (row_number BIGINT, email VARCHAR, phone VARCHAR)")
        con.execute("INSERT INTO people VALUES (1, ?, ?), (2, ?, ?), (3, 'ok@example.com', '+821011112222')",
                    [personal[0], personal[1], personal[0], personal[2]])
    suite = gx.ExpectationSuite(name="people", expectations=[
        gx.expectations.ExpectColumnValuesToBeInSet(column="email", value_set=["ok@example.com"], meta={"reason": "bad_email"}),
        gx.expectations.ExpectColumnMostCommonValueToBeInSet(column="phone", value_set=["x"], meta={"reason": "odd_phone"}),
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1, max_value=10, meta={"reason": "row_count"}),
    ])
    with table_batch(warehouse, "people") as batch:
        validation = batch.validate(suite, result_format={
            "result_format": "COMPLETE", "unexpected_index_column_names": ["row_number"],
            "return_unexpected_index_query": True})
    raw = validation.to_json_dict()
    assert personal[0] in json.dumps(raw)  # the fixture does hold row values
    return raw


def test_gx_results_lose_every_row_value_but_keep_the_counts(gx_result, personal):
    clean = gx_result_without_rows(gx_result)
    text = json.dumps(clean)
    assert not [v for v in personal if v in text]
    counts = {r["expectation_config"]["type"]: r["result"] for r in clean["results"]}
    assert counts["expect_column_values_to_be_in_set"]["unexpected_count"] == 2
    assert counts["expect_table_row_count_to_be_between"]["observed_value"] == 3
    assert gx_result_without_rows(gx_result) == clean and personal[0] in json.dumps(gx_result)  # input untouched


def test_native_data_docs_are_built_from_kept_results_without_row_values(tmp_path, gx_result, personal):
    report = tmp_path / "reports" / "R20251201-001"
    assert build_gx_data_docs(report, "R20251201-001") is None  # nothing kept, nothing built
    kept = report / "validations" / "gx"
    kept.mkdir(parents=True)
    (kept / "people.json").write_text(json.dumps(gx_result))  # as given: the builder strips it
    index = build_gx_data_docs(report, "R20251201-001")
    assert index == report / "data_docs" / "index.html" and index.is_file()
    pages = list((report / "data_docs").rglob("*.html"))
    assert len(pages) == 2 and any("R20251201-001" in str(p) for p in pages)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not [v for v in personal if v in text], page
