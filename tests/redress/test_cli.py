"""The command line's expected errors: non-zero exit, one line on stderr, no traceback."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def redress(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "redress.cli", *args], capture_output=True, text=True,
        env=full_env, cwd=cwd or ROOT, timeout=300,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_missing_data_folder(tmp_path):
    line = one_line_error(redress("--data-dir", str(tmp_path / "nowhere"), "run"))
    assert "does not exist" in line and "nowhere" in line


def test_bad_policy_names_the_key(tmp_path):
    policy = (ROOT / "policies" / "coupang-2025-v1.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(policy.replace("1 = 50000", "1 = 50000.5"))
    (tmp_path / "data" / "inbox").mkdir(parents=True)
    line = one_line_error(redress("--data-dir", str(tmp_path / "data"), "run", "--policy", str(bad)))
    assert "tiers.1" in line
    assert not (tmp_path / "data" / "warehouse.duckdb").exists(), "refused before any data is touched"


def test_missing_policy_file(tmp_path):
    (tmp_path / "inbox").mkdir()
    line = one_line_error(redress("--data-dir", str(tmp_path), "run", "--policy", str(tmp_path / "nope.toml")))
    assert "policy file not found" in line


def test_unknown_setting_is_refused(tmp_path):
    line = one_line_error(redress("--data-dir", str(tmp_path), "explain", "C1", env={"REDRESS_DATADIR": "x"}))
    assert "REDRESS_DATADIR" in line


def test_bad_run_date(tmp_path):
    (tmp_path / "inbox").mkdir()
    line = one_line_error(redress("--data-dir", str(tmp_path), "run", "--run-date", "01/12/2025"))
    assert "--run-date" in line


def test_explain_without_warehouse(tmp_path):
    line = one_line_error(redress("--data-dir", str(tmp_path), "explain", "C1"))
    assert "no warehouse" in line


@pytest.mark.e2e
def test_a_second_run_on_a_locked_folder_is_refused(tmp_path):
    (tmp_path / "inbox").mkdir()
    fd = os.open(tmp_path / ".redress.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "REDRESS_HMAC_KEY": "k" * 32}
        line = one_line_error(redress("--data-dir", str(tmp_path), "run", env=env))
    finally:
        os.close(fd)
    assert "another redress run" in line
    assert not (tmp_path / "warehouse.duckdb").exists()
