"""Service tier: redress run as a service against a real `prefect server start`.

Schedules and automations only fire on a real server (the test harness' ephemeral one
runs no scheduler), so one is started for the session on a free port of 127.0.0.1, with
a temporary PREFECT_HOME and no analytics. Every process started here is ended here,
whatever happens, and every wait is bounded (service_processes.py).
"""

from __future__ import annotations

import subprocess

import httpx
import pytest

from service_processes import PREFECT, PrefectServer, free_port, stop, wait_for

SERVER_START_SECONDS = 180  # ~15 s on a quiet 2-core machine; generous under load


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real Prefect server for the session; this process's client points at it too."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home)
    log = home / "server.log"
    env = server.env(PREFECT_HOME=str(home / "server"))
    with log.open("w") as out:
        proc = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for("the Prefect server to answer", lambda: _healthy(server.api_url), SERVER_START_SECONDS,
                 alive=proc, log=log)
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server
    finally:
        stop(proc)
