"""data_quality.html (redress/reports/data_quality.py, templates/data_quality.html.j2):
what it lists, that it escapes, that no row value can reach it, and that it is byte for
byte the golden page (golden/: the page the string-building renderer wrote before the
templates, with the accessibility review's wide-table and print styles added since)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from redress.reports.data_quality import data_quality_html, write_data_quality_html

GOLDEN = Path(__file__).parent / "golden"


def test_page_has_a_section_per_suite_run_with_counts_and_reasons(records):
    page = data_quality_html("R20251201-001", records)
    assert "2 suite runs: 1 passed, 0 with defects found and handled, 1 stopped the run" in page
    assert page.count("<section") == 3  # two suite runs, then what the reasons mean
    assert "customers_staging-customers_2025-11-29.parquet" in page
    assert re.search(r"scope_exposures: <span class=\"stopped\">gate stopped the run</span>", page)
    row = re.search(r"<tr><td>[^\n]*?expect_column_values_to_be_in_set.*?</tr>", page).group(0)
    assert ">matched_by<" in row and ">37<" in row and ">1,234<" in row
    assert "duplicate_customer_id" in page and "1 of 2 expectations met" in page


def test_page_has_no_script_no_external_asset_and_no_row_value(records, personal):
    page = data_quality_html("R20251201-001", records)
    assert "<script" not in page.lower() and "src=" not in page
    assert not re.search(r"https?://|//[a-z]", page)
    assert "default-src 'none'" in page
    assert not [v for v in personal if v in page]
    assert "SELECT" not in page


def test_page_escapes_every_recorded_value(hostile_records):
    page = data_quality_html("R<1>", hostile_records)
    assert "<script>" not in page and "<img" not in page and "<b>t</b>" not in page and "<i>" not in page
    assert "scope&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "reason &lt;i&gt;&amp;&lt;/i&gt;" in page and "R&lt;1&gt;" in page


def test_page_without_suites_says_so():
    assert "No suite ran in this run." in data_quality_html("R20251201-001", [])


@pytest.mark.parametrize("name, run_id, which", [
    ("records", "R20251201-001", "records"),
    ("hostile", "R<1>&", "hostile_records"),
    ("empty", "R20251201-001", None),
])
def test_page_is_byte_identical_to_its_golden_page(name, run_id, which, request):
    records = request.getfixturevalue(which) if which else []
    assert data_quality_html(run_id, records) == (GOLDEN / f"data_quality_{name}.html").read_text(encoding="utf-8")


def test_the_page_is_written_beside_the_summary(tmp_path, records):
    path = write_data_quality_html(tmp_path / "reports" / "R1", "R1", records)
    assert path == tmp_path / "reports" / "R1" / "data_quality.html"
    assert path.read_text(encoding="utf-8") == data_quality_html("R1", records)


def test_defects_handled_read_apart_from_a_gate_that_stopped_the_run(make_record, make_expectation):
    handled = dict(make_record(
        "scope_rows", "scope_rows", "scope_rows",
        make_expectation("expect_column_values_to_be_in_set", "row_reason", "missing_identifier", unexpected=4),
        make_expectation("expect_column_values_to_be_in_set", "row_reason", "ambiguous_identifier", unexpected=2),
    ), held_reasons=["ambiguous_identifier", "missing_identifier"])
    gate = dict(make_record("ledger", "ledger", "ledger",
                            make_expectation("expect_column_values_to_be_unique", "payment_id", "duplicate_payment_id",
                                             unexpected=1)), held_reasons=[])
    page = data_quality_html("R1", [handled, gate])
    assert "2 suite runs: 0 passed, 1 with defects found and handled, 1 stopped the run" in page
    assert 'scope_rows: <span class="handled">defects found and handled</span>' in page
    assert 'ledger: <span class="stopped">gate stopped the run</span>' in page
    assert re.search(r'<span class="handled">defects found and handled</span></td><td class="n">2</td>'
                     r'<td class="n">2</td><td class="n">6</td>', page)  # 2 expectations, 2 failed, 6 rows held
    assert "<dt>missing_identifier</dt><dd>no customer id, email or phone</dd>" in page
    assert "<dt>duplicate_payment_id</dt><dd>two payments with one payment id</dd>" in page
    assert "FAILED" not in page


def test_a_run_that_stopped_says_why_first_and_whether_a_gate_did(make_record, make_expectation):
    """A customers snapshot refused whole is handled (quarantined as designed), and the run
    then stops for want of a valid snapshot: the page must not read as a run that went on."""
    refused = dict(make_record(
        "customers_staging", "customers_staging", "customers_staging",
        make_expectation("expect_column_values_to_be_unique", "customer_id", "duplicate_customer_id", unexpected=2),
    ), held_reasons=["duplicate_customer_id"])
    error = "no valid customers snapshot in inbox/customers/"
    page = data_quality_html("R1", [refused], error=error)
    assert page.index(f'<p class="stopped">This run stopped: {error}</p>') < page.index("1 suite runs")
    assert "No suite below stopped it" in page
    gate = dict(make_record("ledger", "ledger", "ledger",
                            make_expectation("expect_column_values_to_be_unique", "payment_id", "duplicate_payment_id",
                                             unexpected=1)), held_reasons=[])
    stopped = data_quality_html("R1", [refused, gate], error="the ledger gate failed")
    assert 'The suite marked "gate stopped the run" below is why.' in stopped
    assert "This run stopped" not in data_quality_html("R1", [refused])
