"""The pages a run writes for finance and forensics (issue 14), on real runs.

- A clean run: every suite passed, no reason to explain, no review or quarantine listed.
- A demo-sized run (`redress demo`, 20,000 customers): no page it writes (reports/,
  outbox/, quarantine/: every .html and .md) fetches anything or links to a file that is
  not there; the review list equals the `review` table and only its owner can read it.
(A run with defective rows and one stopped by a gate: tests/flows/test_reports.py.)
"""

from __future__ import annotations

import io
import re
import stat
from contextlib import redirect_stderr, redirect_stdout
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import duckdb
import polars as pl
import pytest

from flows.cli import main
from flows.remediation import remediation
from redress import vocabulary as v
from redress.reports.review import REVIEW_COLUMNS
from redress.rules.identity import email_norm, phone_e164
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

CUSTOMERS = """customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account
B1,Kim Minji,b1@example.com,010-2000-0001,active,2020-01-01,,false,bank_transfer,004,1234567890
V1,Park Seo,v1@example.com,010-2000-0003,active,2020-01-01,,false,,,
"""
SCOPE = """customer_id,email,phone,data_category,accessed_at,confidence,source
B1,,,name,2025-07-01,,log
,v1@example.com,,email,2025-07-01,,log
"""


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


# --------------------------------------------------------------------------- what a page may hold

# An absolute or protocol-relative URL; XML namespaces of inline SVG are names, not fetched.
EXTERNAL = re.compile(r"(?i)\b(?:https?|ftp)://|(?<![\w:/.])//[a-z0-9-]+(?:\.[a-z0-9-]+)+")
XMLNS = re.compile(r"""\sxmlns(?::[\w-]+)?\s*=\s*["'][^"']*["']""")
MD_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""(?i)\b(?:href|src|action|poster)\s*=\s*["']([^"']*)["']""")
HTML_ID = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")


def page_problems(root: Path) -> tuple[list[Path], list[str]]:
    """Every .html and .md file under root (the inbox left out: not ours), and what is
    wrong with them: an external URL, or a link to a file or anchor that does not exist."""
    pages = sorted(p for p in root.rglob("*") if p.suffix in (".html", ".md") and "inbox" not in p.relative_to(root).parts)
    problems = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        name = page.relative_to(root).as_posix()
        problems += [f"{name}: external URL {m[0]!r}" for m in EXTERNAL.finditer(XMLNS.sub(" ", text))]
        links = HTML_LINK.findall(text) if page.suffix == ".html" else MD_LINK.findall(text)
        for link in links:
            link = re.sub(r"\\(.)", r"\1", link) if page.suffix == ".md" else link
            if EXTERNAL.match(link) or link.startswith(("data:", "mailto:", "javascript:")):
                problems.append(f"{name}: links out to {link!r}")
                continue
            path, _, anchor = link.partition("#")
            target = (page.parent / unquote(path.split("?")[0])).resolve() if path else page
            if not target.exists():
                problems.append(f"{name}: link to a missing file {link!r}")
            elif anchor and target.suffix == ".html" and anchor not in HTML_ID.findall(target.read_text(encoding="utf-8")):
                problems.append(f"{name}: link to a missing anchor {link!r}")
    return pages, problems


def test_the_page_check_finds_each_kind_of_problem(tmp_path):
    """The scan below is only as good as this: each kind of problem is caught, and what
    is fine (an SVG namespace, a link to a file or anchor that exists) is not."""
    (tmp_path / "ok.csv").write_text("a\n")
    (tmp_path / "a.html").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"></svg><a href="ok.csv">x</a><a href="#s">s</a><p id="s"></p>'
        '<script src="//cdn.example.net/x.js"></script><a href="gone.html">y</a><a href="#nowhere">z</a>'
        '<link href="https://fonts.example.com/f.css">')
    (tmp_path / "b.md").write_text("[fine](ok.csv) [gone](../nothing\\_here.csv) see http://example.com\n")
    pages, problems = page_problems(tmp_path)
    assert [p.name for p in pages] == ["a.html", "b.md"]
    assert sorted(problems) == sorted([
        "a.html: external URL '//cdn.example.net'", "a.html: external URL 'https://'",
        "a.html: links out to '//cdn.example.net/x.js'", "a.html: links out to 'https://fonts.example.com/f.css'",
        "a.html: link to a missing file 'gone.html'", "a.html: link to a missing anchor '#nowhere'",
        "b.md: external URL 'http://'", "b.md: link to a missing file '../nothing_here.csv'",
    ])


# --------------------------------------------------------------------------- a clean run


def test_a_clean_run_shows_every_suite_passed_and_nothing_to_explain(tmp_path):
    data = tmp_path / "data"
    for kind in ("customers", "scope"):
        (data / "inbox" / kind).mkdir(parents=True)
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS)
    (data / "inbox" / "scope" / "scope.csv").write_text(SCOPE)
    summary = remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 1))
    report = data / "reports" / summary["run_id"]
    records = list((report / "validations").glob("*.json"))
    page = (report / "data_quality.html").read_text(encoding="utf-8")
    assert f"{len(records)} suite runs: {len(records)} passed, 0 with defects found and handled, 0 stopped the run" in page
    assert page.count('<span class="passed">passed</span></h2>') == len(records) >= 5
    assert "What the reasons mean" not in page and 'class="handled"' not in page and 'class="stopped"' not in page
    text = (report / "summary.md").read_text(encoding="utf-8")
    assert f"{len(records)} suite runs: {len(records)} passed, 0 with defects found and handled, 0 stopped the run" in text
    assert "Nothing quarantined in this run." in text
    assert "| **TOTAL** | **2** | **100,000** | **0** |" in text  # B1 by bank, V1 by voucher, 50,000 each
    assert "review.csv" not in text and not (data / "quarantine").exists()
    assert page_problems(data)[1] == []


# --------------------------------------------------------------------------- a demo-sized run


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`redress demo` as a newcomer runs it: 20,000 customers, the plan approved by the demo."""
    out_dir = tmp_path_factory.mktemp("pages") / "demo"
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["demo", "--out", str(out_dir)])
    assert code == 0, err.getvalue()
    (run_id,) = {p.name for p in (out_dir / "reports").iterdir()}
    return out_dir, run_id, out.getvalue()


def test_no_page_a_demo_writes_fetches_anything_or_links_nowhere(demo):
    data, run_id, _ = demo
    pages, problems = page_problems(data)
    names = {p.relative_to(data).as_posix() for p in pages}
    assert {f"reports/{run_id}/{n}" for n in ("summary.md", "data_quality.html", "reconciliation.md", "plan.md")} <= names
    assert problems == []
    summary = (data / "reports" / run_id / "summary.md").read_text(encoding="utf-8")
    for linked in ("reconciliation.md", "data_quality.html", f"../../quarantine/{run_id}/review.csv",
                   f"../../quarantine/{run_id}/quarantine.csv"):
        assert f"]({linked})" in summary, linked  # linked, and (above) the file is there


def test_the_demo_prints_where_the_reconciliation_and_review_list_are(demo):
    data, run_id, printed = demo
    assert f"reconciliation: {data / 'reports' / run_id / 'reconciliation.md'}\n" in printed
    assert f"review list:    {data / 'quarantine' / run_id / 'review.csv'}\n" in printed
    assert "data_docs" not in printed


def test_the_review_list_is_the_review_table_with_what_resolves_each_row(demo):
    data, run_id, _ = demo
    folder = data / "quarantine" / run_id
    listed = pl.read_parquet(folder / "review.parquet")
    in_csv = pl.read_csv(folder / "review.csv", infer_schema=False)
    assert in_csv.columns == listed.columns == list(REVIEW_COLUMNS) and in_csv.height == listed.height > 0
    table = q(data, """
        SELECT f.file_name, r.row_number, r.reason, r.matched_by, r.candidates FROM review r
        JOIN (SELECT file_sha256, min(file_name) AS file_name FROM ingested_files
              WHERE kind = 'scope' AND status = 'accepted' GROUP BY ALL) f USING (file_sha256)
        ORDER BY 1, 2""")
    assert listed.select("file_name", "row_number", "reason", "matched_by", "candidates").rows() == table
    assert q(data, "SELECT count(*) FROM review") == [(listed.height,)]
    for row in listed.iter_rows(named=True):
        assert row["reason_text"] == v.REVIEW_REASONS[row["reason"]]
        assert row["what_to_do"] == v.REVIEW_ACTIONS[row["reason"]]
        given = q(data, """SELECT s.customer_id, s.email, s.phone, s.source FROM scope_rows s
                           JOIN ingested_files f USING (file_sha256)
                           WHERE f.file_name = ? AND s.row_number = ?""", [row["file_name"], row["row_number"]])
        assert given == [(row["customer_id"], row["email"], row["phone"], row["source"])]  # as given
        if row["reason"] == v.AMBIGUOUS_IDENTIFIER:
            ids = row["candidate_customer_ids"].split(" ")
            assert len(ids) == row["candidates"] >= 2 and ids == sorted(ids)
            key, value = ("email_norm", email_norm(pl.lit(row["email"]))) if row["matched_by"] == "email" \
                else ("phone_e164", phone_e164(pl.lit(row["phone"])))
            shared = pl.select(value).item()
            assert q(data, f"SELECT customer_id FROM customers WHERE {key} = ? ORDER BY 1", [shared]) == \
                [(i,) for i in ids]


def test_the_review_list_is_its_owners_only(demo):
    data, run_id, _ = demo
    for name in ("review.csv", "review.parquet", "review.xlsx"):
        assert stat.S_IMODE((data / "quarantine" / run_id / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((data / "quarantine").stat().st_mode) == 0o700
