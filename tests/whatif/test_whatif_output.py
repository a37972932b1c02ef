"""What `redress whatif` shows (redress/whatif/output.py): the table, the page, the folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from rich.cells import cell_len

from redress.vocabulary import ENTITLEMENT_REASONS
from redress.whatif import output
from redress.whatif.output import page, table_text, write


def figs(policy_id: str, eligible: int, amount: int, file: str = "", cap: int = 0, paid: int = 0) -> dict:
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
        "top_up_by_rail": {"bank_transfer": {"customers": 1, "amount_krw": 40000}, "claim": zero, "voucher": zero},
        "exposures_from_quarantine": 7,
        "paid_in_all": {"already_paid": {"customers": eligible, "amount_krw": paid}, "after_switching_krw": paid + 40000,
                        "fund_cap_krw": cap, "exceeds_fund_cap_krw": max(0, paid + 40000 - cap) if cap else 0},
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
    transfers = next(line for line in text.splitlines() if line.startswith("  of which bank_transfer"))
    assert transfers.split() == ["of", "which", "bank_transfer"] + ["1", "/", "40,000", "KRW"] * 2
    quarantined = next(line for line in text.splitlines() if line.startswith("exposures from rows the last run"))
    assert quarantined.split()[-2:] == ["7", "7"]


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


def test_what_a_killed_whatif_left_half_written_is_swept_and_a_living_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    killed = tmp_path / f".tmp-whatif-20251201T093000Z-{int(dead.stdout)}"  # its process has ended
    writing = tmp_path / f".tmp-whatif-20251201T093001Z-{os.getpid()}"  # a what-if still writing
    other = tmp_path / ".tmp-whatif-notes"  # not a name write() makes: never touched
    for folder in (killed, writing, other):
        folder.mkdir()
        (folder / "whatif.json").write_text("{", encoding="utf-8")
    done = write(tmp_path, RESULT, datetime(2025, 12, 1, 9, 31, tzinfo=timezone.utc))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([done.name, writing.name, other.name])


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_terminal_table_fits_the_terminal_it_is_shown_on(monkeypatch):
    """No fixed width: rich takes the terminal's (COLUMNS here) and wraps the cells."""
    for columns in (60, 100):
        monkeypatch.setenv("COLUMNS", str(columns))
        lines = ANSI.sub("", table_text(RESULT, terminal=True)).splitlines()
        assert max(cell_len(line) for line in lines) <= columns
        assert "61,700,000" in "".join(lines).replace(" ", "").replace("│", "")


def test_plain_table_is_not_cut_to_a_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    total = next(line for line in table_text(RESULT, terminal=False).splitlines() if line.startswith("total cost"))
    assert total.split() == ["total", "cost", "61,700,000", "KRW", "50,000,000", "KRW"]


CAPPED = {"as_of_run": "R20251201-001", "run_date": "2025-12-01", "policies": [
    figs("base-v1", 1234, 61_700_000, paid=61_700_000),
    figs("capped-v2", 1000, 50_000_000, cap=100_000_000, paid=146_579_148)]}


def test_paid_in_all_and_the_fund_cap_it_exceeds_are_in_the_table_the_page_and_the_json(tmp_path):
    warning = ("warning: 2. capped-v2: paid in all after switching exceeds the fund cap by 46,619,148 KRW: "
               "payments are never clawed back")
    text = table_text(CAPPED, terminal=False)
    lines = text.splitlines()
    assert next(li for li in lines if li.startswith("already paid or held on claim (live ledger)")).split()[-4:] == [
        "1,000", "/", "146,579,148", "KRW"]
    assert next(li for li in lines if li.startswith("paid in all after switching (already paid or held + top-up)")).split()[-4:] == [
        "61,740,000", "KRW", "146,619,148", "KRW"]
    assert next(li for li in lines if li.startswith("fund cap")).split()[2:] == [
        "none", "100,000,000", "KRW:", "EXCEEDED", "by", "46,619,148", "KRW"]
    assert lines[-1] == warning and text.count("warning:") == 1  # the uncapped policy has none
    rich_text = ANSI.sub("", table_text(CAPPED, terminal=True, width=400))
    assert warning in rich_text
    folder = write(tmp_path, CAPPED)
    assert f'<p class="warning">{warning}</p>' in (folder / "whatif.html").read_text(encoding="utf-8")
    capped = json.loads((folder / "whatif.json").read_text(encoding="utf-8"))["policies"][1]["paid_in_all"]
    assert capped["after_switching_krw"] == 146_619_148 and capped["exceeds_fund_cap_krw"] == 46_619_148
    assert "warning" not in table_text(RESULT, terminal=False)


# C0 and C1 controls, DEL, bidi marks, embeddings, overrides and isolates, separators,
# zero-width characters: none may reach the page from a value (the template's own
# newlines are counted apart).
HIDDEN = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
FILE_NAMES = st.text(st.one_of(st.sampled_from(list("\x07\x1b\u202e\u2066\n\r\x85\u200f<&\"")),
                               st.characters(blacklist_categories=("Cs",))), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(FILE_NAMES)
def test_the_page_holds_no_control_or_bidi_character_whatever_the_file_name(name):
    result = {**RESULT, "policies": [figs("base-v1", 1234, 61_700_000, file=name + ".toml")]}
    plain = {**RESULT, "policies": [figs("base-v1", 1234, 61_700_000, file="plain.toml")]}
    with mock.patch.object(output, "_charts", lambda result: {k: Markup("") for k in ("cost", "changes", "reasons")}):
        html, reference = page(result), page(plain)
    assert not HIDDEN.search(html)
    assert html.count("\n") == reference.count("\n")  # a newline in a name is shown, not written


def test_a_bell_escape_and_right_to_left_override_in_a_file_name_are_shown_as_escapes():
    result = {**RESULT, "policies": [figs("base-v1", 1234, 61_700_000, file="a\x07b\x1b[2Jc\u202eexe.toml")]}
    assert "a\\x07b\\x1b[2Jc\\u202eexe.toml" in page(result)


def test_the_cost_axis_title_sits_above_abbreviated_labels_and_people_axes_count_whole():
    import re
    html = page(RESULT)
    won = re.findall(r'<text[^>]*transform="([^"]*)"[^>]*>total cost \(KRW\)</text>', html)
    assert len(won) == 1 and "rotate" not in won[0]  # horizontal, above the labels: never drawn over them
    labels = re.findall(r">([0-9.,]+ ?(?:M|bn)?)</text>", html)
    assert "60 M" in labels and "60,000,000" not in labels  # abbreviated, not run together
    # both people axes: whole ticks from 0 past the largest count (1,237 people)
    assert re.findall(r">([0-9,]+)</text>", html)[-8:] == ["0", "500", "1,000", "1,500"] * 2
