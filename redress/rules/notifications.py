"""Notifications: who is told and how (NEW_PEOPLE), and what the message says (messages).
SPEC "Notifications".

A message says which data was exposed, what the person will receive and through which
channel, and names only the official phone number: no link, no URL, no other number.
Korean, the language of the people affected. Rendered column-wise with Polars; each
distinct body is checked against that rule (redress/rules/message_safety.py) before any
message is returned.
"""

from __future__ import annotations

from datetime import date
from typing import TypeVar

import polars as pl

from redress import vocabulary as v
from redress.errors import RedressError
from redress.policy import Policy
from redress.rules.identity import MOBILE_E164
from redress.rules.message_safety import hazard
from redress.rules.plans import past_claim_deadline
from redress.sql import customer_slice
from redress.rules.vouchers import voucher_parts

LANGUAGE = "ko"
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

CATEGORY_KO = {
    "name": "이름",
    "email": "이메일",
    "phone": "전화번호",
    "shipping_address": "배송지 주소",
    "order_history": "주문 내역",
    "entrance_code": "공동현관 출입번호",
}
PRODUCT_KO = {"shopping": "쇼핑", "food_delivery": "음식 배달", "travel": "여행", "beauty": "뷰티"}
REASON_KO = {
    v.UNCONFIRMED_ONLY: "노출이 확인되지 않은 의심 건만 있습니다",
    v.OUTSIDE_WINDOW: "노출이 사고 기간 밖에 있었습니다",
    v.STATUS_NOT_ELIGIBLE: "계정 상태가 보상 대상이 아닙니다",
    v.CLOSED_BEFORE_BREACH: "사고 기간 전에 탈퇴한 계정입니다",
    v.BELOW_MINIMUM: "보상 금액이 최소 지급액 미만입니다",
}
# v2 (found by review): every text says that nothing asks for a password or an account
# number by text or email (v1 said "never asks", and a claim is made by giving an
# account number on the call), the claim text gives the claim deadline and what the call
# takes, and exposures that are only suspected are said to be suspected.
TEMPLATES = {
    v.VOUCHER: "member_voucher_v2",
    v.BANK_TRANSFER: "member_bank_transfer_v2",
    v.CLAIM: "member_claim_v2",
    "claim_closed": "member_claim_closed_v2",
    "not_paid": "member_not_paid_v2",
    v.NON_MEMBER: "non_member_v2",
}
# The templates that tell a member of money paid or held for them (every rail's, and the
# claim rail's past the deadline), in this version and the one before (a warehouse's
# earlier runs hold those): outbox/recovery.py refuses to rebuild a ledger that lacks
# someone told so (found by review: the claim-closed one was left out, and a lost claim
# batch was booked again).
_PAID = (*(TEMPLATES[rail] for rail in (v.VOUCHER, v.BANK_TRANSFER, v.CLAIM)), TEMPLATES["claim_closed"])
PAID_TEMPLATES = tuple(sorted({*_PAID, *(name.replace("_v2", "_v1") for name in _PAID)}))
# Each rail with the templates, of this version and the one before, whose message names it.
# The claim message promises a transfer to the account the person gives when they call
# (found by the fix review: claimants were listed as told otherwise).
RAIL_TEMPLATES = {rail: tuple(sorted({n for name in names for n in (name, name.replace("_v2", "_v1"))}))
                  for rail, names in ((v.VOUCHER, (TEMPLATES[v.VOUCHER],)),
                                      (v.BANK_TRANSFER, (TEMPLATES[v.BANK_TRANSFER], TEMPLATES[v.CLAIM])),
                                      (v.CLAIM, (TEMPLATES[v.CLAIM], TEMPLATES["claim_closed"])))}


# Who is told, and how (SPEC "Notifications"): every customer with an entitlement but
# TEST_ACCOUNT, and every non-member, once: nobody already in `notifications`. Channel:
# sms only to a Korean mobile number ($mobile, redress.rules.identity.MOBILE_E164); else
# email when one is known; else none, with the landline or internet phone as recipient
# for outreach by hand. A non-member row is keyed by the address its message would go to
# (non_member_exposures.recipient, message_address: its mobile, else its email, else its
# phone; found by review: keyed by a landline, two people's rows with their own emails
# and one office phone were one key, told once at the least email, and explain of the
# other email showed it; increments.RULES_VERSION 2026-12-07.2 keys a warehouse's rows
# again), and NEW_PEOPLE holds for keys of any rule; one message goes to one address: a
# landline's non-member told by email and the same email alone in another row (or two
# landlines with one email) are told once, at that address, of every category exposed
# under any of their keys not told before, under the key that is the address itself when
# there is one, else the least (found by review: two messages, two reference codes, to
# one inbox, as a phisher would send). Nobody is told again: a key already told is left
# out (its address may have changed since: a landline listed for outreach by hand whose
# email comes later), and nothing goes to an address anyone was told at (found by review:
# a member told at their phone, whose phone the next snapshot changed, so the row naming
# it became a non-member's; the handset told it would be paid was told it was no member),
# nor to an address a member had in an earlier customers snapshot (former_addresses;
# found by review: a member told by text, whose email the next snapshot changed, was
# told at the old email that they were no member; WITHHELD counts them). Only the
# address a message would go to: another phone or email in the same rows is no member's
# (a second review: a phone beside a former member's email in one row is still told).
# SQL, not Polars,
# for speed: it joins the warehouse's entitlements, customers and non_member_exposures
# where they are; a query, which the notify stage stores as a table with each person's
# reference code (tasks/notify.py new_people), with NEW_PEOPLE_PARAMETERS (every code
# bound, none spliced). `{in_slice}` and `{non_members_too}` are SQL conditions that
# new_people_query fills (the whole table: true and true).
NEW_PEOPLE = """
WITH members AS (
    SELECT e.customer_id, c.phone_e164 AS phone, c.email_norm AS email,
           e.reason, e.amount, e.rail, e.exposed_categories
    FROM (SELECT * FROM entitlements WHERE {in_slice}) e
    -- Told once: the already notified are left out before the join with the customers,
    -- so a rerun does not build tens of millions of rows only to delete them.
    ANTI JOIN notifications n ON n.person_key = 'customer:' || e.customer_id
    JOIN (SELECT customer_id, phone_e164, email_norm FROM customers WHERE {in_slice}) c USING (customer_id)
    WHERE e.reason <> $test_account
),
non_member_keys AS (
    -- Grouped by the stable key: a phone key has one phone; an email key has no phone.
    SELECT recipient AS person, max(phone_e164) AS phone, min(email_norm) AS email
    FROM non_member_exposures WHERE {non_members_too} GROUP BY recipient
),
told_non_members AS (  -- the few non-members' of tens of millions of notifications, scanned once
    SELECT person_key, recipient FROM notifications WHERE {non_members_too} AND starts_with(person_key, 'nonmember:')
),
addressed AS (  -- the keys never told, and where each one's message would go
    SELECT k.*, {address} AS address FROM non_member_keys k
    ANTI JOIN told_non_members t ON t.person_key = 'nonmember:' || k.person
),
non_members AS (  -- one per address: of its keys never told, the one that is the address, else the least
    SELECT address, arg_min(person, (person <> address, person)) AS person,
           arg_min(phone, (person <> address, person)) AS phone, arg_min(email, (person <> address, person)) AS email
    FROM addressed GROUP BY address
),
non_member_categories AS (
    SELECT a.address, string_agg(DISTINCT x.data_category, ',' ORDER BY x.data_category) AS exposed_categories,
           NOT bool_or(x.confidence = $confirmed) AS suspected_only
    FROM non_member_exposures x JOIN addressed a ON a.person = x.recipient GROUP BY a.address
),
people AS (
    SELECT 'customer:' || customer_id AS person_key, $member AS kind, customer_id, phone, email,
           reason, amount, rail, exposed_categories, {member_suspected} AS suspected_only
    FROM members
    UNION ALL
    SELECT 'nonmember:' || person, $non_member, NULL, phone, email, NULL, 0, NULL, exposed_categories, suspected_only
    FROM non_members JOIN non_member_categories USING (address)
    -- nothing to an address anyone was told at, a member too: the few addresses of the
    -- non-members looked up in every notification, not every notification scanned in full
    WHERE address NOT IN (SELECT recipient FROM notifications
                          WHERE {non_members_too} AND recipient IN (SELECT address FROM non_members))
      -- nor to an address a member had before: they are no non-member (WITHHELD counts them)
      AND address NOT IN (SELECT address FROM former_addresses)
)
SELECT person_key, kind, customer_id, {address} AS recipient,
       CASE WHEN coalesce(regexp_matches(phone, $mobile), false) THEN $sms
            WHEN email IS NOT NULL THEN $email ELSE $no_channel END AS channel,
       reason, amount, rail, exposed_categories, suspected_only
FROM people
"""
# The non-member addresses never told that NEW_PEOPLE leaves out because a member had
# them in an earlier customers snapshot (former_addresses): how many. Binds $mobile.
WITHHELD = """
SELECT count(DISTINCT address) FROM ({keys})
WHERE 'nonmember:' || person NOT IN (SELECT person_key FROM notifications WHERE starts_with(person_key, 'nonmember:'))
  AND address IN (SELECT address FROM former_addresses)
"""
# The customers a run pays or holds money for (ledger rows it issued) who were told in an
# earlier run with a message that does not name that rail: told they get nothing
# (member_not_paid), or told of another rail (a voucher person now paid by transfer, a
# transfer now held on claim after its returns). SPEC "Notifications" tells each person
# once, so they are not told again: listed for customer service to reach (found by the
# audit review: a person told "not covered" was later held 50,000 KRW on claim, which
# only a call claims, and the summary said everyone had been told). The ledger rows of
# every run no notify stage has looked at yet (runs.told_checked, set in the transaction
# that commits the notifications: redress/warehouse/runs.py record_told_checked): this run's, and those of a run or an
# approval killed between committing its payments and telling people, which never
# listed its own (found by the fix reviews: a run killed so, then an approval killed
# so). Binds $run and $named (TOLD_OTHERWISE_NAMED).
TOLD_OTHERWISE = """
SELECT l.customer_id, n.reference_code, n.template_id AS told_template, n.run_id AS told_in_run, l.rail,
       sum(l.amount) AS amount
FROM ledger l JOIN notifications n ON n.person_key = 'customer:' || l.customer_id
WHERE l.run_id IN (SELECT run_id FROM runs WHERE NOT coalesce(told_checked, false) UNION SELECT $run)
  AND n.run_id <> l.run_id AND n.run_id <> $run AND NOT list_contains($named, l.rail || ' ' || n.template_id)
GROUP BY ALL
ORDER BY l.customer_id, l.rail
"""

# TOLD_OTHERWISE's $named: each rail with a template that names it.
TOLD_OTHERWISE_NAMED = [f"{rail} {name}" for rail, names in sorted(RAIL_TEMPLATES.items()) for name in names]
NEW_PEOPLE_PARAMETERS = {
    "mobile": MOBILE_E164, "test_account": v.TEST_ACCOUNT, "member": v.MEMBER, "non_member": v.NON_MEMBER,
    "sms": v.SMS, "email": v.EMAIL, "no_channel": v.NO_CHANNEL,
    "unconfirmed_only": v.UNCONFIRMED_ONLY, "confirmed": v.CONFIRMED,
}


# Whether every exposure of a member is only suspected (their message then says so). When
# the policy counts confirmed exposures alone, exactly those not paid for UNCONFIRMED_ONLY;
# when it counts suspected ones too, a member with a suspected exposure alone may be paid
# or OUTSIDE_WINDOW (found by review: told "exposed data" though none was confirmed), so
# their rows are looked at: only then, the one costly case, a rare policy.
_MEMBER_SUSPECTED = "reason = $unconfirmed_only"
_MEMBER_SUSPECTED_COUNTED = ("(reason = $unconfirmed_only OR NOT EXISTS (SELECT 1 FROM scope_exposures x "
                             "WHERE x.customer_id = members.customer_id AND x.confidence = $confirmed))")


def new_people_query(slices: int = 1, part: int = 0, suspected_counts: bool = False) -> str:
    """NEW_PEOPLE for the customers of slice `part` of `slices` (redress.sql.customer_slice),
    the non-members with slice 0: over part = 0 .. slices - 1, every person once,
    whatever `slices`. `suspected_counts`: the policy's eligibility.confidence holds
    `suspected` (how a member's suspected_only is found). ValueError for a part outside
    the slices."""
    return NEW_PEOPLE.format(in_slice=customer_slice(slices, part), non_members_too="true" if part == 0 else "false",
                             address=message_address("phone", "email"),
                             member_suspected=_MEMBER_SUSPECTED_COUNTED if suspected_counts else _MEMBER_SUSPECTED)


def withheld_query() -> str:
    """WITHHELD over every non-member key (key_addresses), binding $mobile: the addresses
    never told because a member had them in an earlier customers snapshot."""
    return WITHHELD.format(keys=key_addresses("true"))


def key_addresses(where: str) -> str:
    """SQL, binding $mobile: (person, address) of each non-member key (recipient) whose
    exposure rows meet `where` (SQL over non_member_exposures' columns, ours, never
    input): where that key's message goes, from its rows as NEW_PEOPLE reads them (the
    largest phone, the least email). For explain's lookups of whom one message told."""
    return (f"SELECT recipient AS person, {message_address('max(phone_e164)', 'min(email_norm)')} AS address "
            f"FROM non_member_exposures WHERE {where} GROUP BY recipient")


def message_address(phone: str, email: str) -> str:
    """SQL, binding $mobile (MOBILE_E164): the address a person's message goes to, from
    the SQL expressions of their E.164 phone and normalised email: the phone when it is a
    Korean mobile (sms), else the email, else the phone (channel none: outreach by hand).
    The one rule NEW_PEOPLE and explain's non-member lookups share."""
    return (f"CASE WHEN coalesce(regexp_matches({phone}, $mobile), false) THEN {phone} "
            f"ELSE coalesce({email}, {phone}) END")


def won(amount: pl.Expr) -> pl.Expr:
    """Whole won with thousands separators: 50000 -> '50,000'."""
    reversed_digits = amount.cast(pl.String).str.reverse()
    return reversed_digits.str.replace_all(r"(\d{3})", "${1},").str.strip_chars_end(",").str.reverse()


def category_words(policy: Policy) -> dict[str, str]:
    """How messages name each data category: redress's Korean words, or the policy's
    notice.category_labels over them; a category with neither is shown as its key."""
    return {**CATEGORY_KO, **policy.category_labels}


def product_words(policy: Policy) -> dict[str, str]:
    """How messages name each voucher product (PRODUCT_KO, notice.product_labels over it)."""
    return {**PRODUCT_KO, **policy.product_labels}


def unlabelled(policy: Policy) -> list[str]:
    """The policy's categories and voucher products that messages would show as their
    keys (no Korean word of redress's nor a label in [notice]), as `categories.KEY` and
    `payout.voucher_products.ID`: for the run's warning."""
    return ([f"categories.{c}" for c in sorted(policy.categories) if c not in category_words(policy)]
            + [f"payout.voucher_products.{p.id}" for p in policy.voucher_products if p.id not in product_words(policy)])


def _category_list(col: str, policy: Policy) -> pl.Expr:
    return (
        pl.col(col).str.split(",")
        .list.eval(pl.element().replace(category_words(policy)))
        .list.join(", ")
    )


# What a message depends on besides its reference code. Tens of millions of people share
# a few hundred of these (amounts per tier, category sets), so each body is built once
# per distinct key and looked up per person by a hash of the key (`replace_strict`, an
# element-wise map that streams and keeps the order). A join on the key did the same
# but, streamed with maintain_order, raised notify's peak at 33.7M from 10.4 to 14.9 GB.
MESSAGE_KEY = ("kind", "reason", "rail", "amount", "exposed_categories", "suspected_only")
_KEY_SEED = 0


def _key_hash() -> pl.Expr:
    return pl.struct(MESSAGE_KEY).hash(_KEY_SEED)


# What stands for an amount when a body is checked (_refuse_unsafe): amounts are ours,
# and their digits beside a policy text that ends in digits (a product id `travel_202512`
# before `20,000원`) would read as a phone number the text does not hold.
AMOUNT_MASK = "N"


def _by_deadline(deadline: date | None) -> str:
    """The claim deadline as a claim message gives it ("2027년 1월 31일까지 "), or nothing
    without one: the person learns it from their only message (found by review: only
    `explain` said it, so a person held on claim could miss it without knowing)."""
    return f"{deadline.year}년 {deadline.month}월 {deadline.day}일까지 " if deadline else ""


def _bodies(people: Frame, policy: Policy, amounts: bool = True, claims_closed: bool = False) -> Frame:
    """people: MESSAGE_KEY (amount never null; suspected_only: true when every exposure of
    the person is only suspected, null read as false), any other columns. Adds template_id and
    _body, the message up to its reference code; with `amounts` False every amount is
    AMOUNT_MASK (for the check, _refuse_unsafe). `claims_closed`: the run date is past
    payout.claim_deadline (rules.plans.past_claim_deadline), so money held on `claim` is
    unclaimed, never paid automatically: its message says so instead of asking the
    person to claim it (found by review: people were told to call and be paid for money
    the same run listed as unclaimed, and their claims were then refused)."""
    parts = voucher_parts(people, policy.voucher_products)

    def won_(amount: pl.Expr) -> pl.Expr:
        return won(amount) if amounts else pl.lit(AMOUNT_MASK)

    voucher_text = pl.concat_str(
        [pl.lit(f"{product_words(policy).get(p.id, p.id)} ") + won_(pl.col(f"voucher_{p.id}")) + pl.lit("원")
         for p in policy.voucher_products],
        separator=", ",
    )
    paid = (pl.col("kind") == v.MEMBER) & (pl.col("reason") == v.ELIGIBLE)
    suspected = pl.col("suspected_only").fill_null(False)
    template = (
        pl.when(pl.col("kind") == v.NON_MEMBER).then(pl.lit(TEMPLATES[v.NON_MEMBER]))
        .when(~paid).then(pl.lit(TEMPLATES["not_paid"]))
        .when((pl.col("rail") == v.CLAIM) & pl.lit(claims_closed)).then(pl.lit(TEMPLATES["claim_closed"]))
        .otherwise(pl.col("rail").replace(TEMPLATES))
    )
    amount = won_(pl.col("amount")) + pl.lit("원")
    what = (
        pl.when(pl.col("kind") == v.NON_MEMBER)
        .then(pl.lit(f"{policy.sender} 회원의 주소록에 저장된 귀하의 연락처가 ")
              + pl.when(suspected).then(pl.lit("노출되었을 가능성이 있습니다. "))
              .otherwise(pl.lit("노출된 것으로 확인되었습니다. "))
              + pl.lit("회원이 아니시므로 보상 대상은 아니며, 알려 드리기 위한 안내입니다."))
        .when(~paid)
        .then(pl.lit("이번 보상 기준에 해당하지 않습니다(") + pl.col("reason").replace(REASON_KO) + pl.lit(")."))
        .when(pl.col("rail") == v.VOUCHER)
        .then(pl.lit("보상으로 ") + amount + pl.lit(" 상당의 이용권(") + voucher_text
              + pl.lit(")이 고객님 계정에 자동으로 지급됩니다."))
        .when(pl.col("rail") == v.BANK_TRANSFER)
        .then(pl.lit("보상금 ") + amount + pl.lit("이 고객님이 등록하신 계좌로 입금됩니다."))
        .when(pl.lit(claims_closed))
        .then(pl.lit("보상금 ") + amount + pl.lit("은 청구 기한이 지나 자동으로 지급되지 않습니다. 처리 방법은 고객센터로 문의해 주십시오."))
        .otherwise(pl.lit("보상금 ") + amount + pl.lit(f"이 보관되어 있습니다. {_by_deadline(policy.claim_deadline)}"
                                                      "아래 고객센터로 직접 전화해 참조번호를 알려 주시면, 본인 확인 후 "
                                                      "받으실 계좌를 여쭙고 그 계좌로 지급해 드립니다."))
    )
    body = (
        pl.lit(f"[{policy.sender}] 개인정보 노출 안내. ")
        + pl.when(suspected).then(pl.lit("노출이 의심되는 정보: ")).otherwise(pl.lit("노출된 정보: "))
        + _category_list("exposed_categories", policy) + pl.lit(". ") + what
        + pl.lit(" 이 안내는 링크를 포함하지 않으며, 문자나 이메일로 비밀번호나 계좌번호를 묻지 않습니다. "
                 f"문의: 고객센터 {policy.official_phone} (참조번호 ")
    )
    return parts.with_columns(template.alias("template_id"), body.alias("_body")).drop(
        [f"voucher_{p.id}" for p in policy.voucher_products])


def _refuse_unsafe(keys: pl.DataFrame, policy: Policy, claims_closed: bool = False) -> None:
    """Raise RedressError when a body of `keys` (MESSAGE_KEY), its amounts masked
    (AMOUNT_MASK), holds a link, an email address or a phone number but the official one
    (redress/rules/message_safety.py). The policy loader refuses such texts already; this
    is the second line, for whatever it did not see (a Policy built in code, a template
    edited, texts side by side): a few hundred bodies, checked once."""
    bodies = _bodies(keys, policy, amounts=False, claims_closed=claims_closed)
    for template, body in bodies.select("template_id", "_body").unique().iter_rows():
        found = body and hazard(body, policy.official_phone)  # null: a person without categories
        if found:
            raise RedressError(f"notifications: a {template} message would hold {found}; nobody is told "
                               f"(a message names only notice.official_phone, {policy.official_phone})")


def messages(people: Frame, policy: Policy, run_date: date | None = None) -> Frame:
    """people: person_key, kind ('member' | 'non_member'), reason, amount (minor units;
    null read as 0), rail, exposed_categories, suspected_only (Boolean, NEW_PEOPLE; null
    read as false), reference_code, channel, and any other
    columns, kept in their order. `run_date`: the day they are told (tasks/notify.py: the
    later of the run's date and today); past payout.claim_deadline, money on `claim` is
    said to be unclaimed (`_bodies`). Adds template_id, language, message; the rows keep
    their order. RedressError, before any message is returned, when one would hold a
    link, an email address or another phone number (_refuse_unsafe).

    Each distinct MESSAGE_KEY is rendered once: for a LazyFrame its distinct keys are
    read first (one scan of those columns), the rest stays lazy. Should two distinct keys
    ever share a hash, every message is rendered per person instead: never a wrong text.
    The columns' types do not depend on the rows: an empty frame gives text columns too."""
    closed = past_claim_deadline(run_date, policy.claim_deadline)
    people = people.with_columns(pl.col("amount").fill_null(0))
    keys = people.select(MESSAGE_KEY).unique()
    keys = keys.collect() if isinstance(keys, pl.LazyFrame) else keys
    _refuse_unsafe(keys, policy, closed)  # every person's body is one of these
    bodies = _bodies(keys, policy, claims_closed=closed).with_columns(_key_hash().alias("_hash"))
    # Rendered per person also when nobody is to be told: an empty lookup types the
    # looked-up columns by the hashes (UInt64), not as text.
    if bodies.height == 0 or bodies["_hash"].n_unique() < bodies.height:
        return _bodies(people, policy, claims_closed=closed).with_columns(
            pl.lit(LANGUAGE).alias("language"),
            (pl.col("_body") + pl.col("reference_code") + pl.lit(")")).alias("message")).drop("_body")
    key = _key_hash()
    return people.with_columns(
        key.replace_strict(bodies["_hash"], bodies["template_id"], return_dtype=pl.String).alias("template_id"),
        pl.lit(LANGUAGE).alias("language"),
        (key.replace_strict(bodies["_hash"], bodies["_body"], return_dtype=pl.String)
         + pl.col("reference_code") + pl.lit(")")).alias("message"),
    )


def refuse_unsafe_policy(policy: Policy) -> None:
    """RedressError (one line) when a message this policy can render would hold a link,
    an email address or a phone number but the official one: every template (member on
    each rail, member not paid for each reason, non-member), every category exposed,
    amounts masked, checked as notify checks them (_refuse_unsafe), each category also
    alone (where it ends the list). For a run's start and
    an approval's, before anything is paid: found at notify, after the release, the
    payments would be out and nobody could be told."""
    # every category together, and each alone: the list ends in ". ", so a name (or its
    # label) ending in `www` reads as a link only where it is last (found by review:
    # `phone = "전화번호 및 www"` passed this check, then notify refused after the release)
    lists = [",".join(sorted(policy.categories)), *sorted(policy.categories)]
    rows = [(v.MEMBER, v.ELIGIBLE, rail, False) for rail in (v.VOUCHER, v.BANK_TRANSFER, v.CLAIM)]
    rows += [(v.MEMBER, reason, v.VOUCHER, reason == v.UNCONFIRMED_ONLY) for reason in REASON_KO]
    rows += [(v.NON_MEMBER, v.ELIGIBLE, v.VOUCHER, suspected) for suspected in (False, True)]
    keys = pl.DataFrame(rows, schema=["kind", "reason", "rail", "suspected_only"], orient="row").with_columns(
        pl.lit(0, pl.Int64).alias("amount")).join(pl.DataFrame({"exposed_categories": lists}), how="cross")
    for closed in (False, True):  # before and after a claim deadline
        _refuse_unsafe(keys.select(MESSAGE_KEY), policy, closed)
