"""What `redress whatif` shows (redress/whatif/output.py): the table, the page, the folder."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from redress.vocabulary import ENTITLEMENT_REASONS
from redress.whatif.output import page, table_text, write


def figs(policy_id: str, eligible: int, amount: int, file: str = "") -> dict:
    zero = {"customers": 0, "amount_krw": 0}
    return {
        "policy_id": policy_id, "policy_file": file or f"{policy_id}.toml", "policy_sha256": "0" * 64,
        "exposed_customers": eligible + 3, "eligible": {"customers": eligible, "amount_krw": amount},
        "below_minimum": 3,
        "by_reason": {r: ({"customers": eligible, "amount_krw": amount} if r == "ELIGIBLE" else
                          {"customers": 3, "amount_krw": 0} if r == "BELOW_MINIMUM" else zero) for r in ENTITLEMENT_REASONS},
        "by_tier": {"1": {"customers": eligible, "amount_krw": amount}},
        "by_rail": {"bank_transfer": {"customers": 1, "amount_krw": 40000}, "claim": zero,
                    "voucher": {"customers": eligible - 1, "amount_krw": amount - 40000}},
        "pro_rata": {"total_cap_krw": 0, "base_sum_krw": amount, "binds": False, "factor": None},
        "bank_transfers": {"payments": 1, "amount_krw": 40000, "value_days": 1,
                           "first_value_date": "2025-12-01", "last_value_date": "2025-12-01"},
        "versus_in_force": {"gain": 1, "lose": 2, "unchanged": eligible, "top_up": {"customers": 1, "amount_krw": 40000}},
    }


RESULT = {"as_of_run": "R20251201-001", "run_date": "2025-12-01",
          "policies": [figs("base-v1", 1234, 61_700_000), figs("other-v2", 1000, 50_000_000, "evil\x1b[31m<b>.toml")]}
# A policy id is an identifier (redress/policy/tables.py); a file name may hold anything.


def test_plain_table_has_policies_as_columns_and_amounts_with_separators():
    text = table_text(RESULT, terminal=False)
    total = next(line for line in text.splitlines() if line.startswith("total cost"))
    assert total.split() == ["total", "cost", "61,700,000", "KRW", "50,000,000", "KRW"]
    assert "1. base-v1" in text and "\x1b" not in text  # a file name's escape is shown, never obeyed
    assert "top-up cost of switching" in text and "1 / 40,000 KRW" in text


def test_terminal_table_is_rich_and_escapes_what_came_from_a_file():
    text = table_text(RESULT, terminal=True, width=200)
    assert "┃" in text or "│" in text
    assert "61,700,000 KRW" in text and "\x1b[31m<b>" not in text


def test_the_page_and_figures_appear_whole_and_a_second_one_in_the_same_second_beside_it(tmp_path):
    now = datetime(2025, 12, 1, 9, 30, tzinfo=timezone.utc)
    first, second = write(tmp_path, RESULT, now), write(tmp_path, RESULT, now)
    assert (first.name, second.name) == ("whatif-20251201T093000Z", "whatif-20251201T093000Z-2")
    assert json.loads((first / "whatif.json").read_text(encoding="utf-8")) == RESULT
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, second.name]  # no temporary folder left
    html = (first / "whatif.html").read_text(encoding="utf-8")
    assert html == page(RESULT) and html.count("<svg") == 3 and "<script" not in html
    assert "&lt;b&gt;" in html and "<b>.toml" not in html  # a file name is text, never markup
    assert "61,700,000 KRW" in html


def test_the_cost_axis_title_sits_above_abbreviated_labels_and_people_axes_count_whole():
    import re
    html = page(RESULT)
    won = re.findall(r'<text[^>]*transform="([^"]*)"[^>]*>total cost \(KRW\)</text>', html)
    assert len(won) == 1 and "rotate" not in won[0]  # horizontal, above the labels: never drawn over them
    labels = re.findall(r">([0-9.,]+ ?(?:M|bn)?)</text>", html)
    assert "60 M" in labels and "60,000,000" not in labels  # abbreviated, not run together
    # both people axes: whole ticks from 0 past the largest count (1,237 people)
    assert re.findall(r">([0-9,]+)</text>", html)[-8:] == ["0", "500", "1,000", "1,500"] * 2
