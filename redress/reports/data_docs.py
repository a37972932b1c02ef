"""The data-quality docs of a run, in reports/<run_id>/, from what its suites recorded.

redress/checks/quality.py records every suite run of a run as validations/<label>.json: suite,
table, success and, per expectation, its column, reason and counts. Never a row value,
so nothing built from the records can show personal data.

- `data_quality.html`: one page, one section per suite run, rendered from these records
  by redress/reports/data_quality.py.

Great Expectations' own Data Docs site is not built (issue 14): its pages load jQuery,
Bootstrap and their fonts from eight public CDN hosts that the GX package does not ship,
so offline they were an empty list, and they linked to expectation pages never written.
`data_quality.html` shows everything they showed, offline.

Each suite run is in one of three states (vocabulary SUITE_STATES, `suite_state`):
passed; handled (defects found: every failing expectation's reason is one the suite
holds, its rows or file went to quarantine or review and the run went on); stopped (a
gate failed, or a failure no quarantine holds: the run stopped there).
"""

from __future__ import annotations

import json
from pathlib import Path

from redress.vocabulary import HANDLED, PASSED, STOPPED, SUITE_STATES, reason_text

PAGE = "data_quality.html"
SUITES_NOTE = ("A suite on incoming files or rows finds defects, and those rows or files go to "
               "quarantine or review while the run goes on (handled); a failed gate on what the "
               "run computed stops the run (stopped).")


# --------------------------------------------------------------------------- records


def _record_paths(report_dir: Path) -> list[Path]:
    folder = report_dir / "validations"
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))


def validation_records(report_dir: Path) -> list[dict]:
    """The suite records of a run, in the order they were written (the run's order)."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in _record_paths(report_dir)]


def readable_records(report_dir: Path) -> tuple[list[dict], int]:
    """validation_records, leaving out the records that cannot be read as JSON objects
    (edited or cut short by hand since the run): (the records, how many were left out).
    For a page written again long after its run, which says what is missing
    (tasks/report.py refresh_report_page) rather than not being written at all."""
    records, unreadable = [], 0
    for path in _record_paths(report_dir):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            unreadable += 1
    return records, unreadable


def suite_state(record: dict) -> str:
    """PASSED, HANDLED or STOPPED (vocabulary SUITE_STATES) for one suite record.
    `held_reasons` (redress/checks/quality.py check): null, every failure is held; a list,
    only those reasons; absent or empty, a gate. A failure no reason names (GX could not
    run an expectation) is never taken as handled."""
    if record.get("success"):
        return PASSED
    held = record.get("held_reasons", [])
    failed = [r for r in record.get("results", []) if not r.get("success")]
    if failed and all(not r.get("error") and (held is None or r.get("reason") in held) for r in failed):
        return HANDLED
    return STOPPED


def suite_overview(records: list[dict]) -> list[dict]:
    """One row per suite run: the counts the summary, the page and the artifacts show;
    `state` is suite_state's code, `state_text` its plain words."""
    rows = []
    for record in records:
        results = record.get("results", [])
        failed = [r for r in results if not r.get("success")]
        state = suite_state(record)
        rows.append({
            "suite_run": record.get("label") or record.get("suite"),
            "suite": record.get("suite"),
            "table": record.get("table"),
            "passed": bool(record.get("success")),
            "state": state,
            "state_text": SUITE_STATES[state],
            "failed_rows": sum(int(r.get("unexpected_count") or 0) for r in failed),
            "expectations": len(results),
            "failed_expectations": len(failed),
            "failed_reasons": ", ".join(sorted({str(r.get("reason")) for r in failed})),
        })
    return rows


def reason_lines(records: list[dict]) -> list[dict]:
    """Each reason code of a failed expectation in `records`, once, sorted, with its
    plain-language text (vocabulary reason_text): `reason`, `text`."""
    codes = {str(r.get("reason")) for record in records for r in record.get("results", []) if not r.get("success")}
    return [{"reason": code, "text": reason_text(code)} for code in sorted(codes)]
