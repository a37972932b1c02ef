"""The inbox watch's choice of new files, without a server: which files are new, which
are hashed, and waiting for a file still being copied in."""

from __future__ import annotations

import fcntl
import errno
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from redress.errors import RedressError
from redress.runtime.folder_slot import direct_run_active, slot_name
from redress.inbox import list_inbox
from tasks.watch import Listed, Recorded, fingerprint, settled_listing, unrecorded
from redress.runtime.retry_policy import io_errors_only

T0 = datetime(2025, 12, 1, 9, 0, tzinfo=timezone.utc)


def listed(name: str, size: int = 10, modified: datetime = T0, kind: str = "scope") -> Listed:
    return Listed(kind, Path("/inbox") / kind / name, size, modified)


def recorded(sha: str, name: str, size: int = 10, run_started: datetime = T0 + timedelta(minutes=1),
             kind: str = "scope") -> Recorded:
    return Recorded(kind, sha, name, size, run_started)


class Hasher:
    def __init__(self, shas: dict[str, str]):
        self.shas, self.hashed = shas, []

    def __call__(self, path: Path) -> str:
        self.hashed.append(path.name)
        return self.shas[path.name]


def test_a_file_unchanged_since_a_run_read_it_is_neither_new_nor_hashed():
    hasher = Hasher({"a.csv": "A"})
    assert unrecorded([listed("a.csv")], [recorded("A", "a.csv")], hasher) == []
    assert hasher.hashed == []


@pytest.mark.parametrize("change", [
    {"modified": T0 + timedelta(minutes=5)},  # rewritten after the run that read it began
    {"size": 11},                              # another size
])
def test_a_file_that_may_have_changed_is_hashed_and_new_only_if_its_content_is(change):
    f = listed("a.csv", **change)
    assert unrecorded([f], [recorded("A", "a.csv")], Hasher({"a.csv": "A"})) == []
    assert unrecorded([f], [recorded("A", "a.csv")], Hasher({"a.csv": "B"})) == [(f, "B")]


def test_new_is_by_content_and_name():
    hasher = Hasher({"b.csv": "A", "c.csv": "C"})
    files = [listed("b.csv"), listed("c.csv")]
    # b.csv holds content already recorded under another name: a run records it as a
    # duplicate, so it is new to the warehouse; c.csv is new content
    assert [sha for _, sha in unrecorded(files, [recorded("A", "a.csv")], hasher)] == ["A", "C"]


def test_a_file_moved_from_the_wrong_folder_is_new_there_though_its_name_size_and_time_are_kept():
    # scope.csv was dropped among the customers (a run refused it: missing_column) and
    # then moved (mv keeps the time) into scope: the runs read it by (kind, content, name),
    # so the watch must start one
    hasher = Hasher({"scope.csv": "A"})
    moved = listed("scope.csv", kind="scope")
    assert unrecorded([moved], [recorded("A", "scope.csv", kind="customers")], hasher) == [(moved, "A")]
    assert hasher.hashed == ["scope.csv"]
    # left where it was, it is not hashed again
    assert unrecorded([listed("scope.csv", kind="customers")], [recorded("A", "scope.csv", kind="customers")],
                      Hasher({})) == []


def test_listing_takes_what_a_run_reads(tmp_path):
    for kind in ("customers", "scope", "returns"):
        (tmp_path / "inbox" / kind).mkdir(parents=True)
    (tmp_path / "inbox" / "scope" / "s.csv").write_text("x")
    (tmp_path / "inbox" / "scope" / ".s.csv.part").write_text("being copied")
    (tmp_path / "inbox" / "scope" / "folder").mkdir()
    (tmp_path / "inbox" / "returns" / "r.csv").write_text("y")
    (tmp_path / "inbox" / "other").mkdir()
    (tmp_path / "inbox" / "other" / "o.csv").write_text("z")
    assert [(f.kind, f.name) for f in list_inbox(tmp_path)[0]] == [("scope", "s.csv"), ("returns", "r.csv")]


def test_the_inbox_is_read_once_nothing_is_being_copied_in(tmp_path):
    (tmp_path / "inbox" / "scope").mkdir(parents=True)
    f = tmp_path / "inbox" / "scope" / "s.csv"
    f.write_text("x")
    written = datetime.fromtimestamp(f.stat().st_mtime, timezone.utc)
    clock = {"now": written + timedelta(seconds=3)}
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock["now"] += timedelta(seconds=seconds)

    # Explicit periods: the flows tier sets REDRESS_INBOX_* to 0 for its own runs.
    listed = settled_listing(tmp_path, quiet=timedelta(seconds=10), most=timedelta(seconds=300),
                             now=lambda: clock["now"], sleep=sleep)
    assert [x.name for x in listed] == ["s.csv"]
    assert slept == [pytest.approx(7)]


def test_fingerprint_is_of_the_set():
    a, b = {"file": "scope/a.csv", "sha256": "A"}, {"file": "scope/b.csv", "sha256": "B"}
    assert fingerprint([a, b]) == fingerprint([b, a]) != fingerprint([a])


def test_the_folder_slot_is_named_after_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert slot_name(Path("data")) == slot_name(tmp_path / "data") != slot_name(tmp_path)


def test_a_redress_run_holding_the_folder_is_seen(tmp_path):
    assert not direct_run_active(tmp_path)
    fd = os.open(tmp_path / ".redress.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert direct_run_active(tmp_path)
    finally:
        os.close(fd)
    assert not direct_run_active(tmp_path)


class _State:
    def __init__(self, data):
        self.data = data


@pytest.mark.parametrize("error, retried", [
    (OSError("stale file handle"), True),
    (FileNotFoundError("gone"), True),
    (TimeoutError("ran out of time"), False),
    (RedressError("no valid customers snapshot"), False),
    (ValueError("a bug"), False),
    (OSError(errno.ENOSPC, "No space left on device"), True),  # a disk briefly full
    (OSError(errno.EIO, "Input/output error"), True),  # a share that dropped
    # what minutes change nothing about (found by review: 8 minutes of retries on a permission)
    (PermissionError(errno.EACCES, "Permission denied"), False),
    (OSError(errno.EROFS, "Read-only file system"), False),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory"), False),
])
def test_only_io_errors_are_retried(error, retried):
    assert io_errors_only(None, None, _State(error)) is retried


def test_a_wait_for_a_redress_run_says_so_when_it_starts(tmp_path, monkeypatch):
    """Found by the fix review: a served run waiting for a `redress run` holding the
    folder logged nothing until the wait ended."""
    from redress.runtime import folder_slot

    said, polls = [], []
    monkeypatch.setattr(folder_slot, "_log", said.append)
    monkeypatch.setattr(folder_slot, "direct_run_active", lambda data_dir: len(polls) < 3)
    monkeypatch.setattr(folder_slot.time, "sleep", polls.append)
    assert folder_slot._direct_run_ended(tmp_path, 120, folder_slot.time.monotonic())
    assert said == ["a `redress run` or `redress approve` is using the folder: this run waits for it to end "
                    "(at most 2 min)"] and len(polls) == 3


def test_the_wait_for_a_redress_run_gives_what_is_left_of_the_one_wait(tmp_path, monkeypatch):
    """Found by the SRE fix review: after waiting for the slot, the wait for the lock
    still said "at most 6 h", though the deadline counts from the start of both."""
    from redress.runtime import folder_slot

    said = []
    monkeypatch.setattr(folder_slot, "_log", said.append)
    monkeypatch.setattr(folder_slot, "direct_run_active", lambda data_dir: not said)
    monkeypatch.setattr(folder_slot.time, "sleep", lambda seconds: None)
    assert folder_slot._direct_run_ended(tmp_path, 6 * 3600, folder_slot.time.monotonic() - 2 * 3600 - 90)
    assert said == ["a `redress run` or `redress approve` is using the folder: this run waits for it to end "
                    "(at most 3 h 58 min 30 s)"]


@pytest.mark.parametrize("seconds, said", [
    (6 * 3600, "6 h"), (120, "2 min"), (45, "45 s"), (3725, "1 h 2 min 5 s"),
    (0.2, "1 s"), (0, "0 s"), (21599.3, "6 h"),  # rounded up: never less than is left
])
def test_a_wait_reads_as_a_person_says_it(seconds, said):
    from redress.runtime.folder_slot import _duration

    assert _duration(seconds) == said
