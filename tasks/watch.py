"""The inbox watch: which inbox files hold content the warehouse has not recorded.

A file is new when its (kind, SHA-256, name) is not in `ingested_files`: the rule the
ingest and returns stages use to choose what to read (SPEC "The data folder"), so the
watch starts a run exactly when a run has something to do. Hashing a large inbox every
minute would read gigabytes for nothing, so a file last modified before the start of
the latest run that recorded its name and size in its folder is not hashed again: that
run read it as it is now (a file moved from another folder keeps its time, and is new). (A copy that back-dates the modification time and keeps the size could hide
a change that way; drop such a file under a new name.) A file still being copied in is
waited for as a run waits (redress.inbox.listing.settle, REDRESS_INBOX_QUIET_SECONDS).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress import escape
from redress.settings import Settings
from redress.warehouse import connect
from redress.warehouse import path as warehouse_path
from redress.runtime.folder_slot import slot_name
from redress.inbox import FileChanged, Listed, settle, sha256_of
from redress.runtime.retry_policy import BACKOFF_SECONDS, JITTER, io_errors_only


@dataclass(frozen=True)
class Recorded:
    kind: str
    file_sha256: str
    file_name: str
    size_bytes: int
    run_started_at: datetime  # UTC: the start of the run that recorded the file


def recorded_files(warehouse: Path) -> list[Recorded]:
    """What the warehouse has recorded; nothing before the first run."""
    if not warehouse.exists():
        return []
    with connect(warehouse, read_only=True) as con:
        rows = con.execute("""
            SELECT f.kind, f.file_sha256, f.file_name, f.size_bytes, r.started_at
            FROM ingested_files f JOIN runs r USING (run_id)""").fetchall()
    return [Recorded(kind, sha, name, size, started) for kind, sha, name, size, started in rows]


def unrecorded(listed: list[Listed], recorded: list[Recorded],
               sha256_of: Callable[[Path], str | None]) -> list[tuple[Listed, str]]:
    """The listed files whose (kind, sha256, name) is not recorded, with their sha256.
    Only files that may have changed since they were recorded are hashed; a file
    `sha256_of` cannot hash as listed (None: it changed meanwhile) waits for the next check."""
    seen = {(r.kind, r.file_sha256, r.file_name) for r in recorded}
    recorded_since: dict[tuple[str, str, int], datetime] = {}
    for r in recorded:
        key = (r.kind, r.file_name, r.size_bytes)
        recorded_since[key] = max(r.run_started_at, recorded_since.get(key, r.run_started_at))
    new = []
    for f in listed:
        since = recorded_since.get((f.kind, f.name, f.size_bytes))
        if since is not None and f.modified < since:
            continue  # unchanged since a run read it under this name
        sha = sha256_of(f.path)
        if sha is not None and (f.kind, sha, f.name) not in seen:
            new.append((f, sha))
    return new


RETRY_SAME_FILES = timedelta(hours=1)


def fingerprint(new: list[dict]) -> str:
    """One value for a set of new files, to tell whether the inbox changed since."""
    text = "\n".join(sorted(f"{f['file']}:{f['sha256']}" for f in new))
    return hashlib.sha256(text.encode()).hexdigest()


def settled_listing(data_dir: Path, quiet: timedelta, most: timedelta,
                    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                    sleep: Callable[[float], None] = time.sleep,
                    log: Callable[[str], None] = lambda message: None) -> list[Listed]:
    """The complete inbox files, as a run takes them (redress.inbox.listing.settle): waits while a
    file is still being copied in, at most `most`; a file still changing then is left
    for the next check (REDRESS_INBOX_QUIET_SECONDS / _WAIT_SECONDS in the settings)."""
    listed, passed = settle(Path(data_dir), quiet, most, now=now, sleep=sleep, log=log)
    for p in passed:
        log(f"{p.kind}/{escape.terminal(p.name)}: not read: {escape.terminal(p.why)}")
    return listed


def _sha256_or_none(path: Path) -> str | None:
    try:
        return sha256_of(path)
    except (FileChanged, FileNotFoundError):
        return None


@task(name="check inbox", task_run_name="check inbox", cache_policy=NO_CACHE, timeout_seconds=1800, retries=len(BACKOFF_SECONDS),
      retry_delay_seconds=BACKOFF_SECONDS, retry_jitter_factor=JITTER, retry_condition_fn=io_errors_only)
def new_inbox_files(data_dir: Path, settings: Settings) -> list[dict]:
    """Inbox files with content no run has recorded yet: kind/name and sha256 (no rows read)."""
    logger = get_run_logger()
    listed = settled_listing(data_dir, timedelta(seconds=settings.inbox_quiet_seconds),
                             timedelta(seconds=settings.inbox_wait_seconds), log=logger.info)
    new = unrecorded(listed, recorded_files(warehouse_path(data_dir)), _sha256_or_none)
    files = [{"file": f"{f.kind}/{f.name}", "sha256": sha} for f, sha in new]
    logger.info("%s inbox file(s), %s new%s", f"{len(listed):,}", f"{len(files):,}",
                (": " + ", ".join(escape.terminal(f["file"]) for f in files)) if files else "")
    return files


def should_run(data_dir: Path, new: list[dict]) -> bool:
    """Whether the watch should start the pipeline for these new files; records that it
    does. Not when its last run, less than RETRY_SAME_FILES ago, was for these same
    files: they are still unrecorded, so that run failed before reading them, and
    starting it again every minute would fail (and alert) every minute. A changed inbox
    or a run started by hand goes ahead at once; the state is a Prefect Variable."""
    from prefect.variables import Variable

    name = "redress-watch-" + slot_name(data_dir).removeprefix("redress-folder-")
    now = datetime.now(timezone.utc)
    files = fingerprint(new)
    last = Variable.get(name, default=None)
    if (isinstance(last, dict) and last.get("files") == files
            and now - datetime.fromisoformat(last["started"]) < RETRY_SAME_FILES):
        return False
    Variable.set(name, {"files": files, "started": now.isoformat()}, overwrite=True)
    return True
