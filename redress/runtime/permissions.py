"""Who may read what redress writes: its owner, and a group only when the operator names one.

Everything a run writes (the warehouse and its .wal and spill files, bank files,
notification lists, quarantine, reports, analyst exports, scratch files) holds personal data or is next to
it. Rather than chmod each file after the fact (DuckDB, Polars and Great Expectations
create their own files), the run sets a umask that every creator inherits: 0o077
(files 0600, folders 0700), or 0o027 (files 0640, folders 0750) when REDRESS_SHARE_GROUP
names a group. In that case the data folder and the output folders get that group and the
set-group-id bit, so that everything created below them belongs to the group rather than
to the user's own one. Outputs of earlier runs are closed off by tightening the top-level
output folders and the warehouse files, which makes everything below them unreachable.

exports/ keeps a file for as long as its rows are unchanged (redress/warehouse/exports.py),
so a share group named after it was written would never read it: `share_kept` gives
everything in it the modes and group a new file gets.

The inbox is not redress's: it is never written, and its modes are left as they are.
"""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redress.errors import RedressError
from redress.warehouse import FILE_NAME as WAREHOUSE, LOCK_FILE

PRIVATE_UMASK = 0o077
GROUP_UMASK = 0o027
# Top-level folders and files of the data folder that redress writes (SPEC "The data
# folder"), plus DuckDB's write-ahead log and spill folder beside the warehouse.
OUTPUT_DIRS = ("outbox", "reports", "quarantine", "exports", "work", f"{WAREHOUSE}.tmp")
OUTPUT_FILES = (WAREHOUSE, f"{WAREHOUSE}.wal", LOCK_FILE)


def umask_for(share_group: str | None) -> int:
    return GROUP_UMASK if share_group else PRIVATE_UMASK


def output_modes(share_group: str | None) -> tuple[int, int]:
    """(folder mode, file mode) of what redress writes: the owner's only, or the share
    group's too; never anyone else's."""
    return (0o750, 0o640) if share_group else (0o700, 0o600)


def group_id(share_group: str) -> int:
    """The id of the named group; RedressError when there is none."""
    try:
        return grp.getgrnam(share_group).gr_gid
    except KeyError:
        raise RedressError(f"REDRESS_SHARE_GROUP names no group on this machine: {share_group!r}") from None


def tighten(data_dir: Path, share_group: str | None) -> None:
    """Close existing outputs to everyone but the owner (and the share group)."""
    gid = group_id(share_group) if share_group else None
    dir_mode, file_mode = output_modes(share_group)
    try:
        if gid is not None:
            _give_to_group(data_dir, gid)  # its own rwx bits stay the operator's choice
        for name in OUTPUT_DIRS:
            path = data_dir / name
            if path.is_dir() and not path.is_symlink():
                os.chmod(path, dir_mode)
                if gid is not None:
                    _give_to_group(path, gid)
        for name in OUTPUT_FILES:
            path = data_dir / name
            if path.is_file() and not path.is_symlink():
                os.chmod(path, file_mode)
                if gid is not None:
                    os.chown(path, -1, gid)
    except PermissionError as exc:
        raise RedressError(f"cannot restrict who reads {exc.filename}: {exc.strerror}") from None


def share_kept(folder: Path, share_group: str | None) -> None:
    """Every folder and file below `folder` (itself included; links left alone) with the
    modes and group of a new one (output_modes; the share group and set-group-id folders
    when one is named). Only what differs is changed: neither size nor modification time
    moves, so exports' record of each file still holds."""
    gid = group_id(share_group) if share_group else None
    dir_mode, file_mode = output_modes(share_group)
    try:
        for path in [folder, *folder.rglob("*")]:
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                continue
            now = path.stat()
            mode = dir_mode | (stat.S_ISGID if gid is not None else 0) if path.is_dir() else file_mode
            if gid is not None and now.st_gid != gid:
                os.chown(path, -1, gid)  # before the mode: a chown may clear set-group-id
            if stat.S_IMODE(now.st_mode) != mode or (gid is not None and now.st_gid != gid):
                os.chmod(path, mode)
    except PermissionError as exc:
        raise RedressError(f"cannot set who reads {exc.filename}: {exc.strerror}") from None


def _give_to_group(folder: Path, gid: int) -> None:
    """The folder belongs to the group, and what is created in it too (set-group-id)."""
    os.chown(folder, -1, gid)
    os.chmod(folder, stat.S_IMODE(folder.stat().st_mode) | stat.S_ISGID)


@contextmanager
def private_files(data_dir: Path, share_group: str | None) -> Iterator[None]:
    """For the duration of a run: the restrictive umask, and earlier outputs tightened.
    The previous umask comes back afterwards (tests and `redress serve` run flows in a
    longer-lived process)."""
    previous = os.umask(umask_for(share_group))
    try:
        tighten(data_dir, share_group)
        yield
    finally:
        os.umask(previous)
