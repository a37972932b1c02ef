"""The compensation policy: a reviewed, versioned TOML file validated into a typed object.

A policy that breaks any rule is refused before any data is touched, with a message
that names the key (SPEC "The policy").
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redress.errors import RedressError
from redress.shipped import shipped_dir

DEFAULT_POLICY = shipped_dir("policies") / "coupang-2025-v1.toml"

CONFIDENCES = ("confirmed", "suspected")
STATUSES = ("active", "dormant", "closed")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class VoucherProduct:
    id: str
    share_bp: int


@dataclass(frozen=True)
class Policy:
    id: str
    currency: str
    timezone: str
    window_start: datetime
    window_end: datetime
    confidence: tuple[str, ...]
    statuses: tuple[str, ...]
    categories: dict[str, int]
    tiers: dict[int, int]
    total_cap: int
    minimum_amount: int
    max_attempts: int
    voucher_products: tuple[VoucherProduct, ...]
    max_batch_items: int
    max_batch_amount: int
    daily_cash_cap: int
    first_value_date: date | None
    official_phone: str
    sender: str
    sha256: str
    path: Path

    @property
    def max_amount(self) -> int:
        """The largest amount any one payment can have under this policy."""
        return max(self.tiers.values())


class _Reader:
    """Reads keys from the parsed TOML, naming the full key in every error."""

    def __init__(self, doc: dict, path: Path):
        self.doc = doc
        self.path = path

    def fail(self, key: str, why: str) -> RedressError:
        return RedressError(f"policy {self.path.name}: {key} {why}")

    def section(self, name: str) -> dict:
        value = self.doc.get(name)
        if not isinstance(value, dict):
            raise self.fail(f"[{name}]", "is missing")
        return value

    def get(self, section: str, key: str, kind: type, *, default=None):
        table = self.section(section)
        full = f"{section}.{key}"
        if key not in table:
            if default is not None:
                return default
            raise self.fail(full, "is missing")
        value = table[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.fail(full, f"must be a whole number in minor units, got {value!r}")
        if kind is not int and not isinstance(value, kind):
            raise self.fail(full, f"must be a {kind.__name__}, got {value!r}")
        return value

    def whole(self, section: str, key: str, *, minimum: int, default=None) -> int:
        value = self.get(section, key, int, default=default)
        if value < minimum:
            raise self.fail(f"{section}.{key}", f"must be at least {minimum}, got {value}")
        return value

    def when(self, key: str, text: str) -> datetime:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(f"breach.{key}", f"is not an ISO 8601 timestamp: {text!r}") from None
        if moment.tzinfo is None:
            raise self.fail(f"breach.{key}", "needs an offset, e.g. +09:00")
        return moment


KNOWN_KEYS = {
    "policy": {"id", "currency", "timezone"},
    "breach": {"window_start", "window_end"},
    "eligibility": {"confidence", "statuses"},
    "categories": None,  # any category name
    "tiers": None,       # any tier number
    "budget": {"total_cap"},
    "payout": {"minimum_amount", "max_attempts", "voucher_products"},
    "disbursement": {"max_batch_items", "max_batch_amount", "daily_cash_cap", "first_value_date"},
    "notice": {"official_phone", "sender"},
}


def _refuse_unknown_keys(r: _Reader) -> None:
    """A mistyped key must fail loudly, not fall back to a default."""
    for section, value in r.doc.items():
        if section not in KNOWN_KEYS:
            raise r.fail(f"[{section}]", f"is not a policy section (known: {', '.join(KNOWN_KEYS)})")
        known = KNOWN_KEYS[section]
        if known is not None and isinstance(value, dict):
            for key in value:
                if key not in known:
                    raise r.fail(f"{section}.{key}", f"is not a known key (known: {', '.join(sorted(known))})")


def load_policy(path: Path | None = None) -> Policy:
    path = Path(path or DEFAULT_POLICY)
    try:
        raw = path.read_bytes()
    except OSError:
        raise RedressError(f"policy file not found: {path}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RedressError(f"policy {path.name}: not valid TOML ({exc})") from None
    r = _Reader(doc, path)
    _refuse_unknown_keys(r)

    policy_id = r.get("policy", "id", str)
    if not _ID.match(policy_id):
        raise r.fail("policy.id", "must be letters, digits, '.', '_' or '-' (max 64)")
    currency = r.get("policy", "currency", str)
    if currency != "KRW":
        # Only KRW is built and tested: whole won, no minor unit. Another currency needs
        # its minor unit and pain.001 decimals handled first.
        raise r.fail("policy.currency", f"must be KRW (the only currency supported), got {currency!r}")
    timezone = r.get("policy", "timezone", str)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise r.fail("policy.timezone", f"is not a known timezone: {timezone!r}") from None

    start = r.when("window_start", r.get("breach", "window_start", str))
    end = r.when("window_end", r.get("breach", "window_end", str))
    if end < start:
        raise r.fail("breach.window_end", "is before breach.window_start")

    confidence = tuple(r.get("eligibility", "confidence", list))
    if not confidence or any(c not in CONFIDENCES for c in confidence):
        raise r.fail("eligibility.confidence", f"must be a non-empty list of {CONFIDENCES}")
    statuses = tuple(r.get("eligibility", "statuses", list))
    if any(s not in STATUSES for s in statuses):
        raise r.fail("eligibility.statuses", f"must list only {STATUSES}")

    tiers: dict[int, int] = {}
    for key, amount in r.section("tiers").items():
        if not key.isdigit() or int(key) < 1:
            raise r.fail(f"tiers.{key}", "must be a positive whole tier number")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise r.fail(f"tiers.{key}", f"must be a positive whole amount in minor units, got {amount!r}")
        tiers[int(key)] = amount
    if not tiers:
        raise r.fail("[tiers]", "is empty")

    categories: dict[str, int] = {}
    for name, tier in r.section("categories").items():
        if isinstance(tier, bool) or not isinstance(tier, int) or tier not in tiers:
            raise r.fail(f"categories.{name}", f"must name a tier of [tiers] ({sorted(tiers)}), got {tier!r}")
        categories[name] = tier
    if not categories:
        raise r.fail("[categories]", "is empty")

    total_cap = r.whole("budget", "total_cap", minimum=0)
    minimum_amount = r.whole("payout", "minimum_amount", minimum=0)
    max_attempts = r.whole("payout", "max_attempts", minimum=1)
    products = []
    for i, item in enumerate(r.get("payout", "voucher_products", list)):
        key = f"payout.voucher_products[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not _ID.match(item["id"]):
            raise r.fail(key, "needs an id of letters, digits, '_' or '-'")
        share = item.get("share_bp")
        if isinstance(share, bool) or not isinstance(share, int) or share < 0:
            raise r.fail(f"{key}.share_bp", f"must be a whole number of basis points, got {share!r}")
        products.append(VoucherProduct(item["id"], share))
    if not products:
        raise r.fail("payout.voucher_products", "is empty")
    if sum(p.share_bp for p in products) != 10000:
        raise r.fail("payout.voucher_products", "share_bp must sum to 10000")
    if len({p.id for p in products}) != len(products):
        raise r.fail("payout.voucher_products", "ids must be unique")

    max_items = r.whole("disbursement", "max_batch_items", minimum=1)
    max_batch_amount = r.whole("disbursement", "max_batch_amount", minimum=1)
    daily_cap = r.whole("disbursement", "daily_cash_cap", minimum=1)
    largest = max(tiers.values())
    if max_batch_amount < largest:
        raise r.fail("disbursement.max_batch_amount", f"is below the largest tier amount {largest}: a payment could never fit a batch")
    if daily_cap < largest:
        raise r.fail("disbursement.daily_cash_cap", f"is below the largest tier amount {largest}: a payment could never be released")
    fvd_text = r.get("disbursement", "first_value_date", str, default="")
    first_value_date = None
    if fvd_text:
        try:
            first_value_date = date.fromisoformat(fvd_text)
        except ValueError:
            raise r.fail("disbursement.first_value_date", f"must be YYYY-MM-DD or empty, got {fvd_text!r}") from None

    official_phone = r.get("notice", "official_phone", str)
    if not re.fullmatch(r"[0-9][0-9-]{6,14}", official_phone):
        raise r.fail("notice.official_phone", f"must be a phone number like 1577-7011, got {official_phone!r}")
    sender = r.get("notice", "sender", str)
    if not sender.strip():
        raise r.fail("notice.sender", "is empty")

    return Policy(
        id=policy_id, currency=currency, timezone=timezone,
        window_start=start, window_end=end,
        confidence=confidence, statuses=statuses,
        categories=categories, tiers=tiers, total_cap=total_cap,
        minimum_amount=minimum_amount, max_attempts=max_attempts,
        voucher_products=tuple(products),
        max_batch_items=max_items, max_batch_amount=max_batch_amount,
        daily_cash_cap=daily_cap, first_value_date=first_value_date,
        official_phone=official_phone, sender=sender.strip(),
        sha256=hashlib.sha256(raw).hexdigest(), path=path.resolve(),
    )
