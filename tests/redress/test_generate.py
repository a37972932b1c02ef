"""The synthetic breach: deterministic, well-formed, and exactly as generated.json says.

The counts are checked against a small reference reading of the SPEC's row rules written
here, row by row, so a planted defect that trips an earlier rule shows up as a mismatch.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from redress import generate as generator
from redress import generate_sql as generator_sql
from redress.errors import RedressError
from redress.generate import fixed_offset, generate

COLUMNS = ["customer_id", "email", "phone", "data_category", "accessed_at", "confidence", "source"]
SCOPE = ["scope_01_initial.csv", "scope_02_revision.parquet", "scope_03_addressbook.jsonl"]
OUTCOMES = ["malformed_row", "missing_identifier", "unknown_category", "invalid_timestamp", "invalid_confidence",
            "unknown_customer_id", "exposure_before_account_created", "invalid_identifier",
            "non_member_rows", "ambiguous_rows"]
EXTRA = "_beyond_the_header"  # a CSV record's fields beyond the header's, joined; None when there are none
STRAY = "stray quote"  # in EXTRA: the line is no CSV record (Python's csv module, strict)


@pytest.fixture(scope="module")
def breach(tmp_path_factory):
    out = tmp_path_factory.mktemp("breach")
    return out, generate(out, 3000, 7)


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def read(path: Path) -> pl.DataFrame:
    if path.suffix == ".csv":  # Python's csv module: a record wider than the header is kept, not refused
        # a line at a time, strictly (the generated CSV holds no quoted line break): a line
        # with a stray quote is kept as STRAY in EXTRA, its values empty
        def record(line: str) -> list[str] | None:
            try:
                return next(csv.reader([line], strict=True))
            except csv.Error:
                return None

        with path.open(encoding="utf-8", newline="") as fh:
            header, *records = [record(line.rstrip("\r\n")) for line in fh]
        return pl.DataFrame([dict(zip(header, r[:len(header)]), **{EXTRA: ",".join(r[len(header):]) or None})
                             if r is not None else {EXTRA: STRAY} for r in records],
                            schema={**{c: pl.String for c in header}, EXTRA: pl.String})
    if path.suffix == ".jsonl":
        return pl.read_ndjson(path)
    return pl.read_parquet(path)


def customers(out: Path) -> pl.DataFrame:
    return pl.read_parquet(next((out / "inbox" / "customers").glob("customers_*.parquet")))


# ------------------------------------------------------------------ a reference reading of the SPEC


def cell(value):
    return value.strip() if isinstance(value, str) and value.strip() else None


def email_key(value):
    email = value.strip().lower()
    return email if email.count("@") == 1 and all(email.split("@")) and " " not in email else None


def phone_key(value):
    value = value.strip()
    phone = ("+" if value.startswith("+") else "") + re.sub(r"\D", "", value)
    if phone.startswith("0"):
        phone = "+82" + phone[1:]
    if phone.startswith("+820"):
        phone = "+82" + phone[4:]
    return phone if re.fullmatch(r"\+82[1-9]\d{7,9}", phone) else None


def when(value, zone):
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


class Master:
    def __init__(self, frame: pl.DataFrame, zone: ZoneInfo):
        self.created = {r["customer_id"]: when(r["created_at"], zone) for r in frame.iter_rows(named=True)}
        self.by = {"email": {}, "phone": {}}
        for r in frame.iter_rows(named=True):
            for column, key in (("email", email_key), ("phone", phone_key)):
                if cell(r[column]):
                    self.by[column].setdefault(key(r[column]), []).append(r["customer_id"])


def outcome(row: dict, master: Master, categories, zone) -> str | tuple[str, str]:
    """The first failing rule of SPEC 'Row rules, then identity', or the exposure; a row
    wider than its header first (redress quarantines it alone as malformed_row)."""
    if row.get(EXTRA):
        return "malformed_row"
    customer_id, email, phone = (cell(row[c]) for c in ("customer_id", "email", "phone"))
    if not (customer_id or email or phone):
        return "missing_identifier"
    if cell(row["data_category"]) not in categories:
        return "unknown_category"
    accessed = when(row["accessed_at"] or "", zone)
    if accessed is None:
        return "invalid_timestamp"
    if (cell(row["confidence"]) or "confirmed") not in ("confirmed", "suspected"):
        return "invalid_confidence"
    if customer_id:
        if customer_id not in master.created:
            return "unknown_customer_id"
        customer = customer_id
    else:
        customer, well_formed = None, False
        for column, key in (("email", email_key), ("phone", phone_key)):
            normalised = key(row[column]) if cell(row[column]) else None
            if normalised is None:
                continue
            well_formed = True
            matches = master.by[column].get(normalised, [])
            if len(matches) > 1:
                return "ambiguous_rows"
            if matches:
                customer = matches[0]
                break
        if customer is None:
            return "non_member_rows" if well_formed else "invalid_identifier"
    if accessed < master.created[customer]:
        return "exposure_before_account_created"
    return (customer, cell(row["data_category"]))


@pytest.mark.parametrize("size, seed, timezone", [(3000, 7, "Asia/Seoul"), (100, 1, "Asia/Seoul"),
                                                   (400, 3, "America/New_York")])
def test_planted_counts_are_what_the_rules_find(tmp_path, policy, size, seed, timezone):
    manifest = generate(tmp_path, size, seed, timezone=timezone)
    zone, categories = ZoneInfo(timezone), policy().categories
    master = Master(customers(tmp_path), zone)
    found, per_file, exposures = Counter(), {}, {}
    for name in SCOPE:
        frame = read(tmp_path / "inbox" / "scope" / name)
        results = [outcome(r, master, categories, zone) for r in frame.iter_rows(named=True)]
        per_file[name] = dict(Counter(r for r in results if isinstance(r, str)))
        found.update(per_file[name])
        exposures[name] = [r for r in results if isinstance(r, tuple)]
    assert {k: found[k] for k in OUTCOMES} == {k: manifest[k] for k in OUTCOMES}
    assert all(manifest[k] >= 1 for k in OUTCOMES)
    assert per_file == manifest["planted_per_file"]
    every = [e for name in SCOPE for e in exposures[name]]
    assert len(every) == manifest["member_rows"]
    assert len(every) - len(set(every)) == manifest["duplicate_exposure_rows"] > 0
    # the only repeats are file 1's exposures coming again in file 2
    initial, revision = exposures[SCOPE[0]], exposures[SCOPE[1]]
    assert len(set(initial)) == len(initial) and len(set(revision)) == len(revision)
    assert len(set(initial) & set(revision)) == manifest["duplicate_exposure_rows"]


def test_shared_identifiers_are_exact_pairs(breach):
    out, manifest = breach
    master = Master(customers(out), ZoneInfo("Asia/Seoul"))
    for column in ("email", "phone"):
        shared = [ids for key, ids in master.by[column].items() if len(ids) > 1]
        assert all(len(ids) == 2 for ids in shared)
        assert len(shared) == manifest[f"shared_{column}_pairs"]
        assert None not in master.by[column]  # every customer's identifiers are well-formed


# ------------------------------------------------------------------ files and determinism


def test_writes_the_inbox_and_the_manifest(breach):
    out, manifest = breach
    inbox = out / "inbox"
    assert sorted(p.name for p in (inbox / "scope").iterdir()) == sorted(manifest["files"]["scope"])
    assert [p.name for p in (inbox / "customers").iterdir()] == manifest["files"]["customers"]
    for kind in ("returns", "claims"):  # finance and customer service drop theirs later
        assert (inbox / kind).is_dir() and not any((inbox / kind).iterdir())
    text = (out / "generated.json").read_text()
    assert json.loads(text) == manifest
    assert text == json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    assert manifest["seed"] == 7 and manifest["customers"] == 3000
    assert manifest["duplicate_files"] == len(manifest["files"]["duplicate"]) == 1
    assert manifest["unreadable_files"] == len(manifest["files"]["unreadable"]) == 1


def test_same_seed_gives_byte_identical_files(breach, tmp_path):
    out, _ = breach
    generate(tmp_path, 3000, 7)
    assert files(tmp_path) == files(out)


def test_thread_count_does_not_change_the_bytes(tmp_path, monkeypatch):
    import duckdb

    def run(folder, threads):
        connect = duckdb.connect
        monkeypatch.setattr(duckdb, "connect",
                            lambda *a, config, **k: connect(*a, config={**config, "threads": threads}, **k))
        generate(tmp_path / folder, 70_000, 3)  # the revision spans more than one Parquet row group
        monkeypatch.undo()
        return files(tmp_path / folder)

    assert run("one", 1) == run("four", 4)


def test_big_files_keep_index_order(breach):
    """Their bytes are fixed only because range()'s order survives into the files."""
    out, manifest = breach
    assert customers(out)["customer_id"].is_sorted()
    revision = read(out / "inbox" / "scope" / "scope_02_revision.parquet")
    defects = sum(manifest["planted_per_file"]["scope_02_revision.parquet"].values())
    assert revision.head(revision.height - defects)["customer_id"].drop_nulls().is_sorted()


def test_another_seed_gives_other_files(breach, tmp_path):
    out, _ = breach
    generate(tmp_path, 3000, 8)
    again, first = files(tmp_path), files(out)
    for name in ("inbox/customers/customers_2025-11-29.parquet", "inbox/scope/scope_02_revision.parquet",
                 "inbox/scope/scope_01_initial.csv", "inbox/scope/scope_03_addressbook.jsonl"):
        assert again[name] != first[name], name


def test_files_read_in_their_formats_except_the_corrupt_one(breach):
    out, manifest = breach
    scope = out / "inbox" / "scope"
    for name, rows in manifest["scope_rows"].items():
        frame = read(scope / name)
        assert [c for c in frame.columns if c != EXTRA] == COLUMNS
        assert frame.height == rows
        if name.endswith(".csv"):  # the lines with an unquoted comma or a stray quote in source, and no other
            assert frame[EXTRA].drop_nulls().to_list() == [
                STRAY if n % 3 == 0 else f" server {n}" for n in range(1, manifest["malformed_row"] + 1)]
    assert (scope / "scope_01_initial_resent.csv").read_bytes() == (scope / "scope_01_initial.csv").read_bytes()
    corrupt = scope / manifest["files"]["unreadable"][0]
    assert corrupt.stat().st_size > 0
    with pytest.raises(pl.exceptions.PolarsError):
        pl.read_parquet(corrupt)


@pytest.mark.parametrize("size", [99, 0, -5])
def test_refuses_fewer_than_100_customers(tmp_path, size):
    with pytest.raises(RedressError, match="customers"):
        generate(tmp_path, size, 1)


def test_refuses_an_inbox_that_holds_files(tmp_path):
    (tmp_path / "inbox" / "scope").mkdir(parents=True)
    (tmp_path / "inbox" / "scope" / "earlier.csv").write_text("customer_id\n")
    with pytest.raises(RedressError) as refused:
        generate(tmp_path, 100, 1)
    assert "\n" not in str(refused.value)
    assert [p.name for p in (tmp_path / "inbox").rglob("*") if p.is_file()] == ["earlier.csv"]


def test_refuses_an_unknown_timezone(tmp_path):
    with pytest.raises(RedressError, match="timezone"):
        generate(tmp_path, 100, 1, timezone="Mars/Olympus_Mons")


def test_fixed_offsets_are_written_as_constants():
    assert fixed_offset("Asia/Seoul") == "+09:00"
    assert fixed_offset("Asia/Kolkata") == "+05:30"
    assert fixed_offset("America/New_York") is None  # daylight saving: looked up per timestamp


# ------------------------------------------------------------------ the data looks like the real thing


def test_customers_snapshot_is_a_valid_master(breach):
    out, manifest = breach
    c = customers(out)
    assert c.columns == ["customer_id", "name", "email", "phone", "status", "created_at", "closed_at",
                         "is_test", "payout_method", "bank_code", "bank_account"]
    assert c["customer_id"].is_unique().all() and c["customer_id"].str.contains(r"^C\d{9}$").all()
    assert c["name"].str.contains(r"^[가-힣]{3}$").all()
    assert set(c["status"]) == {"active", "dormant", "closed"}
    assert (c["closed_at"].is_not_null() == (c["status"] == "closed")).all()
    seoul = ZoneInfo("Asia/Seoul")
    created = [when(v, seoul) for v in c["created_at"]]
    assert None not in created and min(created).year == 2014
    assert all(when(v, seoul) for v in c["closed_at"].drop_nulls())
    assert c["created_at"].str.ends_with("+09:00").sum() not in (0, c.height)
    assert not (c["email"].is_null() & c["phone"].is_null()).any()
    assert 0 < c["email"].is_null().sum() < c.height * 0.1 and 0 < c["phone"].is_null().sum() < c.height * 0.1
    phones = c["phone"].drop_nulls()
    for form in (r"^010-\d{4}-\d{4}$", r"^010\d{8}$", r"^\+82 10-\d{4}-\d{4}$", r"^\+8210\d{8}$"):
        assert phones.str.contains(form).sum() > 0, form
    emails = c["email"].drop_nulls()
    assert emails.str.contains("[A-Z]").any() and (emails != emails.str.strip_chars()).any()
    assert c["is_test"].sum() == manifest["test_accounts"] and 0 < c["is_test"].sum() < c.height * 0.01
    assert set(c["payout_method"].drop_nulls()) == {"voucher", "bank_transfer"}
    banked = c.filter(pl.col("bank_code").is_not_null())
    assert 0.1 < banked.height / c.height < 0.2
    digits = banked["bank_account"].str.replace_all(r"[- ]", "")
    valid = banked["bank_code"].str.contains(r"^\d{3}$") & digits.str.contains(r"^\d{10,16}$")
    assert 0 < (~valid).sum() < valid.sum()
    assert banked["bank_account"].str.contains("-").any() and banked["bank_account"].str.contains(" ").any()


def test_revision_is_large_and_mixed(breach):
    out, manifest = breach
    s = read(out / "inbox" / "scope" / "scope_02_revision.parquet")
    by_id = s["customer_id"].drop_nulls()
    assert 0.9 < by_id.n_unique() / manifest["customers"] < 1.0
    assert 1.7 < s.height / by_id.n_unique() < 2.3
    assert s.filter(pl.col("customer_id").is_null() & pl.col("email").is_not_null()).height > 0
    assert s.filter(pl.col("customer_id").is_null() & pl.col("phone").is_not_null()).height > 0
    at = s["accessed_at"]
    assert at.str.contains(r"[+-]\d\d:\d\d$").any() and at.str.contains(r"\d\d:\d\d:\d\d$").any()
    assert {"confirmed", "suspected", None, ""} <= set(s["confidence"])
    outside = at.str.starts_with("2025-06-0") | at.str.starts_with("2025-06-1") | at.str.starts_with("2025-12")
    assert 0 < outside.sum() < s.height * 0.03


def reserved(domain: str) -> bool:
    return domain in generator_sql.RESERVED_DOMAINS or domain.endswith(generator_sql.RESERVED_DOMAIN_SUFFIXES)


@pytest.mark.parametrize("size, seed", [(3000, 7), (100, 1), (70_000, 3)])
def test_every_address_is_at_a_domain_reserved_for_examples(tmp_path, size, seed):
    """No generated email can reach a real mailbox: every value of every text column of
    every readable file that has text after an `@` (planted bad ones included) names a
    domain reserved by RFC 2606 / 6761, and every domain list is made of them."""
    for domains in (generator_sql.DOMAINS, generator_sql.OTHER_DOMAINS):
        assert all(reserved(d) for d in domains)
    manifest = generate(tmp_path, size, seed)
    inbox = tmp_path / "inbox"
    paths = [inbox / "customers" / name for name in manifest["files"]["customers"]]
    paths += [inbox / "scope" / name for name in manifest["files"]["scope"]
              if name not in manifest["files"]["unreadable"]]
    domains = Counter()
    for path in paths:
        frame = read(path)
        for column in frame.select(pl.col(pl.String)).columns:
            values = frame[column].drop_nulls().str.strip_chars().str.to_lowercase()
            found = values.filter(values.str.contains("@.")).str.extract(r"@([^@]*)$")
            domains.update(found.drop_nulls().to_list())
    assert set(domains) - {""}, "no address found: the check would pass on nothing"
    assert not {d for d in domains if d and not reserved(d)}
    assert set(generator_sql.DOMAINS) <= set(domains)


@pytest.mark.parametrize("seed", [1, 7, 12345])
def test_phones_stay_unique_and_mobile_past_100_million_customers(seed):
    """Equifax scale (150M): customers past the first 10^8 get 019 numbers, so no two
    customers share a phone (which would plant ambiguity nobody counted) and every
    customer phone is still a Korean mobile (SMS channel)."""
    n = 150_000_000
    con = duckdb.connect()
    for statement in generator.macros(seed, n, generator.rank_ranges(generator.planted_counts(n)), None):
        con.execute(statement)
    # both sides of the 10^8 boundary, a spread over everyone, and pairs exactly 10^8 apart
    rows = con.execute("""
        WITH i AS (SELECT unnest([0, 1, 99999998, 99999999, 100000000, 100000001, 149999999]) AS i
                   UNION SELECT range FROM range(0, 150000000, 999983)
                   UNION SELECT range + 100000000 FROM range(0, 50000000, 999983))
        SELECT i, '+82' || mobile_prefix(i) || mobile8(i) AS phone FROM i""").fetchall()
    assert len({phone for _, phone in rows}) == len(rows) > 200
    assert all(re.fullmatch(r"\+82(10|19)\d{8}", phone) for _, phone in rows)
    assert {phone[3:5] for i, phone in rows if i < 100_000_000} == {"10"}
    assert {phone[3:5] for i, phone in rows if i >= 100_000_000} == {"19"}


def test_refuses_more_customers_than_phone_numbers(tmp_path):
    with pytest.raises(RedressError, match="199,999,999"):
        generate(tmp_path / "x", 200_000_000, 7)
