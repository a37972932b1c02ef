"""Helpers of the service tier: processes started, waited for and always ended."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
T = TypeVar("T")

TEST_SETTINGS = {
    "REDRESS_HMAC_KEY": "test-key-not-a-secret-0123456789abcdef",
    "REDRESS_DEBTOR_NAME": "Test Payer Corp.",
    "REDRESS_DEBTOR_ACCOUNT": "1002003004005",
    "REDRESS_DEBTOR_BANK_CODE": "020",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], T], timeout: float, every: float = 2.0,
             alive: subprocess.Popen | None = None, log: Path | None = None) -> T:
    """check() until it returns something truthy; fail after `timeout` seconds, or at once
    if the process `alive` has exited (showing the end of its log)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if alive is not None and alive.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            pytest.fail(f"process exited ({alive.returncode}) while waiting for {what}:\n{tail}")
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")
        time.sleep(every)


def stop(proc: subprocess.Popen, first: signal.Signals = signal.SIGTERM, grace: float = 30) -> None:
    """End a process started with start_new_session=True and everything it started
    (its process group): `first`, then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, first)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, e.g. a flow-run process
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a process working against this server: nothing inherited
        from the caller's PREFECT_* or REDRESS_* settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REDRESS_"))}
        env.update(PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home / "client"),
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", **TEST_SETTINGS)
        env.update(extra)
        return env
