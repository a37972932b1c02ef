"""Running a suite inside a run: validate, keep the outcome for the run's reports, and
gate when asked.

Every suite run of a run is written to reports/<run_id>/validations/<suite>.json
(counts and reasons only, no row values), which the run summary and the data-quality
docs are built from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Collection

from redress.context import RunContext
from redress.errors import RedressError
from redress.checks.suites import SuiteResult, validate_table


# What a failing expectation of a suite means, by its reason (`check(held=...)`): a gate
# holds none (any failure stops the run); a suite on incoming rows holds the reasons whose
# rows go to quarantine or review while the run goes on; EVERY_REASON: the file or its
# rows are quarantined whatever failed. Recorded, so that the data-quality page can tell
# "defects found and handled" from "a gate stopped the run".
GATE: tuple[str, ...] = ()
EVERY_REASON = None


def check(ctx: RunContext, table: str, suite: str, *, parameters: dict | None = None,
          index_column: str | None = "row_number", label: str | None = None,
          staged_for: str | None = None, held: Collection[str] | None = GATE) -> SuiteResult:
    """Validate `table` with `expectations/<suite>.json` and record the outcome.
    `label` names the record when one suite runs on several inputs (e.g. each file).
    `staged_for`: `table` holds rows staged for this warehouse table, checked before they
    are committed to it (tasks/validate.py); the record names that table, the one
    readers of the report know. `held`: the reasons whose failing rows or files are
    quarantined or held in review and the run goes on (GATE: none; EVERY_REASON: all),
    recorded as `held_reasons` (null for every reason)."""
    result = validate_table(ctx.warehouse, table, suite, parameters=parameters, index_column=index_column)
    if staged_for is not None:
        result = dataclasses.replace(result, table=staged_for)
    folder = ctx.report_dir / "validations"
    folder.mkdir(parents=True, exist_ok=True)
    record = dataclasses.asdict(result)
    for expectation in record["results"]:
        expectation.pop("unexpected_index_query", None)  # SQL text, not a reader's concern
    record["label"] = label or suite
    record["held_reasons"] = None if held is None else sorted(held)
    name = record_name(label or suite)
    (folder / f"{name}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return result


SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}", re.ASCII)


def record_name(label: str) -> str:
    """The file name (without .json) of a suite record: the label itself when it is a
    short, plain name, else a sanitised stem of at most 60 characters and 12 hex
    characters of the label's sha256. A label holds inbox file names, which may be long
    (236 characters is legal), hold any character, or look like a path; a file name
    on disk must stay under every file system's limit and inside its folder."""
    if SAFE_NAME.fullmatch(label) and not label.endswith("."):
        return label
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", label, flags=re.ASCII).strip("_")[:60]
    return f"{stem}-{hashlib.sha256(label.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def require(result: SuiteResult) -> SuiteResult:
    """Stop the run when a gate suite fails, naming the suite and the expectation."""
    if not result.success:
        failed = result.failed[0]
        more = f" (and {len(result.failed) - 1} more)" if len(result.failed) > 1 else ""
        on = f" on {failed.column}" if failed.column else ""
        raise RedressError(
            f"suite {result.suite} failed: {failed.expectation}{on}, {failed.unexpected_count} rows "
            f"[{failed.reason}]{more}"
        )
    return result
