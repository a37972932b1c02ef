"""Check a warehouse table against its expectation suite, and list the rows that fail.

Suites are JSON files in the top-level `expectations/` folder, one per table, named after
it (STYLE 8). Each expectation says in `meta.reason` why a row it flags is rejected.

Everything runs as SQL inside DuckDB, so a table of tens of millions of rows is never
pulled into Python: GX computes the counts, and for each failed column expectation it
hands back the SQL that selects the failing rows (`unexpected_index_query`), which
`failing_rows` runs in DuckDB. (GX's own list of failing rows stops at 200 rows.)

    validate_table(...)           -> SuiteResult: pass/fail and counts per expectation
    failing_rows(...)             -> (row_number, reason) frame: validates, then lists rows
    failing_rows_of(path, result) -> the same rows from a SuiteResult already in hand
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from redress.errors import RedressError
from redress.runtime.machine_errors import duckdb_error_line
from redress.shipped import shipped_dir
from redress.warehouse import connect

if TYPE_CHECKING:
    import great_expectations as gx

EXPECTATIONS_DIR = shipped_dir("expectations")
# The expectation whose SQL is the suite's own: the rows its query returns are the failures.
UNEXPECTED_ROWS = "unexpected_rows_expectation"


@dataclass(frozen=True)
class ExpectationResult:
    expectation: str  # e.g. "expect_column_values_to_be_unique"
    column: str | None  # None for table-level and multi-column expectations
    reason: str  # the expectation's meta["reason"] in the suite
    success: bool
    unexpected_count: int
    element_count: int
    unexpected_index_query: str | None = None  # GX's SQL for the failing rows, as given
    error: str | None = None  # set when GX could not evaluate the expectation at all


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    table: str
    success: bool
    results: tuple[ExpectationResult, ...]
    index_column: str | None = "row_number"  # the first column of every unexpected_index_query

    @property
    def failed(self) -> tuple[ExpectationResult, ...]:
        return tuple(result for result in self.results if not result.success)


def import_great_expectations() -> None:
    """Import Great Expectations and the DuckDB shim it validates through, as a run's
    first suite would: 3 to 4 s. `redress run` and `redress demo` call it while their
    temporary Prefect server starts (flows/cli.py), seconds they wait out anyway."""
    importlib.import_module("redress.checks.gx_duckdb")


def load_suite(suite: str) -> gx.ExpectationSuite:
    """The suite `expectations/<suite>.json`; its expectations must each give a reason."""
    # Great Expectations is imported when a suite is first run, not with this module:
    # it takes seconds, and an approval whose plan is unchanged runs none (flows/approval.py).
    import great_expectations as gx

    config = json.loads((EXPECTATIONS_DIR / f"{suite}.json").read_text(encoding="utf-8"))
    for expectation in config["expectations"]:
        if not expectation.get("meta", {}).get("reason"):
            raise ValueError(f"{suite}: {expectation['type']} has no meta.reason")
    return gx.ExpectationSuite(**config)


def validate_table(
    warehouse: Path,
    table: str,
    suite: str,
    *,
    parameters: dict | None = None,
    index_column: str | None = "row_number",
) -> SuiteResult:
    """Validate `table` against `expectations/<suite>.json`. `parameters` fill the suite's
    `{"$PARAMETER": name}` values. The warehouse file is open (read-only) only during
    the call; the caller must not hold its own connection to it meanwhile. RedressError
    (one line, redress/runtime/machine_errors.py) when a query of the suite failed for
    the machine (the warehouse locked by another process, the disk full)."""
    expectation_suite = load_suite(suite)
    result_format: dict = {
        # BASIC computes counts only; the index query is asked for on top of it so that
        # failing rows can be listed in SQL without GX fetching them.
        "result_format": "BASIC",
        "partial_unexpected_count": 0,
    }
    if index_column is not None:
        result_format["unexpected_index_column_names"] = [index_column]
        result_format["return_unexpected_index_query"] = True
    from redress.checks.gx_duckdb import table_batch

    with table_batch(warehouse, table) as batch:
        validation = batch.validate(
            expectation_suite, result_format=result_format, expectation_parameters=parameters
        )
    results = tuple(_expectation_result(evr) for evr in validation.results)
    for result in results:  # GX keeps what its queries raised as the expectation's error
        line = duckdb_error_line(result.error) if result.error else None
        if line is not None:  # the machine failed, not the table: say so, never "the suite failed"
            raise RedressError(line)
    return SuiteResult(
        suite=suite,
        table=table,
        success=all(result.success for result in results),
        results=results,
        index_column=index_column,
    )


def _expectation_result(evr) -> ExpectationResult:
    config = evr.expectation_config
    result = evr.result or {}
    # An unexpected_rows_expectation gives the rows its query returned as observed_value.
    counted = "observed_value" if config.type == UNEXPECTED_ROWS else "unexpected_count"
    return ExpectationResult(
        expectation=config.type,
        column=config.kwargs.get("column"),
        reason=config.meta["reason"],
        success=bool(evr.success),
        unexpected_count=int(result.get(counted) or 0),
        element_count=int(result.get("element_count") or 0),
        unexpected_index_query=result.get("unexpected_index_query"),
        error=_error_message(evr.exception_info),
    )


def _error_message(exception_info: dict | None) -> str | None:
    # GX gives either one {raised_exception, exception_message} or one per failed metric.
    info = exception_info or {}
    infos = [info] if "raised_exception" in info else list(info.values())
    messages = {i.get("exception_message") for i in infos if i.get("raised_exception")}
    return "; ".join(sorted(m for m in messages if m)) or None


# Positional parameters GX failed to inline (it misreads duckdb-engine's `$1` style).
_UNBOUND_PARAMETER = re.compile(r"\$\d+")


def _row_query(result: ExpectationResult) -> str | None:
    """GX's query for the failing rows, when it can be trusted on DuckDB: only for
    single-column expectations. For multi-column ones (compound uniqueness) GX 1.24
    builds an ambiguous cross join and leaves a `$1` unbound."""
    query = result.unexpected_index_query
    if result.column is None or not query or _UNBOUND_PARAMETER.search(query):
        return None
    return query.strip().rstrip(";")


def failing_rows(
    warehouse: Path,
    table: str,
    suite: str,
    *,
    parameters: dict | None = None,
    index_column: str = "row_number",
) -> pl.DataFrame:
    """`row_number` (Int64) and `reason` (String) of every row of `table` that fails an
    expectation of the suite, once per failed expectation; empty when the table passes.
    The warehouse is open only during the call, as for `validate_table`."""
    result = validate_table(
        warehouse, table, suite, parameters=parameters, index_column=index_column
    )
    return failing_rows_of(warehouse, result)


def failing_rows_of(warehouse: Path, result: SuiteResult) -> pl.DataFrame:
    """The failing rows of a validation already run (no second validation): GX's queries,
    run in DuckDB on the warehouse opened read-only for the call.

    A failed expectation that names no rows (a missing column, a key found twice by the
    suite's own SQL, an expectation GX could not evaluate) gives one row with a null row_number: the
    table as a whole fails for that reason."""
    if result.index_column is None:
        raise ValueError("failing rows need a result validated with an index_column")
    selects: list[str] = []
    reasons: list[str] = []
    for expectation in result.results:
        query = _row_query(expectation)
        if query is not None and expectation.unexpected_count > 0:
            # GX's query selects the index column first, then the checked column(s).
            selects.append(f"SELECT f.failing_index::BIGINT, ? FROM ({query}) AS f(failing_index)")
        elif not expectation.success:
            selects.append("SELECT NULL::BIGINT, ?")
        else:
            continue
        reasons.append(expectation.reason)
    if not selects:
        return pl.DataFrame(schema={"row_number": pl.Int64, "reason": pl.String})
    sql = (
        "SELECT * FROM (" + "\nUNION ALL\n".join(selects) + ") AS rows(row_number, reason)"
        " ORDER BY row_number NULLS FIRST, reason"
    )
    with connect(warehouse, read_only=True) as con:  # a run's instance, if it holds one
        rows = con.sql(sql, params=reasons).pl()
    return rows.cast({"row_number": pl.Int64, "reason": pl.String})
