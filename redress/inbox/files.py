"""What an inbox file is: its kind, its identity (SHA-256 of the content), and its name's
place in the read order (SPEC "The data folder", "File rules", "Reading files").

A file is known by the SHA-256 of its content: the same content again, under any name,
is recorded as duplicate_file and skipped (`redress/inbox/new_files.py`). Inbox files
are only ever read.

* Order: kind by kind; within a kind, oldest modification time first (whole seconds:
  files copied in together are "the same time"), then natural order of names
  (`v9` before `v10`, `2025-11-9` before `2025-11-10`), so the snapshot dropped last
  becomes current. One function (`read_order`) for the run and the watch.
* Names: never a pattern. No output file name is built from an inbox name (work and
  report files are named by the sha256 prefix plus a bounded, sanitised stem:
  `safe_stem`).

Errors: `FileRejected` (a whole file goes to quarantine with a SPEC reason) and
`FileChanged` (the file is read by a later run).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

KINDS = ("customers", "scope", "returns", "claims")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
TEXT_FORMATS = ("csv", "jsonl")


def format_of(name: str) -> str | None:
    """The format a file of this name is read as (SUFFIXES: csv, parquet, jsonl); None
    for a name no format is read by, which is refused for its name alone
    (unreadable_file, "unknown file type"), its content never read."""
    return SUFFIXES.get(Path(name).suffix.lower())


CUSTOMER_COLUMNS = (
    "customer_id", "name", "email", "phone", "status", "created_at", "closed_at",
    "is_test", "payout_method", "bank_code", "bank_account",
)
SCOPE_COLUMNS = ("customer_id", "email", "phone", "data_category", "accessed_at", "confidence", "source")
SCOPE_REQUIRED = ("data_category", "accessed_at")
RETURNS_COLUMNS = ("payment_id", "status", "reason")
CLAIMS_COLUMNS = ("reference_code", "bank_code", "bank_account", "verified_at", "verified_by")
TIMESTAMPS = {"customers": ("created_at", "closed_at"), "scope": ("accessed_at",)}  # typed when Parquet

STEM_CHARS = 40  # of an inbox name, in an output file name (with the sha256 prefix)


@dataclass(frozen=True)
class Listed:
    """An inbox file as listed (lstat, nothing read)."""

    kind: str
    path: Path
    size_bytes: int
    modified: datetime  # UTC

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class InboxFile:
    """An inbox file as hashed: its content's SHA-256, and the signature to tell if it changed since."""

    kind: str
    path: Path
    sha256: str
    size_bytes: int
    text_problem: str | None = None  # why a text file is not UTF-8 (from its bytes), if it is not
    signature: tuple[int, int, int, int, int] | None = None  # stat_signature when hashed

    @property
    def name(self) -> str:
        return self.path.name

    def check_unchanged(self) -> None:
        """Raise FileChanged unless the file is still the one that was hashed: read
        between hashing and loading, a change would give content another sha256."""
        try:
            now = stat_signature(os.stat(self.path, follow_symlinks=False))
        except FileNotFoundError:
            raise FileChanged("removed while it was being read") from None
        if self.signature is not None and now != self.signature:
            raise FileChanged("changed while it was being read")


def stat_signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """(size, mtime_ns, ctime_ns, inode, device): what tells a file apart from its
    replacement or a rewrite. The change time is set by the system on every write and
    every change of the modification time, and no user can set it back: a file
    rewritten in place to the same size with its modification time put back (found by
    review: rewritten between the hash and the load, the rows of other bytes were
    loaded under the first bytes' sha256) still has another ctime."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


@dataclass(frozen=True)
class PassedOver:
    """An inbox entry this run does not read, and why (no content, the name only)."""

    kind: str
    name: str
    why: str


@dataclass
class Inbox:
    files: list[InboxFile] = field(default_factory=list)
    passed_over: list[PassedOver] = field(default_factory=list)


class FileRejected(Exception):
    """A whole file goes to quarantine with this SPEC reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class FileChanged(Exception):
    """The file changed, or was replaced, between listing and the end of hashing."""


# ---------------------------------------------------------------- names and order


def natural_key(name: str) -> tuple:
    """Natural order of names: runs of ASCII digits compare as numbers (v9 < v10,
    2025-11-9 < 2025-11-10) and letters whatever their case (snap-v9 < Snap-v10, as file
    managers order them: found by review, the older snapshot was read last and became
    current); the name itself breaks ties (v01 vs v1, V1 vs v1), so the order is total."""
    parts = re.split(r"([0-9]+)", name)
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name


def read_order(f: Listed) -> tuple:
    """SPEC "Reading files": kind, then oldest modification time first (whole seconds:
    files copied in together count as the same time), then natural order of names."""
    return KINDS.index(f.kind), int(f.modified.timestamp()), natural_key(f.name)


def safe_stem(name: str, sha256: str) -> str:
    """A file name part for outputs about an inbox file: its sha256 prefix and a bounded
    stem of ASCII letters, digits, '-' and '_' (at most 16 + 1 + STEM_CHARS characters),
    so no inbox name can make an output name too long, hidden, or a path."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem, flags=re.ASCII).strip("_")[:STEM_CHARS]
    return f"{sha256[:16]}-{stem}" if stem else sha256[:16]
