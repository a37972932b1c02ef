"""Ingest: inbox files into the warehouse, by content (SPEC "The data folder", "File rules").

A file is known by the SHA-256 of its content: the same content again, under any name,
is recorded as duplicate_file and skipped. Inbox files are only ever read. Each file is
read by Polars with every column as text (nothing is guessed), given a 1-based
row_number, trimmed (blank = NULL), staged as Parquet and loaded into DuckDB, which
parses the timestamps: an offset is honoured, a timestamp without one is in the
policy's timezone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from tasks.identity import email_norm, phone_e164

KINDS = ("customers", "scope", "returns")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}

CUSTOMER_COLUMNS = (
    "customer_id", "name", "email", "phone", "status", "created_at", "closed_at",
    "is_test", "payout_method", "bank_code", "bank_account",
)
SCOPE_COLUMNS = ("customer_id", "email", "phone", "data_category", "accessed_at", "confidence", "source")
SCOPE_REQUIRED = ("data_category", "accessed_at")
RETURNS_COLUMNS = ("payment_id", "status", "reason")

# ISO 8601 as the SPEC allows it: a date, optional time, optional offset. DuckDB alone
# would also take forms like 2025/07/01, which forensics files must not rely on.
ISO_8601 = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s?(Z|[+-]\d{2}(:?\d{2})?)?$"
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


@dataclass(frozen=True)
class InboxFile:
    kind: str
    path: Path
    sha256: str
    size_bytes: int

    @property
    def name(self) -> str:
        return self.path.name


class FileRejected(Exception):
    """A whole file goes to quarantine with this SPEC reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inbox_files(data_dir: Path) -> list[InboxFile]:
    """Every regular, non-hidden file of the inbox, by kind then name."""
    found = []
    for kind in KINDS:
        folder = data_dir / "inbox" / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                found.append(InboxFile(kind, path, sha256_of(path), path.stat().st_size))
    return found


def unreadable(exc: Exception, detail: str) -> FileRejected:
    """unreadable_file; a text file in another encoding than UTF-8 (a CP949/EUC-KR or
    Latin-1 export) says so, since that is what whoever sent it must change. Polars
    reports it as an invalid UTF-8 sequence, often only once the rows are read."""
    if "utf-8" in str(exc).lower():
        return FileRejected("unreadable_file", "the file is not UTF-8 text: save it as UTF-8 and send it again")
    return FileRejected("unreadable_file", f"{detail}: {type(exc).__name__}")


def read_text_frame(path: Path, required: tuple[str, ...], wanted: tuple[str, ...]) -> pl.LazyFrame:
    """The file as text columns `wanted` (missing optional ones as NULL), trimmed, blank
    as NULL, with a 1-based row_number. Raises FileRejected for the file rules."""
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise FileRejected("unreadable_file", f"unknown file type {path.suffix!r} (use .csv, .parquet or .jsonl)")
    if path.stat().st_size == 0:
        raise FileRejected("empty_file", "the file is empty")
    try:
        if fmt == "csv":
            frame = pl.scan_csv(path, infer_schema=False, encoding="utf8")
        elif fmt == "parquet":
            frame = pl.scan_parquet(path)
        else:
            frame = pl.scan_ndjson(path, infer_schema_length=10_000)
        schema = frame.collect_schema()
    except Exception as exc:  # any reader failure means the file cannot be read as its format
        raise unreadable(exc, f"cannot be read as {fmt}") from None
    columns = {name.strip(): name for name in schema.names()}
    missing = [c for c in required if c not in columns]
    if missing:
        raise FileRejected("missing_column", f"missing column(s): {', '.join(missing)}")

    def text(name: str) -> pl.Expr:
        if name not in columns:
            return pl.lit(None, pl.String).alias(name)
        col = pl.col(columns[name])
        dtype = schema[columns[name]]
        if isinstance(dtype, pl.Datetime):
            # A typed timestamp keeps its zone (written as an offset); a naive one stays
            # naive and is read in the policy's timezone, like a string without offset.
            fmt_ = "%Y-%m-%dT%H:%M:%S%.f%:z" if dtype.time_zone else "%Y-%m-%dT%H:%M:%S%.f"
            as_text = col.dt.strftime(fmt_)
        else:
            as_text = col.cast(pl.String)
        trimmed = as_text.str.strip_chars()
        return pl.when(trimmed == "").then(None).otherwise(trimmed).alias(name)

    return frame.with_row_index("row_number", offset=1).select(
        pl.col("row_number").cast(pl.Int64), *(text(c) for c in wanted)
    )


def stage(frame: pl.LazyFrame, target: Path) -> int:
    """Write the frame as Parquet (streaming) and return its row count; reading errors
    that only show once the data is read make the file unreadable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        frame.sink_parquet(target)
    except Exception as exc:
        raise unreadable(exc, "cannot be read") from None
    rows = pl.scan_parquet(target).select(pl.len()).collect().item()
    if rows == 0:
        raise FileRejected("empty_file", "the file has no data rows")
    return rows


def customers_frame(path: Path) -> pl.LazyFrame:
    """A customers snapshot, normalised for identity and bank checks."""
    raw = read_text_frame(path, CUSTOMER_COLUMNS, CUSTOMER_COLUMNS)
    account = pl.col("bank_account").str.replace_all(r"[\s-]", "")
    bank_valid = (
        pl.col("bank_code").str.contains(r"^[0-9]{3}$").fill_null(False)
        & account.str.contains(r"^[0-9]{10,16}$").fill_null(False)
    )
    return raw.with_columns(
        email_norm("email").alias("email_norm"),
        phone_e164("phone").alias("phone_e164"),
        account.alias("bank_account_digits"),
        bank_valid.alias("bank_valid"),
    )


def scope_frame(path: Path) -> pl.LazyFrame:
    return read_text_frame(path, SCOPE_REQUIRED, SCOPE_COLUMNS)


def ts(col: str) -> str:
    """SQL: the text column as TIMESTAMPTZ in the session timezone, NULL unless ISO 8601."""
    return f"CASE WHEN regexp_full_match({col}, '{ISO_8601}') THEN TRY_CAST({col} AS TIMESTAMPTZ) END"


def load_customers_staging(con: duckdb.DuckDBPyConnection, staged: Path, timezone: str) -> None:
    """customers_staging: the snapshot as given plus the typed columns its suite checks."""
    true_words = ", ".join(f"'{w}'" for w in TRUE_WORDS)
    words = ", ".join(f"'{w}'" for w in TRUE_WORDS + FALSE_WORDS)
    con.execute(f"SET TimeZone = '{timezone}'")
    try:
        con.execute(f"""
            CREATE OR REPLACE TABLE customers_staging AS
            SELECT *,
                   created_at_ts IS NULL AS created_at_invalid,
                   closed_at IS NOT NULL AND closed_at_ts IS NULL AS closed_at_invalid,
                   status = 'closed' AND closed_at IS NULL AS closed_at_missing,
                   coalesce(status <> 'closed', TRUE) AND closed_at IS NOT NULL AS closed_at_unexpected,
                   is_test IS NOT NULL AND lower(is_test) NOT IN ({words}) AS is_test_invalid,
                   coalesce(lower(is_test) IN ({true_words}), FALSE) AS is_test_bool
            FROM (
                SELECT *, {ts('created_at')} AS created_at_ts, {ts('closed_at')} AS closed_at_ts
                FROM read_parquet('{staged}')
            )
        """)
    finally:
        con.execute("SET TimeZone = 'UTC'")


def promote_customers(con: duckdb.DuckDBPyConnection, sha: str) -> int:
    """The validated staging snapshot becomes the current customer master. Replacing the
    table also drops columns an earlier version kept (the customer's name)."""
    con.execute("""
        CREATE OR REPLACE TABLE customers AS
        SELECT customer_id, email, phone, email_norm, phone_e164, status,
               created_at_ts AS created_at, closed_at_ts AS closed_at, is_test_bool AS is_test,
               coalesce(payout_method, 'voucher') AS payout_method, bank_code,
               bank_account_digits AS bank_account, bank_valid, ? AS file_sha256
        FROM customers_staging ORDER BY customer_id
    """, [sha])
    return con.execute("SELECT count(*) FROM customers").fetchall()[0][0]


def load_scope_rows(con: duckdb.DuckDBPyConnection, staged: Path, sha: str, timezone: str) -> None:
    con.execute(f"SET TimeZone = '{timezone}'")
    try:
        con.execute(f"""
            INSERT INTO scope_rows
            SELECT ? AS file_sha256, row_number, customer_id, email, phone, data_category,
                   accessed_at AS accessed_at_raw, {ts('accessed_at')} AS accessed_at,
                   confidence, source
            FROM read_parquet('{staged}') ORDER BY row_number
        """, [sha])
    finally:
        con.execute("SET TimeZone = 'UTC'")
