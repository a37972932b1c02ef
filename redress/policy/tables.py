"""The policy file's tables as pydantic models: SPEC "The policy".

One model per TOML table. Every model refuses unknown keys (`extra="forbid"`), is
frozen, and coerces nothing: a "50000" string, a 50000.0 float or `true` is refused
where whole won are expected. A rule across fields raises `policy_rule` with the key it
names, relative to the model (`_refuse`); redress/policy/messages.py turns every error
into one line.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema, \
    field_validator, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import PydanticCustomError

from redress import vocabulary
from redress.iso8601 import ISO_8601, extended
from redress.trimming import trimmed_text
from redress.rules.message_safety import hazard

CONFIDENCES = tuple(vocabulary.CONFIDENCES)
STATUSES = tuple(vocabulary.ACCOUNT_STATUSES)
_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_PHONE = r"^[0-9][0-9-]{6,14}$"
_TIER = r"^0*[1-9][0-9]*$"
MAX_TIER = 2**31 - 1  # tiers are 32-bit integers in the entitlements
# Files of the zone database that Python opens but that name no zone (DuckDB, Polars refuse them).
NOT_ZONE_NAMES = frozenset({"localtime", "posixrules", "Factory"})
# A batch's payments are numbered with as many digits as this has (redress/rules/batches.py
# position_width), inside a payment_id that pain.001 caps at 35 characters (EndToEndId).
MAX_BATCH_ITEMS = 100_000_000
# Categories are carried per customer as one bit each of a 64-bit mask (redress/rules/
# entitlements.py), and a category name is shown in every message (at most as long as a
# voucher product id, Identifier). Found by review: 63 categories passed the policy check
# and the run stopped in entitle with a traceback; a 36,000-character name made every
# message as long.
MAX_CATEGORIES = 62
MAX_CATEGORY_NAME = 64
MAX_PRODUCTS = 20
# The years a policy's instants and dates may fall in. Found by review: `0001-01-01` for
# an open window start, or a first value date of `9999-12-31`, passed the check and
# stopped the run with an OverflowError (the instant in UTC, or the next day, is outside
# Python's calendar). A breach window has two ends, and a payment a date in this range.
YEARS = (1900, 2999)
# A policy text that every message shows (SPEC "Notifications"): see _shown.
SHOWN = "shown in messages: no link, email address or phone number but notice.official_phone"


def _whole_won(value: Any) -> int:
    """Whole won (KRW has no minor unit): an integer, never a bool, float or string."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("policy_rule", "must be an integer number of won, got {got}", {"got": repr(value)})
    return value


# Upper bounds, so that no sum can overflow a 64-bit integer (the warehouse's BIGINT,
# Polars' Int64): a cap or batch amount fits one, and an amount per person is at most
# 10 billion won, so even 900 million people's payments sum inside one.
MAX_SUM_KRW = 2**63 - 1
MAX_PER_PERSON_KRW = 10**10

# The bound first: a constraint outside the before-validator would not reach the schema.
Won = Annotated[int, Field(ge=0, le=MAX_SUM_KRW, description="whole won (minor units)"), BeforeValidator(_whole_won)]
PositiveWon = Annotated[int, Field(ge=1, le=MAX_SUM_KRW, description="whole won (minor units)"),
                        BeforeValidator(_whole_won)]
PersonWon = Annotated[int, Field(ge=0, le=MAX_PER_PERSON_KRW, description="whole won per person (minor units)"),
                      BeforeValidator(_whole_won)]
PositivePersonWon = Annotated[int, Field(ge=1, le=MAX_PER_PERSON_KRW, description="whole won per person (minor units)"),
                              BeforeValidator(_whole_won)]
Count = Annotated[int, Field(strict=True, ge=1)]
Identifier = Annotated[str, StringConstraints(strict=True, pattern=_ID)]
# A word messages show for a category or product: printable text, no blank ends
Label = Annotated[str, StringConstraints(strict=True, pattern=r"^\S(.*\S)?$", max_length=MAX_CATEGORY_NAME)]


def _refuse(*key: str | int, why: str) -> PydanticCustomError:
    """A rule broken across fields: `key` (its parts, relative to the model raising it)
    is the key the one-line message names."""
    return PydanticCustomError("policy_rule", "{why}", {"key": key, "why": why})


def _shown(text: str, official_phone: str, *key: str | int) -> None:
    """Refuse `text`, which messages show (the sender, a voucher product id, a category
    name), when it holds what a message may not (redress/rules/message_safety.py): a
    policy could otherwise put a link or another number in front of every person."""
    found = hazard(text, official_phone)
    if found:
        raise _refuse(*key, why=f"must hold no link, email address or phone number (a message names only "
                                f"notice.official_phone), got {found}")


def _instant(text: str) -> datetime | None:
    """`text` read as the inbox reads a time (redress/iso8601.py: ISO_8601 and the
    standard's other spellings, RFC 3339's lower-case `t` and `z`, `24:00` as the next
    day's midnight), or
    None. Found by the fix reviews: Python alone took a lower-case `t` but not `z`, an
    hour alone (`T12+09:00`) and a week date (`2025-W27-2`), which the inbox refuses, and
    refused `24:00`, which it takes."""
    if not re.fullmatch(ISO_8601, text):
        text = extended(text)  # the basic format, a decimal comma, a space before the zone, t and z
        if not re.fullmatch(ISO_8601, text):
            return None
    midnight = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[T ]24:00(?::00(?:\.0+)?)?(.*)", text)
    try:
        if midnight:
            return datetime.fromisoformat(f"{midnight[1]}T00:00{midnight[2]}") + timedelta(days=1)
        return datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None


def _timestamp(value: Any) -> datetime:
    """An ISO 8601 string with an offset. A TOML datetime literal is refused so that every
    policy spells its instants one way (SPEC "The policy")."""
    if not isinstance(value, str):
        raise PydanticCustomError("policy_rule", "must be a quoted ISO 8601 string, got a {got}",
                                  {"got": type(value).__name__})
    moment = _instant(value)
    if moment is None:
        raise PydanticCustomError("policy_rule", "is not an ISO 8601 timestamp: {got}", {"got": repr(value)})
    if moment.tzinfo is None:
        raise PydanticCustomError("policy_rule", "needs an offset, e.g. +09:00", {})
    try:
        year = moment.astimezone(timezone.utc).year
    except OverflowError:
        year = moment.year
    if not YEARS[0] <= year <= YEARS[1] or not YEARS[0] <= moment.year <= YEARS[1]:
        # in UTC too, as the pipeline reads it (found by review: 1900-01-01T00:00+09:00 is
        # 1899 in UTC, and the message said 1900 was refused for not being in 1900)
        raise PydanticCustomError("policy_rule", "must fall in the years {first} to {last}, in UTC as well (a breach "
                                  "window has two ends), got {got}", {"first": YEARS[0], "last": YEARS[1],
                                                                      "got": repr(value)})
    return moment


# A date as the messages ask for it, YYYY-MM-DD. Python's date.fromisoformat also takes
# ISO 8601's basic (`20251201`) and week (`2025-W49-1`) forms, which no message offers
# and a person rarely means: found by review, `--run-date 20251201` was taken.
_CALENDAR_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def calendar_date(text: str) -> date:
    """YYYY-MM-DD (a real date) -> date; ValueError for anything else, "" included."""
    if not isinstance(text, str) or not _CALENDAR_DATE.fullmatch(text):
        raise ValueError(f"not YYYY-MM-DD: {text!r}")
    return date.fromisoformat(text)


def _optional_date(value: Any) -> date | None:
    """YYYY-MM-DD, or "" for none."""
    if value == "":
        return None
    try:
        day = calendar_date(value)
    except ValueError:
        raise PydanticCustomError("policy_rule", "must be YYYY-MM-DD or empty, got {got}",
                                  {"got": repr(value)}) from None
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise PydanticCustomError("policy_rule", "must fall in the years {first} to {last}, or be empty, got {got}",
                                  {"first": YEARS[0], "last": YEARS[1], "got": repr(value)})
    return day


Timestamp = Annotated[datetime, BeforeValidator(_timestamp),
                      WithJsonSchema({"type": "string", "format": "date-time"})]
OptionalDate = Annotated[date | None, BeforeValidator(_optional_date),
                         WithJsonSchema({"anyOf": [{"type": "string", "format": "date"}, {"const": ""}]})]


def _holiday(value: Any) -> date:
    """A bank holiday: YYYY-MM-DD (a TOML date too), in YEARS."""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = value.isoformat()
    try:
        day = calendar_date(value)
    except ValueError:
        raise PydanticCustomError("policy_rule", "must be YYYY-MM-DD, got {got}", {"got": repr(value)}) from None
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise PydanticCustomError("policy_rule", "must fall in the years {first} to {last}, got {got}",
                                  {"first": YEARS[0], "last": YEARS[1], "got": repr(value)})
    return day


Holiday = Annotated[date, BeforeValidator(_holiday), WithJsonSchema({"type": "string", "format": "date"})]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyTable(_Table):
    """[policy]: which policy this is."""
    id: Identifier = Field(description="stamped on every entitlement, payment and batch")
    currency: Annotated[Literal["KRW"], Field(description="only KRW (whole won) is supported")]
    timezone: Annotated[str, StringConstraints(strict=True)] = Field(description="an IANA zone, e.g. Asia/Seoul")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError("policy_rule", "is not a known timezone: {got}", {"got": repr(zone)}) from None
        # Python also opens the files of the zone database that are no zone's name
        # (posix/Asia/Seoul, right/..., localtime, posixrules, Factory), which DuckDB or
        # Polars refuse: the run then failed in ingest (found by review)
        if zone not in available_timezones() or zone in NOT_ZONE_NAMES:
            raise PydanticCustomError("policy_rule", "is not an IANA zone name such as Asia/Seoul: {got}",
                                      {"got": repr(zone)})
        return zone


class BreachTable(_Table):
    """[breach]: the window, both ends inclusive."""
    window_start: Timestamp
    window_end: Timestamp

    @model_validator(mode="after")
    def _ordered(self) -> BreachTable:
        if self.window_end < self.window_start:
            raise _refuse("window_end", why="is before breach.window_start")
        return self


class EligibilityTable(_Table):
    """[eligibility]: which exposures count and which account statuses are paid."""
    confidence: Annotated[list[Literal[CONFIDENCES]], Field(
        min_length=1, description="must include confirmed: the confidences whose exposures count")]
    statuses: list[Literal[STATUSES]]

    @model_validator(mode="after")
    def _confirmed_counts(self) -> EligibilityTable:
        # A confirmed exposure is at least the evidence a suspected one is, and the SPEC's
        # reason for no counted exposure is UNCONFIRMED_ONLY. Found by review: with only
        # `suspected` counted, a person whose exposure was confirmed was told it was
        # "only suspected", in their message and by explain.
        if vocabulary.CONFIRMED not in self.confidence:
            raise _refuse("confidence", why=f"must include {vocabulary.CONFIRMED!r}: a confirmed exposure is at least "
                                            "the evidence a suspected one is (UNCONFIRMED_ONLY means none confirmed)")
        return self


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class VoucherProduct:
    """One item of payout.voucher_products: a product id and its share in basis points."""
    id: Annotated[Identifier, Field(description=SHOWN)]
    share_bp: Annotated[int, Field(strict=True, ge=0, description="basis points of the voucher amount")]


class PayoutTable(_Table):
    """[payout]: what is paid, how often a returned transfer is retried, and until when
    a payment held on `claim` may be claimed (SPEC "Input: claims from customer service")."""
    # at least 1 won: a pro rata share floored to 0 is BELOW_MINIMUM, never a promise of
    # 0 won (found by review: minimum 0 told people "0 won will be deposited")
    minimum_amount: Annotated[PositivePersonWon, Field(
        description="whole won per person (minor units), at least 1: an amount below it is not paid")]
    max_attempts: Count
    claim_deadline: OptionalDate = None
    # At most 20: each is a column of the payments files and a phrase of every voucher
    # message (found by review: 500 products made 34,693-character messages, and the
    # notifications workbook was left out, a cell holding 32,767)
    voucher_products: Annotated[list[VoucherProduct], Field(min_length=1, max_length=MAX_PRODUCTS)]

    @model_validator(mode="after")
    def _shares(self) -> PayoutTable:
        if sum(p.share_bp for p in self.voucher_products) != 10000:
            raise _refuse("voucher_products", why="share_bp must sum to 10000")
        if len({p.id.lower() for p in self.voucher_products}) != len(self.voucher_products):
            # lower case too: the payments files' columns voucher_<id> must differ in
            # DuckDB and in a spreadsheet, where `travel` and `Travel` name one column
            raise _refuse("voucher_products", why="ids must be unique, whatever their case")
        return self


class DisbursementTable(_Table):
    """[disbursement]: batch limits, the first value date, the days a bank transfer may
    be dated, and whether a plan waits for approval before release (SPEC "Approval
    before release")."""
    max_batch_items: Annotated[int, Field(strict=True, ge=1, le=MAX_BATCH_ITEMS)]
    max_batch_amount: PositiveWon
    daily_cash_cap: PositiveWon
    first_value_date: OptionalDate = None
    require_approval: Annotated[bool, Field(
        strict=True, description="true: a run stops with its plan, released only once approved")] = False
    # The days a bank transfer may be dated (found by the time review: a bank settles a
    # file dated on a weekend or holiday on its next business day, so Friday's, Saturday's
    # and Sunday's caps all left on Monday). `every_day` is the SPEC's "each day".
    bank_days: Annotated[Literal["every_day", "weekdays"], Field(
        description="every_day (the SPEC's), or weekdays: Monday to Friday but bank_holidays")] = "every_day"
    bank_holidays: Annotated[list[Holiday], Field(
        max_length=10000, description="dates no bank transfer is dated on, with bank_days = \"weekdays\"")] = []

    @model_validator(mode="after")
    def _holidays_need_weekdays(self) -> DisbursementTable:
        if self.bank_holidays and self.bank_days != "weekdays":
            raise _refuse("bank_holidays", why='needs bank_days = "weekdays"')
        return self


class NoticeTable(_Table):
    """[notice]: what a message may name."""
    official_phone: Annotated[str, StringConstraints(strict=True, pattern=_PHONE)] = Field(
        description="the only phone number a message names")
    # At most 100 characters: every message opens with it, an SMS most of all (found by
    # review: a 40,000-character sender made messages no spreadsheet cell can hold).
    sender: Annotated[str, StringConstraints(strict=True, pattern=r"\S", max_length=100)] = Field(
        description=SHOWN + "; at most 100 characters")
    # How messages name a category or a voucher product, in the messages' language, where
    # redress has no word of its own for it (redress/rules/notifications.py CATEGORY_KO,
    # PRODUCT_KO) or the policy wants another: found by review, `payment_card_last4` and
    # `coffee_voucher` reached people's texts as those keys.
    category_labels: Annotated[dict[str, Label], Field(
        description="data category -> how messages name it; " + SHOWN)] = {}
    product_labels: Annotated[dict[str, Label], Field(
        description="voucher product id -> how messages name it; " + SHOWN)] = {}

    @model_validator(mode="after")
    def _sender_shown(self) -> NoticeTable:
        _shown(self.sender.strip(), self.official_phone, "sender")  # as messages show it (load_policy)
        for table, labels in (("category_labels", self.category_labels), ("product_labels", self.product_labels)):
            for key, label in labels.items():
                _shown(label, self.official_phone, table, key)
        return self


class BudgetTable(_Table):
    """[budget]: 0 is no cap; else the whole fund, shared pro rata when exceeded."""
    total_cap: Won


TierNumber = Annotated[str, StringConstraints(pattern=_TIER)]


class PolicyFile(_Table):
    """A policy TOML file, table by table (SPEC "The policy")."""
    model_config = ConfigDict(extra="forbid", frozen=True, title="redress compensation policy")
    policy: PolicyTable
    breach: BreachTable
    eligibility: EligibilityTable
    categories: Annotated[dict[str, Annotated[int, Field(strict=True)]], Field(
        min_length=1, max_length=MAX_CATEGORIES,
        description=f"data category -> tier number; a name is {SHOWN}, at most {MAX_CATEGORY_NAME} characters")]
    tiers: Annotated[dict[TierNumber, PositivePersonWon], Field(
        min_length=1, description="tier number -> amount in whole won",
        json_schema_extra={"additionalProperties": False})]
    budget: BudgetTable
    payout: PayoutTable
    disbursement: DisbursementTable
    notice: NoticeTable

    @model_validator(mode="after")
    def _across_tables(self) -> PolicyFile:
        named = {}
        for key in self.tiers:  # `1` and `01` are one tier: the later amount would win unseen
            if int(key) > MAX_TIER:
                raise _refuse("tiers", key, why=f"must be a tier number from 1 to {MAX_TIER:,}")
            if int(key) in named:
                raise _refuse("tiers", key, why=f"names tier {int(key)}, as tiers.{named[int(key)]} does: "
                                                "give each tier once")
            named[int(key)] = key
        tiers = sorted(named)
        for name in self.categories:  # a scope row's data_category is trimmed: SPEC "Input: scope files"
            if len(name) > MAX_CATEGORY_NAME:
                raise _refuse("categories", name[:20] + "...", why=f"must be a name of at most {MAX_CATEGORY_NAME} "
                                                                   "characters: every message shows it")
            if trimmed_text(name) != name:
                raise _refuse("categories", name, why="must be a name without whitespace at either end, as a "
                                                      "scope file's data_category is read: no row could match it")
        for name, tier in self.categories.items():
            if tier not in tiers:
                raise _refuse("categories", name, why=f"must name a tier of [tiers] ({tiers}), got {tier!r}")
        phone = self.notice.official_phone
        for name in self.categories:
            _shown(name, phone, "categories", name)
        for i, product in enumerate(self.payout.voucher_products):
            _shown(product.id, phone, "payout", "voucher_products", i, "id")
        for key in self.notice.category_labels:
            if key not in self.categories:
                raise _refuse("notice", "category_labels", key, why="must name a category of [categories]")
        products = {p.id for p in self.payout.voucher_products}
        for key in self.notice.product_labels:
            if key not in products:
                raise _refuse("notice", "product_labels", key, why="must name a product of payout.voucher_products")
        largest = max(self.tiers.values())
        if self.disbursement.max_batch_amount < largest:
            raise _refuse("disbursement", "max_batch_amount", why=f"is below the largest tier amount {largest}: "
                          "a payment could never fit a batch")
        if self.disbursement.daily_cash_cap < largest:
            raise _refuse("disbursement", "daily_cash_cap", why=f"is below the largest tier amount {largest}: "
                          "a payment could never be released")
        return self
