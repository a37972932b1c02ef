"""Incremental runs (issue 10): a revision classifies only its new rows and re-entitles
only the customers they touch, and ends exactly where a from-scratch run over the same
inbox ends: every outcome table, every entitlement and every customer's payments, row
for row. A new customers snapshot or a changed policy takes the full path.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.remediation import remediation
from redress.generate import generate
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

HEADER = "customer_id,email,phone,data_category,accessed_at,confidence,source\n"

# Every table an incremental run writes, without run_id (which run wrote a row differs
# by construction), ordered by every column.
COMPARED = {
    "scope_exposures": "SELECT * FROM scope_exposures",
    "non_member_exposures": "SELECT * FROM non_member_exposures",
    "review": "SELECT * FROM review",
    "quarantine": "SELECT * EXCLUDE (run_id) FROM quarantine WHERE kind = 'scope'",
    "entitlements": "SELECT * EXCLUDE (run_id) FROM entitlements",
    "paid": """SELECT customer_id, sum(amount) FILTER (status IN ('issued', 'settled')) AS paid
               FROM ledger GROUP BY ALL""",
}


def q(data: Path, sql: str, params=None):
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def table(data: Path, sql: str) -> list[tuple]:
    return q(data, f"SELECT * FROM ({sql}) ORDER BY ALL")


def drop(path: Path, content: bytes | str) -> None:
    """A file dropped after everything already there (the inbox reads by modification time)."""
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    later = time.time() + len(list(path.parent.iterdir()))
    os.utime(path, (later, later))


def tiered_policy(folder: Path, policy_id: str = "test-tiers") -> Path:
    """The default policy with shipping_address in tier 2 (80,000): a new exposure of a
    known person can raise their entitlement, so a revision pays top-ups."""
    text = DEFAULT_POLICY.read_text()
    text = text.replace('id = "coupang-2025-v1"', f'id = "{policy_id}"')
    text = text.replace("[tiers]                 # tier -> amount in minor units (whole won)\n1 = 50000",
                        "[tiers]\n1 = 50000\n2 = 80000")
    text = text.replace("shipping_address = 1", "shipping_address = 2")
    path = folder / f"{policy_id}.toml"
    path.write_text(text)
    return path


def revision_rows(data: Path) -> str:
    """A scope file of new people, new exposures of known people, and one defective row
    per rule, built from the warehouse of `data` after its first runs."""
    unexposed = [r[0] for r in q(data, """
        SELECT customer_id FROM customers WHERE NOT is_test AND status = 'active' AND created_at < '2025-01-01'
        AND customer_id NOT IN (SELECT customer_id FROM entitlements) ORDER BY 1 LIMIT 4""")]
    known = [r[0] for r in q(data, """
        SELECT customer_id FROM entitlements WHERE reason = 'ELIGIBLE' AND tier = 1 ORDER BY 1 LIMIT 4""")]
    shared = q(data, "SELECT email FROM customers WHERE email_norm IN (SELECT email_norm FROM customers "
                     "GROUP BY ALL HAVING count(*) > 1) ORDER BY 1 LIMIT 1")
    late = q(data, "SELECT customer_id FROM customers ORDER BY created_at DESC, customer_id LIMIT 1")[0][0]
    assert len(unexposed) == 4 and len(known) == 4, "the generated breach has people of both kinds"
    rows = [f"{c},,,name,2025-08-01T12:00:00+09:00,,rev-new\n" for c in unexposed]
    rows += [f"{c},,,shipping_address,2025-08-02T12:00:00+09:00,,rev-known\n" for c in known]
    rows += [
        ",,,name,2025-08-01,,missing_identifier\n",
        f"{known[0]},,,shoe_size,2025-08-01,,unknown_category\n",
        f"{known[0]},,,name,yesterday,,invalid_timestamp\n",
        f"{known[0]},,,name,2025-08-01,maybe,invalid_confidence\n",
        "NO-SUCH-ID,,,name,2025-08-01,,unknown_customer_id\n",
        ",not-an-email,12,name,2025-08-01,,invalid_identifier\n",
        f"{late},,,name,1990-01-01,,exposure_before_account_created\n",
        ",stranger@example.org,,email,2025-08-01,,non_member\n",
    ]
    if shared:
        rows.append(f",{shared[0][0]},,name,2025-08-01,,ambiguous_identifier\n")
    return HEADER + "".join(rows)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One folder run file by file (a full run, then two incremental ones), and a fresh
    folder with the same inbox run once."""
    root = tmp_path_factory.mktemp("incremental")
    generated = root / "generated"
    generate(generated, 500, seed=12)
    policy = tiered_policy(root)
    inc = root / "inc" / "data"
    for kind in ("customers", "scope", "returns"):
        (inc / "inbox" / kind).mkdir(parents=True)
    for f in sorted((generated / "inbox" / "customers").iterdir()):
        drop(inc / "inbox" / "customers" / f.name, f.read_bytes())
    scope = sorted((generated / "inbox" / "scope").iterdir())
    drop(inc / "inbox" / "scope" / scope[0].name, scope[0].read_bytes())
    first = remediation(data_dir=inc, policy_path=policy, run_date=date(2025, 12, 1))
    for f in scope[1:]:
        drop(inc / "inbox" / "scope" / f.name, f.read_bytes())
    second = remediation(data_dir=inc, policy_path=policy, run_date=date(2025, 12, 2))
    drop(inc / "inbox" / "scope" / "scope_09_revision.csv", revision_rows(inc))
    third = remediation(data_dir=inc, policy_path=policy, run_date=date(2025, 12, 3))
    fresh = root / "fresh" / "data"
    shutil.copytree(inc / "inbox", fresh / "inbox")
    scratch = remediation(data_dir=fresh, policy_path=policy, run_date=date(2025, 12, 3))
    return {"inc": inc, "fresh": fresh, "policy": policy, "first": first, "second": second, "third": third,
            "scratch": scratch}


def test_revisions_take_the_incremental_path(runs):
    assert [runs[r]["validate"]["mode"] for r in ("first", "second", "third", "scratch")] == [
        "full", "incremental", "incremental", "full"]
    assert runs["first"]["validate"]["why"] == "full: nothing classified yet"
    assert runs["third"]["validate"]["why"] == "incremental: 1 new file"
    assert runs["third"]["validate"]["classified_files"] == 1
    assert [runs[r]["entitle"]["mode"] for r in ("first", "second", "third", "scratch")] == [
        "full", "incremental", "incremental", "full"]
    # 4 new people and 4 known people touched: only they are recomputed.
    assert runs["third"]["entitle"]["customers_recomputed"] == 8


def test_incremental_equals_a_run_from_scratch_row_for_row(runs):
    inc, fresh = runs["inc"], runs["fresh"]
    for name, sql in COMPARED.items():
        assert table(inc, sql) == table(fresh, sql), name
    assert runs["third"]["validate"]["destinations"] == runs["scratch"]["validate"]["destinations"]
    assert runs["third"]["validate"]["quarantine_reasons"] == runs["scratch"]["validate"]["quarantine_reasons"]
    assert runs["third"]["entitle"]["by_reason"] == runs["scratch"]["entitle"]["by_reason"]


def test_the_revision_paid_first_payments_and_top_ups(runs):
    inc = runs["inc"]
    by_source = dict(q(inc, """
        SELECT source, count(*) FROM scope_exposures WHERE source LIKE 'rev-%' GROUP BY ALL ORDER BY 1"""))
    assert by_source == {"rev-known": 4, "rev-new": 4}
    # known people: 50,000 first, 30,000 top-up now; new people: 50,000 now
    third = q(inc, """
        SELECT amount, count(*) FROM ledger WHERE run_id = ? GROUP BY ALL ORDER BY 1""",
              [runs["third"]["run_id"]])
    assert third == [(30000, 4), (50000, 4)]
    reasons = runs["third"]["validate"]["quarantine_reasons"]
    for reason in ("missing_identifier", "unknown_category", "invalid_timestamp", "invalid_confidence",
                   "unknown_customer_id", "invalid_identifier", "exposure_before_account_created"):
        held = q(inc, """SELECT count(*) FROM quarantine q JOIN scope_rows s USING (file_sha256, row_number)
                         WHERE q.kind = 'scope' AND q.reason = ? AND s.source = ?""", [reason, reason])
        assert held == [(1,)], reason
        assert reasons[reason] >= 1
    assert q(inc, "SELECT count(*) FROM non_member_exposures WHERE recipient = 'stranger@example.org'") == [(1,)]
    # rows of the revision were quarantined by the run that classified them; earlier ones kept theirs
    assert q(inc, "SELECT DISTINCT run_id FROM quarantine q JOIN scope_rows s USING (file_sha256, row_number) "
                  "WHERE s.source = 'unknown_category'") == [(runs["third"]["run_id"],)]
    # the conservation count covers every file, however many runs classified them
    files = runs["third"]["validate"]["files"]
    assert all(f["balanced"] for f in files)
    assert sum(f["rows_read"] for f in files) == runs["scratch"]["validate"]["destinations"]["rows_read"]


def test_a_new_snapshot_or_policy_takes_the_full_path(runs, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(runs["inc"], data)
    before = {name: table(data, sql) for name, sql in COMPARED.items() if name != "paid"}
    # the same customers in another row order: a new snapshot file, nothing else changed
    (snapshot,) = sorted((data / "inbox" / "customers").iterdir())
    reordered = pl.read_parquet(snapshot).reverse()
    reordered.write_parquet(tmp_path / "reordered.parquet")
    drop(data / "inbox" / "customers" / "customers_9_reordered.parquet", (tmp_path / "reordered.parquet").read_bytes())
    s = remediation(data_dir=data, policy_path=runs["policy"], run_date=date(2025, 12, 4))
    assert (s["validate"]["mode"], s["validate"]["why"]) == ("full", "full: new customers snapshot")
    assert s["entitle"]["mode"] == "full"
    assert s["validate"]["classified_files"] == q(data, """
        SELECT count(DISTINCT file_sha256) FROM ingested_files WHERE kind = 'scope' AND status = 'accepted'""")[0][0]
    # the full path re-derives every outcome; with the same customers, to the same rows
    for name, sql in COMPARED.items():
        if name != "paid":
            assert table(data, sql) == before[name], name
    again = remediation(data_dir=data, policy_path=runs["policy"], run_date=date(2025, 12, 5))
    assert (again["validate"]["mode"], again["validate"]["why"]) == ("incremental", "incremental: 0 new files")
    assert (again["entitle"]["mode"], again["entitle"]["customers_recomputed"]) == ("incremental", 0)
    changed = tiered_policy(tmp_path, "test-tiers-v2")
    s = remediation(data_dir=data, policy_path=changed, run_date=date(2025, 12, 6))
    assert (s["validate"]["mode"], s["validate"]["why"]) == ("full", "full: policy changed")
    assert s["entitle"]["mode"] == "full"
    assert {r[0] for r in q(data, "SELECT DISTINCT policy_id FROM entitlements")} == {"test-tiers-v2"}
