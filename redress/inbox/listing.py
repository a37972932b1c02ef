"""Which inbox files a run reads, in which order, once they are complete (SPEC "The data
folder", "Reading files").

* Which files: regular files directly in inbox/<kind>/, found with lstat (links are
  never followed). Names starting with "." are partial copies and are not looked at.
  Symbolic links, sub-folders, FIFOs, devices and sockets are passed over, never opened
  or hashed, and named in the stage result and the log once per stage; so is a file
  whose name is not UTF-8 (named with its bytes escaped), and a file redress may not
  open (permission denied), so that the other files are read. Files are opened
  for hashing with O_NOFOLLOW | O_NONBLOCK and checked to be the file that was listed
  (`redress/inbox/hashing.py`).
* Files still being copied in: a file is complete once its size and modification time
  have not changed for REDRESS_INBOX_QUIET_SECONDS (default 10). A run that finds a
  younger file waits (one log line) up to REDRESS_INBOX_WAIT_SECONDS (default 300);
  a file still changing then, or one that changes while it is hashed, is not read this
  run (named in the log and the stage result) and the others go ahead. The served
  watch uses the same function (`settle`).
* Order: `redress.inbox.files.read_order`.
"""

from __future__ import annotations

import os
import stat as stat_
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from redress import escape
from redress.inbox.files import KINDS, TEXT_FORMATS, FileChanged, Inbox, InboxFile, Listed, PassedOver
from redress.inbox.files import format_of, natural_key, read_order
from redress.inbox.hashing import hash_file


def _what(mode: int) -> str | None:
    if stat_.S_ISREG(mode):
        return None
    if stat_.S_ISLNK(mode):
        return "a symbolic link (only regular files in the inbox are read)"
    if stat_.S_ISDIR(mode):
        return "a folder (files in sub-folders are not read)"
    return "not a regular file (a FIFO, device or socket)"


# A name the file system holds in another encoding (a zip made on Korean Windows gives
# CP949 names): no reader can be given its path, and no report can print it as it is.
NOT_UTF8_NAME = ("its name is not UTF-8 (written by a system in another encoding, a zip from Windows say; "
                 "shown with each byte outside ASCII as \\xNN): rename it and the next run reads it")
UNREADABLE = ("cannot be opened: permission denied (give the account redress runs as read access to it); "
              "read by a later run")


def list_inbox(data_dir: Path, kinds: tuple[str, ...] = KINDS) -> tuple[list[Listed], list[PassedOver]]:
    """Regular, non-hidden files of inbox/<kind>/ in read order, found with lstat (no link
    is followed), and the other entries, which are passed over and never opened."""
    found, passed = [], []
    for kind in kinds:
        folder = Path(data_dir) / "inbox" / kind
        if not folder.is_dir() or folder.is_symlink():
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue  # partial copies by convention
                st = entry.stat(follow_symlinks=False)
                why = _what(st.st_mode)
                shown = entry.name if escape.is_utf8(entry.name) else escape.not_utf8(entry.name)
                if why is None and shown != entry.name:
                    why = NOT_UTF8_NAME
                if why:
                    passed.append(PassedOver(kind, shown, why))
                    continue
                found.append(Listed(kind, Path(entry.path), st.st_size,
                                    datetime.fromtimestamp(st.st_mtime, timezone.utc)))
    found.sort(key=read_order)
    passed.sort(key=lambda p: (KINDS.index(p.kind), natural_key(p.name)))
    return found, passed


def settle(data_dir: Path, quiet: timedelta, most: timedelta, kinds: tuple[str, ...] = KINDS,
           now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
           sleep: Callable[[float], None] = time.sleep,
           log: Callable[[str], None] = lambda message: None) -> tuple[list[Listed], list[PassedOver]]:
    """The inbox once its files are complete: a file is complete when its size and
    modification time have not changed for `quiet` (its mtime is `quiet` old, or it was
    seen unchanged for `quiet`: a future mtime cannot stall it). Waits (one `log` line)
    at most `most`; files still changing then are passed over with a reason, the others
    are returned in read order. Shared by `redress run` and the served watch."""
    started = now()
    first_seen: dict[Path, tuple[tuple[int, datetime], datetime]] = {}
    logged = False
    while True:
        listed, passed = list_inbox(data_dir, kinds)
        t = now()
        changing = []
        for f in listed:
            state = (f.size_bytes, f.modified)
            seen = first_seen.get(f.path)
            if seen is None or seen[0] != state:
                first_seen[f.path] = seen = (state, t)
            if t - f.modified < quiet and t - seen[1] < quiet:
                changing.append(f)
        if not changing:
            return listed, passed
        if t - started >= most:
            late = {f.path for f in changing}
            passed += [PassedOver(f.kind, f.name, f"still being changed after waiting {most.total_seconds():g} s; "
                                  "read by a later run") for f in changing]
            passed.sort(key=lambda p: (KINDS.index(p.kind), natural_key(p.name)))
            return [f for f in listed if f.path not in late], passed
        if not logged:
            log(f"waiting for {len(changing)} inbox file(s) still being copied in "
                f"(quiet {quiet.total_seconds():g} s, at most {most.total_seconds():g} s)")
            logged = True
        wait = min(max(quiet - (t - min(f.modified, first_seen[f.path][1])) for f in changing),
                   most - (t - started))
        sleep(max(0.05, min(wait.total_seconds(), quiet.total_seconds() or 0.05)))


def inbox_files(data_dir: Path, quiet: timedelta = timedelta(0), most: timedelta = timedelta(0),
                kinds: tuple[str, ...] = KINDS, log: Callable[[str], None] = lambda message: None,
                sleep: Callable[[float], None] = time.sleep) -> Inbox:
    """The complete regular files of the inbox in read order, hashed (and, for text
    formats, checked to be UTF-8) in one read each; every entry not read is in
    `passed_over` with its reason. See the module docstring for the rules."""
    listed, passed = settle(data_dir, quiet, most, kinds, log=log, sleep=sleep)
    inbox = Inbox(passed_over=passed)
    for f in listed:
        try:
            sha, problem, signature = hash_file(f, format_of(f.name) in TEXT_FORMATS)
        except FileChanged as exc:
            inbox.passed_over.append(PassedOver(f.kind, f.name, f"{exc}; read by a later run"))
            continue
        except FileNotFoundError:
            inbox.passed_over.append(PassedOver(f.kind, f.name, "removed while the inbox was being read"))
            continue
        except PermissionError:  # not a flaky share: retrying would only hold every other file back
            inbox.passed_over.append(PassedOver(f.kind, f.name, UNREADABLE))
            continue
        inbox.files.append(InboxFile(f.kind, f.path, sha, f.size_bytes, problem, signature))
    return inbox
