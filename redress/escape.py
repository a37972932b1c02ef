"""Text from input files, made safe for where it is shown: the one module that does it.

A file name or a value from an inbox file can hold anything a file system allows: `<img
src=x onerror=...>`, Markdown links, `|` that splits a table cell, a newline that forges
a log line, ESC sequences that repaint a terminal, bidi overrides that show text in
another order. Each output context gets its own escaper, applied where the text is
shown (issue 9, item 7):

    html(text)       HTML pages (data_quality.html, report.html, whatif.html): controls
                     visible as for the terminal, then &, <, >, quotes as entities
    markdown(text)   summary.md, Prefect Markdown and table artifacts (rendered as HTML)
    terminal(text)   the terminal, logs and one-line errors: one line, controls visible
    terminal_lines(text)  a multi-line text printed as it is (the run summary, explain)

Controls are shown as Python-style escapes (`\\x1b`, `\\x0a`, `\\u202e`), so the reader
still sees that they were there. SPEC "The data folder" (reports/<run_id>/) and "The
command line" (one-line errors).
"""

from __future__ import annotations

import html as _html
import re

# C0 and C1 controls, DEL; line and paragraph separators; bidi marks, embeddings,
# overrides and isolates (Trojan Source); BOM and zero-width characters that hide text;
# lone surrogates, which no UTF-8 output can hold (a file name that is not UTF-8 reaches
# Python with each undecodable byte as one of U+DC80 to U+DCFF: found by review, a log
# line and the summary failed on a sub-folder so named).
_OTHERS = "\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff"
_CONTROL = re.compile(f"[\x00-\x1f{_OTHERS}]")
_CONTROL_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHERS}]")
# Markdown: the characters that start markup inside a line or a table cell, escaped
# with a backslash (CommonMark escapes any ASCII punctuation). `_` between two letters
# or digits never starts emphasis, so `unknown_category` stays readable as it is.
_MARKUP = re.compile(r"[\\`*\[\]|~]|(?<![^\W_])_|_(?![^\W_])")


def _visible(match: re.Match) -> str:
    c = match[0]
    if 0xDC80 <= ord(c) <= 0xDCFF:  # an undecodable byte of a name (os.fsdecode): the byte itself
        return f"\\x{ord(c) - 0xDC00:02x}"
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def is_utf8(text: str) -> bool:
    """False for a text Python read from a name or argument that is not UTF-8: os.fsdecode
    keeps each undecodable byte as a lone surrogate, which no UTF-8 output can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def not_utf8(text: str) -> str:
    """A text Python read from a name or argument that is not UTF-8 (os.fsdecode keeps
    each undecodable byte as a lone surrogate), shown byte for byte: every byte outside
    ASCII as \\xNN, since some byte pairs of CP949 happen to decode as UTF-8 and would
    show as unrelated letters (found by review: 한글 showed as `\\xc7ѱ\\xdb`); then as
    `terminal` shows any text."""
    import os

    return terminal(os.fsencode(text).decode("ascii", "backslashreplace"))


def holds_control(text: str) -> bool:
    """Whether `text` holds a character `terminal` shows as an escape (a control, a line
    separator, a bidi or zero-width character)."""
    return _CONTROL.search(text) is not None


def terminal(text: object) -> str:
    """One line safe for a terminal or a log: every control (ESC, CR, BEL, newline,
    tab...), line separator, bidi or zero-width character as a visible escape."""
    return _CONTROL.sub(_visible, str(text))


def terminal_lines(text: object) -> str:
    """Like `terminal`, but newlines stay: for a multi-line text meant to be printed."""
    return _CONTROL_BUT_NEWLINE.sub(_visible, str(text))


def html(text: object) -> str:
    """Text for an HTML page, in an element or a quoted attribute; None is empty.
    Controls, bidi and zero-width characters are shown as escapes first (`terminal`):
    a U+202E in a file name would otherwise reorder what the reader sees, and a
    control character has nothing to show on a page."""
    return _html.escape("" if text is None else terminal(text), quote=True)


def markdown(text: object) -> str:
    """Text for Markdown that is rendered to HTML (summary.md, Prefect artifacts), in a
    paragraph or a table cell: controls and newlines visible, `&`, `<`, `>` as entities,
    markup characters backslash-escaped. Never inside a code span (escapes do not work
    there)."""
    text = terminal(text)
    text = _MARKUP.sub(lambda m: "\\" + m[0], text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_rows(rows: list[dict]) -> list[dict]:
    """Table-artifact rows as people read them in the Prefect UI: headers in words
    (`amount_krw` -> `Amount (KRW)`), whole numbers with thousands separators, booleans
    as yes/no, None as an empty cell, and every text value Markdown-escaped (Prefect
    renders the cells)."""
    return [{header(k): _cell(v) for k, v in row.items()} for row in rows]


def header(column: str) -> str:
    """A column name as a table header in words: `value_date` -> `Value date`,
    `control_sum_krw` -> `Control sum (KRW)`."""
    words = column.removesuffix("_krw").replace("_", " ")
    return words[:1].upper() + words[1:] + (" (KRW)" if column.endswith("_krw") else "")


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if value is None:
        return ""
    return markdown(value) if isinstance(value, str) else value
