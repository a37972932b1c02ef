"""redress/escape.py: names and values from input files, shown safely in HTML, Markdown,
terminals and logs (issue 9, item 7)."""

from __future__ import annotations

import html
import os
import re

from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from redress import escape

# Any text a file name or a cell can hold, with the characters each context fears.
NASTY = st.lists(st.one_of(
    st.sampled_from(list("<>&\"'|`*_[]()!#~\\:\n\r\t\x1b\x07\x00\x7f\x85\u202e\u2066\u2028\ufeff") + ["&amp;", "&#60;"]),
    # lone surrogates too: a file name that is not UTF-8 holds one per undecodable byte
    st.sampled_from(["\udcb1", "\udc80", "\udcff", "\ud800", "\udfff"]),
    st.characters(blacklist_categories=()),
), max_size=40).map("".join)
DANGEROUS_TERMINAL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
RENDER = MarkdownIt("commonmark").enable("table").enable("strikethrough")


@given(NASTY)
def test_terminal_text_holds_no_control_or_bidi_character(text):
    shown = escape.terminal(text)
    assert not DANGEROUS_TERMINAL.search(shown)
    assert "\n" not in shown
    for escaped in (shown, escape.terminal_lines(text), escape.html(text), escape.markdown(text)):
        escaped.encode("utf-8")  # writable to any log, page or file: no lone surrogate left


def test_a_name_that_is_not_utf8_shows_its_bytes():
    """os.fsdecode keeps each byte that is not UTF-8 as U+DC80 to U+DCFF: shown as the byte."""
    name = os.fsdecode(b"scope_\xb1\xe2.csv")
    assert escape.terminal(name) == "scope_\\xb1\\xe2.csv"
    assert escape.terminal("\ud800") == "\\ud800"  # a lone surrogate from elsewhere: its code point


def test_terminal_escapes_are_visible():
    assert escape.terminal("\x1b[31mred\x1b[0m.csv") == "\\x1b[31mred\\x1b[0m.csv"
    assert escape.terminal("a\nb\r\x07\u202ec") == "a\\x0ab\\x0d\\x07\\u202ec"
    assert escape.terminal_lines("line 1\nline\x1b 2") == "line 1\nline\\x1b 2"


@given(NASTY)
def test_terminal_lines_keep_only_newlines(text):
    assert not DANGEROUS_TERMINAL.search(escape.terminal_lines(text).replace("\n", ""))


@given(NASTY)
def test_html_escape_leaves_no_markup_nor_control_and_reads_as_the_terminal_text(text):
    shown = escape.html(text)
    assert not set(shown) & set("<>\"'")
    assert not DANGEROUS_TERMINAL.search(shown)
    assert html.unescape(shown) == escape.terminal(text)


def _inner(rendered: str, tag: str) -> str:
    match = re.fullmatch(rf"(?s).*?<{tag}>(.*)</{tag}>.*", rendered)
    assert match, rendered
    return match[1]


@given(NASTY)
def test_markdown_renders_as_the_text_itself_in_a_paragraph(text):
    """Rendered, the escaped text is one paragraph whose content is the text (controls
    shown as escapes): no tag, no link, no emphasis, no second line."""
    shown = escape.markdown(text)
    assert not set(shown) & set("<>\n\r")
    rendered = RENDER.render("x " + shown + " x")
    inner = _inner(rendered, "p")
    assert "<" not in inner, rendered
    assert html.unescape(inner) == ("x " + escape.terminal(text) + " x").strip()


@given(NASTY)
def test_markdown_stays_in_its_table_cell(text):
    shown = escape.markdown(text)
    rendered = RENDER.render(f"| a | b |\n|---|---|\n| x {shown} x | y |\n")
    body = _inner(rendered, "tbody")
    cells = re.findall(r"<td>(.*?)</td>", body, flags=re.S)
    assert len(cells) == 2 and cells[1] == "y", rendered
    assert "<" not in cells[0]
    assert html.unescape(cells[0]) == ("x " + escape.terminal(text) + " x").strip()


def test_markdown_keeps_plain_names_readable():
    assert escape.markdown("unknown_category") == "unknown_category"
    assert escape.markdown("scope_2025-11-29.csv") == "scope_2025-11-29.csv"
    assert escape.markdown("<img src=x onerror=alert(1)>.csv") == "&lt;img src=x onerror=alert(1)&gt;.csv"
    assert escape.markdown("evil|name[x](http://e).csv") == "evil\\|name\\[x\\](http://e).csv"


def test_table_rows_escape_text_and_read_as_words():
    rows = escape.markdown_rows([{"suite_run": "customers_staging-<b>.csv", "failed": 2, "passed": True, "x": None,
                                  "control_sum_krw": 1234567890, "closed": False}])
    assert rows == [{"Suite run": "customers_staging-&lt;b&gt;.csv", "Failed": "2", "Passed": "yes", "X": "",
                     "Control sum (KRW)": "1,234,567,890", "Closed": "no"}]
