"""Reading the inbox: files into the warehouse, by content (SPEC "The data folder",
"File rules", "Reading files"). Inbox files are only ever read.

The stages use the names below (`from redress import inbox as io`); one module per concern:

* `files`: what an inbox file is (kinds, columns, identity by SHA-256, read order, errors)
* `listing`: which files a run reads, once complete (`inbox_files`, `settle`)
* `hashing`: SHA-256 and the UTF-8 check, in one read
* `text_frame`: any file as text columns (`read_text_frame`), per format in
  `csv_reader`, `jsonl_reader`, `parquet_reader`; header names in `columns`
* `streaming`: a frame into DuckDB, through one work file that DuckDB reads on all its threads
* `customers`, `scope`: each kind's load into the warehouse; `claims`, `returns`: a claims
  or returns file read
* `new_files`: the loop over new files that the ingest and returns stages share
"""

from pathlib import Path

from redress.errors import RedressError
from redress.inbox.files import (
    CLAIMS_COLUMNS, CUSTOMER_COLUMNS, KINDS, RETURNS_COLUMNS, SCOPE_COLUMNS, STEM_CHARS, FileChanged, FileRejected,
    Inbox, InboxFile, Listed, PassedOver, format_of, natural_key, read_order, safe_stem,
)
from redress.inbox.hashing import NOT_UTF8, hash_file, sha256_of
from redress.inbox.listing import inbox_files, list_inbox, settle
from redress.inbox.text_frame import read_text_frame, stage
from redress.inbox.streaming import loading
from redress.inbox.customers import customers_frame, load_customers_staging, promote_customers
from redress.inbox.scope import load_scope_rows, scope_frame
from redress.inbox.claims import claims_frame
from redress.inbox.returns import returns_frame

__all__ = [
    "CLAIMS_COLUMNS", "CUSTOMER_COLUMNS", "KINDS", "NOT_UTF8", "RETURNS_COLUMNS", "SCOPE_COLUMNS", "STEM_CHARS",
    "FileChanged", "FileRejected", "Inbox", "InboxFile", "Listed", "PassedOver",
    "claims_frame", "customers_frame", "hash_file", "require_inbox", "inbox_files", "list_inbox", "load_customers_staging",
    "format_of", "load_scope_rows", "loading", "natural_key", "promote_customers", "read_order",
    "read_text_frame", "returns_frame", "safe_stem", "scope_frame", "settle", "sha256_of", "stage",
]


def require_inbox(data_dir: Path) -> None:
    """Refuse a data folder without inbox/ (SPEC "The data folder"): the one-line
    RedressError every entry point (`redress run`, `redress serve`, the served flows)
    gives, before anything is written."""
    if not (Path(data_dir) / "inbox").is_dir():
        raise RedressError(f"data folder {data_dir} has no inbox/ folder (create inbox/customers and inbox/scope)")
