"""The SHA-256 of an inbox file and, for text formats, whether its bytes are UTF-8, in
one read (SPEC "File rules", "Reading files").

* Encoding (.csv, .jsonl, .ndjson): UTF-8, a UTF-8 BOM allowed. Decided from the bytes
  while hashing: a UTF-16/UTF-32 BOM, any NUL byte or any invalid UTF-8 sequence
  (CP949/EUC-KR, Latin-1...) makes the file unreadable_file "save it as UTF-8" (NOT_UTF8);
  an archive or a binary file under a text name (NOT_TEXT) says what it is instead.
* A file is opened without following links and without blocking, and must be the
  regular file that was listed, unchanged while it was read: otherwise FileChanged.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import stat as stat_
from datetime import datetime, timezone
from pathlib import Path

from redress.inbox.files import FileChanged, Listed, stat_signature

NOT_UTF8 = "the file is not UTF-8 text: save it as UTF-8 and send it again"
BLOCK = 1 << 20

# The first bytes of files that are no text at all, sent under a text file's name (found
# by review: a gzip archive named `.csv` was "NUL bytes (UTF-16 or UTF-32?)", which sends
# the sender to the wrong fix): what the file is, and what to send instead. Asked only of
# a file that is no UTF-8 text (found by the fix review: a CSV whose header began `BZh`
# or `PAR1`, text, was refused as an archive).
NOT_TEXT = {
    b"\x1f\x8b": ("a gzip archive", "unpack it and send the file inside"),
    b"PK\x03\x04": ("a zip archive (an .xlsx workbook is one)",
                    "unpack it and send the file inside, or export the sheet as CSV (UTF-8)"),
    b"PK\x05\x06": ("an empty zip archive", "send the file itself"),
    b"BZh": ("a bzip2 archive", "unpack it and send the file inside"),
    b"\xfd7zXZ\x00": ("an xz archive", "unpack it and send the file inside"),
    b"\x28\xb5\x2f\xfd": ("a zstd archive", "unpack it and send the file inside"),
    b"7z\xbc\xaf\x27\x1c": ("a 7z archive", "unpack it and send the file inside"),
    b"PAR1": ("a Parquet file", "name it .parquet"),
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": ("an old Excel workbook (.xls)", "export the sheet as CSV (UTF-8)"),
}


def not_text_detail(problem: str) -> str:
    """The unreadable_file detail for a text file whose bytes are `problem` (hash_file)."""
    remedy = next((fix for what, fix in NOT_TEXT.values() if what == problem), None)
    if remedy is not None:
        return f"the file is {problem}, not text: {remedy}"
    return f"{NOT_UTF8} (found: {problem})"


def _not_text(head: bytes) -> str | None:
    """What a file whose first bytes are `head` is, by NOT_TEXT, or None."""
    return next((what for magic, (what, _) in NOT_TEXT.items() if head.startswith(magic)), None)


def _utf8_problem(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    return None


def hash_file(f: Listed, check_text: bool) -> tuple[str, str | None, tuple[int, int, int, int]]:
    """(sha256, why the bytes are not UTF-8 text or None, the file's signature), reading
    the file once. Opened
    without following links and without blocking; raises FileChanged when what is
    opened is not the listed regular file, or it changes while being read."""
    try:
        fd = os.open(f.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            raise FileChanged("replaced by a link or a special file since it was listed") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        before = os.fstat(fd)
        if not stat_.S_ISREG(before.st_mode):
            raise FileChanged("replaced by a special file since it was listed")
        digest = hashlib.sha256()
        decoder = codecs.getincrementaldecoder("utf-8")("strict") if check_text else None
        problem, head = None, None
        for block in iter(lambda: fh.read(BLOCK), b""):
            digest.update(block)
            if decoder is None or problem:
                continue
            if head is None:
                head = block[:8]
                problem = _utf8_problem(head)
            if problem is None and b"\0" in block:
                problem = "NUL bytes (UTF-16 or UTF-32?)"
            if problem is None:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    problem = "not valid UTF-8"
        if decoder is not None and problem is None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                problem = "not valid UTF-8 at its end"
        if problem is not None and head is not None:  # no text: what it is, when its first bytes say
            problem = _not_text(head) or problem
        after = os.fstat(fd)
    now_ = os.stat(f.path, follow_symlinks=False)
    if not (stat_signature(before) == stat_signature(after) == stat_signature(now_)) or before.st_size != f.size_bytes:
        raise FileChanged("changed while it was being read")
    return digest.hexdigest(), problem, stat_signature(before)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a regular inbox file (no link followed)."""
    st = os.stat(path, follow_symlinks=False)
    listed = Listed("scope", Path(path), st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))
    return hash_file(listed, check_text=False)[0]

