"""`redress` in a child process, forked from a process that has already imported the
heavy libraries (Great Expectations, Polars, DuckDB, pandas, SQLAlchemy), instead of a
new interpreter that imports them again: about 3 of the 4.5 seconds a `python -m
flows.cli` takes before it does anything.

Each command is still a process of its own: its own environment, working directory,
umask and file descriptors, killed by its own checkpoint (os._exit, as kill -9 leaves
it) without touching the test process. redress itself, Prefect and everything that
reads the environment when imported are imported fresh in the child, after the child's
environment is in place, as in a new interpreter. The tests that are about the
command as a new user starts it (the console script, `python -m`, Ctrl-C, kill -9 from
outside, a server that must stop with it) still start it with subprocess.

    run_redress(args, env=..., cwd=...) -> subprocess.CompletedProcess (text output)
"""

from __future__ import annotations

import atexit
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Imported once by the parent of every child. Nothing here may read redress's settings
# or Prefect's at import: those must see the child's environment.
PRELOAD = ("great_expectations", "polars", "duckdb", "pyarrow", "pandas", "sqlalchemy", "altair", "jinja2", "pydantic")

_SERVER = r"""
import json, os, struct, sys, time
for name in json.loads(sys.argv[1]):
    __import__(name)
requests, replies = os.fdopen(0, "rb", buffering=0), os.fdopen(1, "wb", buffering=0)

def read_exactly(n):
    data = b""
    while len(data) < n:
        chunk = requests.read(n - len(data))
        if not chunk:
            sys.exit(0)  # the test process is gone
        data += chunk
    return data

def child(request):
    code = 1
    try:
        import atexit, runpy, threading, traceback
        devnull = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_TRUNC)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_TRUNC)
        for fd, target in ((devnull, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
        sys.argv = [request["module"], *request["args"]]
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit:
            if exit.code is None:
                code = 0
            elif isinstance(exit.code, int):
                code = exit.code
            else:
                print(exit.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)

while True:
    (size,) = struct.unpack("!I", read_exactly(4))
    request = json.loads(read_exactly(size))
    pid = os.fork()
    if pid == 0:
        child(request)
    deadline = time.monotonic() + request["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            reply = {"returncode": os.waitstatus_to_exitcode(status)}
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            reply = {"timeout": True}
            break
        time.sleep(0.02)
    body = json.dumps(reply).encode()
    replies.write(struct.pack("!I", len(body)) + body)
"""


class _Parent:
    """The process the children are forked from, one per test process, started at the
    first command and stopped when the test process ends."""

    process: subprocess.Popen | None = None
    one_at_a_time = threading.Lock()

    @classmethod
    def ask(cls, request: dict) -> dict:
        with cls.one_at_a_time:
            return cls._ask(request)

    @classmethod
    def _ask(cls, request: dict) -> dict:
        if cls.process is None or cls.process.poll() is not None:
            cls.process = subprocess.Popen(
                [sys.executable, "-c", _SERVER, json.dumps(PRELOAD)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT,
            )
            atexit.register(cls.stop)
        body = json.dumps(request).encode()
        cls.process.stdin.write(struct.pack("!I", len(body)) + body)
        cls.process.stdin.flush()
        header = cls.process.stdout.read(4)
        if len(header) < 4:
            raise RuntimeError(f"the forking parent of test commands died (exit {cls.process.wait()})")
        (size,) = struct.unpack("!I", header)
        return json.loads(cls.process.stdout.read(size))

    @classmethod
    def stop(cls) -> None:
        if cls.process is not None and cls.process.poll() is None:
            cls.process.stdin.close()
            cls.process.wait(timeout=30)


def run_redress(args, *, env: dict | None = None, cwd: Path | None = None, timeout: float = 300,
                module: str = "flows.cli") -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS...` with environment `env` (default: this process's) in
    `cwd` (default: the repository), as subprocess.run(..., capture_output=True,
    text=True) gives it: the exit code (negative for a signal) and the output as text.
    Raises subprocess.TimeoutExpired after `timeout` seconds, the child killed."""
    umask = os.umask(0o077)
    os.umask(umask)
    with tempfile.TemporaryDirectory(prefix="redress-command-") as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        out.touch(mode=0o600), err.touch(mode=0o600)
        reply = _Parent.ask({
            "module": module, "args": [str(a) for a in args], "cwd": str(cwd or ROOT),
            "env": dict(os.environ if env is None else env), "umask": umask,
            "stdout": str(out), "stderr": str(err), "timeout": timeout,
        })
        command = [sys.executable, "-m", module, *map(str, args)]
        if reply.get("timeout"):
            raise subprocess.TimeoutExpired(command, timeout)
        return subprocess.CompletedProcess(
            command, reply["returncode"],
            out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8"))
