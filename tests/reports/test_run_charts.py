"""The run report's charts (redress/reports/run_charts.py): what each draws, from plain
rows of aggregates, and the same bytes for the same rows."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings, strategies as st

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
@example([("ELIGIBLE", 0)])  # only zeros: found by a fresh-clone run
def test_the_same_rows_give_the_same_svg_bytes(rows):
    data = [{"reason": r, "customers": n} for r, n in rows]
    empty = "No customer in any reason"
    first = svg(run_charts.bars("Reasons", data, "reason", "customers", "customers", empty))
    assert first == svg(run_charts.bars("Reasons", [dict(d) for d in data], "reason", "customers", "customers", empty))
    if any(n for _, n in rows):
        assert all(r in first for r, _ in rows)
    else:  # only zeros: the sentence, by design (run_charts.bars), not an empty axis
        assert empty in first and not any(r in first for r, _ in rows)


def texts(svg_text: str) -> list[str]:
    """Every <text> element of an SVG: (transform, content)."""
    return re.findall(r'<text[^>]*transform="([^"]*)"[^>]*>([^<]*)</text>', svg_text)


def tick_labels(svg_text: str, axis: str) -> list[str]:
    """The tick labels of the x or y axis: the texts of its role-axis-label group."""
    group = re.search(rf'aria-label="{axis.upper()}-axis[^"]*".*?role-axis-label[^>]*>(.*?)</g>', svg_text, flags=re.S)
    return re.findall(r">([^<]+)</text>", group.group(1))


def test_a_cap_far_above_the_bars_is_stated_in_the_subtitle_and_the_axis_fits_the_bars():
    text = svg(run_charts.treasury([{"value_date": "2025-12-01", "this_run": 5_850_000, "earlier": 0}], 20_000_000_000))
    assert "Y-axis titled 'won' for a linear scale with values from 0 to 6,000,000" in text
    assert "cap:" not in text  # no rule: it would stretch the axis to 20 bn and hide the bar
    assert "daily cash cap 20,000,000,000 won, off this scale;" in text
    assert "headroom on the busiest day 19,994,150,000 won" in text
    assert tick_labels(text, "y") == ["0", "1 M", "2 M", "3 M", "4 M", "5 M", "6 M"]


@pytest.mark.parametrize("top, drawn", [(5_000_000_000, True), (4_999_999_999, False)])
def test_the_cap_rule_is_drawn_only_within_four_times_the_highest_bar(top, drawn):
    text = svg(run_charts.treasury([{"value_date": "2025-12-01", "this_run": top, "earlier": 0}], 20_000_000_000))
    assert ('aria-label="cap: 20000000000"' in text) is drawn
    assert ("daily cash cap 20,000,000,000 won" in text)  # said either way: on the rule or in the subtitle
    assert ("off this scale" in text) is not drawn


def test_a_plan_waiting_is_labelled_planned():
    text = svg(run_charts.treasury(DAYS, 20_000_000_000, planned=True))
    assert re.findall(r"part: (this run[^\"]*)\"", text) == ["this run (planned)"] * 2


def test_the_y_axis_title_sits_above_its_labels_not_over_them():
    text = svg(run_charts.treasury(DAYS, 20_000_000_000))
    (transform,) = [t for t, content in texts(text) if content == "won"]
    assert "rotate" not in transform  # horizontal
    assert float(re.search(r"translate\(([-0-9.]+),([-0-9.]+)\)", transform).group(2)) < 0  # above the plot


def test_won_labels_are_abbreviated_and_few_so_they_never_run_together():
    rows = [{"rail": "bank_transfer", "issued": 100_500_000_000, "held": 0},
            {"rail": "claim", "issued": 0, "held": 800_000}]
    text = svg(run_charts.stacked("Ledger", rows, "rail", [("issued", "issued"), ("held", "held on claim")], "won"))
    assert tick_labels(text, "x") == ["0", "20 bn", "40 bn", "60 bn", "80 bn", "100 bn"]
    small = svg(run_charts.bars("Kinds", [{"k": "first", "won": 150_000}], "k", "won", "won", "none"))
    assert tick_labels(small, "x")[-1] == "150,000"  # below a million: in full


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(0, 10**7), min_size=1, max_size=5).filter(any))
def test_count_axes_have_whole_distinct_ticks(values):
    rows = [{"label": f"reason {i}", "n": v} for i, v in enumerate(values)]
    text = svg(run_charts.bars("Quarantine", rows, "label", "n", "rows", "none"))
    labels = [int(t.replace(",", "")) for t in tick_labels(text, "x")]
    assert labels == sorted(set(labels)) and labels[0] == 0 and labels[-1] >= max(values)
    assert len(labels) <= 6


def test_a_count_of_one_has_ticks_0_and_1_only():
    text = svg(run_charts.bars("Quarantine", [{"label": "scope: unreadable_file", "n": 1}], "label", "n", "rows", "none"))
    assert tick_labels(text, "x") == ["0", "1"]


def test_an_empty_chart_shows_its_title_and_sentence_whole_from_the_left_edge():
    text = svg(run_charts.treasury([], 20_000_000_000, empty="No bank-transfer outflow: the plan was rejected."))
    found = dict((content, transform) for transform, content in texts(text))
    for whole in ("Bank-transfer outflow per value date", "No bank-transfer outflow: the plan was rejected."):
        assert found[whole].startswith("translate(0,"), whole  # starts at the left edge, not centred past it
    width = int(re.search(r'<svg[^>]* width="(\d+)"', text).group(1))
    assert width >= run_charts.WIDTH + 150  # room on the right for a wider browser font


def test_only_zeros_say_so_in_words():
    rows = [{"label": "first payments", "amount_krw": 0}, {"label": "top-ups", "amount_krw": 0}]
    text = svg(run_charts.bars("Payments", rows, "label", "amount_krw", "won", "No payment in this run."))
    assert "No payment in this run." in text and "mark-rect" not in text


def test_suite_states_use_the_words_and_counts_of_data_quality_html():
    states = [{"state": "passed", "words": "passed", "runs": 5},
              {"state": "handled", "words": "defects found and handled", "runs": 1},
              {"state": "stopped", "words": "gate stopped the run", "runs": 0}]
    text = svg(run_charts.suite_states(states))
    assert re.findall(r'aria-label="suite runs: (\d+); words: ([a-z ]+)"', text) == [
        ("5", "passed"), ("1", "defects found and handled"), ("0", "gate stopped the run")]
    assert "FAILED" not in text and "failed" not in text
    assert tick_labels(text, "x") == ["0", "1", "2", "3", "4", "5"]


def test_a_funnel_of_zeros_says_so_in_words():
    steps = [{"label": "distinct (customer, category) pairs", "count": 0, "side": False},
             {"label": "eligible customers", "count": 0, "side": False}]
    text = svg(run_charts.funnel(steps))
    assert "No scope row or exposure yet." in text and "mark-rect" not in text
