"""The command line's expected errors: non-zero exit, one line on stderr, no traceback."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from redress.errors import RedressError
from forked import run_redress

ROOT = Path(__file__).resolve().parents[2]


def redress(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")}
    full_env.update(env or {})
    return run_redress(args, env=full_env, cwd=cwd or ROOT, timeout=300)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_missing_data_folder(tmp_path):
    line = one_line_error(redress("--data-dir", str(tmp_path / "nowhere"), "run"))
    assert "does not exist" in line and "nowhere" in line


@pytest.mark.parametrize("closed", [">&-", "2>&-"])
def test_a_command_started_with_stdout_or_stderr_closed_runs_as_it_would(tmp_path, closed):
    """Found by review: `redress run >&-` (as some cron and daemon wrappers start a
    command) stopped with an AttributeError traceback, nothing run. What it would print
    on the closed stream goes nowhere; the rest is as ever."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")}
    command = f"exec {sys.executable} -m flows.cli --data-dir {tmp_path / 'nowhere'} run {closed}"
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 1
    if closed == ">&-":
        assert "does not exist" in one_line_error(result)  # one line, no traceback
    else:
        assert result.stderr == "" and result.stdout == ""
    generated = subprocess.run(["sh", "-c", f"exec {sys.executable} -m flows.cli generate --customers 100 --seed 1 "
                                            f"--out {tmp_path / 'g'} {closed}"],
                               capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert generated.returncode == 0 and (tmp_path / "g" / "inbox" / "customers").is_dir()


CHILD_WRITES = """
import subprocess, sys
from redress.runtime.pipes import child_streams, streams_that_exist
streams_that_exist()
child = subprocess.run([sys.executable, "-c", "import sys; sys.stdout.isatty(); sys.stderr.isatty(); print(1)"],
                       **child_streams())
sys.exit(child.returncode)
"""


@pytest.mark.parametrize("closed", [">&-", "2>&-", ">&- 2>&-"])
def test_a_child_of_a_command_started_with_a_stream_closed_has_one_to_write_to(closed):
    """Found by the platform review: `redress run >&-` started its temporary Prefect
    server with fd 1 closed, and the server (uvicorn's logging set-up, `sys.stdout.isatty()`)
    failed, so the run never ran. Every child of the command gets devnull where the
    command's own stream was closed."""
    script = f"exec {sys.executable} -c '{CHILD_WRITES}' {closed}"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_file_given_as_the_data_folder_is_named_as_no_folder(tmp_path):
    (tmp_path / "data").write_text("not a folder")
    line = one_line_error(redress("--data-dir", str(tmp_path / "data"), "run"))
    assert line.endswith("is not a folder: give the folder that holds inbox/customers and inbox/scope")
    assert (tmp_path / "data").read_text() == "not a folder"


@pytest.mark.parametrize("argv, line", [
    (["approve", "R20251201-001"], "redress approve: the following arguments are required: --by"),
    (["whatif"], "redress whatif: the following arguments are required: POLICY"),
    (["explain"], "redress explain: the following arguments are required: who"),
    (["bogus"], "redress: argument command: invalid choice: 'bogus'"),
    ([], "redress: the following arguments are required: command"),
    (["run", "--no-such-option"], "redress run: unrecognized arguments: --no-such-option (see redress run --help)"),
    (["--no-such-option", "run"], "redress run: unrecognized arguments: --no-such-option (see redress run --help)"),
])
def test_a_usage_error_is_one_line_saying_where_the_usage_is(tmp_path, argv, line):
    """Found by review: argparse printed its usage block above the error (SPEC "The
    command line": a one-line reason on stderr)."""
    out = redress(*argv, cwd=tmp_path)
    assert out.returncode == 2
    got = one_line_error(out)
    assert got.startswith(line) and got.endswith(" --help)")
    assert sorted(tmp_path.iterdir()) == []


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


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory):
    """One PREFECT_HOME for the commands here that may start their own temporary server
    (the demo's does; the locked-folder ones are refused before Prefect starts): its
    database is made (Prefect's migrations, seconds) once for the module."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.mark.e2e
def test_a_run_date_that_goes_back_or_lies_past_tomorrow_is_refused_before_prefect_starts(tmp_path, prefect_home):
    """A typo in --run-date, or a changed policy under a used id, costs no temporary
    Prefect server and writes nothing (the flow checks again under the folder's lock:
    tests/flows/test_remediation.py)."""
    from datetime import date, timedelta

    from redress.policy import load_policy
    from redress.warehouse import connect

    for kind in ("customers", "scope"):
        (tmp_path / "inbox" / kind).mkdir(parents=True)
    env = {"PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "REDRESS_HMAC_KEY": "0123456789abcdeffedcba9876543210"}
    too_late = load_policy().today() + timedelta(days=2)
    line = one_line_error(result := redress("--data-dir", str(tmp_path), "run", "--run-date", str(too_late), env=env))
    assert line.startswith(f"redress: run date {too_late} is after tomorrow (")
    assert "Prefect server" not in result.stdout + result.stderr
    assert not (tmp_path / "warehouse.duckdb").exists()
    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute("INSERT INTO runs (run_id, started_at, run_date, parameters, policy_id, policy_sha256, outcome) "
                    "VALUES ('R20251205-001', now(), ?, '{}', 'p', 'x', 'succeeded')", [date(2025, 12, 5)])
    before = (tmp_path / "warehouse.duckdb").read_bytes()
    line = one_line_error(result := redress("--data-dir", str(tmp_path), "run", "--run-date", "2025-12-01", env=env))
    assert line == ("redress: run date 2025-12-01 is before 2025-12-05, the date of run R20251205-001: runs go "
                    "forward in time (--run-date 2025-12-05 or later)")
    assert "Prefect server" not in result.stdout + result.stderr
    assert (tmp_path / "warehouse.duckdb").read_bytes() == before
    # a changed policy keeping the id of one that paid: refused as early (test_remediation.py)
    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute("UPDATE runs SET policy_id = 'coupang-2025-v1', policy_rules_sha256 = 'other'")
        con.execute("INSERT INTO batches VALUES ('b', 'voucher', 'KRW', ?, 1, 1, 'coupang-2025-v1', 'R20251205-001', "
                    "now(), 'outbox/batches/b', NULL)", [date(2025, 12, 5)])
    before = (tmp_path / "warehouse.duckdb").read_bytes()
    line = one_line_error(result := redress("--data-dir", str(tmp_path), "run", "--run-date", "2025-12-05", env=env))
    assert line == ("redress: policy coupang-2025-v1.toml has policy.id 'coupang-2025-v1', which run R20251205-001 "
                    "stamped on its payments under other rules (its breach, eligibility, categories, tiers, budget or "
                    "payout): give the changed policy a new policy.id (one file per version, so that a payment's "
                    "policy id names its amounts)")
    assert "Prefect server" not in result.stdout + result.stderr
    assert (tmp_path / "warehouse.duckdb").read_bytes() == before


def test_serve_refuses_a_changed_policy_under_a_used_id_before_registering_anything(tmp_path, monkeypatch, capsys):
    """Found by review: `redress serve` checked the policy file and the settings but not
    its id, so it registered its schedules and every run it started was refused."""
    from datetime import date

    import flows.service
    from flows.cli import main
    from redress.warehouse import connect

    for kind in ("customers", "scope"):
        (tmp_path / "inbox" / kind).mkdir(parents=True)
    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute("INSERT INTO runs (run_id, started_at, run_date, parameters, policy_id, policy_sha256, "
                    "policy_rules_sha256, outcome) VALUES ('R20251205-001', now(), ?, '{}', 'coupang-2025-v1', 'x', "
                    "'other', 'succeeded')", [date(2025, 12, 5)])
        con.execute("INSERT INTO batches VALUES ('b', 'voucher', 'KRW', ?, 1, 1, 'coupang-2025-v1', 'R20251205-001', "
                    "now(), 'outbox/batches/b', NULL)", [date(2025, 12, 5)])
    monkeypatch.setenv("REDRESS_HMAC_KEY", "0123456789abcdeffedcba9876543210")
    monkeypatch.setattr(flows.service, "server_error", lambda: None)
    monkeypatch.setattr(flows.service, "serve", lambda *a: pytest.fail("served, registering its schedules"))
    assert main(["--data-dir", str(tmp_path), "serve"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has policy.id 'coupang-2025-v1', which run R20251205-001 stamped on its payments" in err[0]


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["run", "approve"])
def test_a_command_on_a_locked_folder_is_refused_before_prefect_starts(tmp_path, prefect_home, command):
    """Refused at once in one line, not after a temporary Prefect server has started
    (seconds; the flow takes the lock again for its work)."""
    (tmp_path / "inbox").mkdir()
    if command == "approve":
        (tmp_path / "warehouse.duckdb").write_bytes(b"")  # a plan to decide would be in it
    fd = os.open(tmp_path / ".redress.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        env = {"PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "REDRESS_HMAC_KEY": "0123456789abcdeffedcba9876543210", "REDRESS_DEBTOR_NAME": "Test Payer Corp.",
               "REDRESS_DEBTOR_ACCOUNT": "1002003004005", "REDRESS_DEBTOR_BANK_CODE": "020"}
        args = ["run"] if command == "run" else ["approve", "R20251201-001", "--by", "Kim"]
        result = redress("--data-dir", str(tmp_path), *args, env=env)
        line = one_line_error(result)
    finally:
        os.close(fd)
    assert line == f"redress: another redress run is using {tmp_path}; try again when it ends"
    assert "Prefect server" not in result.stdout + result.stderr
    assert (tmp_path / "warehouse.duckdb").exists() == (command == "approve")


@pytest.mark.e2e
def test_a_locale_that_encodes_file_names_otherwise_reads_utf8_names_as_they_are(tmp_path, prefect_home):
    """Found by the platform review: under ko_KR.EUC-KR or tr_TR.ISO-8859-9, Python gave
    file names the locale's encoding while Polars and DuckDB take UTF-8: a scope file
    `범위_추가.csv` was retried as gone for minutes, then a traceback; under EUC-KR it was
    called "not UTF-8"; and explain failed printing Korean. The command runs itself in
    Python's UTF-8 mode. POSIX without coercion gives file names ASCII, the same case,
    on any machine."""
    from prefect.settings import get_current_settings

    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
           "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0",
           "PREFECT_HOME": str(prefect_home), "PREFECT_API_URL": get_current_settings().api.url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "REDRESS_HMAC_KEY": "0123456789abcdeffedcba9876543210",
           "REDRESS_INBOX_QUIET_SECONDS": "0"}
    from redress.generate import generate

    data = tmp_path / "고객 데이터"
    generate(data, 200, seed=5)  # in this process: the locale's reading of names is the run's to show
    first = sorted((data / "inbox" / "scope").glob("*.csv"))[0]
    (data / "inbox" / "scope" / "범위_추가.csv").write_bytes(first.read_bytes() + b"\n")  # new content, read once
    ran = redress("--data-dir", str(data), "run", "--run-date", "2025-12-01", env=env)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status FROM ingested_files WHERE file_name = '범위_추가.csv'").fetchall() == [
            ("accepted",)]
    said = redress("--data-dir", str(data), "explain", "C000000001", env=env)
    assert said.returncode == 0 and said.stdout.startswith("Customer C000000001: ")


@pytest.mark.e2e
def test_a_data_folder_named_with_a_leading_tilde_is_used_where_it_is(tmp_path, prefect_home):
    """DuckDB reads a path that starts with `~` as one in the home folder (`~d/x` is
    $HOME + `d/x`): given relative, such a folder must still be the one written and read.
    HOME points into tmp_path, so a path misread that way would land beside it. The run
    uses the session's test server (a temporary server of its own is the demo's test below)."""
    from prefect.settings import get_current_settings

    env = {"HOME": str(tmp_path / "home"), "PREFECT_HOME": str(prefect_home),
           "PREFECT_API_URL": get_current_settings().api.url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "REDRESS_HMAC_KEY": "0123456789abcdeffedcba9876543210",
           "REDRESS_INBOX_QUIET_SECONDS": "0", "REDRESS_INBOX_WAIT_SECONDS": "0"}
    (tmp_path / "home").mkdir()
    assert redress("generate", "--out", "~d", "--customers", "300", env=env, cwd=tmp_path).returncode == 0
    ran = redress("--data-dir", "~d", "run", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    with duckdb.connect(str(tmp_path / "~d" / "warehouse.duckdb"), read_only=True) as con:
        (paid, customer), = con.execute("SELECT count(*), min(customer_id) FROM entitlements WHERE amount > 0").fetchall()
    assert paid > 0
    told = redress("--data-dir", "~d", "explain", customer, env=env, cwd=tmp_path)
    assert told.returncode == 0 and customer in told.stdout, told.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "~d"]  # nothing beside them
    assert list((tmp_path / "home").iterdir()) == []


@pytest.mark.e2e
def test_a_run_plans_bank_transfers_without_the_paying_account_and_only_their_approval_needs_it(tmp_path, prefect_home):
    """README "Settings" and "Running it on real files": the run that stops for approval
    needs only the key; the approval writes the bank files, so without the paying account
    it is refused in one line with nothing paid, and the same approval with it releases."""
    from prefect.settings import get_current_settings

    env = {"PREFECT_HOME": str(prefect_home), "PREFECT_API_URL": get_current_settings().api.url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "REDRESS_HMAC_KEY": "0123456789abcdeffedcba9876543210",
           "REDRESS_INBOX_QUIET_SECONDS": "0", "REDRESS_INBOX_WAIT_SECONDS": "0"}
    data = tmp_path / "data"
    assert redress("generate", "--out", str(data), "--customers", "300", "--seed", "3", env=env).returncode == 0
    ran = redress("--data-dir", str(data), "run", "--run-date", "2025-12-01", env=env)
    assert ran.returncode == 0, ran.stderr
    assert "| bank_transfer |" in (data / "reports" / "R20251201-001" / "plan.md").read_text()
    approve = ("--data-dir", str(data), "approve", "R20251201-001", "--by", "Kim")
    assert one_line_error(redress(*approve, env=env)) == (
        "redress: bank transfers need the paying account: set REDRESS_DEBTOR_NAME, REDRESS_DEBTOR_ACCOUNT, "
        "REDRESS_DEBTOR_BANK_CODE")
    assert list(data.glob("outbox/batches/*")) == []
    payer = {"REDRESS_DEBTOR_NAME": "Test Payer Corp.", "REDRESS_DEBTOR_ACCOUNT": "1002003004005",
             "REDRESS_DEBTOR_BANK_CODE": "020"}
    released = redress(*approve, env=env | payer)
    assert released.returncode == 0, released.stderr
    assert len(list(data.glob("outbox/batches/*/pain.001.xml"))) == 1


def test_a_prefect_home_that_cannot_be_written_is_one_line_before_the_server_starts(tmp_path):
    """Found by review: a service account's home, read-only or missing, failed every run
    with Prefect's four lines of warnings and "the temporary Prefect server exited with
    status 3 while starting". One line now says which folder and what to set."""
    (tmp_path / "home").write_text("a file where Prefect's home folder would be")
    data = tmp_path / "data"
    env = {"PREFECT_HOME": str(tmp_path / "home" / ".prefect"), "REDRESS_HMAC_KEY": "0123456789abcdeffedcba9876543210",
           "REDRESS_INBOX_QUIET_SECONDS": "0"}
    assert redress("generate", "--out", str(data), "--customers", "100", "--seed", "3", env=env).returncode == 0
    full = {k: v for k, v in os.environ.items() if not k.startswith(("REDRESS_", "PREFECT_API_URL"))} | env
    ran = run_redress(("--data-dir", str(data), "run", "--run-date", "2025-12-01"), env=full, cwd=ROOT, timeout=300)
    assert one_line_error(ran) == (
        f"redress: the temporary Prefect server keeps its database in Prefect's home folder, and "
        f"{tmp_path / 'home' / '.prefect'} cannot be written (Not a directory): set PREFECT_HOME to a folder this "
        "account may write, or PREFECT_API_URL to a running server")
    assert not list(data.glob("outbox/batches/*"))  # nothing paid


def test_a_reader_that_leaves_early_ends_the_printing_not_the_run_nor_the_approval(tmp_path, prefect_home):
    """Found by review: `redress run | head -1` failed the run at its next progress line
    (`[Errno 32] Broken pipe` in runs), nobody paid and nothing said; `approve | head -1`
    released nothing. A command that changes the folder goes on, says once on stderr
    that its stdout closed, and exits as it would have."""
    from prefect.settings import get_current_settings

    env = {"PREFECT_HOME": str(prefect_home), "PREFECT_API_URL": get_current_settings().api.url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "REDRESS_HMAC_KEY": "0123456789abcdeffedcba9876543210",
           "REDRESS_INBOX_QUIET_SECONDS": "0", "REDRESS_INBOX_WAIT_SECONDS": "0",
           "REDRESS_DEBTOR_NAME": "Test Payer Corp.", "REDRESS_DEBTOR_ACCOUNT": "1002003004005",
           "REDRESS_DEBTOR_BANK_CODE": "020"}
    data = tmp_path / "data"
    assert redress("generate", "--out", str(data), "--customers", "300", "--seed", "3", env=env).returncode == 0
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")} | env

    def with_stdout_closed(*args: str) -> subprocess.CompletedProcess:
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before the first line
        try:
            return subprocess.run([sys.executable, "-m", "flows.cli", "--data-dir", str(data), *args], stdout=write_end,
                                  stderr=subprocess.PIPE, text=True, env=full_env, cwd=ROOT, timeout=300)
        finally:
            os.close(write_end)

    closed = "redress: stdout was closed by its reader; the command goes on without printing"
    ran = with_stdout_closed("run", "--run-date", "2025-12-01")
    assert (ran.returncode, ran.stderr.strip()) == (0, closed)
    assert (data / "reports" / "R20251201-001" / "plan.md").is_file()
    released = with_stdout_closed("approve", "R20251201-001", "--by", "Kim")
    assert (released.returncode, released.stderr.strip()) == (0, closed)
    assert len(list(data.glob("outbox/batches/*/manifest.json"))) >= 2
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ledger").fetchall()[0][0] > 0
        assert con.execute("SELECT outcome FROM runs").fetchall() == [("succeeded",)]


@pytest.mark.e2e
def test_a_demo_folder_named_with_a_leading_tilde_is_run_and_approved_where_it_is(tmp_path, prefect_home):
    """`redress demo --out ~demo` (a relative folder whose name starts with `~`): the
    demo generates, runs and approves its own plan in ./~demo, as for `run` above, under
    one temporary Prefect server of its own (no PREFECT_API_URL here)."""
    env = {"HOME": str(tmp_path / "home"), "PREFECT_HOME": str(prefect_home),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    (tmp_path / "home").mkdir()
    done = redress("demo", "--out", "~demo", "--customers", "300", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # One temporary Prefect server for the run and the approval it plays, not one each.
    assert done.stdout.count("starting a temporary Prefect server") == 1, done.stdout
    assert "the demo approved its own plan" in done.stdout
    assert list((tmp_path / "~demo" / "outbox" / "batches").iterdir())
    assert list((tmp_path / "home").iterdir()) == []


def test_redress_defaults_for_prefect_count_when_prefect_was_imported_first(tmp_path):
    """A program that imports Prefect before redress's command line sets its defaults for
    Prefect (as the tests' forking parent does): Prefect's settings then see them too,
    as they do when Prefect is first imported after them (flows/cli.py `_quiet_prefect`)."""
    (tmp_path / "first.py").write_text(
        "import prefect.context\n"
        "from flows.cli import _quiet_prefect\n"
        "_quiet_prefect(verbose=False)\n"
        "from prefect.settings import get_current_settings\n"
        "print(get_current_settings().server.ephemeral.startup_timeout_seconds)\n")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"}
    done = run_redress([], env=env, cwd=tmp_path, module="first")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "120"  # Prefect's own default is 20


def test_a_path_duckdb_would_read_from_the_home_folder_is_refused_in_one_line(tmp_path):
    from redress.sql import check_path

    with pytest.raises(RedressError, match="starts with '~'") as refused:
        check_path("~d/warehouse.duckdb")
    assert "\n" not in str(refused.value)
    check_path(tmp_path / "~d" / "warehouse.duckdb")  # not at the start: DuckDB reads it as written


def test_the_data_folder_is_absolute_however_it_is_given(tmp_path, monkeypatch):
    from redress.settings import load_settings

    monkeypatch.chdir(tmp_path)
    assert load_settings({}, data_dir=Path("~d")).data_dir == tmp_path / "~d"
    assert load_settings({"REDRESS_DATA_DIR": "~d"}).data_dir == tmp_path / "~d"
    assert load_settings({}).data_dir == tmp_path / "data"


# --- the common options, before or after the command (SPEC "The command line") --------

COMMANDS = {  # each command with the arguments it needs to parse
    "run": [], "generate": ["--out", "folder"], "demo": [], "explain": ["C1"], "serve": [], "recover-ledger": [],
    "approve": ["R20251201-001", "--by", "kim"], "reject": ["R20251201-001", "--by", "kim"],
    "whatif": ["policy.toml"], "verify": ["B-0001"],
}


def test_every_command_is_covered():
    from flows.cli import parser

    subparsers = next(a for a in parser()._actions if a.dest == "command")
    assert set(subparsers.choices) == set(COMMANDS)
    # whole sentences (found by review: a docstring's first line, cut mid-sentence, was shown)
    assert all(line.rstrip().endswith(".") for line in parser().description.split(". ")[-1:])


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("where", ["before", "after"])
def test_data_dir_and_verbose_are_taken_before_or_after_the_command(command, where):
    from flows.cli import parse

    common = ["--data-dir", "folder", "--verbose"]
    argv = common + [command, *COMMANDS[command]] if where == "before" else [command, *COMMANDS[command], *common]
    args = parse(argv)
    assert (args.command, args.data_dir, args.verbose) == (command, Path("folder"), True)
    assert not hasattr(args, "data_dir_after") and not hasattr(args, "verbose_after")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_without_the_common_options_the_defaults_hold(command):
    from flows.cli import parse

    args = parse([command, *COMMANDS[command]])
    assert (args.data_dir, args.verbose) == (None, False)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_verbose_alone_after_the_command(command):
    from flows.cli import parse

    args = parse(["--data-dir", "folder", command, *COMMANDS[command], "--verbose"])
    assert (args.data_dir, args.verbose) == (Path("folder"), True)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_same_folder_twice_is_fine_two_folders_are_refused(command, tmp_path):
    from flows.cli import parse
    from redress.errors import RedressError

    rest = [str(tmp_path) if a == "folder" else a for a in COMMANDS[command]]  # generate's --out: the same folder
    same = parse(["--data-dir", str(tmp_path), command, *rest, "--data-dir", f"{tmp_path}/."])
    assert same.data_dir.resolve() == tmp_path.resolve()
    with pytest.raises(RedressError, match="different folders"):
        parse(["--data-dir", str(tmp_path / "a"), command, *COMMANDS[command], "--data-dir", str(tmp_path / "b")])


@pytest.mark.parametrize("command", ["demo", "generate"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_demo_and_generate_write_the_folder_data_dir_names(command, where):
    """Every command accepts --data-dir (SPEC "The command line"); the two that make a
    new data folder write that folder when --out is not given, and the same folder given
    both ways is fine."""
    from flows.cli import parse

    argv = ["--data-dir", "made"] + [command] if where == "before" else [command, "--data-dir", "made"]
    assert parse(argv).out == "made"
    assert parse(argv + ["--out", "made/."]).out == "made/."
    assert parse(["demo"]).out == "demo"  # the demo's own default when neither is given


@pytest.mark.parametrize("argv, message", [
    (["demo", "--out", "a", "--data-dir", "b"], "demo was given two different folders (--out a, --data-dir b): give one"),
    (["--data-dir", "b", "generate", "--out", "a"],
     "generate was given two different folders (--out a, --data-dir b): give one"),
    (["generate", "--customers", "300"], "generate needs the folder to write: give --out DIR (or --data-dir DIR)"),
])
def test_demo_and_generate_refuse_two_folders_or_none_in_one_line(tmp_path, argv, message):
    out = redress(*argv, cwd=tmp_path)
    assert one_line_error(out) == f"redress: {message}"
    assert sorted(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("argv", [
    ["demo", "--data-dir", "loop", "--out", "loop"], ["--data-dir", "loop", "demo", "--data-dir", "loop"],
    ["generate", "--data-dir", "afile", "--customers", "300"],
])
def test_a_loop_of_links_or_a_file_as_the_folder_is_one_line(tmp_path, argv):
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "afile").write_text("")
    line = one_line_error(redress(*argv, cwd=tmp_path))
    assert line.startswith("redress: a loop of symbolic links: " if "loop" in argv else
                           "redress: a file where a folder should be: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "loop"]


@pytest.mark.parametrize("command", ["demo", "generate"])
@pytest.mark.parametrize("count", ["0", "-5", "many"])
def test_a_customer_count_below_one_is_refused_before_a_folder_is_made(tmp_path, command, count):
    out = redress(command, "--out", "made", "--customers", count, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"argument --customers: '{count}' is not a whole number of at least 1" in out.stderr
    assert sorted(tmp_path.iterdir()) == []


def test_generate_into_the_data_dir(tmp_path):
    out = redress("--data-dir", "~made", "generate", "--customers", "300", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "~made" / "inbox").iterdir()) == ["claims", "customers", "returns", "scope"]
    # printed as written to: `~made` is a folder here, not one in the home folder
    assert out.stdout.splitlines()[0] == f"wrote a synthetic breach of 300 customers into {tmp_path / '~made' / 'inbox'}"


@pytest.mark.parametrize("sign", ["warehouse.duckdb", ".redress.lock", "outbox"])
def test_generate_refuses_a_data_folder_in_use(tmp_path, sign):
    live = tmp_path / "live"
    live.mkdir()
    (live / sign).mkdir() if sign == "outbox" else (live / sign).write_bytes(b"")
    line = one_line_error(redress("--data-dir", str(live), "generate", "--customers", "300", cwd=tmp_path))
    assert line == f"redress: {live} holds {sign}: a data folder in use; generate writes synthetic people into an " \
                   "inbox, so give it a new folder"
    assert sorted(p.name for p in live.iterdir()) == [sign]


def test_redress_data_dir_in_the_environment_does_not_choose_the_folder_demo_or_generate_make(tmp_path):
    from flows.cli import parse

    elsewhere = tmp_path / "elsewhere"
    line = one_line_error(redress("generate", "--customers", "300", env={"REDRESS_DATA_DIR": str(elsewhere)},
                                  cwd=tmp_path))
    assert line == "redress: generate needs the folder to write: give --out DIR (or --data-dir DIR)"
    assert not elsewhere.exists()
    assert parse(["demo"]).out == "demo"  # parse reads no environment; the demo's default stays ./demo


def test_run_with_the_spec_form_reaches_the_folder_check(tmp_path):
    line = one_line_error(redress("run", "--data-dir", str(tmp_path / "nowhere"), "--policy",
                                  str(ROOT / "policies" / "coupang-2025-v1.toml"), "--verbose"))
    assert "does not exist" in line and "nowhere" in line


def test_explain_with_data_dir_after_reads_that_folder(tmp_path):
    line = one_line_error(redress("explain", "C1", "--data-dir", str(tmp_path)))
    assert "no warehouse" in line


def test_two_folders_are_refused_in_one_line(tmp_path):
    line = one_line_error(redress("--data-dir", str(tmp_path / "a"), "run", "--data-dir", str(tmp_path / "b")))
    assert "different folders" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _data_dir_twice(form: str, first: str, second: str) -> tuple[list[str], list[str]]:
    """--data-dir given as `--data-dir X` or `--data-dir=X`, twice: (before the command,
    after it) by `form`'s two letters, b(efore) or a(fter), s(eparate) or e(quals)."""
    def option(spelling: str, folder: str) -> list[str]:
        return ["--data-dir", folder] if spelling == "s" else [f"--data-dir={folder}"]

    before, after = [], []
    for (side, spelling), folder in zip((form[:2], form[2:]), (first, second)):
        (before if side == "b" else after).extend(option(spelling, folder))
    return before, after


DATA_DIR_FORMS = [a + s1 + b + s2 for a, b in (("b", "b"), ("a", "a"), ("b", "a")) for s1 in "se" for s2 in "se"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("form", DATA_DIR_FORMS)
def test_two_data_folders_are_refused_wherever_and_however_they_are_given(command, form, tmp_path):
    """The reviewer's `explain --data-dir refA --data-dir ref` read `ref`; every form of two
    folders, on one side of the command or both, is one line and exit 1, before anything
    is read or written."""
    rest = [str(tmp_path / "out") if a == "folder" else a for a in COMMANDS[command]]
    before, after = _data_dir_twice(form, "refA", "ref")
    out = redress(*before, command, *rest, *after, cwd=tmp_path)
    assert out.returncode == 1
    if form[0] == form[2]:  # one side
        assert one_line_error(out) == "redress: --data-dir given twice with different folders (refA, ref): give it once"
    else:
        assert one_line_error(out) == (f"redress: --data-dir given twice with different folders (refA before {command},"
                                       " ref after it): give it once")
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("form", DATA_DIR_FORMS)
def test_the_same_data_folder_twice_is_one_folder_in_every_form(command, form, tmp_path):
    from flows.cli import parse

    rest = [str(tmp_path) if a == "folder" else a for a in COMMANDS[command]]
    before, after = _data_dir_twice(form, str(tmp_path), f"{tmp_path}/.")
    assert parse([*before, command, *rest, *after]).data_dir.resolve() == tmp_path.resolve()


# Every option besides --data-dir that says what is paid, from where, or in whose name:
# (command, the rest of its arguments, the option, what the message calls its values).
ONCE_OPTIONS = [
    ("run", [], "--policy", "policy files"), ("demo", [], "--policy", "policy files"),
    ("serve", [], "--policy", "policy files"),
    ("run", [], "--run-date", "dates"), ("demo", [], "--run-date", "dates"),
    ("whatif", ["p.toml"], "--run-date", "dates"),
    ("explain", ["C1"], "--by", "names"), ("approve", ["R20251201-001"], "--by", "names"),
    ("reject", ["R20251201-001"], "--by", "names"),
    ("approve", ["R20251201-001", "--by", "kim"], "--note", "notes"),
    ("reject", ["R20251201-001", "--by", "kim"], "--note", "notes"),
    ("demo", [], "--out", "folders"), ("generate", [], "--out", "folders"),
]


@pytest.mark.parametrize("command, rest, option, what", ONCE_OPTIONS)
@pytest.mark.parametrize("spelling", ["ss", "se", "es", "ee"])
def test_an_option_that_decides_a_payment_given_two_values_is_refused(command, rest, option, what, spelling, tmp_path):
    """`run --policy a.toml --policy b.toml` used b.toml, `approve --by kim --by lee`
    recorded lee: the second of two different values no longer wins silently."""
    first, second = ("2025-12-01", "2025-12-02") if option == "--run-date" else ("one", "two")
    given = [[option, value] if s == "s" else [f"{option}={value}"] for s, value in zip(spelling, (first, second))]
    out = redress(command, *rest, *given[0], *given[1], cwd=tmp_path)
    assert out.returncode == 1
    assert one_line_error(out) == (f"redress: {option} given twice with different {what} ({first}, {second}): "
                                   "give it once")
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command, rest, option, what", ONCE_OPTIONS)
def test_an_option_given_the_same_value_twice_is_taken(command, rest, option, what, tmp_path):
    from flows.cli import parse

    value, again = {"folders": ("made", "made/."), "policy files": ("p.toml", "./p.toml"),
                    "dates": ("2025-12-01", "2025-12-01")}.get(what, ("kim", "kim"))
    args = parse([command, *rest, option, value, option, again])
    assert vars(args)[option[2:].replace("-", "_")] in (value, again, Path(value), Path(again))
    assert not hasattr(args, "_given_once")


@pytest.mark.parametrize("argv, dest, value", [
    (["generate", "--out", "x", "--customers", "300", "--customers", "400"], "customers", 400),
    (["generate", "--out", "x", "--seed", "1", "--seed", "2"], "seed", 2),
    (["serve", "--daily-at", "08:00", "--daily-at", "09:30"], "daily_at", "09:30"),
])
def test_options_that_pay_no_one_still_take_the_last(argv, dest, value):
    """A synthetic folder's size or seed, or the hour of the daily run, decides no payment:
    argparse's last-wins stays (flows/cli.py's doc)."""
    from flows.cli import parse

    assert vars(parse(argv))[dest] == value


@pytest.mark.parametrize("host, paid_in", [("Etc/GMT+12", "Pacific/Kiritimati"), ("Pacific/Kiritimati", "Etc/GMT+12")])
def test_the_default_run_date_is_today_where_the_policy_pays_not_on_the_hosts_clock(tmp_path, monkeypatch,
                                                                                     host, paid_in):
    """Found by review: `redress run` without --run-date took the host's date, so on a UTC
    host a Seoul policy's bank files were dated yesterday until 09:00 in Seoul. The two
    zones here are 26 hours apart: their dates always differ."""
    import time
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from flows.cli import _run_date

    policy = tmp_path / "p.toml"
    policy.write_text((ROOT / "policies" / "coupang-2025-v1.toml").read_text()
                      .replace('timezone = "Asia/Seoul"', f'timezone = "{paid_in}"'))
    monkeypatch.setenv("TZ", host)
    time.tzset()
    try:
        before = datetime.now(ZoneInfo(paid_in)).date()
        got = _run_date(None, policy)
        assert got in (before, datetime.now(ZoneInfo(paid_in)).date())  # midnight may pass between
        assert got != date.today()
        assert _run_date("2025-12-01", policy) == date(2025, 12, 1)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("given", ["", " ", "20251201", "2025-W49-1", "2025-W49", "2025-12-1", "2025-13-01",
                                   "2025-02-30", "2025-12-01T00:00", "１２０２５-12-01"[1:], "2025-12-01 "])
def test_a_run_date_that_is_not_yyyy_mm_dd_is_refused_not_read_as_some_day(given):
    """Found by review: `--run-date ""` (a script's unset variable) ran as today, and
    `20251201` or `2025-W49-1` as 2025-12-01, though the message asks for YYYY-MM-DD."""
    from flows.cli import _run_date

    with pytest.raises(RedressError) as refused:
        _run_date(given, None)
    assert str(refused.value) == f"--run-date must be YYYY-MM-DD, got {given!r}"


def test_a_run_date_given_empty_is_one_line_and_nothing_runs(tmp_path):
    (tmp_path / "data" / "inbox").mkdir(parents=True)
    out = redress("--data-dir", str(tmp_path / "data"), "run", "--run-date", "")
    assert one_line_error(out) == "redress: --run-date must be YYYY-MM-DD, got ''"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["inbox"]


def test_the_utf8_mode_rerun_happens_once_even_when_it_cannot_take_effect(tmp_path):
    """Found by the fix review: `python -X utf8=0 -m flows.cli` (or `-E`) in a locale
    that encodes file names otherwise ran itself again for ever, the option it was run
    with keeping UTF-8 mode off. It runs again once, then goes on as it is."""
    env = {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")} | env
    done = subprocess.run([sys.executable, "-X", "utf8=0", "-m", "flows.cli", "--help"], capture_output=True,
                          text=True, env=full_env, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: redress")


@pytest.mark.parametrize("argv, dated", [([], False), (["--run-date", "2025-12-01"], True)])
def test_a_run_without_a_run_date_lets_the_flow_read_today_as_it_starts(tmp_path, monkeypatch, argv, dated):
    """Found by the fix review: `redress run` read today before Prefect's server started
    (seconds), and the flow took that date; past midnight the run was dated the day
    before and taken for a catch-up, so its bank files, dated the day before, went out.
    The date read first is only for the checks before Prefect; the flow is given none."""
    import flows.cli as cli

    seen = {}

    def pipeline(data_dir, policy_path, run_date, settings, *, dated=True):
        seen.update(run_date=run_date, dated=dated)
        raise RedressError("stopped here")

    monkeypatch.setattr(cli, "run_pipeline", pipeline)
    (tmp_path / "inbox").mkdir()
    assert cli.main(["--data-dir", str(tmp_path), "run", *argv]) == 1
    assert seen["dated"] is dated and seen["run_date"] is not None
