"""redress/shipped.py and the wheel: an installed redress carries every expectation suite
and policy file, byte for byte, and finds them without the source tree (issue 11, item 7)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from redress.checks.suites import EXPECTATIONS_DIR
from redress.policy import DEFAULT_POLICY
from redress.shipped import shipped_dir

ROOT = Path(__file__).resolve().parents[2]


def test_the_built_wheel_holds_every_suite_and_policy_file_as_in_the_repository(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT), "-w", str(tmp_path)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("redress-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = {name: zf.read(name) for name in zf.namelist() if name.startswith("redress/_data/")}
    expected = {f"redress/_data/{folder}/{p.name}": p.read_bytes()
                for folder in ("expectations", "policies") for p in sorted((ROOT / folder).iterdir()) if p.is_file()}
    assert len(expected) >= 9  # seven suites, two policies today
    assert shipped == expected


def test_from_the_source_tree_the_repository_folders_are_used():
    assert shipped_dir("expectations") == EXPECTATIONS_DIR == ROOT / "expectations"
    assert DEFAULT_POLICY == ROOT / "policies" / "coupang-2025-v1.toml"


def test_an_installed_copy_is_preferred(tmp_path, monkeypatch):
    """Inside an installed package, redress/_data/<name> is what is found."""
    import redress.shipped as shipped

    package = tmp_path / "redress"
    (package / "_data" / "policies").mkdir(parents=True)
    monkeypatch.setattr(shipped, "files", lambda name: package)
    assert shipped.shipped_dir("policies") == package / "_data" / "policies"


def test_a_folder_that_is_not_shipped_is_refused_by_name():
    with pytest.raises(ValueError, match="'data'"):
        shipped_dir("data")
