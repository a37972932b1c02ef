"""A policy whose timezone is not the one the evidence was read in (redress/inbox/retime.py;
SPEC "Input: scope files", "Input: customers snapshot": a time without an offset is in the
policy's timezone). A folder run first under a policy in UTC, then under one in Seoul time
(the correction of a wrong timezone), ends where one run under the Seoul policy ends: the
same instants, the same classification and the same entitlements; what the first run paid
stays paid (SPEC: no clawback). What-if refuses a candidate in another timezone.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from approval_off import DEFAULT_POLICY
from flows.remediation import remediation
from redress.errors import RedressError
from redress.generate import generate
from redress.policy import load_policy
from redress.whatif.evaluate import whatif
from test_incremental import COMPARED, HEADER, drop, q, table

# Every table the comparison of the last run with a run from scratch covers: the outcome
# tables and entitlements, not the money (the UTC run paid people the Seoul one does not).
SAME = {name: sql for name, sql in COMPARED.items() if name != "paid"} | {
    "customers": "SELECT * FROM customers",
    "scope_rows": "SELECT * FROM scope_rows",
}


def reasons(data: Path, people: dict[str, str]) -> dict[str, str]:
    found = dict(q(data, "SELECT customer_id, reason FROM entitlements WHERE customer_id IN (SELECT unnest(?))",
                   [list(people.values())]))
    return {role: found.get(cid) for role, cid in people.items()}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("timezone")
    generated = root / "generated"
    generate(generated, 400, seed=5)
    utc = root / "utc.toml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    utc.write_text(text.replace('timezone = "Asia/Seoul"', 'timezone = "UTC"')
                   .replace('id = "coupang-2025-v1"', 'id = "tz-utc"'), encoding="utf-8")
    (snapshot,) = (generated / "inbox" / "customers").iterdir()
    initial = generated / "inbox" / "scope" / "scope_01_initial.csv"
    master = pl.read_parquet(snapshot)
    # its lines with an unquoted comma in source have a field too many, and some a stray
    # quote: read without quotes (no value of the file is quoted) and cut, they name members
    exposed = set(pl.read_csv(initial, infer_schema=False, truncate_ragged_lines=True, quote_char=None)["customer_id"]
                  .drop_nulls().to_list())
    free = (master.filter(~pl.col("is_test") & (pl.col("status") == "active") & (pl.col("created_at") < "2025")
                          & ~pl.col("customer_id").is_in(exposed))["customer_id"].sort().to_list())
    people = dict(zip(("late", "early", "offset", "closed"), free[:4]))
    # closed at 20:00 on the eve of the window: in UTC after its start, in Seoul before it
    master = master.with_columns(
        pl.when(pl.col("customer_id") == people["closed"]).then(pl.lit("closed")).otherwise("status").alias("status"),
        pl.when(pl.col("customer_id") == people["closed"]).then(pl.lit("2025-06-23T20:00:00"))
        .otherwise("closed_at").alias("closed_at"))
    rows = HEADER + "".join([
        f"{people['late']},,,name,2025-11-18T23:30:00,,tz-late\n",  # the window's last day in Seoul only
        f"{people['early']},,,name,2025-06-23T23:30:00,,tz-early\n",  # the window's first day in UTC only
        f"{people['offset']},,,name,2025-11-18T23:30:00+09:00,,tz-offset\n",  # an offset: the same in both
        f"{people['closed']},,,name,2025-08-01T12:00:00+09:00,,tz-closed\n",
    ])
    a = root / "a" / "data"
    for kind in ("customers", "scope", "returns"):
        (a / "inbox" / kind).mkdir(parents=True)
    master.write_parquet(a / "inbox" / "customers" / snapshot.name)
    drop(a / "inbox" / "scope" / initial.name, initial.read_bytes())
    drop(a / "inbox" / "scope" / "scope_09_timezone.csv", rows)
    first = remediation(data_dir=a, policy_path=utc, run_date=date(2025, 12, 1))
    under_utc = reasons(a, people)
    second = remediation(data_dir=a, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    b = root / "b" / "data"
    shutil.copytree(a / "inbox", b / "inbox")
    scratch = remediation(data_dir=b, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, 2))
    return {"a": a, "b": b, "utc": utc, "people": people, "under_utc": under_utc,
            "first": first, "second": second, "scratch": scratch}


def test_the_edge_cases_differ_between_the_two_timezones(folders):
    assert folders["under_utc"] == {"late": "OUTSIDE_WINDOW", "early": "ELIGIBLE", "offset": "ELIGIBLE",
                                    "closed": "ELIGIBLE"}
    assert reasons(folders["b"], folders["people"]) == {
        "late": "ELIGIBLE", "early": "OUTSIDE_WINDOW", "offset": "ELIGIBLE", "closed": "CLOSED_BEFORE_BREACH"}


def test_a_run_after_the_timezone_changed_ends_where_a_run_from_scratch_ends(folders):
    for name, sql in SAME.items():
        assert table(folders["a"], sql) == table(folders["b"], sql), name
    late = folders["people"]["late"]
    assert q(folders["a"], "SELECT min(accessed_at) FROM scope_rows WHERE customer_id = ?", [late]) == [
        (datetime(2025, 11, 18, 14, 30, tzinfo=timezone.utc),)]


def test_the_run_said_what_it_read_again_and_took_the_full_path(folders):
    second = folders["second"]
    scope_rows = q(folders["a"], "SELECT count(*) FROM scope_rows")[0][0]
    customers = q(folders["a"], "SELECT count(*) FROM customers")[0][0]
    assert second["ingest"]["retimed"] == (
        "times without an offset read again in Asia/Seoul, the policy's timezone (read before in UTC): "
        f"{scope_rows:,} rows of 2 scope file(s) and the customers snapshot's {customers:,} rows")
    assert second["validate"]["why"] == "full: policy changed"
    assert folders["first"]["ingest"]["retimed"] == folders["scratch"]["ingest"]["retimed"] == ""
    assert q(folders["a"], "SELECT DISTINCT timezone FROM ingested_files WHERE status = 'accepted'") == [("Asia/Seoul",)]
    summary = next((folders["a"] / "reports").glob(f"{second['run_id']}/summary.md")).read_text(encoding="utf-8")
    assert "The policy's timezone is new: times without an offset read again in Asia/Seoul" in summary


def test_the_money_first_payments_for_the_newly_eligible_and_nothing_taken_back(folders):
    people = folders["people"]
    paid = dict(q(folders["a"], """SELECT customer_id, sum(amount) FROM ledger WHERE customer_id IN (SELECT unnest(?))
                                   GROUP BY ALL""", [list(people.values())]))
    # late: first paid by the Seoul run; early and closed: paid by the UTC run, kept (an overpayment)
    assert paid == {people["late"]: 50_000, people["early"]: 50_000, people["offset"]: 50_000,
                    people["closed"]: 50_000}
    assert dict(q(folders["b"], "SELECT customer_id, sum(amount) FROM ledger WHERE customer_id IN (SELECT unnest(?)) "
                                "GROUP BY ALL", [list(people.values())])) == {people["late"]: 50_000,
                                                                              people["offset"]: 50_000}


def test_whatif_refuses_a_candidate_in_another_timezone(folders):
    with pytest.raises(RedressError, match=r"^policy tz-utc: its timezone UTC is not Asia/Seoul, the one the "
                                           r"evidence's times were read in; .* only `redress run` with that policy"):
        whatif(folders["a"], [load_policy(DEFAULT_POLICY), load_policy(folders["utc"])], date(2025, 12, 3))
    out = whatif(folders["a"], [load_policy(DEFAULT_POLICY)], date(2025, 12, 3))
    assert out["as_of_run"] == folders["second"]["run_id"]
