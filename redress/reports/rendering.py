"""The Jinja2 environments the reports are rendered with (templates/ beside this file).

Templates are found in the installed package (PackageLoader), so a wheel install renders
the same as a checkout. A value a template names but is not given fails the render
(StrictUndefined): a report never shows an empty cell where a count fell out.

Escaping, where the text is shown (redress/escape.py, issue 9):
- Markdown (`*.md.j2`): every value goes through the `md` or `cell` filter, which escape
  it for Markdown; a text that reaches the output without one fails the render, so a
  file name cannot slip through unescaped. Numbers and dates are written as they are.
- HTML (`*.html.j2`): autoescaped, with `escape.html` as the escaper (quotes as `&quot;`,
  the bytes the pages always had); the page's own markup comes from macros.
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from redress import escape
from redress.runtime.stage_counts import counted
from redress.vocabulary import HANDLED, PASSED, STOPPED


class Markdown(str):
    """Markdown of ours (emphasis on a verdict) or text already escaped: written as it is."""


def md(value: object) -> Markdown:
    """Text from outside (a file name, an error) for a Markdown paragraph or table cell."""
    return Markdown(escape.markdown(value))


def cell(value: object) -> Markdown:
    """A Markdown table cell: yes/no, integers with thousands separators, None empty,
    Markdown of ours as it is, any other value escaped (`md`)."""
    if isinstance(value, Markdown):
        return value
    if isinstance(value, bool):
        return Markdown("yes" if value else "no")
    if isinstance(value, int):
        return Markdown(f"{value:,}")
    return Markdown("") if value is None else md(value)


def payments(value: int | None) -> Markdown:
    """A count of payments in words: `1 payment`, `1,202 payments`."""
    return Markdown(counted(int(value or 0), "payment"))


FAILED = Markdown("**FAILED**")


# A suite run's state (vocabulary SUITE_STATES) in a Markdown cell: only a gate that
# stopped the run is in bold, so a run whose defects were quarantined does not read as failed.
STATE_WORDS = {PASSED: Markdown("passed"), HANDLED: Markdown("defects found and handled"),
               STOPPED: Markdown("**gate stopped the run**")}


def verdict(state: bool | str) -> Markdown:
    """A suite state code as words (STATE_WORDS); a bare bool as passed / FAILED."""
    if isinstance(state, bool):
        return Markdown("passed") if state else FAILED
    return STATE_WORDS[state]


class UnescapedText(TypeError):
    """A template wrote a text without the `md` or `cell` filter: a bug in the template."""


def _markdown_finalize(value: object) -> object:
    if value is None or (isinstance(value, str) and not isinstance(value, Markdown)):
        raise UnescapedText("a Markdown template wrote a value without |md or |cell")
    return value


def _html_finalize(value: object) -> object:
    # Runs before autoescaping: a plain value is escaped here by the project's escaper
    # and marked safe, so markupsafe does not escape it a second time.
    return value if isinstance(value, Markup) else Markup(escape.html(value))


def _environment(**options) -> Environment:
    return Environment(loader=PackageLoader("redress.reports", "templates"), undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, **options)


@cache
def markdown_environment() -> Environment:
    env = _environment(autoescape=False, finalize=_markdown_finalize)
    env.filters.update(md=md, cell=cell, verdict=verdict, payments=payments)
    return env


@cache
def html_environment() -> Environment:
    env = _environment(autoescape=True, finalize=_html_finalize)
    env.filters["count"] = lambda value: f"{int(value or 0):,}"
    env.filters["payments"] = lambda value: counted(int(value or 0), "payment")  # `1 payment`, `2 payments`
    return env
