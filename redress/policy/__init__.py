"""The compensation policy: a reviewed, versioned TOML file validated into a typed object.

A policy that breaks any rule is refused before any data is touched, with a one-line
message that names the key (SPEC "The policy"). The TOML file is described by pydantic
models, one per table (`PolicyFile` and the `*Table` models): every model refuses
unknown keys and coerces nothing (a "50000" string or a 50000.0 float is refused where
whole won are expected). `load_policy` validates the file through them and returns the
flat, frozen `Policy` the pipeline reads.

`python -m redress.policy --schema` prints the JSON schema of the file for policy
authors (committed as policies/policy.schema.json; `make policy-schema` rewrites it).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import tomllib
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from redress.errors import RedressError
from redress.policy.messages import validate_document
from redress.policy.tables import CONFIDENCES, STATUSES, PolicyFile, VoucherProduct
from redress.shipped import shipped_dir
from redress.sql import check_utf8
from redress import escape

__all__ = ["CONFIDENCES", "DEFAULT_POLICY", "STATUSES", "Policy", "PolicyFile", "VoucherProduct", "json_schema",
           "load_policy"]

DEFAULT_POLICY = shipped_dir("policies") / "coupang-2025-v1.toml"
SCHEMA_FILE = DEFAULT_POLICY.parent / "policy.schema.json"


@dataclasses.dataclass(frozen=True)
class Policy:
    """The validated policy, flat, as the pipeline reads it. Money in whole won; tiers
    keyed by tier number; sha256 and path of the file it was read from."""
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
    claim_deadline: date | None  # after it, payments still held on claim are unclaimed
    voucher_products: tuple[VoucherProduct, ...]
    max_batch_items: int
    max_batch_amount: int
    daily_cash_cap: int
    first_value_date: date | None
    official_phone: str
    sender: str
    sha256: str
    path: Path
    require_approval: bool = False  # SPEC "Approval before release"
    rules_sha256: str = ""  # of the tables that decide who is owed what, by which rail (RULE_TABLES)
    # how messages name a category / a voucher product, beside redress's own words ([notice])
    category_labels: dict[str, str] = dataclasses.field(default_factory=dict)
    product_labels: dict[str, str] = dataclasses.field(default_factory=dict)
    # the days a bank transfer may be dated: every day, or weekdays but these holidays
    bank_days: str = "every_day"
    bank_holidays: frozenset[date] = frozenset()

    def is_bank_day(self, day: date) -> bool:
        """Whether a bank transfer may be dated `day` ([disbursement] bank_days and
        bank_holidays; the SPEC's "each day" by default)."""
        return self.bank_days == "every_day" or (day.weekday() < 5 and day not in self.bank_holidays)

    @property
    def max_amount(self) -> int:
        """The largest amount any one payment can have under this policy."""
        return max(self.tiers.values())

    def today(self) -> date:
        """Today's date where the policy pays (its `timezone`): the run date when none is
        given, whatever the host's clock zone (a UTC host is a day behind Seoul until
        09:00 there: found by review, a bank file dated yesterday)."""
        return datetime.now(ZoneInfo(self.timezone)).date()


# The tables of a policy file that decide who is owed what and by which rail: a payment's
# policy id names them (redress/warehouse/runs.py refuses a changed one under a used id).
# [disbursement] (batching, value dates, the daily cash cap, approval) and [notice] (the
# messages' texts) decide when and how, and comments nothing. Hashed as validated, values
# left at their defaults out: a key a later version adds, with a default, leaves the hash
# of a file that does not set it unchanged (found by review: else every folder that paid
# would refuse its own policy after an upgrade).
RULE_TABLES = ("policy", "breach", "eligibility", "categories", "tiers", "budget", "payout")


def load_policy(path: Path | None = None) -> Policy:
    """The policy at `path` (default: the shipped one), validated. Raises RedressError
    (one line) when the file is missing, not TOML, or breaks a rule. SPEC "The policy".
    The file is read every time; its bytes are checked once per process (`_checked`):
    a run reads its policy again at every stage, to refuse a file changed since it
    started (redress.context.RunContext.policy), and the checks took about 7 ms each."""
    path = Path(path or DEFAULT_POLICY)
    check_utf8(path, "policy file")  # its name is in every run's record and report
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RedressError(f"policy file not found: {escape.terminal(str(path))}") from None
    except OSError as exc:  # a folder, no permission, an I/O error: said as the system says it
        raise RedressError(f"policy file {escape.terminal(str(path))} cannot be read: {exc.strerror or exc}") from None
    # A copy each time: the cached Policy is frozen, but its tiers and categories are dicts.
    return copy.deepcopy(_checked(raw, path.name, path.resolve()))


def policy_text(policy: Policy) -> str | None:
    """The text of the file `policy` was read from, while the file still holds exactly
    those bytes (its sha256), else None: what `runs.policy_text` keeps, so that what a
    run decided can be explained under its rules after the file is edited or removed."""
    try:
        raw = policy.path.read_bytes()
    except OSError:
        return None
    return raw.decode("utf-8") if hashlib.sha256(raw).hexdigest() == policy.sha256 else None


def policy_from_text(text: str, path: Path) -> Policy:
    """The policy of `text` (a policy file's content, as `policy_text` kept it), as if
    read from `path`; RedressError (one line) when it breaks a rule of this version."""
    return copy.deepcopy(_checked(text.encode("utf-8"), Path(path).name, Path(path)))


@functools.lru_cache(maxsize=16)
def _checked(raw: bytes, name: str, resolved: Path) -> Policy:
    """The Policy of these bytes, read from the file `resolved` (named `name` in errors,
    which are not cached). Nothing else decides it: the time zones it is checked against
    are the process's for its whole life."""
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RedressError(f"policy {name}: not valid TOML ({exc})") from None
    f = validate_document(doc, name)
    return Policy(
        id=f.policy.id, currency=f.policy.currency, timezone=f.policy.timezone,
        window_start=f.breach.window_start, window_end=f.breach.window_end,
        confidence=tuple(f.eligibility.confidence), statuses=tuple(f.eligibility.statuses),
        categories=dict(f.categories), tiers={int(k): v for k, v in f.tiers.items()},
        total_cap=f.budget.total_cap, minimum_amount=f.payout.minimum_amount, max_attempts=f.payout.max_attempts,
        claim_deadline=f.payout.claim_deadline,
        voucher_products=tuple(f.payout.voucher_products),
        max_batch_items=f.disbursement.max_batch_items, max_batch_amount=f.disbursement.max_batch_amount,
        daily_cash_cap=f.disbursement.daily_cash_cap, first_value_date=f.disbursement.first_value_date,
        official_phone=f.notice.official_phone, sender=f.notice.sender.strip(),
        sha256=hashlib.sha256(raw).hexdigest(), path=resolved,
        require_approval=f.disbursement.require_approval,
        category_labels=dict(f.notice.category_labels), product_labels=dict(f.notice.product_labels),
        bank_days=f.disbursement.bank_days, bank_holidays=frozenset(f.disbursement.bank_holidays),
        rules_sha256=hashlib.sha256(json.dumps(f.model_dump(mode="json", include=set(RULE_TABLES), exclude_defaults=True),
                                               sort_keys=True).encode()).hexdigest(),
    )


def json_schema() -> str:
    """The JSON schema of a policy file, as committed in policies/policy.schema.json."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **PolicyFile.model_json_schema()}
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
