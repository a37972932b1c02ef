"""Input checks: the SPEC's rules for scope rows, stated in SQL for Great Expectations,
apart from the Polars code that applies them (finance's returns: `returns_checks.py`).

Scope rows. `scope_rows_checked` flags every row by the FIRST rule of SPEC "Row rules,
then identity" it fails, in SPEC order (after `malformed_row`, a row the reader could not
split into the header's fields: redress/inbox/scope.py), written again from the SPEC in SQL
(redress/rules/classify.py and redress/rules/identity.py are not used). What it does not restate is the
normalisation of emails and phones: it reads the normalised keys the classification
computed (redress/rules/identity.py, SPEC "Every part of redress that normalises an identifier
uses the same normalised values"), because two engines' Unicode rules differ and a
difference there would be a disagreement on every such row, not a second opinion.

Each row's answer is then joined to the classification's on (file_sha256, row_number).
Rows where the two disagree go to `review` as `checks_disagree` (SPEC "Nothing is
lost"), with both answers, and the run goes on; only a disagreement broader than
`disagreement_limit` stops it, as a bug. The suite `expectations/scope_rows.json`
reports the rows per reason, disagreeing rows under `checks_disagree` and not under
their rule, so that `cross_check` can require its counts to equal the final
destinations exactly.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb

from redress import sql, vocabulary
from redress.errors import RedressError
from redress.checks.suites import SuiteResult
from redress.vocabulary import ACCEPTED, sql_literal

# SPEC order. Each is also the quarantine (or review) reason of the rows it flags.
SCOPE_ROW_RULES = tuple(vocabulary.SCOPE_ROW_REASONS)
CHECKS_DISAGREE = vocabulary.CHECKS_DISAGREE
# The codes the scope-row SQL names, bound as parameters $<code>: the SQL restates the
# rules on its own, but spells their outcomes from the one vocabulary.
SCOPE_SQL_CODES = {code: code for code in (
    vocabulary.MEMBER, vocabulary.NON_MEMBER, vocabulary.EXPOSURE, *vocabulary.CONFIDENCES, *SCOPE_ROW_RULES)}
# Every reason a scope row can be held with: the rules, and a disagreement of the checks.
HELD_REASONS = (*SCOPE_ROW_RULES, CHECKS_DISAGREE)

# A few disagreeing rows are data quirks (a character one reading takes differently):
# they go to review. More than max(100 rows, 0.1% of the scope rows) means one of the
# two readings is wrong for a whole kind of row: the run stops before anyone is paid.
DISAGREEMENT_MIN_ROWS = 100
DISAGREEMENT_MAX_SHARE = 0.001


def disagreement_limit(scope_rows: int) -> int:
    """Most disagreeing rows a run goes on with, for this many scope rows."""
    return max(DISAGREEMENT_MIN_ROWS, int(scope_rows * DISAGREEMENT_MAX_SHARE))


def create_scope_rows_checked(con: duckdb.DuckDBPyConnection, categories: list[str], scope: Path,
                              classified: Path) -> None:
    """The table `scope_rows_checked`, one row per scope row: its key, `first_failed_rule`
    (NULL when it passes them all), `checked_as` (that rule, else 'exposure' or
    'non_member'), `classified_as` (the classification's reason, else its destination),
    `checks_disagree`, and one boolean per rule, true only for that first rule and only
    on rows where the two agree. A table, not a view, and only keys and flags: each
    expectation of the suite scans it again, and re-running the identity joins per
    expectation took 17 GB and two minutes at 19 million rows.

    `scope`: the scope rows to check (all on the full path, the new files' on the
    incremental one: redress/warehouse/increments.py), as the Parquet the classification
    read; the rules below read the rows as given from it. `classified`: the Parquet of
    redress.rules.classify.classified_scope over exactly those rows, in the same order
    (file_sha256, row_number, email_norm, phone_e164, destination, reason, resolved_id);
    read for its normalised keys and its answers. The two are joined by position, so
    tens of millions of rows are not hashed on their keys; RedressError when any row's
    (file_sha256, row_number) differs between them, or their row counts do. `categories`
    are the policy's; rule 2 needs them to decide which rows reach rules 3 to 6. The
    suite reads rule 2 not from the `unknown_category` boolean but against the same list
    passed as a parameter: `category_checked` is the category of every agreeing row that
    reached rule 2 (NULL when it is missing, which `category_missing` flags). Both are
    bound parameters.

    The master's key counts are taken only for the keys the classified rows carry: the
    same counts for them, and a few thousand groups instead of one per customer. The
    master is joined by customer_id once for a row named by id, giving its created_at
    with it; a row matched by email or phone takes the created_at of the one customer
    its key counts."""
    paths = {"scope": sql.file_path(scope), "classified": sql.file_path(classified)}
    (apart,), = con.execute("""
        SELECT count(*) FROM read_parquet($scope, hive_partitioning = false) s
        POSITIONAL JOIN read_parquet($classified, hive_partitioning = false) k
        WHERE s.file_sha256 IS DISTINCT FROM k.file_sha256 OR s.row_number IS DISTINCT FROM k.row_number""",
                            paths).fetchall()
    if apart:
        raise RedressError(f"the classification's rows are out of step with the scope rows it read on {apart} "
                           "rows: a bug, nothing is checked or staged")
    agree = "NOT checks_disagree"
    # DuckDB estimates a POSITIONAL JOIN at about 0 rows, so it would build the join
    # with the master's 33.7M ids on the 64M-row side: out of its 8.9 GB at 33.7M. As
    # written (the master, the key counts built; the scope rows probing) it takes 4.4 GB.
    # The setting holds for the whole database instance (every connection of this
    # process to the warehouse), so it is put back at once; validate holds no other.
    before = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0]
    con.execute("SET disabled_optimizers = ?", [",".join(filter(None, [before, "build_side_probe_side"]))])
    try:
        _create_checked(con, agree, {**paths, "categories": list(categories), **SCOPE_SQL_CODES})
    finally:
        con.execute("SET disabled_optimizers = ?", [before])


def _key_counts(column: str, name: str) -> str:
    """SQL: per value of the master's `column` that some classified row carries, how
    many customers have it (`<name>_matches`), the smallest id (`<name>_customer`) and
    that one's created_at (`<name>_created`), keyed `<name>_key`. Both names are ours."""
    return f"""
            SELECT {column} AS {name}_key, count(*) AS {name}_matches, min(customer_id) AS {name}_customer,
                   arg_min(created_at, customer_id) AS {name}_created
            FROM customers
            WHERE {column} IN (SELECT DISTINCT {column} FROM read_parquet($classified, hive_partitioning = false)
                               WHERE {column} IS NOT NULL)
            GROUP BY ALL"""


def _create_checked(con: duckdb.DuckDBPyConnection, agree: str, params: dict) -> None:
    con.execute(f"""
        CREATE OR REPLACE TABLE scope_rows_checked AS
        WITH files AS (
            -- A number per scope file: each row carries it through the joins below, not
            -- its 64-character sha256, which is put back at the end; nor the raw email and
            -- phone, of which only their absence is read. DuckDB's join with the master
            -- spills these rows: at 150 M customers 35 GB, to within 3 GB of a full disk;
            -- about a quarter less so (1 M under a 60 MB memory limit: docs/scale-log.md).
            SELECT file_sha256, row_number() OVER (ORDER BY file_sha256) AS file_number
            FROM (SELECT DISTINCT file_sha256 FROM read_parquet($scope, hive_partitioning = false))
        ),
        keyed AS (
            -- scope_rows is trimmed with blanks as NULL at ingest; the keys are the
            -- classification's (see the module docstring), the rules below are not.
            SELECT s.* EXCLUDE (file_sha256, email, phone), f.file_number,
                   s.email IS NULL AND s.phone IS NULL AS no_contact, s.malformed IS NOT NULL AS is_malformed,
                   k.email_norm AS email_key, k.phone_e164 AS phone_key,
                   coalesce(k.reason, k.destination) AS classified_as, k.resolved_id AS classified_customer
            FROM (SELECT file_sha256, row_number, customer_id, email, phone, data_category, accessed_at, confidence,
                         malformed
                  FROM read_parquet($scope, hive_partitioning = false)) s
            POSITIONAL JOIN (SELECT email_norm, phone_e164, reason, destination, resolved_id
                             FROM read_parquet($classified, hive_partitioning = false)) k
            JOIN files f ON f.file_sha256 = s.file_sha256  -- NOT NULL in scope_rows
        ),
        by_email AS ({_key_counts("email_norm", "email")}),
        by_phone AS ({_key_counts("phone_e164", "phone")}),
        identified AS (
            -- customer_id first (given but unknown: quarantined, no fallback), then
            -- email, then phone; one match resolves, several go to review, none passes on.
            SELECT k.*,
                CASE
                    WHEN k.customer_id IS NOT NULL THEN
                        CASE WHEN m.customer_id IS NOT NULL THEN $member ELSE $unknown_customer_id END
                    WHEN e.email_matches = 1 THEN $member
                    WHEN e.email_matches > 1 THEN $ambiguous_identifier
                    WHEN p.phone_matches = 1 THEN $member
                    WHEN p.phone_matches > 1 THEN $ambiguous_identifier
                    WHEN k.email_key IS NOT NULL OR k.phone_key IS NOT NULL THEN $non_member
                    ELSE $invalid_identifier
                END AS identity,
                CASE
                    WHEN k.customer_id IS NOT NULL THEN m.customer_id
                    WHEN e.email_matches = 1 THEN e.email_customer
                    WHEN e.email_matches IS NULL AND p.phone_matches = 1 THEN p.phone_customer
                END AS matched_customer_id,
                CASE
                    WHEN k.customer_id IS NOT NULL THEN m.created_at
                    WHEN e.email_matches = 1 THEN e.email_created
                    WHEN e.email_matches IS NULL AND p.phone_matches = 1 THEN p.phone_created
                END AS matched_created_at
            FROM keyed k
            LEFT JOIN customers m ON m.customer_id = k.customer_id
            LEFT JOIN by_email e ON e.email_key = k.email_key
            LEFT JOIN by_phone p ON p.phone_key = k.phone_key
        ),
        ruled AS (
            SELECT i.*,
                CASE
                    WHEN i.is_malformed THEN $malformed_row
                    WHEN i.customer_id IS NULL AND i.no_contact THEN $missing_identifier
                    WHEN i.data_category IS NULL
                         OR NOT list_contains($categories::VARCHAR[], i.data_category) THEN $unknown_category
                    WHEN i.accessed_at IS NULL THEN $invalid_timestamp
                    WHEN coalesce(i.confidence, $confirmed) NOT IN ($confirmed, $suspected)
                         THEN $invalid_confidence
                    WHEN i.identity IN ($unknown_customer_id, $invalid_identifier, $ambiguous_identifier)
                         THEN i.identity
                    WHEN i.identity = $member AND i.accessed_at < i.matched_created_at
                         THEN $exposure_before_account_created
                END AS first_failed_rule
            FROM identified i
        ),
        compared AS (
            SELECT *,
                coalesce(first_failed_rule, CASE WHEN identity = $member THEN $exposure ELSE $non_member END)
                    AS checked_as
            FROM ruled
        ),
        judged AS (
            -- Same outcome, and for an exposure the same customer.
            SELECT *,
                classified_as IS DISTINCT FROM checked_as
                OR (checked_as = $exposure AND classified_customer IS DISTINCT FROM matched_customer_id)
                    AS checks_disagree
            FROM compared
        )
        SELECT f.file_sha256, row_number, first_failed_rule, checked_as, classified_as, checks_disagree,
               CASE WHEN {agree} AND (first_failed_rule IS NULL
                                      OR first_failed_rule NOT IN ($malformed_row, $missing_identifier))
                    THEN data_category END
                   AS category_checked,
               {agree} AND first_failed_rule IS NOT DISTINCT FROM $unknown_category AND data_category IS NULL
                   AS category_missing,
               {", ".join(f"{agree} AND first_failed_rule IS NOT DISTINCT FROM ${r} AS {r}" for r in SCOPE_ROW_RULES)}
        FROM judged JOIN files f USING (file_number)
    """, params)


def drop_scope_rows_checked(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE IF EXISTS scope_rows_checked")


def require_narrow_disagreement(con: duckdb.DuckDBPyConnection, earlier: tuple[int, int] = (0, 0)) -> int:
    """Rows of `scope_rows_checked` on which the checks and the classification disagree;
    raises RedressError (one line, reason codes and counts only) when they, with the
    `earlier` (disagreeing, checked) rows already held from files classified before (an
    incremental run), are more than `disagreement_limit` of all scope rows."""
    (disagreeing, total), = con.execute(
        "SELECT count(*) FILTER (checks_disagree), count(*) FROM scope_rows_checked").fetchall()
    disagreeing, total = disagreeing + earlier[0], total + earlier[1]
    limit = disagreement_limit(total)
    if disagreeing > limit:
        (classified_as, checked_as, n), = con.execute("""
            SELECT classified_as, checked_as, count(*) AS n FROM scope_rows_checked WHERE checks_disagree
            GROUP BY ALL ORDER BY n DESC, classified_as NULLS FIRST, checked_as LIMIT 1""").fetchall()
        raise RedressError(
            f"input checks disagree with the classification on {disagreeing} of {total} scope rows "
            f"(more than {limit}: a bug, not a data quirk); most often classified {classified_as} "
            f"but checked {checked_as} ({n} rows; see the table scope_rows_checked)"
        )
    return int(disagreeing)


def disagreeing_rows(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict]:
    """The first `limit` review rows held as checks_disagree, by file name and row
    number, with both answers (reason codes only, no personal data)."""
    rows = con.execute(f"""
        SELECT f.file_name, r.row_number, r.classified_as, r.checked_as
        FROM review r
        JOIN (SELECT file_sha256, min(file_name) AS file_name FROM ingested_files
              WHERE kind = 'scope' AND status = {sql_literal(ACCEPTED)} GROUP BY ALL) f USING (file_sha256)
        WHERE r.reason = ? ORDER BY f.file_name, r.row_number LIMIT ?""", [CHECKS_DISAGREE, limit]).fetchall()
    return [dict(zip(("file_name", "row_number", "classified_as", "checked_as"), r)) for r in rows]


def classification_counts(con: duckdb.DuckDBPyConnection, quarantine: str = "quarantine",
                          review: str = "review") -> dict[str, int]:
    """Scope rows the classification put in quarantine or review, per reason. The table
    names are ours (the staged rows of a run before they are committed), never outside text."""
    return dict(con.execute(f"""
        SELECT reason, count(*) FROM (
            SELECT reason FROM {quarantine} WHERE kind = 'scope' AND row_number IS NOT NULL
            UNION ALL SELECT reason FROM {review})
        GROUP BY reason ORDER BY reason
    """).fetchall())


def cross_check(result: SuiteResult, classified: dict[str, int]) -> dict[str, int]:
    """Each reason's count from the suite (summed over its expectations) against the rows
    held in quarantine or review with it, checks_disagree included; returns the agreed
    counts per reason. Row-level disagreements are already in review by then, so a
    difference here means the rows were not placed as judged: raises RedressError on
    the first difference, on a structural failure of the suite (a missing column, a row
    without its file or number, a row twice), or on an expectation GX could not run."""
    for expectation in result.results:
        if expectation.error:
            raise RedressError(
                f"suite {result.suite}: {expectation.expectation} could not be evaluated "
                f"[{expectation.reason}]: {expectation.error}"
            )
        if expectation.reason not in HELD_REASONS and not expectation.success:
            on = f" on {expectation.column}" if expectation.column else ""
            raise RedressError(
                f"suite {result.suite} failed: {expectation.expectation}{on}, "
                f"{expectation.unexpected_count} rows [{expectation.reason}]"
            )
    counted: Counter[str] = Counter({reason: 0 for reason in HELD_REASONS})
    for expectation in result.results:
        if expectation.reason in counted:
            counted[expectation.reason] += expectation.unexpected_count
    unknown = sorted(set(classified) - set(HELD_REASONS))
    if unknown:
        raise RedressError(f"the classification used reason(s) the SPEC does not have: {', '.join(unknown)}")
    for reason in HELD_REASONS:
        if counted[reason] != classified.get(reason, 0):
            raise RedressError(
                f"input checks disagree on {reason}: suite {result.suite} counts {counted[reason]} rows, "
                f"the classification {classified.get(reason, 0)} (see the table scope_rows_checked)"
            )
    return dict(counted)
