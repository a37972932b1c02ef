"""Injection end to end (issue 9, items 6 and 7): a data folder named with quotes, a
semicolon, glob characters and a crafted COPY, and inbox files named with HTML,
Markdown, terminal escapes and a newline. The whole pipeline runs through the CLI (run,
explain, recover-ledger); everyone is paid once, no injected SQL runs, and no page,
Markdown text, artifact or terminal line shows a name unescaped."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false
from flows.cli import main
from redress.generate import generate
from redress.sql import file_path
from prefect_records import flow_run_logs


@pytest.fixture(scope="module", autouse=True)
def _logs_sent(logs_to_prefect):
    """These tests read the runs' logs back from Prefect (tests/conftest.py)."""
    yield


CRAFTED = "o'brien; COPY (SELECT 42) TO 'pwned.csv'; -- [1]*"
IMG = "<img src=x onerror=alert(1)>.csv"
MARKDOWN = "evil|name[x](javascript:alert(1)).csv"  # a file name cannot hold "/": no http://
RED = "\x1b[31mred\x1b[0m.csv"
NEWLINE = "forged\nscope: fake.csv accepted (9 rows).csv"
HEADER = "customer_id,email,phone,data_category,accessed_at,confidence,source\n"
CUSTOMERS_HEADER = ("customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,"
                    "bank_code,bank_account\n")


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture
def cli(monkeypatch, capsys):
    """cli(*args) -> (exit code, stdout, stderr): redress in this process, on the
    session's Prefect test server."""
    for name in ("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL",
                 "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL"):
        monkeypatch.setenv(name, "CRITICAL")

    def call(*args: str):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """A generated breach in the crafted folder, plus scope files with hostile names
    (each naming a few real customers) and a rejected customers snapshot named with HTML.
    A decoy folder matches the crafted name as a glob: a reader that globbed would read
    it instead."""
    root = tmp_path_factory.mktemp("inject")
    data = root / CRAFTED
    generate(data, 400, seed=9)
    decoy = root / "o'brien; COPY (SELECT 42) TO 'pwned.csv'; -- 1x"
    decoy.mkdir()
    with duckdb.connect() as con:
        ids = [r[0] for r in con.execute(
            "SELECT customer_id FROM read_parquet(?, hive_partitioning = false)"
            " WHERE NOT is_test AND status = 'active' ORDER BY 1 LIMIT 40",
            [file_path(next((data / "inbox" / "customers").glob("*.parquet")))],
        ).fetchall()]
    scope = data / "inbox" / "scope"
    for i, name in enumerate((MARKDOWN, RED, NEWLINE)):
        rows = "".join(f"{c},,,email,2025-08-0{i + 1}T10:00:00+09:00,confirmed,{name[:5]}\n" for c in ids[i * 3:i * 3 + 3])
        (scope / name).write_text(HEADER + rows, encoding="utf-8")
    (scope / "unreadable <b onmouseover=alert(2)>bold.csv").write_bytes(b"\xff\xfe not utf-8")
    (data / "inbox" / "customers" / IMG).write_text(
        CUSTOMERS_HEADER + "C900000001,Kim,x@example.com,010-1234-5678,active,not a date,,false,,,\n", encoding="utf-8")
    return root, data, ids


@pytest.fixture(scope="module")
def run(crafted):
    """The CLI's `run` on the crafted folder: (exit code, stdout, stderr, summary)."""
    root, data, ids = crafted
    mp = pytest.MonkeyPatch()
    for name in ("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL",
                 "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL"):
        mp.setenv(name, "CRITICAL")
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--data-dir", str(data), "run", "--run-date", "2025-12-01", "--policy", str(DEFAULT_POLICY)])
    mp.undo()
    (run_id,) = q(data, "SELECT run_id FROM runs")[0]
    return code, out.getvalue(), err.getvalue(), run_id


def test_the_run_succeeds_and_pays_everyone_once(crafted, run):
    root, data, ids = crafted
    code, out, err, run_id = run
    assert code == 0, err
    assert q(data, "SELECT outcome FROM runs") == [("succeeded",)]
    wrong = q(data, """
        WITH paid AS (SELECT customer_id, sum(amount) AS paid, count(*) AS n FROM ledger GROUP BY ALL)
        SELECT count(*) FROM entitlements e LEFT JOIN paid p USING (customer_id)
        WHERE e.reason = 'ELIGIBLE' AND (p.paid IS DISTINCT FROM e.amount OR p.n <> 1)""")
    assert wrong == [(0,)]
    assert q(data, "SELECT count(*) FROM ledger WHERE customer_id IN (SELECT unnest(?))", [ids[:9]]) == [(9,)]
    bank = q(data, "SELECT folder FROM batches WHERE rail = 'bank_transfer' ORDER BY 1")
    assert bank and all((data / f / "pain.001.xml").is_file() for (f,) in bank)
    notified = q(data, "SELECT count(*) FROM notifications")[0][0]
    assert notified > 0 and (data / "outbox" / "notifications" / f"{run_id}.parquet").is_file()
    assert sorted(p.name for p in (data / "exports").glob("*.parquet"))
    # every hostile-named scope file read, by its exact name; the unreadable one quarantined
    files = dict(q(data, "SELECT file_name, status FROM ingested_files WHERE kind = 'scope'"))
    assert {files[n] for n in (MARKDOWN, RED, NEWLINE)} == {"accepted"}
    assert files["unreadable <b onmouseover=alert(2)>bold.csv"] == "unreadable_file"
    assert q(data, "SELECT status FROM ingested_files WHERE file_name = ?", [IMG]) == [("rejected",)]


def test_no_injected_sql_ran_anywhere(crafted, run):
    root, data, _ = crafted
    assert not Path("pwned.csv").exists()  # the working directory
    assert not any(p.name == "pwned.csv" for p in root.rglob("*"))
    assert list((root / "o'brien; COPY (SELECT 42) TO 'pwned.csv'; -- 1x").iterdir()) == []


def test_explain_and_recover_ledger_work_in_the_crafted_folder(crafted, run, cli, tmp_path):
    root, data, ids = crafted
    code, out, err = cli("--data-dir", data, "explain", ids[3])  # exposed by the file named with ESC
    assert code == 0, err
    assert "\x1b" not in out + err and "\\x1bred" not in out
    assert "\\x1b[31mred\\x1b[0m.csv" in out
    code, out, err = cli("--data-dir", data, "explain", ids[6])  # the file named with a newline
    assert code == 0 and "forged\\x0ascope: fake.csv" in out
    # the warehouse lost: the ledger comes back from the outbox, byte for byte the same rows
    copy = tmp_path / CRAFTED
    shutil.copytree(data, copy)
    ledger = q(copy, "SELECT payment_id, customer_id, amount, batch_id FROM ledger ORDER BY 1")
    (copy / "warehouse.duckdb").unlink()
    code, out, err = cli("--data-dir", copy, "recover-ledger")
    assert code == 0, err
    assert q(copy, "SELECT payment_id, customer_id, amount, batch_id FROM ledger ORDER BY 1") == ledger
    assert not any(p.name == "pwned.csv" for p in tmp_path.rglob("*"))


def test_no_page_under_reports_shows_html_from_a_file_name(crafted, run):
    root, data, _ = crafted
    pages = [p for p in (data / "reports").rglob("*.html")]
    assert any(p.name == "data_quality.html" for p in pages)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        # a file name's tag is never there raw
        assert "<img src=x" not in text.lower() and "<b onmouseover" not in text, page
        assert "onerror=alert(1)>" not in text and "onmouseover=alert(2)>" not in text, page
    quality = next(p for p in pages if p.name == "data_quality.html").read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in quality  # shown, escaped


def test_summary_and_terminal_show_names_escaped(crafted, run):
    root, data, _ = crafted
    code, out, err, run_id = run
    summary = (data / "reports" / run_id / "summary.md").read_text(encoding="utf-8")
    for text in (summary, out):
        assert "<img" not in text and "<b " not in text and "\x1b" not in text
        assert "evil|name[x]" not in text and "forged\nscope" not in text
        assert "evil\\|name\\[x\\](javascript:alert(1)).csv" in text
        assert "\\\\x1b\\[31mred\\\\x1b\\[0m.csv" in text  # ESC shown as \\x1b, then Markdown-escaped
    assert "\x1b" not in err


def test_a_cli_error_naming_a_path_prints_no_escape_sequence(cli, tmp_path):
    code, out, err = cli("--data-dir", tmp_path / "gone\x1b[2J\rhere", "explain", "C1")
    assert code == 1 and err.startswith("redress: the data folder ")  # refused for its name (standards review)
    assert "holds a control or invisible character" in err
    assert "\x1b" not in err and "\r" not in err and err.count("\n") == 1 and "\\x1b[2J\\x0dhere" in err


def _every_flow_run(client) -> list:
    """Every flow run on the test server, page by page: a worker's server may hold more
    than the API's default page (200) by the time this module runs."""
    runs, offset = [], 0
    while page := client.read_flow_runs(limit=200, offset=offset):
        runs += page
        offset += len(page)
    return runs


def test_artifacts_show_names_escaped(crafted, run):
    root, data, _ = crafted
    code, out, err, run_id = run
    with get_client(sync_client=True) as client:
        (flow_run,) = [r for r in _every_flow_run(client) if CRAFTED in str(r.parameters.get("data_dir"))]
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])))
    texts = {a.key: a.data if isinstance(a.data, str) else json.dumps(a.data) for a in found}
    assert {"run-summary", "data-quality-suites", "quarantine-by-reason"} <= set(texts)
    for key, text in texts.items():
        assert "<img" not in text and "\x1b" not in text and "\\u001b" not in text and "evil|name" not in text, key
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in texts["data-quality-suites"]


def test_logs_show_names_on_one_line_without_escape_sequences(crafted, run):
    with get_client(sync_client=True) as client:
        (flow_run,) = [r for r in _every_flow_run(client) if CRAFTED in str(r.parameters.get("data_dir"))]
        logs = [log.message for log in flow_run_logs(client, flow_run.id)]
    named = [m for m in logs if "red" in m and m.startswith("scope/")]
    assert "scope/\\x1b[31mred\\x1b[0m.csv: accepted (3 rows)" in named
    assert "scope/forged\\x0ascope: fake.csv accepted (9 rows).csv: accepted (3 rows)" in logs
    assert not [m for m in logs if "\x1b" in m or "\n" in m and m.startswith("scope/")]


@pytest.mark.parametrize("folder", ["what?", "back\\slash"])
def test_a_folder_duckdb_would_misread_is_refused_in_one_line_before_anything_is_written(cli, tmp_path, folder):
    """DuckDB reads `?` in a database path as options (the WAL lands in `what.wal?/...`)
    and a backslash as a separator (`back/slash/warehouse.duckdb`): refused, not guessed."""
    data = tmp_path / folder
    for kind in ("customers", "scope"):
        (data / "inbox" / kind).mkdir(parents=True)
    code, out, err = cli("--data-dir", data, "run", "--run-date", "2025-12-01", "--policy", DEFAULT_POLICY)
    assert code == 1 and err.count("\n") == 1 and "move the data folder to a path without them" in err
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [str(Path(folder) / ".redress.lock")]
