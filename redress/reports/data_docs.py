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
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

from redress.vocabulary import HANDLED, PASSED, STOPPED, SUITE_STATES, reason_text

PAGE = "data_quality.html"
SUITES_NOTE = ("A suite on incoming files or rows finds defects, and those rows or files go to "
               "quarantine or review while the run goes on (handled); a failed gate on what the "
               "run computed stops the run (stopped).")


# --------------------------------------------------------------------------- records


def validation_records(report_dir: Path) -> list[dict]:
    """The suite records of a run, in the order they were written (the run's order)."""
    folder = report_dir / "validations"
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


# A suite record holds counts per expectation, never rows: kilobytes. A file far larger
# in a record's place was put there by hand, and is not read into memory.
RECORD_MAX_BYTES = 16 * 1024 * 1024


def readable_records(report_dir: Path) -> tuple[list[dict], int]:
    """validation_records, for records that may have been removed or spoilt by hand
    since the run: (the records, in the order written, one per label (the last written),
    each with its `label` as text; and how many files were left out). A record counts
    when it is what redress/checks/quality.py writes: a JSON object with a text `label`
    (or, from an earlier version, `suite`), a boolean `success` and a list of `results`
    objects that suite_overview can count. Any other file, one that cannot be read (a
    folder, a named pipe, a device or a broken link in its place, one over
    RECORD_MAX_BYTES) or parsed, and a second record of a label, is left out and counted.
    Never raises: for a page written again long after its run (tasks/report.py
    refresh_report_page), which says what is missing rather than not being written, and
    for the run's end (redress/warehouse/runs.py)."""
    folder = report_dir / "validations"
    try:
        paths = list(folder.glob("*.json")) if folder.is_dir() else []
    except OSError:
        return [], 0
    found = []
    for path in paths:
        try:
            there = path.stat()
            # only a regular file of a record's size is read: opening a named pipe would
            # wait for ever, and a device or a huge file fill the memory
            record = (json.loads(path.read_text(encoding="utf-8"))
                      if S_ISREG(there.st_mode) and there.st_size <= RECORD_MAX_BYTES else None)
        except (OSError, ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            record = None
        if _is_record(record):
            found.append((there.st_mtime_ns, path.name, {**record, "label": record.get("label") or record["suite"]}))
    in_order = [record for _, _, record in sorted(found, key=lambda f: f[:2])]
    last = {record["label"]: record for record in in_order}  # of one label, the last written
    kept = [record for record in in_order if last[record["label"]] is record]
    return kept, len(paths) - len(kept)


@dataclass(frozen=True)
class RecordGaps:
    """What a page written again says of the suite records its run wrote that are no
    longer in its validations/ (records_since). `missing`: how many (0: none; None: all,
    how many unknown); `recorded`: how many the run wrote (None: unknown, a row of an
    earlier version or of a run killed before its end); `others`: records found there
    that the run did not write, left out."""
    missing: int | None = 0
    recorded: int | None = None
    others: int = 0

    def all_gone(self, listed: int) -> bool:
        """True when none of the run's records is left to list (`listed` of them are)."""
        return self.missing is None or bool(self.missing and not listed)


def records_since(report_dir: Path, recorded) -> tuple[list[dict], RecordGaps]:
    """The suite records of a run still in its validations/ (readable_records), against
    `recorded`, the labels its row holds (`runs.counts` `suite_records`, written by
    finish_run; anything but a list of text is taken as unknown): those of its labels, in
    the order written, and what is missing. With the labels unknown, every record found
    is listed, and none found means all were removed since (a run with a plan ran its
    suites: validate writes their records before any plan is saved), else the files that
    cannot be read are the count missing. Never raises."""
    records, unreadable = readable_records(report_dir)
    if not (isinstance(recorded, list) and recorded and all(isinstance(label, str) for label in recorded)):
        return records, RecordGaps(missing=None if not records else unreadable)
    wrote = set(recorded)
    kept = [r for r in records if r["label"] in wrote]
    return kept, RecordGaps(missing=len(wrote - {r["label"] for r in kept}), recorded=len(wrote),
                            others=len(records) - len(kept))


def _is_record(record) -> bool:
    """True when `record` has a suite record's shape and suite_overview can count it."""
    if not isinstance(record, dict):
        return False
    label, results = record.get("label") or record.get("suite"), record.get("results")
    if not (isinstance(label, str) and isinstance(record.get("success"), bool) and isinstance(results, list)
            and all(isinstance(r, dict) for r in results)):
        return False
    try:
        suite_overview([record])
    except (TypeError, ValueError, AttributeError, OverflowError):  # a field edited to what no run writes
        return False
    return True


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


# The kind of quarantine row each suite's failures make, by the start of its label: a
# code two kinds share reads as its kind's (vocabulary reason_text; found by the fix
# review: the data-quality page said "accessed_at" of a customers snapshot's created_at).
_SUITE_KIND = {"customers_staging": "customers", "scope_rows": "scope", "scope_exposures": "scope",
               "returns_staging": "returns", "claims_staging": "claims"}


def _kind(record: dict) -> str | None:
    label = str(record.get("label") or record.get("suite") or "")
    return next((kind for suite, kind in _SUITE_KIND.items() if label == suite or label.startswith(f"{suite}-")),
                None)


def reason_lines(records: list[dict]) -> list[dict]:
    """Each reason code of a failed expectation in `records` with its plain-language text
    (vocabulary reason_text, as the suite's kind of row reads it), once per code and
    text, sorted: `reason`, `text`."""
    lines = {(str(r.get("reason")), reason_text(str(r.get("reason")), _kind(record)))
             for record in records for r in record.get("results", []) if not r.get("success")}
    return [{"reason": code, "text": text} for code, text in sorted(lines)]
