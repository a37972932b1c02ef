"""The SQL a synthetic breach is written in (`redress/generate.py` runs it): the values it
draws from (names, domains, banks, and bad values that each break one rule), the time
spans, how many defects to plant and which customers play which role, the macros, and
the queries for the customers snapshot, the revision and the planted rows.

Every value is a pure function of (seed, row index, purpose) through DuckDB's hash().
"""

from __future__ import annotations

import hashlib
import math
import zoneinfo
from datetime import datetime, timedelta

CATEGORIES = ["name", "email", "phone", "shipping_address", "order_history", "entrance_code"]
FAMILY = "김 김 김 이 이 박 최 정 강 조 윤 장 임 한 오 서 신 권 황 송".split()  # 김, 이 most often
SYLLABLES = list("민서지현수준우예도하윤은채영연주진호성원재유아빈희경태동혜소")
WORDS = "minjun seoyeon jiwoo haeun doyun seojun hayoon jiho sua yejun kim lee park choi jung sky sunny blue".split()
# Mail domains reserved for examples (RFC 2606, RFC 6761): no generated address can reach
# a real mailbox, should a generated notification file ever be handed to a sender. The
# phones cannot be kept out of use the same way: the SPEC's well-formed phone is any +82
# number, and up to 150 M customers each need their own, so they are Korean mobiles.
RESERVED_DOMAIN_SUFFIXES = (".example", ".test", ".invalid", ".localhost")
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
DOMAINS = ["example.com", "example.net", "example.org", "mail.example", "post.test"]
OTHER_DOMAINS = ["contacts.example", "address-book.test", "phone-book.example"]  # address-book people only: never a customer's
BANKS = "002 003 004 007 011 020 023 027 031 032 034 035 037 039 045 048 071 081 088 089 090 092".split()
SOURCES = ["waf_log", "db_audit_log", "api_gateway_log", "s3_access_log", "edr_alert"]
# Each value breaks exactly the rule its list names (values are trimmed before the check).
BAD_CATEGORIES = ["passport", "Email", "card_number", "NAME", "shipping address", "ssn"]
BAD_TIMESTAMPS = ["2025-13-45 99:00", "yesterday", "2025-07-32T10:00:00+09:00", "31/07/2025 25:61", "not a date"]
BAD_CONFIDENCES = ["Confirmed", "maybe", "CONFIRMED", "likely", "suspect"]
BAD_EMAILS = ["not-an-email", "kim@@example.com", "park@", "@example.net", "lee min@example.com"]
BAD_PHONES = ["12345", "010-12", "02-123", "+1 555", None]

# Wall-clock spans in the given timezone. The window is 2025-06-24T00:00+09:00 ..
# 2025-11-18T23:59:59+09:00: a day of margin keeps every timestamp on its intended side
# of it for any UTC offset, and ordinary accounts are all created before any access, so
# only the planted rows can break rule 6 (exposure before the account was created).
CREATED_SPAN = (datetime(2014, 1, 1), datetime(2025, 6, 1))
LATE_SPAN = (datetime(2025, 8, 1), datetime(2025, 11, 1))  # accounts created inside the window
INSIDE_SPAN = (datetime(2025, 6, 25), datetime(2025, 11, 18))
EARLY_SPAN = (datetime(2025, 6, 25), datetime(2025, 7, 20))  # inside, before any late account
BEFORE_SPAN = (datetime(2025, 6, 5), datetime(2025, 6, 21))
AFTER_SPAN = (datetime(2025, 11, 25), datetime(2025, 12, 10))
INITIAL_SPAN = (datetime(2025, 6, 25), datetime(2025, 7, 5))
CLOSED_SPAN = (datetime(2025, 6, 24, 12), datetime(2025, 11, 28))  # closed after the breach began
DEFECTS = ["unknown_category", "invalid_timestamp", "missing_identifier", "unknown_customer_id",
           "invalid_confidence", "exposure_before_account_created", "invalid_identifier"]
# Lines of the initial CSV with an unquoted comma in source (redress/generate.py
# _append_malformed): written after the planted rows, not planted by the SQL here.
MALFORMED = "malformed_row"


def planted_counts(customers: int) -> dict[str, int]:
    """How many of each defect to plant: grows with size, never zero, and a different
    number per kind so a pipeline that mixes two reasons up cannot pass by chance."""
    d = max(2, customers // 10_000)
    counts = {kind: d + n for n, kind in enumerate(DEFECTS + [MALFORMED])}
    counts.update(non_member_rows=max(4, customers // 500), shared_email_pairs=d, shared_phone_pairs=d + 1,
                  initial_customers=max(40, customers // 1000), test_accounts=max(2, customers // 1000))
    return counts


def rank_ranges(counts: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Customer roles as consecutive rank ranges; every other rank is 'ordinary'. Pairs
    come first, so pair k (email pairs, then phone pairs) is ranks 2k and 2k + 1."""
    sizes = {
        "shared_email": 2 * counts["shared_email_pairs"],
        "shared_phone": 2 * counts["shared_phone_pairs"],
        "late": counts["exposure_before_account_created"],
        "initial": counts["initial_customers"],
        # named by rows quarantined before identity and exposed nowhere else, so those
        # rows never look like a repeat of a real exposure
        "target": counts["unknown_category"] + counts["invalid_timestamp"] + counts["invalid_confidence"],
        "test": counts["test_accounts"],  # is_test, and always exposed: TEST_ACCOUNT never goes missing
    }
    ranges, start = {}, 0
    for role, size in sizes.items():
        ranges[role] = (start, start + size)
        start += size
    return ranges


def fixed_offset(timezone: str) -> str | None:
    """The zone's UTC offset as '+09:00' if it did not change from 2013 to 2026, else None.
    Asia/Seoul has none, and a constant spares a time-zone lookup per timestamp."""
    zone = zoneinfo.ZoneInfo(timezone)
    start = datetime(2013, 1, 1, tzinfo=zone)
    offsets = {(start + timedelta(days=d)).utcoffset() for d in range(14 * 366)}
    if len(offsets) != 1:
        return None
    minutes = int(offsets.pop().total_seconds()) // 60
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _seeded(seed: int, purpose: str, modulus: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}".encode()).digest()[:8], "big") % modulus


def _coprime(start: int, modulus: int) -> int:
    while math.gcd(start, modulus) != 1:
        start += 1
    return start


def _sql_list(values: list) -> str:
    return "[" + ", ".join("NULL" if v is None else "'" + v.replace("'", "''") + "'" for v in values) + "]"


def pick(values: list, x: str, purpose: str) -> str:
    """SQL for one of values, chosen by hash."""
    return f"{_sql_list(values)}[1 + u({x}, '{purpose}', {len(values)})]"


def between(span: tuple[datetime, datetime], x: str, purpose: str) -> str:
    """SQL for a wall-clock time in [start, end), chosen by hash to the second."""
    start, end = span
    return f"TIMESTAMP '{start}' + to_seconds(u({x}, '{purpose}', {int((end - start).total_seconds())}))"


def macros(seed: int, n: int, ranges: dict[str, tuple[int, int]], offset: str | None) -> list[str]:
    """The SQL vocabulary the queries below are written in."""
    a, b = _coprime(1 + _seeded(seed, "rank", n - 1), n), _seeded(seed, "shift", n)
    pa, pb = _coprime(1 + _seeded(seed, "mobile", 10**8 - 1), 10**8), _seeded(seed, "mobile_shift", 10**8)
    roles = " ".join(f"WHEN r < {end} THEN '{role}'" for role, (_, end) in ranges.items())
    return [
        f"CREATE MACRO u(x, purpose, m) AS (hash(x, {seed}, purpose) % m)::BIGINT",  # uniform in [0, m)
        f"CREATE MACRO rank_of(i) AS (i * {a} + {b}) % {n}",
        f"CREATE MACRO index_of(r) AS ((r + {n - b}) % {n}) * {pow(a, -1, n)} % {n}",
        f"CREATE MACRO role_of(r) AS CASE {roles} ELSE 'ordinary' END",
        "CREATE MACRO customer_id(i) AS 'C' || lpad((i + 1)::VARCHAR, 9, '0')",
        f"CREATE MACRO category(x) AS {_sql_list(CATEGORIES)}[1 + x % 6]",
        # the index inside the address keeps every customer's email unique
        f"CREATE MACRO email_of(i) AS {pick(WORDS, 'i', 'email_word')} || {pick(['', '.', '_'], 'i', 'email_sep')}"
        f" || (i + 1)::VARCHAR || '@' || {pick(DOMAINS, 'i', 'email_domain')}",
        "CREATE MACRO dressed(e, x) AS CASE WHEN x < 3 THEN upper(e) WHEN x < 6 THEN '  ' || e || ' ' ELSE e END",
        # a bijection of the index onto 8 digits keeps every customer's phone unique
        f"CREATE MACRO mobile8(i) AS lpad(((i * {pa} + {pb}) % 100000000)::VARCHAR, 8, '0')",
        # the first 100 million customers on 010, the next (Equifax scale) on 019, also mobile
        "CREATE MACRO mobile_prefix(i) AS CASE WHEN i < 100000000 THEN '10' ELSE '19' END",
        "CREATE MACRO phone_text(p, d, form) AS CASE form WHEN 0 THEN '0' || p || '-' || d[1:4] || '-' || d[5:8]"
        " WHEN 1 THEN '0' || p || d WHEN 2 THEN '+82 ' || p || '-' || d[1:4] || '-' || d[5:8]"
        " WHEN 3 THEN '+82' || p || d ELSE '0' || p || ' ' || d[1:4] || ' ' || d[5:8] END",
        # the offset of the session TimeZone at that wall-clock time
        "CREATE MACRO offset_text(s) AS CASE WHEN s < 0 THEN '-' ELSE '+' END"
        " || lpad((abs(s) // 3600)::VARCHAR, 2, '0') || ':' || lpad((abs(s) % 3600 // 60)::VARCHAR, 2, '0')",
        "CREATE MACRO zoned(ts) AS strftime(ts, '%Y-%m-%dT%H:%M:%S') || "
        + (f"'{offset}'" if offset else "offset_text((epoch(ts) - epoch(ts::TIMESTAMPTZ))::BIGINT)"),
        "CREATE MACRO stamp(ts, f) AS CASE WHEN f < 12 THEN zoned(ts)"
        " WHEN f < 17 THEN strftime(ts, '%Y-%m-%d %H:%M:%S') WHEN f < 19 THEN strftime(ts, '%Y-%m-%dT%H:%M:%S')"
        " ELSE strftime(ts::TIMESTAMPTZ AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S') || '+00:00' END",
    ]


def customers_sql(n: int) -> str:
    """The snapshot, one row per index. A pair's twin carries the first member's email or
    phone in another form; only customers outside pairs and late ones may lack either."""
    return f"""
    WITH p AS (
      SELECT range AS i, rank_of(range) AS r, role_of(r) AS role, u(i, 'contact', 100) AS contact,
        CASE WHEN role = 'late' THEN {between(LATE_SPAN, 'i', 'created_at')}
             ELSE {between(CREATED_SPAN, 'i', 'created_at')} END AS created,
        u(i, 'status', 100) AS roll,
        CASE WHEN role = 'late' OR roll < 84 THEN 'active' WHEN roll < 94 THEN 'dormant' ELSE 'closed' END AS status,
        u(i, 'bank', 100) < 15 AS banked, u(i, 'bank_defect', 20) AS defect,  -- 0: 2-digit code, 1: 9-digit account
        {pick(BANKS, 'i', 'bank_code')} AS bank,
        left(lpad(u(i, 'account', 10000000000000000)::VARCHAR, 16, '0'),
             CASE WHEN defect = 1 THEN 9 ELSE 10 + u(i, 'account_length', 7) END) AS account
      FROM range({n})
    )
    SELECT customer_id(i) AS customer_id,
      {pick(FAMILY, 'i', 'family')} || {pick(SYLLABLES, 'i', 'given1')}
        || {pick(SYLLABLES, 'i', 'given2')} AS name,
      CASE WHEN role = 'shared_email' AND r % 2 = 1 THEN upper(email_of(index_of(r - 1)))
           WHEN role IN ('initial', 'target', 'test', 'ordinary') AND contact < 3 THEN NULL
           ELSE dressed(email_of(i), u(i, 'email_dress', 100)) END AS email,
      CASE WHEN role = 'shared_phone' AND r % 2 = 1
             THEN phone_text(mobile_prefix(index_of(r - 1)), mobile8(index_of(r - 1)), u(i, 'phone_form', 4))
           WHEN role IN ('initial', 'target', 'test', 'ordinary') AND contact BETWEEN 3 AND 5 THEN NULL
           ELSE phone_text(mobile_prefix(i), mobile8(i), u(i, 'phone_form', 4)) END AS phone,
      status,
      stamp(created, u(i, 'created_form', 19)) AS created_at,
      CASE WHEN status <> 'closed' THEN NULL
           WHEN u(i, 'closed_when', 2) = 0  -- before the window (and after it was created)
             THEN stamp(created + to_seconds(u(i, 'closed_at', date_diff('second', created, TIMESTAMP '2025-06-21'))),
                        u(i, 'closed_form', 19))
           ELSE stamp({between(CLOSED_SPAN, 'i', 'closed_at')}, u(i, 'closed_form', 19))
      END AS closed_at,
      role = 'test' AS is_test,
      CASE WHEN banked AND u(i, 'payout', 3) = 0 THEN 'bank_transfer' WHEN u(i, 'payout', 100) < 10 THEN 'voucher'
           WHEN u(i, 'payout', 100) = 99 THEN 'bank_transfer' END AS payout_method,  -- ~1% without bank details
      CASE WHEN banked THEN CASE WHEN defect = 0 THEN bank[2:3] ELSE bank END END AS bank_code,
      CASE WHEN banked THEN CASE u(i, 'account_form', 4)
           WHEN 2 THEN account[1:3] || '-' || account[4:6] || '-' || substr(account, 7)
           WHEN 3 THEN account[1:4] || ' ' || substr(account, 5) ELSE account END END AS bank_account
    FROM p"""


def revision_sql(n: int) -> str:
    """File 2's exposures: every initial and test customer and ~95% of the others, 1 to 3 distinct
    categories each from a per-customer first one. Ordinary customers are sometimes named
    by their email or their phone alone, in a raw form."""
    return f"""
    WITH exposed AS (
      SELECT range AS t, t // 3 AS i, t % 3 AS j, role_of(rank_of(i)) AS role,
        u(t, 'identified_by', 100) AS via, u(i, 'contact', 100) AS contact,
        role = 'ordinary' AND via < 2 AND contact >= 3 AS by_email,
        role = 'ordinary' AND via BETWEEN 2 AND 3 AND contact NOT BETWEEN 3 AND 5 AS by_phone,
        role IN ('shared_email', 'shared_phone', 'ordinary') AS plain,
        -- 0: before the window, 1: after it; ~1% of customers are seen only outside it
        CASE WHEN plain AND u(i, 'outside', 100) = 0 THEN u(t, 'accessed_when', 2)
             ELSE u(t, 'accessed_when', 1000) END AS period
      FROM range({3 * n})
      WHERE j < 1 + u(i, 'exposure_count', 3) AND (role IN ('initial', 'test') OR (plain AND u(i, 'exposed', 100) < 95))
    )
    SELECT
      CASE WHEN NOT (by_email OR by_phone) THEN customer_id(i) END AS customer_id,
      CASE WHEN by_email THEN dressed(email_of(i), u(t, 'email_dress', 10)) END AS email,
      CASE WHEN by_phone THEN phone_text(mobile_prefix(i), mobile8(i), u(t, 'phone_form', 5)) END AS phone,
      category(u(i, 'first_category', 6) + j) AS data_category,
      stamp(CASE period WHEN 0 THEN {between(BEFORE_SPAN, 't', 'accessed_at')}
                        WHEN 1 THEN {between(AFTER_SPAN, 't', 'accessed_at')}
                        ELSE {between(INSIDE_SPAN, 't', 'accessed_at')} END, u(t, 'accessed_form', 20)) AS accessed_at,
      CASE WHEN u(t, 'confidence', 100) < 85 THEN 'confirmed' WHEN u(t, 'confidence', 100) < 93 THEN 'suspected'
           WHEN u(t, 'confidence', 100) < 97 THEN NULL ELSE '' END AS confidence,
      {pick(SOURCES, 't', 'source')} AS source
    FROM exposed"""


def planted_sql(counts: dict[str, int], ranges: dict[str, tuple[int, int]]) -> str:
    """File 1's exposures and every defect, each row with its file number, kind and number k."""
    target, late, initial = ranges["target"][0], ranges["late"][0], ranges["initial"][0]
    uc, it, pairs = counts["unknown_category"], counts["invalid_timestamp"], counts["shared_email_pairs"]
    by_id = "CASE WHEN k % 10 = 0 THEN 1 WHEN k % 10 < 3 THEN 3 ELSE 2 END"  # mostly file 2
    no_id = "CASE WHEN k % 2 = 0 THEN 2 ELSE 3 END"
    nobodys_email = (f"{pick(WORDS, 'k', 'nm_word')} || '.' || (k + 1)::VARCHAR || '@' || "
                     f"{pick(OTHER_DOMAINS, 'k', 'nm_domain')}")
    nobodys_phone = "phone_text('11', lpad(k::VARCHAR, 8, '0'), u(k, 'nm_form', 5))"  # 011: never a customer's

    def rows(kind, count, file, cid="NULL", email="NULL", phone="NULL", category="category(k)", accessed=None,
             confidence="'confirmed'"):
        accessed = accessed or f"zoned({between(INSIDE_SPAN, 'k', kind + '_at')})"
        return (f"SELECT {file} AS file, '{kind}' AS kind, k, {cid} AS customer_id, {email} AS email,"
                f" {phone} AS phone, {category} AS data_category, {accessed} AS accessed_at,"
                f" {confidence} AS confidence, {pick(SOURCES, 'k', kind + '_source')} AS source"
                f" FROM range({count}) r(k)")

    def bad(values):
        return f"{_sql_list(values)}[1 + k % {len(values)}]"

    return "\nUNION ALL ".join([
        # day 1, by customer_id: every third repeats the first category file 2 gives that customer
        rows("member", counts["initial_customers"], 1, cid=f"customer_id(index_of({initial} + k))",
             category=f"category(u(index_of({initial} + k), 'first_category', 6) + CASE k % 3 WHEN 0 THEN 0 ELSE 3 END)",
             accessed=f"zoned({between(INITIAL_SPAN, 'k', 'initial_at')})"),
        rows("missing_identifier", counts["missing_identifier"], no_id, cid="['', ' ', NULL][1 + k % 3]",
             email="[NULL, '', '   '][1 + k % 3]", phone="[' ', NULL, ''][1 + k % 3]"),
        rows("unknown_category", uc, by_id, cid=f"customer_id(index_of({target} + k))", category=bad(BAD_CATEGORIES)),
        rows("invalid_timestamp", it, by_id, cid=f"customer_id(index_of({target + uc} + k))",
             accessed=bad(BAD_TIMESTAMPS)),
        rows("invalid_confidence", counts["invalid_confidence"], by_id,
             cid=f"customer_id(index_of({target + uc + it} + k))", confidence=bad(BAD_CONFIDENCES)),
        # a real id's length but starting with 9: beyond generate.MAX_CUSTOMERS
        rows("unknown_customer_id", counts["unknown_customer_id"], by_id, cid="'C9' || lpad(k::VARCHAR, 8, '0')"),
        rows("exposure_before_account_created", counts["exposure_before_account_created"], by_id,
             cid=f"customer_id(index_of({late} + k))", accessed=f"zoned({between(EARLY_SPAN, 'k', 'early_at')})"),
        rows("invalid_identifier", counts["invalid_identifier"], no_id, email=bad(BAD_EMAILS),
             phone=f"{_sql_list(BAD_PHONES)}[1 + k // {len(BAD_EMAILS)} % {len(BAD_PHONES)}]"),
        # address-book people: a well-formed email or phone of nobody (beside a malformed
        # email, a well-formed phone still makes a non-member)
        rows("non_member_rows", counts["non_member_rows"], 3, category="category(u(k, 'nm_category', 4))",
             email=f"CASE k % 4 WHEN 1 THEN NULL WHEN 3 THEN 'not-an-email' ELSE {nobodys_email} END",
             phone=f"CASE k % 4 WHEN 0 THEN NULL ELSE {nobodys_phone} END"),
        # pair k's shared email or phone alone, in some form: matches exactly two customers
        rows("ambiguous_rows", pairs + counts["shared_phone_pairs"], 3,
             email=f"CASE WHEN k < {pairs} THEN dressed(email_of(index_of(2 * k)), u(k, 'ambiguous_dress', 10)) END",
             phone=f"CASE WHEN k >= {pairs} THEN phone_text(mobile_prefix(index_of(2 * k)), mobile8(index_of(2 * k)), u(k, 'ambiguous_form', 5))"
                   " END"),
    ])
