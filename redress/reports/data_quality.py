"""The data-quality page of a run, reports/<run_id>/data_quality.html, rendered from
templates/data_quality.html.j2 (SPEC "The data folder", reports/<run_id>/).

One section per suite run: passed or failed and, per expectation, column, reason,
unexpected count / rows checked, from the suite records (redress/reports/data_docs.py),
which hold no row value. Self-contained (no script, no external asset, a CSP that
forbids both) and autoescaped: it opens the same offline, on a finance laptop or from
an e-mail attachment.
"""

from __future__ import annotations

from pathlib import Path

from redress.reports.data_docs import PAGE, SUITES_NOTE, suite_overview
from redress.reports.rendering import html_environment


def data_quality_html(run_id: str, records: list[dict]) -> str:
    """The page for one run as HTML text (ends with one newline); every value taken
    from the records (file names reach it through suite labels) is escaped."""
    overview = suite_overview(records)
    return html_environment().get_template("data_quality.html.j2").render(
        run_id=run_id, overview=overview, failed=sum(not row["passed"] for row in overview),
        suites_note=SUITES_NOTE, sections=list(zip(records, overview)))


def write_data_quality_html(report_dir: Path, run_id: str, records: list[dict]) -> Path:
    """Writes report_dir/data_quality.html (creating the folder); returns its path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / PAGE
    path.write_text(data_quality_html(run_id, records), encoding="utf-8")
    return path
