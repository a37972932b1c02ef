"""The data-quality page of a run, reports/<run_id>/data_quality.html, rendered from
templates/data_quality.html.j2 (SPEC "The data folder", reports/<run_id>/).

One section per suite run, in one of three states told apart by words and colour
(vocabulary SUITE_STATES): passed (green); defects found and handled, the failing rows
or files quarantined or held in review and the run going on (amber, with the counts);
a gate that stopped the run (red). Per expectation: column, reason, unexpected count /
rows checked; then each reason code met with its plain-language line (vocabulary
reason_text). From the suite records (redress/reports/data_docs.py), which hold no row
value. Self-contained (no script, no external asset, a CSP that
forbids both) and autoescaped: it opens the same offline, on a finance laptop or from
an e-mail attachment.
"""

from __future__ import annotations

from pathlib import Path

from redress.reports.data_docs import PAGE, SUITES_NOTE, reason_lines, suite_overview, suite_state
from redress.reports.rendering import html_environment
from redress.vocabulary import HANDLED, PASSED, STOPPED


def data_quality_html(run_id: str, records: list[dict], error: str | None = None) -> str:
    """The page for one run as HTML text (ends with one newline); every value taken
    from the records (file names reach it through suite labels) is escaped. `error`:
    why the run stopped, when it did, shown first in red: a run can stop without a
    failed gate (no valid customers snapshot once the only one was refused, handled)."""
    overview = suite_overview(records)
    count = {state: sum(row["state"] == state for row in overview) for state in (PASSED, HANDLED, STOPPED)}
    return html_environment().get_template("data_quality.html.j2").render(
        run_id=run_id, overview=overview, count=count, suites_note=SUITES_NOTE, error=error,
        sections=[(_results(record), row) for record, row in zip(records, overview)],
        reasons=reason_lines(records))


def _results(record: dict) -> list[dict]:
    """The record's expectations, each with its own state, by the rule of suite_state."""
    return [dict(r, state=suite_state({"success": r.get("success"), "results": [r],
                                       "held_reasons": record.get("held_reasons", [])}))
            for r in record.get("results", [])]


def write_data_quality_html(report_dir: Path, run_id: str, records: list[dict], error: str | None = None) -> Path:
    """Writes report_dir/data_quality.html (creating the folder); returns its path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / PAGE
    path.write_text(data_quality_html(run_id, records, error), encoding="utf-8")
    return path
