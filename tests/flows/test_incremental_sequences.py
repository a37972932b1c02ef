"""Incremental runs against one run from scratch, over sequences a forensics lead and a
finance officer produce (issue 10 review): a policy edited then reverted to the very
same bytes, a revision of defective rows only, a file whose content duplicates an
earlier one, new exposures of people whose earlier ones were all suspected, ambiguous
emails, returns between revisions, a new customers snapshot arriving with a revision,
a capped policy with revisions, and a run date that changes every run. Each sequence
ends with the same outcome tables, entitlements and money paid per customer as one run
over the same inbox in a fresh folder.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows.remediation import remediation
from redress.generate import generate
from test_incremental import COMPARED, HEADER, drop, q, table, tiered_policy

CAPPED = Path(__file__).resolve().parents[2] / "policies" / "tiered-capped-example.toml"


def fresh_run(root: Path, inc: Path, policy: Path, day: date) -> Path:
    fresh = root / f"fresh-{inc.parent.name}" / "data"
    shutil.copytree(inc / "inbox", fresh / "inbox")
    remediation(data_dir=fresh, policy_path=policy, run_date=day)
    return fresh


def new_folder(root: Path, name: str, generated: Path) -> Path:
    data = root / name / "data"
    for kind in ("customers", "scope", "returns"):
        (data / "inbox" / kind).mkdir(parents=True)
    for f in sorted((generated / "inbox" / "customers").iterdir()):
        drop(data / "inbox" / "customers" / f.name, f.read_bytes())
    return data


def suspected_only(data: Path) -> list[str]:
    return [r[0] for r in q(data, """
        SELECT customer_id FROM entitlements WHERE reason = 'UNCONFIRMED_ONLY' ORDER BY 1 LIMIT 3""")]


def ambiguous_email(data: Path) -> list[str]:
    return [r[0] for r in q(data, """
        SELECT min(email) FROM customers WHERE email_norm IS NOT NULL GROUP BY email_norm
        HAVING count(*) > 1 ORDER BY 1 LIMIT 2""")]


def exposed(data: Path, n: int, offset: int = 0) -> list[str]:
    return [r[0] for r in q(data, f"""
        SELECT customer_id FROM entitlements WHERE reason = 'ELIGIBLE' ORDER BY 1 LIMIT {n} OFFSET {offset}""")]


def issued_payment(data: Path, n: int) -> list[str]:
    return [r[0] for r in q(data, f"""
        SELECT payment_id FROM ledger WHERE status = 'issued' AND rail = 'bank_transfer' ORDER BY 1 LIMIT {n}""")]


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    root = tmp_path_factory.mktemp("sequences")
    generated = root / "generated"
    generate(generated, 600, seed=21)
    scope = sorted((generated / "inbox" / "scope").iterdir())
    p1 = tiered_policy(root, "seq-tiers")
    # the same policy with lower amounts: nobody is paid more under it than under p1; its
    # own id, as a changed policy must have once its first one paid (redress/warehouse/runs.py)
    p2 = root / "seq-tiers-lower.toml"
    p2.write_text(p1.read_text().replace("1 = 50000\n2 = 80000", "1 = 40000\n2 = 60000")
                  .replace('id = "seq-tiers"', 'id = "seq-tiers-lower"'))
    out = {}

    # ---- A: tiered policy, edited then reverted, revisions, returns, a new snapshot
    a = new_folder(root, "a", generated)
    days = iter(date(2025, 12, d) for d in range(1, 29))
    drop(a / "inbox" / "scope" / scope[0].name, scope[0].read_bytes())
    remediation(data_dir=a, policy_path=p1, run_date=next(days))
    for f in scope[1:]:
        drop(a / "inbox" / "scope" / f.name, f.read_bytes())
    remediation(data_dir=a, policy_path=p2, run_date=next(days))
    # reverted: the very bytes of p1 again, with a revision of defective rows only
    drop(a / "inbox" / "scope" / "rev_01_defective.csv", HEADER + "".join([
        ",,,name,2025-08-01,,missing\n", "NO-SUCH,,,name,2025-08-01,,unknown\n",
        f"{exposed(a, 1)[0]},,,shoe_size,2025-08-01,,category\n"]))
    remediation(data_dir=a, policy_path=p1, run_date=next(days))
    # an earlier file's very content under another name; suspected-only people now
    # confirmed; ambiguous emails; a repeat of a known exposure
    drop(a / "inbox" / "scope" / "rev_02_copy.csv", scope[0].read_bytes())
    sus = suspected_only(a)
    amb = ambiguous_email(a)
    assert sus and amb, "the generated breach has suspected-only people and shared emails"
    known = exposed(a, 3)
    drop(a / "inbox" / "scope" / "rev_03_people.csv", HEADER + "".join(
        [f"{c},,,name,2025-08-03T00:00:00Z,confirmed,sus\n" for c in sus]
        + [f",{e},,name,2025-08-03T00:00:00Z,,amb\n" for e in amb]
        + [f"{c},,,shipping_address,2025-08-03T00:00:00Z,suspected,known-suspected\n" for c in known]))
    remediation(data_dir=a, policy_path=p1, run_date=next(days))
    # a returned transfer, then a revision in the same run
    returned = issued_payment(a, 2)
    (a / "inbox" / "returns" / "returns_01.csv").write_text(
        "payment_id,status,reason\n" + "".join(f"{p},returned,account closed\n" for p in returned))
    out["a_returned"] = returned
    drop(a / "inbox" / "scope" / "rev_04_topups.csv", HEADER + "".join(
        f"{c},,,shipping_address,2025-08-04T00:00:00Z,,topup\n" for c in exposed(a, 3, 3)))
    remediation(data_dir=a, policy_path=p1, run_date=next(days))
    # a new customers snapshot with a revision: one person's email changed so that a
    # once-ambiguous email now names one person only, and a known person closed
    (snapshot,) = sorted((generated / "inbox" / "customers").iterdir())
    master = pl.read_parquet(snapshot) if snapshot.suffix == ".parquet" else pl.read_csv(snapshot, infer_schema=False)
    twin = q(a, "SELECT customer_id FROM customers WHERE email = ? ORDER BY 1 LIMIT 1", [amb[0]])[0][0]
    master = master.with_columns(
        pl.when(pl.col("customer_id") == twin).then(pl.lit("renamed.twin@example.net")).otherwise(pl.col("email"))
        .alias("email"))
    snap2 = root / f"snap2{snapshot.suffix}"
    master.write_parquet(snap2) if snapshot.suffix == ".parquet" else master.write_csv(snap2)
    drop(a / "inbox" / "customers" / f"customers_9_changed{snapshot.suffix}", snap2.read_bytes())
    drop(a / "inbox" / "scope" / "rev_05_with_snapshot.csv", HEADER + "".join(
        f"{c},,,shipping_address,2025-08-05T00:00:00Z,,with-snapshot\n" for c in exposed(a, 2, 6)))
    out["a_snapshot"] = remediation(data_dir=a, policy_path=p1, run_date=next(days))
    drop(a / "inbox" / "scope" / "rev_06_last.csv", HEADER + "".join(
        f",{e},,shipping_address,2025-08-06T00:00:00Z,,last\n" for e in amb))
    out["a_last"] = remediation(data_dir=a, policy_path=p1, run_date=next(days))
    out["a"], out["a_fresh"] = a, fresh_run(root, a, p1, next(days))

    # ---- B: the capped policy with revisions (entitle always full, validate incremental)
    b = new_folder(root, "b", generated)
    drop(b / "inbox" / "scope" / scope[0].name, scope[0].read_bytes())
    remediation(data_dir=b, policy_path=CAPPED, run_date=date(2025, 12, 1))
    for i, f in enumerate(scope[1:]):
        drop(b / "inbox" / "scope" / f.name, f.read_bytes())
        last = remediation(data_dir=b, policy_path=CAPPED, run_date=date(2025, 12, 2 + i))
    drop(b / "inbox" / "scope" / "rev_01.csv", HEADER + "".join(
        f"{c},,,building_entrance_code,2025-08-04T00:00:00Z,,capped\n" for c in exposed(b, 4)))
    out["b_last"] = remediation(data_dir=b, policy_path=CAPPED, run_date=date(2025, 12, 20))
    out["b"], out["b_fresh"] = b, fresh_run(root, b, CAPPED, date(2025, 12, 21))
    out["b_before_last"] = last
    return out


@pytest.mark.parametrize("name", ["a", "b"])
def test_every_sequence_ends_where_one_run_from_scratch_ends(sequences, name):
    inc, fresh = sequences[name], sequences[f"{name}_fresh"]
    for table_name, sql in COMPARED.items():
        assert table(inc, sql) == table(fresh, sql), (name, table_name)
    # money: what each customer holds (issued or settled) is their entitlement, in both
    owed = """SELECT e.customer_id, e.amount, coalesce(sum(l.amount) FILTER (l.status IN ('issued', 'settled')), 0)
              FROM entitlements e LEFT JOIN ledger l USING (customer_id) GROUP BY ALL"""
    assert [r for r in table(inc, owed) if r[1] != r[2]] == []


def test_the_sequence_took_the_paths_it_should(sequences):
    assert sequences["a_snapshot"]["validate"]["why"] == "full: new customers snapshot"
    assert sequences["a_last"]["validate"]["mode"] == "incremental"
    assert sequences["b_last"]["validate"]["mode"] == "incremental"
    assert sequences["b_last"]["entitle"]["mode"] == "full"


def test_the_returns_between_revisions_were_applied_and_reissued(sequences):
    """Found by review: the returns file once had a header the reader rejects
    (`result` for `status`), so the sequence never had a return in it."""
    a, returned = sequences["a"], sequences["a_returned"]
    assert len(returned) == 2
    assert q(a, "SELECT payment_id, status FROM ledger WHERE list_contains(?, payment_id) ORDER BY 1",
             [returned]) == [(p, "returned") for p in sorted(returned)]
    # each returned transfer reissued to its customer with the next attempt, and the file accepted
    assert q(a, """SELECT count(*) FROM ledger r JOIN ledger n ON n.customer_id = r.customer_id
                   AND n.rail = r.rail AND n.attempt = r.attempt + 1
                   WHERE list_contains(?, r.payment_id)""", [returned]) == [(2,)]
    assert q(a, "SELECT status FROM ingested_files WHERE kind = 'returns'") == [("accepted",)]
