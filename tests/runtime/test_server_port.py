"""The README's Prefect server on another port than 4200 (issue 14): the UI asks the
server's /ui-settings for its API URL, which Prefect 3.9 derives from
PREFECT_SERVER_API_PORT (or takes from PREFECT_UI_API_URL / PREFECT_API_URL), not
from `prefect server start --port`: with --port alone the UI would call port 4200."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PRINT_UI_API_URL = "from prefect.settings import get_current_settings as s; print(s().server.ui.api_url)"


def ui_api_url(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    clean.update(PREFECT_HOME=os.environ.get("PREFECT_HOME", "/nonexistent"), DO_NOT_TRACK="1", **env)
    done = subprocess.run([sys.executable, "-c", PRINT_UI_API_URL], capture_output=True, text=True, env=clean,
                          timeout=120, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize("env", [{"PREFECT_SERVER_API_PORT": "4350"},
                                 {"PREFECT_UI_API_URL": "http://127.0.0.1:4350/api"},
                                 {"PREFECT_API_URL": "http://127.0.0.1:4350/api"}])
def test_the_ui_calls_the_port_the_readme_sets(env):
    assert ui_api_url(**env) == "http://127.0.0.1:4350/api"


def test_without_them_the_ui_calls_4200():
    assert ui_api_url() == "http://127.0.0.1:4200/api"
