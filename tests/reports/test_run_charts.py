"""The run report's charts (redress/reports/run_charts.py): what each draws, from plain
rows of aggregates, and the same bytes for the same rows."""

from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from redress.reports import run_charts
from redress.reports.charts import svg

DAYS = [{"value_date": "2025-12-01", "this_run": 15_000_000_000, "earlier": 5_000_000_000},
        {"value_date": "2025-12-02", "this_run": 7_500_000_000, "earlier": 0}]


def test_the_treasury_chart_draws_each_day_and_a_rule_at_the_cap():
    text = svg(run_charts.treasury(DAYS, 20_000_000_000))
    bars = re.findall(r'aria-label="value date: ([0-9-]+); won: ([0-9,]+); part: ([a-z ]+)"', text)
    assert bars == [("2025-12-01", "5,000,000,000", "earlier runs"), ("2025-12-01", "15,000,000,000", "this run"),
                    ("2025-12-02", "0", "earlier runs"), ("2025-12-02", "7,500,000,000", "this run")]
    assert 'aria-label="cap: 20000000000"' in text  # the rule, at the cap
    assert "daily cash cap 20,000,000,000 won" in text


def test_an_empty_section_says_so_in_words_not_empty_axes():
    text = svg(run_charts.treasury([], 20_000_000_000))
    assert "No bank transfer on any value date of this run." in text and "mark-rect" not in text
    text = svg(run_charts.bars("Quarantine", [], "label", "n", "rows", "Nothing was quarantined in this run."))
    assert "Nothing was quarantined in this run." in text


def test_the_ledger_chart_stacks_only_the_statuses_that_hold_money():
    rows = [{"rail": "bank_transfer", "issued": 1_050_000, "held": 0},
            {"rail": "claim", "issued": 0, "held": 800_000}]
    text = svg(run_charts.stacked("Ledger", rows, "rail", [("issued", "issued"), ("held", "held on claim")], "won"))
    bars = re.findall(r'aria-label="won: ([0-9,]+); category: ([a-z_]+); part: ([a-z ]+);', text)
    assert bars == [("1,050,000", "bank_transfer", "issued"), ("800,000", "claim", "held on claim")]


@settings(max_examples=8)
@given(st.lists(st.tuples(st.sampled_from(["ELIGIBLE", "TEST_ACCOUNT", "OUTSIDE_WINDOW", "BELOW_MINIMUM"]),
                          st.integers(0, 10**9)), min_size=1, max_size=4, unique_by=lambda r: r[0]))
def test_the_same_rows_give_the_same_svg_bytes(rows):
    data = [{"reason": r, "customers": n} for r, n in rows]
    first = svg(run_charts.bars("Reasons", data, "reason", "customers", "customers", "none"))
    assert first == svg(run_charts.bars("Reasons", [dict(d) for d in data], "reason", "customers", "customers", "none"))
    for r, _ in rows:
        assert r in first
