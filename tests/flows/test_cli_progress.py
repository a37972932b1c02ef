"""What `redress demo` and `redress run` show while they work (issue 13.3, issue 14
"The newcomer"): to a pipe, a plain line per stage with the counts `runs.counts` holds
and no control character; a second demo into the same folder works; the printed next
commands run as pasted; on a terminal, no Prefect usage-data notice."""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import subprocess
import sys
from pathlib import Path

import duckdb

from redress.generate import generate

ROOT = Path(__file__).resolve().parents[2]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # no escape, no carriage return: tab and newline only
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "TRAVIS", "CIRCLECI", "BUILDKITE", "TF_BUILD",
                "CODEBUILD_BUILD_ID", "BITBUCKET_COMMIT", "TEAMCITY_VERSION", "DRONE", "SEMAPHORE", "APPVEYOR",
                "BUDDY", "CI_NAME")


def _env(**changes) -> dict:
    from prefect.settings import get_current_settings

    env = {**os.environ, "PREFECT_API_URL": get_current_settings().api.url}  # the session's test server
    env.update(changes)
    return env


def demo(out: Path) -> subprocess.CompletedProcess:
    """The demo with an inbox quiet time no file it writes can pass in time (and a
    second's wait): it must read its own files at once (redress.settings.demo_settings),
    else its run would pass every one over as still being copied in."""
    return subprocess.run([sys.executable, "-m", "flows.cli", "demo", "--out", str(out), "--customers", "300"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env=_env(REDRESS_INBOX_QUIET_SECONDS="600", REDRESS_INBOX_WAIT_SECONDS="1"))


def _counts(out: Path) -> tuple[str, dict]:
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as con:
        (run_id, counts), = con.execute("SELECT run_id, counts FROM runs").fetchall()
    return run_id, json.loads(counts)


def _done(stdout: str, stage: str) -> str:
    """The counts of the stage's `done` line."""
    (line,) = [line for line in stdout.splitlines() if line.startswith(f"{stage:<11} done in ")]
    assert re.match(rf"{stage} +done in \d+\.\d s", line), line
    return line.split(" · ", 1)[1] if " · " in line else ""


def test_the_demo_to_a_pipe_prints_each_stage_with_the_counts_of_the_run(tmp_path):
    out = tmp_path / "my demo"
    result = demo(out)
    assert result.returncode == 0, result.stderr
    assert not CONTROL.search(result.stdout + result.stderr), "a pipe gets no bar and no escape code"
    stdout = result.stdout
    run_id, counts = _counts(out)
    for stage in ("ingest", "returns", "claims", "validate", "entitle", "disburse", "report"):
        assert f"{stage:<11} started" in stdout, stage
    ingest = counts["ingest"]["files"]
    customers = sum(f["rows_read"] or 0 for f in ingest if f["kind"] == "customers" and f["status"] == "accepted")
    scope = sum(f["rows_read"] or 0 for f in ingest if f["kind"] == "scope" and f["status"] == "accepted")
    assert _done(stdout, "ingest").startswith(f"{customers:,} customers rows · {scope:,} scope rows read · ")
    d = counts["validate"]["destinations"]
    assert _done(stdout, "validate") == (f"all accepted files: {d['rows_read']:,} scope rows · {d['exposure']:,} exposures · "
                                         f"{d['non_member']:,} non-member · {d['review']:,} in review · "
                                         f"{d['quarantine']:,} quarantined")
    eligible = counts["entitle"]["by_reason"]["ELIGIBLE"]
    assert f"{eligible['customers']:,} eligible · {eligible['amount_krw']:,} KRW" in _done(stdout, "entitle")
    p = counts["disburse"]
    held = p["per_rail"].get("claim", {"payments": 0, "amount_krw": 0})
    assert held["payments"] > 0, "the demo holds some payments on claim"
    # the demo is dated 2025-12-01, a catch-up: its bank files are dated before today, and it says so
    assert p["before_today_payments"] == p["per_rail"]["bank_transfer"]["payments"] > 0
    assert _done(stdout, "disburse") == (f"{p['payments']:,} payments · {p['batches']:,} batches · "
                                         f"{p['amount_krw'] - held['amount_krw']:,} KRW to pay out · "
                                         f"{held['amount_krw']:,} KRW held on claim ({held['payments']:,} payments) · "
                                         f"{p['before_today_payments']:,} bank transfers dated before today "
                                         f"({p['before_today_krw']:,} KRW; see summary.md) · waiting for approval")
    # the demo's approval, as `redress approve` prints it: release, notify, report (found by a
    # new user: approve printed its last line only)
    approval = stdout.split("approving the plan as finance would...", 1)[1]
    for stage in ("release", "notify", "report"):
        assert f"{stage:<11} started" in approval, stage
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as con:
        (told,), = con.execute("SELECT count(*) FROM notifications").fetchall()
    assert told > 0 and _done(approval, "notify") == f"{told:,} people notified"
    files = sum(1 for f in ingest if f["status"] not in ("duplicate_file", "not_read"))
    assert f"ingest      reading files: {len(ingest):,} of {len(ingest):,}" in stdout and files >= 5
    # the folders are written by the release, and shown under it with what it released
    written = re.search(r"release     batches written: (\d+) of \1", approval)
    assert written and "disburse    batches written" not in stdout
    assert _done(approval, "release") == (f"{p['payments']:,} payments · {int(written[1]):,} batches · "
                                          f"{p['amount_krw'] - held['amount_krw']:,} KRW to pay out · "
                                          f"{held['amount_krw']:,} KRW held on claim ({held['payments']:,} payments)")

    # The next commands, pasted into a shell as printed: they run.
    lines = stdout.splitlines()
    start = lines.index("next, ask about one person by customer id or by the reference code in their message:")
    for command in lines[start + 1:start + 3]:
        argv = [a.replace("YOUR_STAFF_ID", "S001") for a in shlex.split(command)]
        assert argv[1:3] == ["--data-dir", str(out)]
        asked = subprocess.run(argv, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
        assert asked.returncode == 0, (command, asked.stderr)

    # `make demo` a second time: the folder the first demo made is replaced, and said so.
    again = demo(out)
    assert again.returncode == 0, again.stderr
    assert f"replacing the demo made earlier in {out}" in again.stdout
    assert _counts(out)[0] == run_id, "a fresh folder: the run is the first of its date again"


def test_a_run_on_a_terminal_shows_progress_and_no_usage_data_notice(tmp_path):
    data = tmp_path / "data"
    generate(data, 200, seed=3)
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES + ("DO_NOT_TRACK", "PREFECT_API_URL")}
    env["PREFECT_HOME"] = str(tmp_path / "fresh-prefect-home")  # a new user: Prefect would show its notice
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "true"  # the command's own server must turn it off itself
    pid, fd = pty.fork()
    if pid == 0:  # the child: redress on a terminal, starting its own temporary server
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "flows.cli", "--data-dir", str(data), "run",
                                   "--run-date", "2025-12-01"], env)
    output = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert "usage data" not in text and "telemetry" not in text.lower()
    assert "starting a temporary Prefect server" in text
    assert re.search(r"validate +done in \d+\.\d s · all accepted files: [\d,]+ scope rows", text)
    assert "\x1b[" in text, "a terminal gets the rich renderer"
