"""`redress whatif` against real runs: its totals are what a run of each policy pays
(SPEC "The command line"; issue 13 section 1), and it writes nothing but its page."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pytest

from approval_off import DEFAULT_POLICY as POLICY_A  # the shipped policy, require_approval = false
from flows.remediation import remediation
from redress.generate import generate
from redress.errors import RedressError
from redress.policy import load_policy
from redress.whatif.evaluate import whatif
from redress.whatif.output import table_text
from forked import run_redress

ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = date(2025, 12, 1)
CUSTOMERS = 600


def q(data: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def policy_b(folder: Path, total_cap: int = 0) -> Path:
    """Tiers by sensitivity (30,000 / 60,000 / 90,000), an optional fund cap, and a daily
    cash cap of 100,000 so that the bank top-ups need several value days."""
    text = POLICY_A.read_text(encoding="utf-8")
    for old, new in (('id = "coupang-2025-v1"', 'id = "whatif-b-v1"'), ("shipping_address = 1", "shipping_address = 2"),
                     ("order_history = 1", "order_history = 2"), ("entrance_code = 1", "entrance_code = 3"),
                     ("1 = 50000", "1 = 30000\n2 = 60000\n3 = 90000"), ("total_cap = 0", f"total_cap = {total_cap}"),
                     ("daily_cash_cap   = 20000000000", "daily_cash_cap   = 100000")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / f"b-{total_cap}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A breach paid under policy A; whatif of A and B over it; then B run for real in a
    copy of the folder."""
    root = tmp_path_factory.mktemp("whatif")
    data_a = root / "a"
    generate(data_a, CUSTOMERS, seed=5)
    remediation(data_dir=data_a, policy_path=POLICY_A, run_date=RUN_DATE)
    # B's cap shares 90% of what B's tiers would cost, so pro rata binds
    (uncapped,) = whatif(data_a, [load_policy(policy_b(root))], RUN_DATE)["policies"]
    b = policy_b(root, total_cap=uncapped["pro_rata"]["base_sum_krw"] * 9 // 10)
    result = whatif(data_a, [load_policy(POLICY_A), load_policy(b)], RUN_DATE)
    data_b = root / "b"
    shutil.copytree(data_a, data_b)
    summary_b = remediation(data_dir=data_b, policy_path=b, run_date=RUN_DATE)
    return data_a, data_b, b, result, summary_b["run_id"]


def by(rows: list[tuple]) -> dict:
    return {str(key): {"customers": n, "amount_krw": int(total or 0)} for key, n, total in rows}


def test_whatif_of_the_policy_in_force_is_what_the_run_paid(runs):
    data_a, _, _, result, _ = runs
    a = result["policies"][0]
    paid = by(q(data_a, "SELECT rail, count(DISTINCT customer_id), sum(amount) FROM ledger "
                        "WHERE status IN ('issued', 'settled') GROUP BY rail"))
    assert {r: t for r, t in a["by_rail"].items() if t["customers"]} == paid
    (customers, total), = q(data_a, "SELECT count(DISTINCT customer_id), sum(amount) FROM ledger")
    assert a["eligible"] == {"customers": customers, "amount_krw": int(total)}
    reasons = by(q(data_a, "SELECT reason, count(*), sum(amount) FROM entitlements GROUP BY reason"))
    assert {r: t for r, t in a["by_reason"].items() if t["customers"]} == reasons
    exposed = sum(t["customers"] for t in reasons.values())
    assert a["versus_in_force"] == {"gain": 0, "lose": 0, "unchanged": exposed,
                                   "top_up": {"customers": 0, "amount_krw": 0}}
    assert a["bank_transfers"]["value_days"] == 0


def test_whatif_of_another_policy_is_what_a_real_run_of_it_pays(runs):
    data_a, data_b, _, result, run_b = runs
    b = result["policies"][1]
    reasons = by(q(data_b, "SELECT reason, count(*), sum(amount) FROM entitlements GROUP BY reason"))
    assert {r: t for r, t in b["by_reason"].items() if t["customers"]} == reasons
    rails = by(q(data_b, "SELECT rail, count(*), sum(amount) FROM entitlements WHERE reason = 'ELIGIBLE' GROUP BY rail"))
    assert {r: t for r, t in b["by_rail"].items() if t["customers"]} == rails
    tiers = by(q(data_b, "SELECT tier, count(*), sum(amount) FROM entitlements WHERE reason = 'ELIGIBLE' GROUP BY tier"))
    assert {k: t for k, t in b["by_tier"].items() if t["customers"]} == tiers
    # the top-up cost of switching is exactly what run B added to the ledger
    (n, total), = q(data_b, "SELECT count(*), sum(amount) FROM ledger WHERE run_id = ?", [run_b])
    assert b["versus_in_force"]["top_up"] == {"customers": n, "amount_krw": int(total)} and n > 0
    # and its bank transfers land on the value dates run B gave them
    days = q(data_b, "SELECT count(DISTINCT value_date), max(value_date) FROM batches b JOIN ledger l USING (batch_id) "
                     "WHERE l.run_id = ? AND b.rail = 'bank_transfer'", [run_b])
    assert b["bank_transfers"]["value_days"] == days[0][0] >= 2
    assert b["bank_transfers"]["last_value_date"] == days[0][1].isoformat()
    # gain, lose, unchanged: the entitlements of run A against those of run B
    with duckdb.connect() as con:
        (gain, lose, same), = con.execute("""
            SELECT count(*) FILTER (WHERE coalesce(nb.amount, 0) > coalesce(na.amount, 0)),
                   count(*) FILTER (WHERE coalesce(nb.amount, 0) < coalesce(na.amount, 0)),
                   count(*) FILTER (WHERE coalesce(nb.amount, 0) = coalesce(na.amount, 0))
            FROM read_parquet(?, hive_partitioning = false) na
            FULL JOIN read_parquet(?, hive_partitioning = false) nb USING (customer_id)""",
            [str(data_a / "exports" / "entitlements.parquet"), str(data_b / "exports" / "entitlements.parquet")]).fetchall()
    assert {k: b["versus_in_force"][k] for k in ("gain", "lose", "unchanged")} == {"gain": gain, "lose": lose, "unchanged": same}
    assert gain > 0 and lose > 0
    assert b["pro_rata"]["binds"] and b["pro_rata"]["factor"] == pytest.approx(0.9, abs=1e-6)


def test_paid_in_all_after_switching_is_what_the_ledger_holds_after_a_real_run(runs):
    """A fund cap cuts the entitlements, never what is already paid: what-if's "paid in
    all" is run A's live ledger plus B's top-up, and equals the live ledger after run B."""
    data_a, data_b, _, result, _ = runs
    b = result["policies"][1]["paid_in_all"]
    live = "SELECT count(DISTINCT customer_id), sum(amount) FROM ledger WHERE status IN ('issued', 'settled')"
    (people_a, paid_a), = q(data_a, live)
    assert b["already_paid"] == {"customers": people_a, "amount_krw": int(paid_a)}
    (_, paid_b), = q(data_b, live)
    assert b["after_switching_krw"] == int(paid_b)
    cap = b["fund_cap_krw"]
    assert 0 < cap < paid_b and b["exceeds_fund_cap_krw"] == int(paid_b) - cap
    # the table says it in one line
    assert (f"warning: 2. whatif-b-v1: paid in all after switching exceeds the fund cap by {int(paid_b) - cap:,} KRW: "
            "payments are never clawed back") in table_text(result, terminal=False).splitlines()
    assert result["policies"][0]["paid_in_all"]["exceeds_fund_cap_krw"] == 0  # A has no cap


def test_a_candidate_keeping_the_id_of_a_policy_that_paid_under_other_rules_is_priced_and_flagged(runs, tmp_path):
    """`redress run` refuses a changed policy under a policy.id that paid (SPEC "The
    policy"); what-if still prices it, and says the run would refuse it as it is."""
    data_a, *_ = runs
    text = POLICY_A.read_text(encoding="utf-8")
    raised = tmp_path / "raised-in-place.toml"
    raised.write_text(text.replace("1 = 50000", "1 = 60000"), encoding="utf-8")
    reworded = tmp_path / "reworded.toml"  # same rules, a comment and the batch size changed
    reworded.write_text("# reviewed again\n" + text.replace("max_batch_items  = 50000", "max_batch_items  = 40000"),
                        encoding="utf-8")
    result = whatif(data_a, [load_policy(raised), load_policy(reworded)], RUN_DATE)
    (run_a,), = q(data_a, "SELECT run_id FROM runs WHERE run_id IN (SELECT run_id FROM batches)")
    flagged, same = result["policies"]
    assert flagged["policy_id_paid_by_run"] == run_a and same["policy_id_paid_by_run"] is None
    assert flagged["eligible"]["amount_krw"] == same["eligible"]["amount_krw"] * 6 // 5  # priced all the same
    warning = (f"warning: 1. coupang-2025-v1: run {run_a} paid under policy.id 'coupang-2025-v1' with other rules, "
               "so `redress run` refuses this file as it is: give it a new policy.id")
    lines = table_text(result, terminal=False).splitlines()
    assert warning in lines and sum("refuses" in line for line in lines) == 1
    # and the run does refuse it
    with pytest.raises(RedressError, match=f"run {run_a} stamped on its payments under other rules"):
        remediation(data_dir=data_a, policy_path=raised, run_date=RUN_DATE)


def fingerprint(data: Path) -> dict[str, str]:
    """SHA-256 of the warehouse (and its log, if any) and of every outbox file."""
    files = [p for p in [data / "warehouse.duckdb", data / "warehouse.duckdb.wal"] if p.exists()]
    files += sorted(p for p in (data / "outbox").rglob("*") if p.is_file())
    return {str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def cli(*args: str) -> subprocess.CompletedProcess:
    return run_redress(args, env=dict(os.environ), cwd=ROOT, timeout=300)


def test_the_command_writes_only_its_page_and_the_same_file_twice_is_two_columns(runs):
    data_a, _, b, result, _ = runs
    before = fingerprint(data_a)
    done = cli("--data-dir", str(data_a), "whatif", str(POLICY_A), str(b), str(POLICY_A),
               "--run-date", RUN_DATE.isoformat())
    assert done.returncode == 0, done.stderr
    assert fingerprint(data_a) == before, "whatif changed the warehouse or the outbox"
    page = Path(done.stdout.split("what-if page:")[1].split()[0])
    figures = json.loads((page.parent / "whatif.json").read_text(encoding="utf-8"))
    assert [p["policy_id"] for p in figures["policies"]] == ["coupang-2025-v1", "whatif-b-v1", "coupang-2025-v1"]
    assert figures["policies"][:2] == result["policies"]
    assert figures["policies"][2] == result["policies"][0]
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 3 and "<script" not in html.lower()
    urls = {u for u in html.replace("'", '"').split('"') if u.startswith(("http:", "https:", "//"))}
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    # plain text when stdout is not a terminal: policies as columns, amounts with separators
    total = f"{result['policies'][1]['eligible']['amount_krw']:,} KRW"
    line = next(li for li in done.stdout.splitlines() if li.startswith("total cost"))
    assert total in line and "\x1b" not in done.stdout


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_no_warehouse_yet(tmp_path):
    (tmp_path / "inbox").mkdir()
    line = one_line_error(cli("--data-dir", str(tmp_path), "whatif", str(POLICY_A)))
    assert f"--data-dir {tmp_path.absolute()} run` first" in line  # the whole command, to paste
    assert not (tmp_path / "warehouse.duckdb").exists() and not (tmp_path / "reports").exists()


@pytest.mark.parametrize("text, expected", [
    ("[policy\n", "bad.toml: not valid TOML"),
    (POLICY_A.read_text(encoding="utf-8").replace("[budget]", "[budget]\nspare = 1"), "bad.toml: budget.spare"),
])
def test_a_policy_that_does_not_parse_is_named(runs, tmp_path, text, expected):
    data_a = runs[0]
    before = fingerprint(data_a)
    reports = sorted(p.name for p in (data_a / "reports").iterdir())
    (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
    line = one_line_error(cli("--data-dir", str(data_a), "whatif", str(POLICY_A), str(tmp_path / "bad.toml")))
    assert expected in line
    assert fingerprint(data_a) == before and sorted(p.name for p in (data_a / "reports").iterdir()) == reports


@pytest.mark.parametrize("old, new", [
    ('sender = "Coupang"', 'sender = "Coupang 010-9999-9999 bit.ly/abc"'),
    ('{ id = "beauty", share_bp = 4000 }', '{ id = "www.evil-example.com", share_bp = 4000 }'),
])
def test_a_candidate_whose_messages_would_hold_a_link_or_another_phone_is_refused_as_a_run_refuses_it(
        runs, tmp_path, old, new):
    """whatif reads a candidate with the loader a run uses: the same one line, naming the
    key, and nothing written (SPEC "Notifications": a message names only the official phone)."""
    data_a = runs[0]
    before = fingerprint(data_a)
    reports = sorted(p.name for p in (data_a / "reports").iterdir())
    text = POLICY_A.read_text(encoding="utf-8")
    assert text.count(old) == 1
    (tmp_path / "bad.toml").write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(RedressError) as refused:
        load_policy(tmp_path / "bad.toml")
    line = one_line_error(cli("--data-dir", str(data_a), "whatif", str(POLICY_A), str(tmp_path / "bad.toml")))
    assert line.endswith(str(refused.value)) and "must hold no link" in line, line
    assert fingerprint(data_a) == before and sorted(p.name for p in (data_a / "reports").iterdir()) == reports


def test_a_warehouse_held_by_a_run_is_one_line(runs):
    data_a = runs[0]
    with duckdb.connect(str(data_a / "warehouse.duckdb")):  # a writer holds the file, as a run does
        line = one_line_error(cli("--data-dir", str(data_a), "whatif", str(POLICY_A)))
    assert "in use" in line or "locked" in line


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "2025-11-30"])
def test_a_switch_date_no_run_could_take_is_one_line_and_writes_nothing(runs, day):
    """Found by review: year 1 and year 9999 were priced; so was a day before the run
    it prices after (2025-11-30, before RUN_DATE), which `redress run` refuses."""
    data_a = runs[0]
    pages = sorted((data_a / "reports").glob("whatif-*"))
    line = one_line_error(cli("--data-dir", str(data_a), "whatif", str(POLICY_A), "--run-date", day))
    assert line.startswith(f"redress: run date {day} is ")
    assert ("before 2025-12-01, the date of run R20251201-001" in line) == (day == "2025-11-30")
    assert sorted((data_a / "reports").glob("whatif-*")) == pages


def test_a_candidate_listing_a_category_the_run_quarantined_counts_those_rows_as_its_run_would(runs, tmp_path):
    """The last run quarantined rows in categories policy A does not list; a candidate
    that lists one takes them as exposures in its own run (its row rules and identity
    resolution), so what-if counts them under it: its figures equal a real run of it."""
    data_a = runs[0]
    by_category = dict(q(data_a, "SELECT json_extract_string(row_json, '$.data_category'), count(*) FROM quarantine "
                                 "WHERE kind = 'scope' AND reason = 'unknown_category' GROUP BY ALL"))
    category, rows = max(by_category.items(), key=lambda kv: (kv[1], kv[0]))
    assert rows > 0
    wider = tmp_path / "wider.toml"
    text = POLICY_A.read_text(encoding="utf-8").replace('id = "coupang-2025-v1"', 'id = "wider-v1"')
    wider.write_text(text.replace("entrance_code = 1", f'entrance_code = 1\n"{category}" = 2\n')
                     .replace("1 = 50000", "1 = 50000\n2 = 70000"), encoding="utf-8")
    result = whatif(data_a, [load_policy(POLICY_A), load_policy(wider)], RUN_DATE)
    a, w = result["policies"]
    assert a["exposures_from_quarantine"] == 0
    data_w = tmp_path / "w"
    shutil.copytree(data_a, data_w)
    run_w = remediation(data_dir=data_w, policy_path=wider, run_date=RUN_DATE)["run_id"]
    (taken,), = q(data_w, "SELECT count(*) FROM scope_exposures WHERE data_category = ?", [category])
    assert w["exposures_from_quarantine"] == taken > 0
    reasons = by(q(data_w, "SELECT reason, count(*), sum(amount) FROM entitlements GROUP BY reason"))
    assert {r: t for r, t in w["by_reason"].items() if t["customers"]} == reasons
    tiers = by(q(data_w, "SELECT tier, count(*), sum(amount) FROM entitlements WHERE reason = 'ELIGIBLE' GROUP BY tier"))
    assert {k: t for k, t in w["by_tier"].items() if t["customers"]} == tiers and "2" in tiers
    (n, total), = q(data_w, "SELECT count(*), sum(amount) FROM ledger WHERE run_id = ?", [run_w])
    assert w["versus_in_force"]["top_up"] == {"customers": n, "amount_krw": int(total)} and n > 0
    per_rail = by(q(data_w, "SELECT rail, count(*), sum(amount) FROM ledger WHERE run_id = ? GROUP BY rail", [run_w]))
    assert {r: t for r, t in w["top_up_by_rail"].items() if t["customers"]} == per_rail
