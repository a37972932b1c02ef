"""The temporary Prefect server of one `redress run` / `redress demo`, which dies with it.

Without a configured PREFECT_API_URL, Prefect 3.9 starts an ephemeral API server as a
child process (`prefect.server.api.server.SubprocessASGIServer`) and stops it from an
`atexit` hook. A `kill -9` of the command runs no hook: the child is re-parented to init
and keeps its port and memory for ever. Prefect offers no hook to change how that child
is started, so the command starts the same server itself, with the Linux parent-death
signal set to SIGKILL, and points Prefect at it through PREFECT_API_URL; Prefect then
never starts its own.

The command mirrors `SubprocessASGIServer._run_uvicorn_command` of Prefect 3.9
(tests/runtime/test_prefect_server.py fails loudly when that internal changes).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Callable, Iterator

from redress import escape
from redress.errors import RedressError
from redress.runtime.pipes import child_streams

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_WAIT_SECONDS = 5


def _die_with(parent_pid: int):
    """preexec_fn of the server child: SIGKILL when the thread that started it ends.

    PDEATHSIG follows the creating *thread*: the server is started from the command's
    main thread, which lives exactly as long as the command. The getppid check closes
    the race of a parent killed between fork and prctl."""

    def set_signal() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(70)
        if os.getppid() != parent_pid:
            os._exit(70)

    return set_signal


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _command(port: int) -> list[str]:
    import prefect

    return [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
            "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "error", "--lifespan", "on"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def launch() -> tuple[subprocess.Popen, str]:
    """A Prefect API server child on a free local port, started and not waited for, and
    its API URL (`wait_healthy` waits)."""
    if not sys.platform.startswith("linux"):
        raise RedressError("redress run starts its own Prefect server only on Linux: set PREFECT_API_URL")
    port = _free_port()
    # A run's own server sends no usage data and prints no notice about it: the
    # server's telemetry service reads PREFECT_SERVER_ANALYTICS_ENABLED, and `import
    # prefect` in the child (its stderr may be the user's terminal) shows the notice and
    # sends SDK events unless DO_NOT_TRACK is set (prefect/_internal/analytics, 3.9).
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
           "PREFECT__SERVER_FINAL": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    # A process group of its own: Ctrl-C on a terminal signals the whole foreground
    # group, and a server stopped by it left the command retrying against it for
    # minutes (reporting the interrupted run, sending its logs). The command stops the
    # server itself once it has finished with it (`temporary_server`), and the
    # parent-death signal covers a command that dies without doing so.
    child = subprocess.Popen(_command(port), env=env, stdin=subprocess.DEVNULL, **child_streams(),
                             preexec_fn=_die_with(os.getpid()), process_group=0)
    return child, f"http://127.0.0.1:{port}/api"


# Less free space than this where the server keeps its database is named as the likely
# cause when it fails to start (its SQLite file and write-ahead log need room to open).
LOW_DISK_BYTES = 64 << 20


def _short_of_disk() -> str:
    """`: PREFECT_HOME (<path>) has only N MB free` when the server's database folder is
    short of space, else "" (found by the platform review: a full PREFECT_HOME gave only
    "exited with status 3")."""
    from prefect.settings import get_current_settings

    home = Path(get_current_settings().home)
    try:
        free = shutil.disk_usage(home).free
    except OSError:
        return ""
    if free >= LOW_DISK_BYTES:
        return ""
    return f": PREFECT_HOME ({home}) has only {free >> 20} MB free, too little for its database"


def wait_healthy(child: subprocess.Popen, url: str, timeout_seconds: float) -> None:
    """Return once the launched server answers. Raises RedressError (one line) when it
    exits or is not healthy within the timeout, having stopped it."""
    deadline = time.monotonic() + timeout_seconds
    try:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise RedressError(f"the temporary Prefect server exited with status {child.returncode} while "
                                   f"starting{_short_of_disk()}")
            if _healthy(url):
                return
            time.sleep(0.1)
        raise RedressError(f"the temporary Prefect server did not answer within {timeout_seconds:.0f} s")
    except BaseException:  # Ctrl-C while waiting included
        stop(child)
        raise


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _drain_prefect() -> None:
    """Send Prefect's queued logs and events before the server goes, as Prefect's own
    test harness does; otherwise they fail at exit with a connection error. Best effort:
    a run's outcome is already in the warehouse."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for drain in (APILogWorker.drain_all, EventsWorker.drain_all):
        try:
            drain()
        except Exception:  # noqa: BLE001 - never hide the run's own error behind this
            pass


def refuse_unwritable_home(home: Path) -> None:
    """RedressError (one line) when the temporary server could not keep its database in
    Prefect's home folder `home` (PREFECT_HOME, default ~/.prefect): it cannot be made or
    written. Found by review: a service account's home that is read-only or missing
    (`HOME=/nonexistent`) failed every run with "the temporary Prefect server exited with
    status 3 while starting", saying neither why nor what to do."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        raise RedressError(f"the temporary Prefect server keeps its database in Prefect's home folder, and "
                           f"{escape.terminal(str(home))} cannot be written ({exc.strerror or exc}): set PREFECT_HOME "
                           "to a folder this account may write, or PREFECT_API_URL to a running server") from None


# How long the check of a configured server waits for each answer.
CHECK_SECONDS = 10


def configured_server_refusal(url: str) -> str | None:
    """`_server_refusal`, given up after 3 x CHECK_SECONDS in all: a server that answers a
    byte at a time keeps each read within its timeout (found by the fix review: 120 s
    and still waiting). The check runs in a daemon thread, left behind when late."""
    import contextvars
    import threading

    found: list[str | None] = []
    settings = contextvars.copy_context()  # Prefect's settings as this thread has them

    def check() -> None:
        try:
            found.append(settings.run(_server_refusal, url))
        except Exception as exc:  # found by the fix review: an answer not an API's was taken for no answer
            found.append(f"the Prefect server at {escape.terminal(url)} answered, but not as a Prefect API "
                         f"({type(exc).__name__}): is PREFECT_API_URL the API's address (ending in /api)?")

    worker = threading.Thread(target=check, daemon=True, name="redress-server-check")
    worker.start()
    worker.join(3 * CHECK_SECONDS)
    if not found:
        return (f"the Prefect server at {escape.terminal(url)} did not answer within {3 * CHECK_SECONDS} s: is it "
                "overloaded, or is PREFECT_API_URL another service?")
    return found[0]


def _server_refusal(url: str) -> str | None:
    """Why the Prefect server at `url` (PREFECT_API_URL) cannot be used by this process,
    as one line; None when it can. Found by review: a server that was down, or one
    asking for basic authentication (PREFECT_SERVER_API_AUTH_STRING) of a process
    without PREFECT_API_AUTH_STRING, stopped `redress run` with a traceback. Its health
    check needs no credentials; its version does."""
    import httpx
    from prefect import get_client
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    shown = escape.terminal(url)
    # Found by the fix review: a server that takes the connection and never answers (or
    # a firewall that drops it) held the command silent for minutes: Prefect's client
    # waits 60 s a request and retries five times. Asked once, within seconds.
    with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}), \
            get_client(httpx_settings={"timeout": httpx.Timeout(CHECK_SECONDS)}, sync_client=True) as client:
        failure = client.api_healthcheck()
        if failure is not None:
            return (f"cannot reach the Prefect server at {shown} ({type(failure).__name__}, within "
                    f"{CHECK_SECONDS} s): is `prefect server start` running, and is PREFECT_API_URL its address?")
        try:
            client.api_version()
        except httpx.TimeoutException as exc:
            return (f"the Prefect server at {shown} did not answer within {CHECK_SECONDS} s "
                    f"({type(exc).__name__}): is it overloaded, or is PREFECT_API_URL another service?")
        except PrefectHTTPStatusError as exc:
            status = exc.response.status_code
            if status in (401, 403):
                return (f"the Prefect server at {shown} refused this process ({status}): set PREFECT_API_AUTH_STRING "
                        "to the server's PREFECT_SERVER_API_AUTH_STRING (user:password)")
            return f"the Prefect server at {shown} answered {status} to this process"
    return None


@contextmanager
def temporary_server(meanwhile: Callable[[], object] = lambda: None,
                     while_waiting: Callable[[], object] = lambda: None,
                     checked: bool = False) -> Iterator[str | None]:
    """For the duration of the block, Prefect talks to a server that cannot outlive this
    process: the configured one when PREFECT_API_URL is set (yields None), else a
    temporary child (yields its API URL; flow runs send it no heartbeats). `meanwhile`
    runs while the child starts (the command imports its flow then: both take seconds,
    one in each process), and always runs, server or not. `while_waiting` runs after it
    only when a child starts: work the command will probably need later, done in seconds
    it would otherwise spend waiting for the server (with a configured server it is
    left to the moment it is needed, if ever). If either raises, the child is stopped.
    A configured server is checked first (configured_server_refusal, RedressError) unless
    the caller has `checked` it already."""
    from prefect.settings import (PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings,
                                  temporary_settings)

    if get_current_settings().api.url:
        refused = None if checked else configured_server_refusal(get_current_settings().api.url)
        if refused is not None:
            raise RedressError(refused)
        meanwhile()
        yield None
        return
    from redress.runtime import progress

    timeout = float(get_current_settings().server.ephemeral.startup_timeout_seconds)
    refuse_unwritable_home(Path(get_current_settings().home))
    progress.note("starting a temporary Prefect server for this run (PREFECT_API_URL is not set)...")
    child, url = launch()
    try:
        meanwhile()
        while_waiting()
    except BaseException:
        stop(child)
        raise
    wait_healthy(child, url, timeout)
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url  # for anything that reads the environment again
    try:
        # No flow-run heartbeats to a server nobody watches and which ends with this
        # command: they are Prefect's crash detection for a lasting server, and their
        # thread sleeps in one-second steps that the end of every flow run waits out
        # (0 to 1 s per run). A configured server (above) keeps them.
        with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield url
    finally:
        _drain_prefect()
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
        stop(child)
