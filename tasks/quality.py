"""Running a suite inside a run: validate, keep the outcome for the run's reports, and
gate when asked.

Every suite run of a run is written to reports/<run_id>/validations/<suite>.json
(counts and reasons only, no row values), which the run summary and the data-quality
docs are built from.
"""

from __future__ import annotations

import dataclasses
import json

from redress.context import RunContext
from redress.errors import RedressError
from tasks.data_docs import gx_result_without_rows
from tasks.validate import SuiteResult, validate_table


def check(ctx: RunContext, table: str, suite: str, *, parameters: dict | None = None,
          index_column: str | None = "row_number", label: str | None = None) -> SuiteResult:
    """Validate `table` with `expectations/<suite>.json` and record the outcome.
    `label` names the record when one suite runs on several inputs (e.g. each file)."""
    result = validate_table(ctx.warehouse, table, suite, parameters=parameters, index_column=index_column)
    folder = ctx.report_dir / "validations"
    folder.mkdir(parents=True, exist_ok=True)
    record = dataclasses.asdict(result)
    gx_result = record.pop("gx_result", None)  # GX's own result, for its Data Docs (tasks/data_docs.py)
    for expectation in record["results"]:
        expectation.pop("unexpected_index_query", None)  # SQL text, not a reader's concern
    record["label"] = label or suite
    name = (label or suite).replace("/", "_")
    (folder / f"{name}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if gx_result is not None:
        (folder / "gx").mkdir(exist_ok=True)
        (folder / "gx" / f"{name}.json").write_text(
            json.dumps(gx_result_without_rows(gx_result)) + "\n", encoding="utf-8")
    return result


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
