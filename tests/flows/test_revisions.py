"""Paying exactly once while the scope and the policy keep changing (issue 4, Revisions).

Four runs over one data folder: a small first scope file, a large revision, a
correction, then two policy revisions. After each run every customer's ledger total is
asserted. Under the SPEC evidence accumulates (a later file cannot retract an earlier
exposure), so entitlements fall only through the policy: that is how the overpayment
exception is provoked.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from flows.remediation import remediation
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

CUSTOMERS = """customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account
C1,김하나,one@example.com,010-1000-0001,active,2020-01-01,,false,,,
C2,이둘,two@example.com,010-1000-0002,active,2020-01-01,,false,,,
C3,박셋,three@example.com,010-1000-0003,dormant,2020-01-01,,false,bank_transfer,004,1234567890
C4,최넷,four@example.com,010-1000-0004,closed,2020-01-01,2025-09-01,false,,,
C5,정다섯,five@example.com,010-1000-0005,active,2020-01-01,,false,,,
C6,강여섯,six@example.com,010-1000-0006,active,2020-01-01,,false,,,
"""
HEADER = "customer_id,email,phone,data_category,accessed_at,confidence,source\n"
DROPS = {
    "scope_day01.csv": "C1,,,name,2025-07-01T10:00:00+09:00,,day1\nC2,,,email,2025-07-01T10:00:00+09:00,,day1\n",
    "scope_day05_revision.csv": (
        "C1,,,shipping_address,2025-07-02T10:00:00+09:00,,rev\n"
        ",three@example.com,,name,2025-08-01 09:00:00,,rev\n"
        "C4,,,shipping_address,2025-08-02,,rev\n"
        "C5,,,name,2025-08-03,suspected,rev\n"
        "C1,,,name,2025-07-01T10:00:00+09:00,,rev\n"  # the same exposure again: counts once
    ),
    "scope_day11_correction.csv": "C5,,,name,2025-08-03,confirmed,corr\n,,010-1000-0006,email,2025-09-09,,corr\n",
}


def policy(tmp: Path, policy_id: str, tier1: int, tier2: int, shipping_tier: int) -> Path:
    text = DEFAULT_POLICY.read_text()
    text = text.replace('id = "coupang-2025-v1"', f'id = "{policy_id}"')
    text = text.replace("[tiers]                 # tier -> amount in minor units (whole won)\n1 = 50000",
                        f"[tiers]\n1 = {tier1}\n2 = {tier2}")
    text = text.replace("shipping_address = 1", f"shipping_address = {shipping_tier}")
    path = tmp / f"{policy_id}.toml"
    path.write_text(text)
    return path


def paid(data: Path) -> dict[str, int]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return dict(con.execute(
            "SELECT customer_id, sum(amount) FROM ledger WHERE status IN ('issued', 'settled') GROUP BY ALL"
        ).fetchall())


def test_revisions_pay_what_is_owed_and_never_twice(tmp_path):
    data = tmp_path / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS)
    v1 = policy(tmp_path, "test-v1", 10000, 30000, shipping_tier=2)

    def drop_and_run(name: str | None, policy_path: Path, day: int) -> dict:
        if name:
            (data / "inbox" / "scope" / name).write_text(HEADER + DROPS[name])
        return remediation(data_dir=data, policy_path=policy_path, run_date=date(2025, 12, day))

    drop_and_run("scope_day01.csv", v1, 1)
    assert paid(data) == {"C1": 10000, "C2": 10000}

    s = drop_and_run("scope_day05_revision.csv", v1, 5)
    # C1's shipping address raises it to tier 2: a top-up of the difference only.
    assert paid(data) == {"C1": 30000, "C2": 10000, "C3": 10000, "C4": 30000}
    assert s["disburse"]["payments"] == 3
    assert not (data / "quarantine" / s["run_id"] / "overpayments.csv").exists()  # nobody is overpaid

    drop_and_run("scope_day11_correction.csv", v1, 11)
    # C5 confirmed at last; C6 found by phone.
    assert paid(data) == {"C1": 30000, "C2": 10000, "C3": 10000, "C4": 30000, "C5": 10000, "C6": 10000}

    v2 = policy(tmp_path, "test-v2", 15000, 30000, shipping_tier=1)
    s = drop_and_run(None, v2, 12)
    # Shipping address moves to tier 1 at 15,000: C1 and C4 were paid 30,000, more than
    # they are now entitled to: an exception, never a clawback. The others get 5,000.
    assert paid(data) == {"C1": 30000, "C2": 15000, "C3": 15000, "C4": 30000, "C5": 15000, "C6": 15000}
    # C4's account is closed: its 30,000 is held on claim, never paid out, so its 15,000
    # above the entitlement is held, not overpaid (finance review); C1's went out.
    assert s["disburse"]["overpayments"] == {"customers": 1, "amount_krw": 15000, "held_customers": 1,
                                             "held_krw": 15000}
    text = (data / "reports" / s["run_id"] / "summary.md").read_text(encoding="utf-8")
    assert ("| overpaid (paid out, no clawback) | 1 | 15,000 |\n"
            "| held above entitlement (on the `claim` rail, not paid out) | 1 | 15,000 |\n") in text
    assert "Fund cap" not in text  # total_cap = 0: no word of a cap
    recon = (data / "reports" / s["run_id"] / "reconciliation.md").read_text(encoding="utf-8")
    assert "overpaid (paid out, no clawback): 1 person, 15,000 KRW. Held above entitlement: 1 person, 15,000 KRW" in recon
    assert "Fund cap" not in recon
    # SPEC "Ledger": each overpayment is listed (found by review: only the totals were),
    # beside the review list, which holds personal data, and linked from the summary
    listed = pl.read_csv(data / "quarantine" / s["run_id"] / "overpayments.csv")
    assert listed.rows() == [("C1", 15000, 30000, 15000, 0, 15000), ("C4", 15000, 30000, 15000, 15000, 0)]
    assert listed.columns == ["customer_id", "entitled", "paid", "above_entitlement", "held_above", "paid_out_above"]
    assert pl.read_parquet(data / "quarantine" / s["run_id"] / "overpayments.parquet").equals(listed)
    assert f"quarantine/{s['run_id']}/overpayments.csv" in text and "`overpayments.csv`" in text
    assert not list((data / "reports").rglob("overpayments*"))

    v3 = policy(tmp_path, "test-v3", 15500, 30000, shipping_tier=1)
    s = drop_and_run(None, v3, 13)
    # 500 more each is below the 1,000 minimum: nothing now, it stays owed.
    assert s["disburse"]["payments"] == 0
    assert paid(data) == {"C1": 30000, "C2": 15000, "C3": 15000, "C4": 30000, "C5": 15000, "C6": 15000}

    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        ids = con.execute("SELECT count(*), count(DISTINCT payment_id), count(DISTINCT batch_id) FROM ledger").fetchall()[0]
        batches = con.execute("SELECT count(*), count(DISTINCT batch_id) FROM batches").fetchall()[0]
        from redress.reports.reconciliation import reconciliation

        rec = reconciliation(con, max_attempts=3)
        ledger_total = con.execute("SELECT sum(amount) FROM ledger").fetchall()[0][0]
    assert ids[0] == ids[1]
    assert batches[0] == batches[1] == ids[2]
    total = rec.filter(rec["rail"] == "TOTAL").row(0, named=True)
    assert sum(total[c] for c in ("issued", "settled", "returned", "held", "claimed", "unclaimed")) == ledger_total
    assert total["outstanding"] == 4 * 500
    assert total["overpaid"] == 14500 and total["held_above_entitlement"] == 14500  # C1 paid out, C4 held
    folders = {p.name for p in (data / "outbox" / "batches").iterdir()}
    assert len(folders) == batches[0]


def test_a_revision_run_leaves_the_unchanged_export_partitions_alone(tmp_path):
    """Issue 10: the analyst exports after a revision run write the new scope file's
    partition and the new run's, and leave the first file's and first run's files as
    they were (same inode and mtime); every partition still equals its table rows."""
    data = tmp_path / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS)
    v1 = policy(tmp_path, "test-v1", 10000, 30000, shipping_tier=2)
    (data / "inbox" / "scope" / "scope_day01.csv").write_text(HEADER + DROPS["scope_day01.csv"])
    first = remediation(data_dir=data, policy_path=v1, run_date=date(2025, 12, 1))["run_id"]
    exports = data / "exports"
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        (day1,), = con.execute("SELECT DISTINCT file_sha256 FROM scope_exposures").fetchall()
    kept = [exports / "scope_exposures" / f"{day1}.parquet", exports / "ledger" / f"{first}.parquet",
            exports / "notifications" / f"{first}.parquet"]
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept}

    (data / "inbox" / "scope" / "scope_day05_revision.csv").write_text(HEADER + DROPS["scope_day05_revision.csv"])
    second = remediation(data_dir=data, policy_path=v1, run_date=date(2025, 12, 5))["run_id"]
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept} == before
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        for table, column, value in [("scope_exposures", "file_sha256", None), ("ledger", "run_id", second),
                                     ("notifications", "run_id", second), ("ledger", "run_id", first)]:
            values = [value] if value else [v for (v,) in con.execute(
                f"SELECT DISTINCT {column} FROM {table}").fetchall()]
            for v in values:
                got = con.execute("SELECT * FROM read_parquet(?, hive_partitioning = false)",
                                  [str(exports / table / f"{v}.parquet")]).fetchall()
                want = con.execute(f"SELECT * FROM {table} WHERE {column} = ?", [v]).fetchall()
                assert sorted(got, key=repr) == sorted(want, key=repr) and want, (table, v)
        assert con.execute("SELECT count(DISTINCT file_sha256) FROM scope_exposures").fetchall() == [(2,)]
    assert len(list((exports / "scope_exposures").glob("*.parquet"))) == 2


def test_a_revision_that_takes_a_capped_fund_over_its_cap_is_said_in_every_report(tmp_path):
    """Found by finance review: a revision lowered the pro rata share of a capped fund, the
    people paid before kept what they got (no clawback) and the new people were paid, so
    the ledger ended above the cap with no word in any run output. Here a 25,000 KRW fund:
    day 1 pays C1 and C2 10,000 each (base 20,000, within it); the revision brings the
    base to 80,000 (C1 30,000, C2, C3 10,000, C4 30,000), a share of 25/80: C1 9,375 and
    C2 3,125 are overpaid, C3 is paid 3,125 and C4's 9,375 is held on claim (closed
    account): 32,500 KRW paid or held in all, 7,500 over the cap. Nothing is blocked."""
    data = tmp_path / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    (data / "inbox" / "customers" / "customers.csv").write_text(CUSTOMERS)
    capped = policy(tmp_path, "test-capped", 10000, 30000, shipping_tier=2)
    capped.write_text(capped.read_text().replace("\ntotal_cap = 0 ", "\ntotal_cap = 25000 "))
    for day, name in ((1, "scope_day01.csv"), (5, "scope_day05_revision.csv")):
        (data / "inbox" / "scope" / name).write_text(HEADER + DROPS[name])
        s = remediation(data_dir=data, policy_path=capped, run_date=date(2025, 12, day))
    assert paid(data) == {"C1": 10000, "C2": 10000, "C3": 3125, "C4": 9375}
    report = data / "reports" / s["run_id"]
    lines = ["Fund cap (budget.total_cap): 25,000 KRW.",
             "Paid or held in all, the whole ledger (issued + settled, held claim money included: it is owed): "
             "32,500 KRW.",
             "WARNING: 7,500 KRW over the fund cap. Payments are never clawed back and the pro rata share applies "
             "to entitlements: when a revision lowers the share, people paid before keep what they got while the "
             "people added are paid too."]
    for name in ("summary.md", "reconciliation.md"):
        text = (report / name).read_text(encoding="utf-8")
        assert all(f"\n{line}\n" in text for line in lines), name
    page = (report / "report.html").read_text(encoding="utf-8")
    assert f'<p class="failed" id="fund-cap-3">{lines[2]}</p>' in page
    summary = (report / "summary.md").read_text(encoding="utf-8")
    assert "| overpaid (paid out, no clawback) | 2 | 7,500 |" in summary
