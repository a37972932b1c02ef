"""The data-quality docs of a run, in reports/<run_id>/, from what its suites recorded.

redress/checks/quality.py records every suite run of a run as validations/<label>.json: suite,
table, success and, per expectation, its column, reason and counts. Never a row value,
so nothing built from the records can show personal data.

- `data_quality.html`: one page, one section per suite run, rendered from these records
  by redress/reports/data_quality.py.
- `data_docs/`: Great Expectations' own Data Docs site, built when the run also kept
  GX's result JSON (validations/gx/<label>.json) by an ephemeral GX context whose only
  site is this folder. Its pages load Bootstrap and jQuery from public CDNs, so they
  look right only online. Row-level keys are stripped from GX's results first
  (`gx_result_without_rows`), whatever result format a suite was run with.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from redress import escape

PAGE = "data_quality.html"
GX_SITE = "data_docs"
SUITES_NOTE = ("A suite on incoming files or rows fails when they have defects, and those go to "
               "quarantine; a failed gate on what the run computed stops the run.")


# --------------------------------------------------------------------------- records


def validation_records(report_dir: Path) -> list[dict]:
    """The suite records of a run, in the order they were written (the run's order)."""
    folder = report_dir / "validations"
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def suite_overview(records: list[dict]) -> list[dict]:
    """One row per suite run: the counts the summary, the page and the artifacts show."""
    rows = []
    for record in records:
        results = record.get("results", [])
        failed = [r for r in results if not r.get("success")]
        rows.append({
            "suite_run": record.get("label") or record.get("suite"),
            "suite": record.get("suite"),
            "table": record.get("table"),
            "passed": bool(record.get("success")),
            "expectations": len(results),
            "failed_expectations": len(failed),
            "failed_reasons": ", ".join(sorted({str(r.get("reason")) for r in failed})),
        })
    return rows


# --------------------------------------------------------------------------- GX Data Docs

# What GX may put in an expectation's result besides counts: row values, row indexes,
# the SQL that selects the rows, and observed values (a column's max is a row value).
_ROW_LEVEL = ("partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list",
              "unexpected_list", "unexpected_index_list", "unexpected_index_query",
              "unexpected_rows", "details")
_COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")


def gx_result_without_rows(result: dict) -> dict:
    """GX's ExpectationSuiteValidationResult JSON with every row-level key removed; an
    observed value is kept only for table-level expectations (row count, column names)."""
    clean = json.loads(json.dumps(result))
    for evr in clean.get("results", []):
        outcome = evr.get("result") or {}
        for key in _ROW_LEVEL:
            outcome.pop(key, None)
        kwargs = (evr.get("expectation_config") or {}).get("kwargs", {})
        if any(k in kwargs for k in _COLUMN_KWARGS):
            outcome.pop("observed_value", None)
        evr["exception_info"] = {  # tracebacks can quote SQL and its literals
            "raised_exception": bool((evr.get("exception_info") or {}).get("raised_exception")),
            "exception_traceback": None, "exception_message": None,
        }
    return clean


def build_gx_data_docs(report_dir: Path, run_id: str) -> Path | None:
    """GX's Data Docs of the run's kept GX results, in report_dir/data_docs; None when
    the run kept none. Uses an ephemeral context: nothing is written outside the site."""
    kept = sorted((report_dir / "validations" / "gx").glob("*.json"))
    if not kept:
        return None
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from redress.checks.gx_duckdb import quiet_context

    site = report_dir / GX_SITE
    context = quiet_context()
    context.add_data_docs_site(GX_SITE, {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    schema = ExpectationSuiteValidationResultSchema()
    for path in kept:
        raw = gx_result_without_rows(json.loads(path.read_text(encoding="utf-8")))
        ran_at = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
        run = RunIdentifier(run_name=run_id, run_time=ran_at)
        raw.setdefault("meta", {})["run_id"] = run.to_json_dict()
        # The stem is the record's sanitised name (redress/checks/quality.py record_name), never a
        # raw file name; escaped anyway, as GX puts it into its pages as it is given.
        key = ValidationResultIdentifier(ExpectationSuiteIdentifier(raw["suite_name"]), run, escape.html(path.stem))
        context.validation_results_store.set(key, schema.load(raw))
    context.build_data_docs(site_names=[GX_SITE])
    return site / "index.html"
