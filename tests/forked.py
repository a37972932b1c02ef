"""`redress` in a child process, forked from a process that has already imported the
heavy libraries (Great Expectations, Polars, DuckDB, pandas, SQLAlchemy), instead of a
new interpreter that imports them again: about 4 of the 5 seconds a `python -m
flows.remediation` takes before it does anything.

Each command is still a process of its own: its own environment (TZ applied), working
directory, umask and file descriptors, killed by its own checkpoint (os._exit, as kill -9
leaves it) without touching the test process, and ended by the interpreter as a new one
ends (exit code, traceback, atexit, finalizers). redress itself and everything else that
reads the environment when imported are imported fresh in the child, after the child's
environment is in place. Prefect is preloaded too (about 1 s of CPU a command): its
settings, which it reads from the environment when imported, the child reads again from
its own (Prefect's `refresh_global_settings_context`), and so does `redress` once it has
set its own defaults for Prefect (flows/cli.py `_quiet_prefect`), as a new interpreter
reads them after those; Prefect sets up its logging when the child first imports
`prefect.main`, as a new interpreter does. The parent freezes what it preloaded
(gc.freeze): without that, a child's interpreter, as it ended, walked every preloaded
object and so copied the parent's pages (copy-on-write), 0.9 s of the 1.0 s a forked
`python -m this` took (0.15 s frozen). What differs from a new interpreter, and why it does not matter to the
tests that use it:
- commands run one at a time per test process (no test runs two at once);
- the command is done when its process ends: a grandchild still holding its output is
  not waited for (tests/runtime/test_prefect_server.py checks that nothing outlives a run);
- variables read when an interpreter or a preloaded library starts (READ_AT_START:
  PYTHON*, POLARS_*, the locale, HOME...) are the parent's; a command given other values
  gets a new interpreter instead;
- numpy's global random state is the parent's (Python's `random` is reseeded at fork).
The tests that are about the command as a person starts it (the console script, `python
-m`, a pipe, Ctrl-C, kill -9 from outside) still start a new interpreter.

    run_redress(args, env=..., cwd=...) -> subprocess.CompletedProcess (text output)
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Imported once by the parent of every child. Nothing here may read redress's settings
# at import, and Prefect's are read again in each child (`become`): those must see the
# child's environment.
PRELOAD = ("great_expectations", "polars", "duckdb", "pyarrow", "pandas", "sqlalchemy", "altair", "jinja2", "pydantic",
           "prefect", "prefect.flows")

_SERVER = r"""
import gc, json, os, struct, sys, time
for name in json.loads(sys.argv[1]):
    __import__(name)
gc.freeze()  # see the module's doc
requests, replies = os.fdopen(0, "rb", buffering=0), os.fdopen(1, "wb", buffering=0)

def read_exactly(n):
    data = b""
    while len(data) < n:
        chunk = requests.read(n - len(data))
        if not chunk:
            sys.exit(0)  # the test process is gone
        data += chunk
    return data

def become(request):
    # The forked child takes the request's files, folder, umask and environment, then
    # runs the module as `python -m` does. Whatever it raises leaves this loop, so the
    # interpreter ends as a new one would: SystemExit's code, a traceback and 1, a
    # KeyboardInterrupt as SIGINT, then atexit, finalizers and the flush of every file.
    requests.close()
    replies.close()
    opened = (os.open(os.devnull, os.O_RDONLY), os.open(request["stdout"], os.O_WRONLY | os.O_TRUNC),
              os.open(request["stderr"], os.O_WRONLY | os.O_TRUNC))
    for target, fd in enumerate(opened):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
        os.set_inheritable(target, True)  # os.open's are not: the command's own children need them
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    # What Prefect read from the parent's environment when the parent imported it: its
    # settings. Its logging is set up when prefect.main is imported, which the parent does
    # not do: the child's `from prefect import flow` does it, from the child's environment
    # (tests/runtime/test_forked_commands.py fails if a preload sets it up).
    if "prefect.context" in sys.modules:
        import prefect.context
        prefect.context.refresh_global_settings_context()
    sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
    sys.argv = [request["module"], *request["args"]]
    import runpy
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    sys.exit(0)

while True:
    (size,) = struct.unpack("!I", read_exactly(4))
    request = json.loads(read_exactly(size))
    pid = os.fork()
    if pid == 0:
        become(request)
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

# Read once when an interpreter or a preloaded library starts: a command whose
# environment sets them otherwise than the parent's gets a new interpreter instead.
# Prefect, preloaded, reads three when imported: HOME (its default home, whose profiles
# file its settings read when PREFECT_HOME is unset: prefect/settings/constants.py),
# SSL_CERT_FILE (the default of its API setting ssl_cert_file) and its plugin settings
# (plugins run when it is imported).
READ_AT_START = re.compile(
    r"PYTHON|POLARS_|LC_|LANG$|LANGUAGE$|OMP_|OPENBLAS_|MKL_|NUMEXPR_|RAYON_|ARROW_|HOME$|SSL_CERT_FILE$|PREFECT_PLUGINS_")


def read_at_start(env) -> dict[str, str]:
    """The part of an environment that READ_AT_START names."""
    return {k: v for k, v in env.items() if READ_AT_START.match(k)}


class _Parent:
    """The process the children are forked from, one per test process, in a session of
    its own (its children with it), started at the first command and stopped when the
    test process ends. Commands run one at a time."""

    process: subprocess.Popen | None = None
    started_with: dict[str, str] = {}
    one_at_a_time = threading.Lock()

    @classmethod
    def ask(cls, request: dict) -> dict:
        with cls.one_at_a_time:
            if cls.process is None or cls.process.poll() is not None:
                cls.started_with = read_at_start(os.environ)
                cls.process = subprocess.Popen(
                    [sys.executable, "-c", _SERVER, json.dumps(PRELOAD)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, start_new_session=True,
                )
            try:
                body = json.dumps(request).encode()
                cls.process.stdin.write(struct.pack("!I", len(body)) + body)
                cls.process.stdin.flush()
                header = cls.process.stdout.read(4)
                if len(header) < 4:
                    raise RuntimeError(f"the forking parent of test commands died (exit {cls.process.wait()})")
                (size,) = struct.unpack("!I", header)
                return json.loads(cls.process.stdout.read(size))
            except BaseException:
                # Interrupted, or the parent died: its reply, if any, must not become the
                # next command's, and the command must not run on. Start afresh.
                cls.kill()
                raise

    @classmethod
    def honours(cls, env: dict) -> bool:
        """Whether a child of the parent (started or to be started now) would see `env`
        as a new interpreter does."""
        running = cls.process is not None and cls.process.poll() is None
        return read_at_start(env) == (cls.started_with if running else read_at_start(os.environ))

    @classmethod
    def kill(cls) -> None:
        if cls.process is not None:
            try:
                os.killpg(cls.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            cls.process.wait()
            cls.process = None

    @classmethod
    def stop(cls) -> None:
        if cls.process is not None and cls.process.poll() is None:
            cls.process.stdin.close()
            try:
                cls.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        cls.kill()


atexit.register(_Parent.stop)


def run_redress(args, *, env: dict | None = None, cwd: Path | None = None, timeout: float = 300,
                module: str = "flows.cli") -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS...` with environment `env` (default: this process's) in
    `cwd` (default: the repository), as subprocess.run(..., capture_output=True,
    text=True) gives it: the exit code (negative for a signal) and the output as text.
    Raises subprocess.TimeoutExpired after `timeout` seconds, the child killed. An `env`
    that sets what an interpreter reads only when it starts (READ_AT_START) otherwise
    than the forking parent had it gets a new interpreter."""
    env = dict(os.environ if env is None else env)
    command = [sys.executable, "-m", module, *map(str, args)]
    if not _Parent.honours(env):
        return subprocess.run(command, env=env, cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout)
    umask = os.umask(0o077)
    os.umask(umask)
    with tempfile.TemporaryDirectory(prefix="redress-command-") as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        out.touch(mode=0o600), err.touch(mode=0o600)
        reply = _Parent.ask({
            "module": module, "args": [str(a) for a in args], "cwd": str(cwd or ROOT), "env": env,
            "umask": umask, "stdout": str(out), "stderr": str(err), "timeout": timeout,
        })
        if reply.get("timeout"):
            raise subprocess.TimeoutExpired(command, timeout)
        return subprocess.CompletedProcess(
            command, reply["returncode"], out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8"))
