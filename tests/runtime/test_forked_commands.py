"""The tests' forked commands (tests/forked.py) behave as `subprocess.run` of a new
interpreter would: exit code, output, environment, working folder, umask, a kill, an
interruption of the caller, and the end of the interpreter."""

from __future__ import annotations

import os
import signal
import sys
import subprocess

import pytest

from forked import run_redress

PROBE = """
import os, sys, time
print("out", os.getcwd(), os.environ.get("PROBE"), "REDRESS_X" in os.environ, oct(os.umask(0)), sys.argv[1:])
print("err", file=sys.stderr)
how = sys.argv[1]
if how == "kill":
    os._exit(77)
if how == "signal":
    os.kill(os.getpid(), 9)
if how == "raise":
    raise ValueError("boom")
if how == "interrupt":
    raise KeyboardInterrupt
if how == "sleep":
    time.sleep(60)
if how == "zone":
    print(time.strftime("%Z", time.localtime(0)))
if how == "threads":
    import polars
    print(polars.thread_pool_size())
if how == "prefect":
    import logging, prefect.main, prefect.settings  # prefect.main sets up Prefect's logging
    settings = prefect.settings.get_current_settings()
    print(settings.api.url, settings.home, logging.getLogger("prefect").level)
if how == "warn":
    import logging
    logging.getLogger("some.library").warning("a warning before Prefect is used")
    print([type(h).__name__ for h in logging.getLogger().handlers])
if how == "home":
    import prefect.settings.constants
    print(prefect.settings.constants.DEFAULT_PREFECT_HOME)
if how == "frozen":
    import gc
    print(gc.get_freeze_count())
if how == "grandchild":
    import subprocess
    subprocess.run([sys.executable, "-c", "import sys; print('from the grandchild'); print('its error', file=sys.stderr)"])
if how == "finalizer":
    class Noisy:
        def __del__(self):
            raise RuntimeError("in a finalizer")
    kept = Noisy()  # finalized when the interpreter ends, as in a new one
    sys.stdout.write("buffered, never flushed by hand")
sys.exit(int(how) if how.isdigit() else 0)
"""


@pytest.fixture
def probe(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    return tmp_path


def env(**extra) -> dict:
    return {**{k: v for k, v in os.environ.items() if k != "REDRESS_X"}, "PROBE": "yes", **extra}


@pytest.mark.parametrize("how, code", [("0", 0), ("3", 3), ("kill", 77), ("signal", -9), ("raise", 1),
                                       ("interrupt", -2)])
def test_a_forked_command_ends_as_a_new_process_would(probe, monkeypatch, how, code):
    monkeypatch.setenv("REDRESS_X", "in the test process only")
    old = os.umask(0o027)
    try:
        done = run_redress([how], env=env(), cwd=probe, module="probe")
    finally:
        os.umask(old)
    assert done.returncode == code
    if how != "signal":
        assert done.stdout == f"out {probe} yes False 0o27 ['{how}']\n"
    assert done.stderr.startswith("err\n")
    assert ("ValueError: boom" in done.stderr) == (how == "raise")


def test_a_forked_command_ends_its_interpreter_as_a_new_one_does(probe):
    done = run_redress(["finalizer"], env=env(), cwd=probe, module="probe")
    assert done.returncode == 0
    assert done.stdout.endswith("buffered, never flushed by hand")
    assert "RuntimeError: in a finalizer" in done.stderr


def test_the_children_of_a_forked_command_write_to_its_output(probe):
    done = run_redress(["grandchild"], env=env(), cwd=probe, module="probe")
    assert done.returncode == 0
    assert done.stdout.endswith("from the grandchild\n") and done.stderr == "err\nits error\n"


def test_a_forked_command_sees_its_own_time_zone(probe):
    assert run_redress(["zone"], env=env(TZ="Asia/Seoul"), cwd=probe, module="probe").stdout.endswith("KST\n")
    assert run_redress(["zone"], env=env(TZ="UTC"), cwd=probe, module="probe").stdout.endswith("UTC\n")


def test_what_an_interpreter_reads_at_its_start_gets_a_new_interpreter(probe):
    """POLARS_MAX_THREADS is read when Polars is imported, which the forking parent did."""
    done = run_redress(["threads"], env=env(POLARS_MAX_THREADS="1"), cwd=probe, module="probe")
    assert done.returncode == 0 and done.stdout.endswith("\n1\n")


def new_interpreter(how: str, cwd, environment: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "probe", how], env=environment, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_a_forked_command_reads_prefect_s_settings_from_its_own_environment(probe, tmp_path):
    """Prefect is imported by the forking parent, which reads its settings from the
    parent's environment then: each child reads them again from its own and sets up
    Prefect's logging from it, as a new interpreter does, and the next command does not
    see the last one's."""
    home = tmp_path / "its-own-prefect-home"
    own_env = env(PREFECT_API_URL="http://127.0.0.1:9/api", PREFECT_HOME=str(home), PREFECT_LOGGING_LEVEL="ERROR")
    own = run_redress(["prefect"], cwd=probe, module="probe", env=own_env)
    assert own.returncode == 0, own.stderr
    assert own.stdout.splitlines()[-1] == f"http://127.0.0.1:9/api {home} 40"
    assert home.is_dir()  # Prefect makes its home when its settings are read, as when imported
    plain = {k: v for k, v in env().items() if k not in ("PREFECT_API_URL", "PREFECT_LOGGING_LEVEL")}
    plain["PREFECT_HOME"] = str(tmp_path / "another")
    after = run_redress(["prefect"], cwd=probe, module="probe", env=plain)
    assert after.returncode == 0, after.stderr
    assert after.stdout.splitlines()[-1] == f"None {tmp_path / 'another'} 20"  # Prefect's defaults: no API, INFO
    assert own.stdout == new_interpreter("prefect", probe, own_env).stdout
    assert after.stdout == new_interpreter("prefect", probe, plain).stdout


def test_a_library_logging_before_prefect_is_used_prints_as_in_a_new_interpreter(probe):
    """Prefect sets up its logging (a handler on the root logger) when prefect.main is
    imported, not with `import prefect`: a child's warnings before that are Python's
    plain ones, as in a new interpreter, whatever the parent imported."""
    forked = run_redress(["warn"], env=env(), cwd=probe, module="probe")
    assert forked.returncode == 0, forked.stderr
    assert "a warning before Prefect is used\n" in forked.stderr and forked.stdout.endswith("\n[]\n")
    fresh = new_interpreter("warn", probe, env())
    assert (forked.stdout, forked.stderr) == (fresh.stdout, fresh.stderr)


def test_the_preloaded_objects_are_frozen_for_the_children(probe):
    """gc.freeze in the parent: a child's interpreter, as it ends, then does not walk
    every preloaded object and copy the parent's pages (copy-on-write) to do it."""
    done = run_redress(["frozen"], env=env(), cwd=probe, module="probe")
    assert done.returncode == 0 and int(done.stdout.splitlines()[-1]) > 100_000


def test_another_home_folder_gets_a_new_interpreter(probe, tmp_path):
    """Prefect, which the parent preloads, reads HOME when imported (the default home
    whose profiles file it reads when PREFECT_HOME is unset)."""
    done = run_redress(["home"], env=env(HOME=str(tmp_path)), cwd=probe, module="probe")
    assert done.returncode == 0 and done.stdout.endswith(f"\n{tmp_path / '.prefect'}\n")


def test_a_forked_command_past_its_timeout_is_killed(probe):
    with pytest.raises(subprocess.TimeoutExpired):
        run_redress(["sleep"], env=env(), cwd=probe, module="probe", timeout=1)
    assert run_redress(["3"], env=env(), cwd=probe, module="probe").returncode == 3  # the parent serves the next


def test_an_interrupted_caller_leaves_nothing_for_the_next_command(probe):
    """A test interrupted while it waits (an alarm here): its command is killed, and the
    next command gets its own result, not the abandoned one's."""
    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 2)
        with pytest.raises(Interrupted):
            run_redress(["sleep"], env=env(), cwd=probe, module="probe")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    done = run_redress(["3"], env=env(), cwd=probe, module="probe")
    assert done.returncode == 3 and done.stdout.endswith("['3']\n")


def test_the_test_policy_copy_outlives_forked_commands_and_is_removed_with_its_process(probe):
    """tests/approval_off.py writes its policy copy to a temporary folder: a forked
    command, which runs the parent's atexit handlers as it ends, must not remove it from
    under the parent's next tests; the process that wrote it removes it as it ends."""
    import approval_off

    assert run_redress(["0"], env=env(), cwd=probe, module="probe").returncode == 0
    assert approval_off.DEFAULT_POLICY.is_file()
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    written = subprocess.run(
        [sys.executable, "-c", "import approval_off; print(approval_off.DEFAULT_POLICY)"],
        cwd=tests, capture_output=True, text=True, check=True).stdout.strip()
    assert written.endswith(approval_off.SHIPPED.name) and written != str(approval_off.DEFAULT_POLICY)
    assert not os.path.exists(os.path.dirname(written))
