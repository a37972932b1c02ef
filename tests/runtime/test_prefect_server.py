"""Nothing a `redress run` starts outlives it, even after kill -9 (issue 9, item 5)."""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from redress.generate import generate

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 180


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_the_server_command_mirrors_prefect():
    """redress.runtime.prefect_server copies how Prefect 3.9 starts its ephemeral server: if this
    fails, Prefect changed that internal; compare and update prefect_server._command."""
    import prefect
    from prefect.server.api.server import SubprocessASGIServer

    from redress.runtime.prefect_server import _command

    assert prefect.__version__ == "3.9.1"
    source = inspect.getsource(SubprocessASGIServer._run_uvicorn_command)
    for part in _command(4200)[1:]:
        if part != "4200" and not part.startswith("/"):
            assert repr(part).replace("'", '"') in source, part
    for key in ("PREFECT_UI_ENABLED", "PREFECT__SERVER_EPHEMERAL", "PREFECT__SERVER_FINAL"):
        assert key in source


@contextlib.contextmanager
def a_run(data: Path, prefect_home: Path, **output) -> Iterator[tuple[subprocess.Popen, list[int]]]:
    """`redress run` on `data` in a session of its own (its own process group, as a
    command started from a terminal), starting its own temporary Prefect server; yields
    the process and a list for the server's pid. On leaving, whatever is left of either
    is killed. `output`: Popen's stdout, stderr, text."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDRESS_", "PREFECT_"))}
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               REDRESS_HMAC_KEY="0123456789abcdeffedcba98765432100f1e2d3c4b5a6978")
    run = subprocess.Popen([sys.executable, "-m", "flows.cli", "--data-dir", str(data), "run"],
                           env=env, cwd=ROOT, start_new_session=True, **output)
    server: list[int] = []
    try:
        yield run, server
    finally:
        for pid in server:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone(pid: int, seconds: float = 30) -> bool:
    """Whether process `pid` has ended, waiting up to `seconds` for it."""
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


@pytest.mark.e2e
def test_kill_9_of_a_run_leaves_no_server_behind(tmp_path):
    data = tmp_path / "data"
    generate(data, 100, seed=5)  # long enough a run to be caught with its server up
    # A PREFECT_HOME of its own: a server killed while it migrates may leave its
    # database half made.
    with a_run(data, tmp_path / "prefect", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as (run, server):
        deadline = time.monotonic() + WAIT_SECONDS
        while not server and time.monotonic() < deadline and run.poll() is None:
            server += [c for c in children(run.pid) if "uvicorn" in cmdline(c)]
            time.sleep(0.1)
        assert server, "the run started a Prefect server child"
        os.kill(run.pid, signal.SIGKILL)  # the parent only, not its group
        run.wait(timeout=30)
        # The server has a process group of its own (a terminal's Ctrl-C must not reach
        # it): followed by its pid, as well as the run's group.
        assert gone(server[0]), "the killed run's Prefect server survived"
        deadline = time.monotonic() + 30
        while group_members(run.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group_members(run.pid) == [], "a process of the killed run survived"


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory):
    """A PREFECT_HOME for the tests whose servers stop cleanly: its database is made
    (Prefect's migrations, seconds) once for them."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.mark.e2e
def test_ctrl_c_on_a_terminal_ends_a_run_at_once_in_one_line_and_stops_its_server(tmp_path, prefect_home):
    """A terminal's Ctrl-C signals the whole foreground process group. The run's own
    Prefect server is not in it: stopped by the signal, the server left the command
    retrying against it for minutes before it printed anything.

    Ctrl-C is pressed again every 3 s until the command ends, as a person does: Python
    drops a KeyboardInterrupt raised inside an object's finalizer (it prints "Exception
    ignored in ..." and goes on), which a loaded machine showed once. A press that comes
    after the command's one line, while Python shuts down, ends it by the signal."""
    data = tmp_path / "data"
    generate(data, 2000, seed=5)  # a run of several seconds: still running at the second press
    with a_run(data, prefect_home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as (run, server):
        for line in run.stdout:  # the flow is running once a stage has started
            if line.startswith("ingest      started"):
                break
        server += [c for c in children(run.pid) if "uvicorn" in cmdline(c)]
        assert server, "the run started a Prefect server child"
        interrupted = time.monotonic()
        # Without its own process group the server died and the command kept retrying
        # for minutes; 60 s leaves a loaded machine room and still tells the two apart.
        while run.poll() is None and time.monotonic() - interrupted < 60:
            os.killpg(run.pid, signal.SIGINT)  # as a terminal does: the whole foreground group
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.wait(timeout=3)
        assert run.poll() is not None, "the interrupted run did not end within 60 s"
        stderr = run.stderr.read()
        assert run.returncode in (130, -signal.SIGINT), stderr
        # The one line is the command's; only Python's own notes of a dropped interrupt
        # may come before it.
        lines = stderr.strip().splitlines()
        assert lines[-1] == "redress: interrupted", stderr
        assert all(line.startswith(("Exception ignored in", " ", "KeyboardInterrupt", "Traceback"))
                   for line in lines[:-1] if line), stderr
        assert stderr.count("Exception ignored in") == stderr.count("Traceback"), stderr
        assert gone(server[0]), "the interrupted run's Prefect server survived"


SERVER_PROBE = r"""
import os, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from prefect.settings import get_current_settings
from redress.runtime.prefect_server import _healthy, temporary_server

def servers():
    found = []
    for task in Path(f"/proc/{{os.getpid()}}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if b"uvicorn" in Path(f"/proc/{{child}}/cmdline").read_bytes():
                    found.append(child)
            except OSError:
                pass
    return found

seen = []
def failing():
    seen.append(len(servers()))
    raise ValueError("import failed")
try:
    with temporary_server(meanwhile=failing):
        print("block ran")
except ValueError as exc:
    print("raised", exc)
print("launched before the failure", seen[0], "left", len(servers()))

def heartbeat():
    return get_current_settings().flows.heartbeat_frequency

print("heartbeat before", heartbeat())
with temporary_server(meanwhile=lambda: seen.append(len(servers())),
                      while_waiting=lambda: seen.append(("waiting", len(servers())))) as url:
    print("launched meanwhile", seen[1], "then", seen[2], "healthy", _healthy(url), "heartbeat", heartbeat())
print("left", len(servers()), "heartbeat", heartbeat())
from prefect.settings import PREFECT_API_URL, temporary_settings
import redress.runtime.prefect_server as prefect_server_module
try:  # nothing listens on port 9: refused before anything runs
    with temporary_settings(updates={{PREFECT_API_URL: "http://127.0.0.1:9/api"}}), \
            temporary_server(meanwhile=lambda: seen.append("meanwhile")):
        print("block ran")
except Exception as exc:
    print("refused", type(exc).__name__, str(exc).split(" (")[0], "ran", seen[3:])
prefect_server_module.configured_server_refusal = lambda url: None  # as a server that answers
with temporary_settings(updates={{PREFECT_API_URL: "http://127.0.0.1:9/api"}}), \
        temporary_server(meanwhile=lambda: seen.append("meanwhile"), while_waiting=lambda: seen.append("waiting")) as url:
    print("configured", url, "heartbeat", heartbeat(), "servers", len(servers()), "ran", seen[3:])

def waiting_fails():
    raise ValueError("preload failed")
try:
    with temporary_server(while_waiting=waiting_fails):
        print("block ran")
except ValueError as exc:
    print("raised", exc, "left", len(servers()))
"""


def test_the_flow_is_imported_while_the_server_starts_and_a_failure_there_stops_it(tmp_path, prefect_home):
    """`temporary_server(meanwhile=...)`: the command's import runs once the server child
    is launched (both take seconds, each in its own process); an import that fails stops
    the child and raises its own error; the block runs with a healthy server and no
    flow-run heartbeats (Prefect's default, 180 s, before and after it, and with a
    configured server); nothing is left after either. `while_waiting` runs after
    `meanwhile` with the child launched, never with a configured server, and a failure
    there also stops the child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDRESS_", "PREFECT_"))}
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    out = subprocess.run([sys.executable, "-c", SERVER_PROBE.format(root=str(ROOT))], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=WAIT_SECONDS)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == [
        "raised import failed",
        "launched before the failure 1 left 0",
        "heartbeat before 180",
        "launched meanwhile 1 then ('waiting', 1) healthy True heartbeat None",
        "left 0 heartbeat 180",
        "refused RedressError cannot reach the Prefect server at http://127.0.0.1:9/api ran []",
        "configured None heartbeat 180 servers 0 ran ['meanwhile']",
        "raised preload failed left 0",
    ]


WIRING_PROBE = """
import contextlib, sys
from datetime import date
from pathlib import Path
sys.path.insert(0, {root!r})
import flows.cli as cli
from redress.runtime import prefect_server

@contextlib.contextmanager
def recording(meanwhile=lambda: None, while_waiting=lambda: None):
    meanwhile()
    print("flow imported", "flows.remediation" in sys.modules, "gx", "great_expectations" in sys.modules)
    while_waiting()
    print("while waiting", "gx", "great_expectations" in sys.modules,
          "shim", "redress.checks.gx_duckdb" in sys.modules)
    raise SystemExit(0)

prefect_server.temporary_server = recording
cli.check_before_prefect = lambda *args: None
cli.run_pipeline(Path("."), None, date(2025, 12, 1), None)
"""


def test_a_run_imports_great_expectations_while_its_server_starts(tmp_path):
    """`redress run` hands the import of Great Expectations (3 to 4 s, needed by its
    first suite) to `while_waiting`: done while the temporary server starts, not in the
    flow run. Importing the flow alone does not import it (else the preload is moot)."""
    out = subprocess.run([sys.executable, "-c", WIRING_PROBE.format(root=str(ROOT))], cwd=tmp_path,
                         capture_output=True, text=True, timeout=WAIT_SECONDS)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["flow imported True gx False", "while waiting gx True shim True"]


CTRL_C_IN_SHUTDOWN = r"""
import atexit, os, signal, sys, time
sys.path.insert(0, {root!r})
from flows import cli

def slow_shutdown():  # a finalizer-like step of Python's shutdown, as Prefect's threads are
    print("shutting down", flush=True)
    time.sleep(10)

def interrupted(args, settings):
    raise KeyboardInterrupt

atexit.register(slow_shutdown)
cli.parse = lambda argv: type("Args", (), {{"func": staticmethod(interrupted), "verbose": False, "data_dir": None}})()
sys.exit(cli.main([]))
"""


def test_a_ctrl_c_after_the_interrupted_line_ends_the_command_by_the_signal_at_once(tmp_path):
    """Found in CI on a loaded machine: a second Ctrl-C pressed while Python shut down,
    after "redress: interrupted", was raised inside a finalizer, which Python drops,
    printing its note and traceback after the command's one line. After that line a
    press now ends the command by the signal: nothing more is printed."""
    script = tmp_path / "shutdown.py"
    script.write_text(CTRL_C_IN_SHUTDOWN.format(root=str(ROOT)))
    env = {**os.environ, "REDRESS_HMAC_KEY": "0123456789abcdeffedcba98765432100f1e2d3c"}
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=tmp_path, env=env) as command:
        assert command.stdout.readline() == "shutting down\n"
        started = time.monotonic()
        command.send_signal(signal.SIGINT)
        _, stderr = command.communicate(timeout=30)
    assert time.monotonic() - started < 5  # at once, not after the 10-s step
    assert command.returncode == -signal.SIGINT
    assert stderr.splitlines() == ["redress: interrupted"], stderr


class _NotAnApi(__import__("http.server").server.BaseHTTPRequestHandler):
    """A web server that answers its health but is no Prefect API (an HTML page)."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        ok = self.path.rstrip("/").endswith("/health")
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if ok else "text/html")
        self.end_headers()
        self.wfile.write(b"true" if ok else b"<html>hello</html>")

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(handler) -> Iterator[str]:
    """A local HTTP server answering with `handler`, as an API URL, for the block."""
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()


def test_a_configured_url_that_is_no_prefect_api_is_one_line(capfd):
    """Found by the fix review: an answer that was not an API's raised in the check's
    thread, printed a traceback and was taken for no answer."""
    with serving(_NotAnApi) as url:
        refused = refusal_at(url)
    assert refused.startswith(f"the Prefect server at {url} answered, but not as a Prefect API (")
    assert "Traceback" not in capfd.readouterr().err


class _AuthAsking(__import__("http.server").server.BaseHTTPRequestHandler):
    """A server answering as a Prefect server with basic authentication does: its health
    check open, its API refused without credentials."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        ok = self.path.rstrip("/").endswith("/health")
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"true" if ok else b'{"exception_message": "Unauthorized"}')

    def log_message(self, *args):
        pass


def refusal_at(url: str) -> str | None:
    """configured_server_refusal with Prefect's settings pointing at `url`, as a command's are."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from redress.runtime import prefect_server as module

    with temporary_settings(updates={PREFECT_API_URL: url}):
        return module.configured_server_refusal(url)


def test_a_configured_server_that_never_answers_is_one_line_within_seconds(monkeypatch):
    """Found by the fix review: a server that took the connection and never answered
    held `redress run` silent for minutes (60 s a request, five retries)."""
    import socket

    from redress.runtime import prefect_server as module

    monkeypatch.setattr(module, "CHECK_SECONDS", 1)
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)  # takes connections, never answers
        url = f"http://127.0.0.1:{mute.getsockname()[1]}/api"
        started = time.monotonic()
        refused = refusal_at(url)
        assert time.monotonic() - started < 10
    assert refused == (f"cannot reach the Prefect server at {url} (ReadTimeout, within 1 s): is `prefect server "
                       "start` running, and is PREFECT_API_URL its address?")


def test_a_configured_server_that_is_down_or_asks_for_credentials_is_one_line():
    """Found by review: with PREFECT_API_URL at a server that was down, or one set up
    with PREFECT_SERVER_API_AUTH_STRING while this process has no
    PREFECT_API_AUTH_STRING, `redress run` stopped with a traceback."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    down = f"http://127.0.0.1:{closed}/api"
    assert refusal_at(down) == (
        f"cannot reach the Prefect server at {down} (ConnectError, within 10 s): is `prefect server start` running, "
        "and is PREFECT_API_URL its address?")
    with serving(_AuthAsking) as asking:
        assert refusal_at(asking) == (
            f"the Prefect server at {asking} refused this process (401): set PREFECT_API_AUTH_STRING to the "
            "server's PREFECT_SERVER_API_AUTH_STRING (user:password)")


def test_a_configured_server_that_answers_a_byte_at_a_time_is_given_up_on(monkeypatch):
    """Found by the fix review: each read kept within its timeout, and the check went on
    for minutes. The whole check is given up after three times the wait."""
    import socket
    import threading

    from redress.runtime import prefect_server as module

    monkeypatch.setattr(module, "CHECK_SECONDS", 1)
    with socket.socket() as slow:
        slow.bind(("127.0.0.1", 0))
        slow.listen(8)

        def trickle():
            connection, _ = slow.accept()
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ntrue":
                try:
                    connection.send(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.5)

        threading.Thread(target=trickle, daemon=True).start()
        url = f"http://127.0.0.1:{slow.getsockname()[1]}/api"
        started = time.monotonic()
        refused = refusal_at(url)
        assert time.monotonic() - started < 6
    assert refused == (f"the Prefect server at {url} did not answer within 3 s: is it overloaded, or is "
                       "PREFECT_API_URL another service?")
