"""Outputs of earlier versions are closed off when a run starts (issue 9, item 8)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from redress.errors import RedressError
from redress.runtime.permissions import OUTPUT_DIRS, OUTPUT_FILES, private_files


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def old_outputs(data: Path) -> None:
    """A data folder as an earlier version left it: everything 0644/0755."""
    (data / "inbox" / "scope").mkdir(parents=True)
    (data / "inbox" / "scope" / "s.csv").write_text("x")
    for name in OUTPUT_DIRS:
        (data / name / "R1").mkdir(parents=True)
        (data / name / "R1" / "f.csv").write_text("x")
        os.chmod(data / name, 0o755)
    for name in OUTPUT_FILES:
        (data / name).write_text("x")
        os.chmod(data / name, 0o644)
    os.chmod(data / "inbox" / "scope" / "s.csv", 0o644)


def test_earlier_outputs_are_closed_and_the_inbox_left_alone(tmp_path):
    old_outputs(tmp_path)
    with private_files(tmp_path, None):
        (tmp_path / "outbox" / "new.csv").write_text("x")
        assert mode(tmp_path / "outbox" / "new.csv") == 0o600
    assert {n: mode(tmp_path / n) for n in OUTPUT_DIRS} == {n: 0o700 for n in OUTPUT_DIRS}
    assert {n: mode(tmp_path / n) for n in OUTPUT_FILES} == {n: 0o600 for n in OUTPUT_FILES}
    assert mode(tmp_path / "inbox" / "scope" / "s.csv") == 0o644


def test_with_a_share_group_the_group_may_read(tmp_path):
    import grp

    old_outputs(tmp_path)
    with private_files(tmp_path, grp.getgrgid(os.getgid()).gr_name):
        (tmp_path / "reports" / "new").mkdir()
        assert mode(tmp_path / "reports" / "new") & 0o777 == 0o750
    assert mode(tmp_path / "warehouse.duckdb") == 0o640
    assert mode(tmp_path / "outbox") == 0o750 | stat.S_ISGID


def test_the_umask_comes_back_after_an_error(tmp_path):
    before = os.umask(0o022)
    try:
        with pytest.raises(RedressError, match="names no group"):
            with private_files(tmp_path, "no-such-group-redress"):
                pass
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(before)
