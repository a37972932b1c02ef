"""A customers snapshot: read (`customers_frame`), streamed into customers_staging with
the booleans its suite checks (`load_customers_staging`), and, once checked, promoted to
the current master (`promote_customers`). SPEC "Input: customers snapshot".

The identity keys (email_norm, phone_e164) are not computed here: the ingest stage adds
them with the rule (`redress.rules.identity.customer_keys`) before the load.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from redress import sql
from redress.inbox.files import CUSTOMER_COLUMNS, TIMESTAMPS, FileRejected
from redress.inbox.streaming import load_frame, loading, source_frame, ts
from redress.inbox.text_frame import read_text_frame
from redress.warehouse import customers as customers_table
from redress.vocabulary import EMPTY_FILE, VOUCHER, sql_literal

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


def customers_frame(path: Path, scratch: Path | None = None) -> pl.LazyFrame:
    """A customers snapshot as read and typed: the text columns, the typed timestamps
    (`read_text_frame`), then bank_account_digits (the account without spaces and
    dashes) and bank_valid (a 3-digit bank code and a 10 to 16 digit account). Raises
    FileRejected, also for a Parquet file typing phone, bank_code or bank_account as a
    number (bank details are valid only as written, and a number has lost its leading
    zeros). `load_customers_staging` also needs the identity keys, which the
    stage adds with the rule (`redress.rules.identity.customer_keys`). `scratch`: a folder
    for the work file through which a CSV with a quote inside a value is read
    (csv_reader.csv_frame)."""
    raw = read_text_frame(path, CUSTOMER_COLUMNS, CUSTOMER_COLUMNS, TIMESTAMPS["customers"], scratch=scratch,
                          digits_as_written=("phone", "bank_code", "bank_account"))
    return raw.with_columns(*bank_details())


def bank_details() -> tuple[pl.Expr, pl.Expr]:
    """The master's bank rule (SPEC "Input: customers snapshot"), over text columns
    bank_code and bank_account: `bank_account_digits` (the account without spaces and
    dashes) and `bank_valid` (a bank code of exactly 3 digits and an account of 10 to 16
    digits, as written: nothing padded). One definition, also for the bank details a
    claim gives (redress/inbox/claims.py)."""
    code_valid, account_valid = bank_fields_valid()
    account = pl.col("bank_account").str.replace_all(r"[\s-]", "")
    return account.alias("bank_account_digits"), (code_valid & account_valid).alias("bank_valid")


BANK_CODE_DIGITS = 3
ACCOUNT_DIGITS = (10, 16)


def bank_fields_valid() -> tuple[pl.Expr, pl.Expr]:
    """(bank code valid, account valid) of the master's bank rule, each field apart, over
    text columns bank_code and bank_account (spaces and dashes in the account ignored):
    BANK_CODE_DIGITS digits, an account of ACCOUNT_DIGITS digits; a null is not valid.
    `bank_valid` is both; explain says which field fails (redress/customer_service)."""
    account = pl.col("bank_account").str.replace_all(r"[\s-]", "")
    low, high = ACCOUNT_DIGITS
    return (pl.col("bank_code").str.contains(f"^[0-9]{{{BANK_CODE_DIGITS}}}$").fill_null(False),
            account.str.contains(f"^[0-9]{{{low},{high}}}$").fill_null(False))


# customers_staging holds the columns of customers in their order, under the staging
# names of MASTER_COLUMNS, among the snapshot's own text columns and the suite's
# booleans, so that promoting it renames and drops columns instead of copying rows.
STAGING_COLUMNS = (
    "row_number", "customer_id", "name", "email", "phone", "email_norm", "phone_e164", "status",
    "created_at", "closed_at", "created_at_ts", "closed_at_ts", "is_test", "is_test_bool",
    "payout_method", "payout_method_or_default", "bank_code", "bank_account", "bank_account_digits", "bank_valid",
)
# customers' column <- its staging column (redress/warehouse/__init__.py, in that order; file_sha256 is added)
# The times as written are kept (renamed before the typed ones take their names), so a
# new policy timezone can read them again (redress/inbox/retime.py).
MASTER_COLUMNS = {
    "customer_id": "customer_id", "email": "email", "phone": "phone", "email_norm": "email_norm",
    "phone_e164": "phone_e164", "status": "status", "created_at_raw": "created_at", "closed_at_raw": "closed_at",
    "created_at": "created_at_ts", "closed_at": "closed_at_ts",
    "is_test": "is_test_bool", "payout_method": "payout_method_or_default", "bank_code": "bank_code",
    "bank_account": "bank_account_digits", "bank_valid": "bank_valid",
}


def load_customers_staging(con: duckdb.DuckDBPyConnection, source: Path | pl.LazyFrame, timezone: str,
                           scratch: Path) -> int:
    """customers_staging: the snapshot as given (`customers_frame` with the identity
    keys of `redress.rules.identity.customer_keys`, read once, through a work file in
    `scratch` (streaming.load_frame); or a Parquet of it at a Path) plus the typed
    columns and the booleans its suite (expectations/customers_staging.json) checks,
    each true when the row breaks that rule. Returns its row count; raises FileRejected (unreadable_file, empty_file) and
    then leaves no customers_staging. SPEC "Input: customers snapshot".

    Besides the SPEC's rules, a customer_id or email an output cannot carry
    (redress/rules/printable.py: a control, format, line-separator or non-character, or a
    customer_id over 140 characters, pain.001's Cdtr/Nm) rejects the snapshot here,
    rather than failing every run later at the bank file."""
    from redress.rules.printable import MAX_CUSTOMER_ID_CHARS, UNPRINTABLE

    frame = source_frame(source)
    schema = frame.collect_schema()
    true_words = ", ".join(sql.literal(w) for w in TRUE_WORDS)
    words = ", ".join(sql.literal(w) for w in TRUE_WORDS + FALSE_WORDS)
    con.execute("SET TimeZone = ?", [timezone])
    try:
        with loading(con):
            rows = load_frame(con, frame, f"""
                CREATE OR REPLACE TABLE customers_staging AS
                SELECT *,
                       created_at_ts IS NULL AS created_at_invalid,
                       closed_at IS NOT NULL AND closed_at_ts IS NULL AS closed_at_invalid,
                       status = 'closed' AND closed_at IS NULL AS closed_at_missing,
                       coalesce(status <> 'closed', TRUE) AND closed_at IS NOT NULL AS closed_at_unexpected,
                       is_test IS NOT NULL AND lower(is_test) NOT IN ({words}) AS is_test_invalid,
                       -- length() counts code points, as XML Schema's maxLength does
                       coalesce(regexp_matches(customer_id, {sql.literal(UNPRINTABLE)}), FALSE) AS customer_id_unprintable,
                       coalesce(length(customer_id) > {MAX_CUSTOMER_ID_CHARS}, FALSE) AS customer_id_too_long,
                       coalesce(regexp_matches(email, {sql.literal(UNPRINTABLE)}), FALSE) AS email_unprintable
                FROM (
                    SELECT row_number, customer_id, name, email, phone, email_norm, phone_e164, status,
                           created_at, closed_at,
                           {ts('created_at', schema)} AS created_at_ts, {ts('closed_at', schema)} AS closed_at_ts,
                           is_test, coalesce(lower(is_test) IN ({true_words}), FALSE) AS is_test_bool,
                           payout_method, coalesce(payout_method, {sql_literal(VOUCHER)}) AS payout_method_or_default,
                           bank_code, bank_account, bank_account_digits, bank_valid
                    FROM src
                )
            """, [], scratch)
    finally:
        con.execute("SET TimeZone = 'UTC'")
    if rows == 0:
        con.execute("DROP TABLE customers_staging")
        raise FileRejected(EMPTY_FILE, "the file has no data rows")
    return rows


def promote_customers(con: duckdb.DuckDBPyConnection, sha: str) -> int:
    """The validated customers_staging becomes the current customer master (run inside
    the caller's transaction): its columns other than customers' are dropped, the others
    renamed (MASTER_COLUMNS), file_sha256 added, and the table renamed, so no row is
    copied or sorted (every reader of customers orders or joins explicitly). The
    identity keys stored are the ones computed once when the snapshot was read
    (`customer_keys`, applied by the ingest stage). Replacing the table also drops
    columns an earlier version kept (the customer's name). Returns the master's row count."""
    kept = set(MASTER_COLUMNS.values())
    for column in STAGING_COLUMNS + tuple(_staging_checks(con)):
        if column not in kept:
            con.execute(f"ALTER TABLE customers_staging DROP COLUMN {sql.identifier(column)}")
    for column, staged in MASTER_COLUMNS.items():
        if column != staged:
            con.execute(f"ALTER TABLE customers_staging RENAME COLUMN {sql.identifier(staged)} "
                        f"TO {sql.identifier(column)}")
    con.execute(f"ALTER TABLE customers_staging ADD COLUMN file_sha256 VARCHAR DEFAULT {sql.literal(sha)}")
    con.execute("ALTER TABLE customers_staging ALTER COLUMN file_sha256 DROP DEFAULT")  # filled; no later default
    customers_table.replace_with_staging(con, sha)
    return con.execute("SELECT count(*) FROM customers").fetchall()[0][0]


def _staging_checks(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The suite's boolean columns of customers_staging: those after STAGING_COLUMNS."""
    names = [n for (n,) in con.execute("""
        SELECT column_name FROM information_schema.columns
        WHERE table_name = 'customers_staging' ORDER BY ordinal_position""").fetchall()]
    return [n for n in names if n not in STAGING_COLUMNS]
