"""A policy error as one line naming the key: `policy NAME: KEY: WHY` (SPEC "The policy").

pydantic reports every error with a location (`('payout', 'voucher_products', 3,
'share_bp')`); the CLI prints one line, never pydantic's multi-line dump, so the first
error is rendered with its location spelt as in TOML (`payout.voucher_products[3].share_bp`).
"""

from __future__ import annotations

import dataclasses
import json
import re

from pydantic import ValidationError

from redress.errors import RedressError
from redress.policy.tables import _ID, _PHONE, _TIER, PolicyFile, VoucherProduct

def _key(part: str | int) -> str:
    """One part of a key path as TOML spells it: bare, or quoted (escaped, so that a
    message stays one line)."""
    return part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part, ensure_ascii=False)


def _where(loc: tuple[str | int, ...]) -> str:
    """('payout', 'voucher_products', 3, 'share_bp') -> 'payout.voucher_products[3].share_bp';
    a table alone is named as TOML heads it: ('tiers',) -> '[tiers]'."""
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key that failed
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{_key(part)}" if text else _key(part))
    return f"[{text}]" if len(loc) == 1 else text


def _known(loc: tuple[str | int, ...]) -> list[str]:
    """The keys accepted by the table at `loc` (the file, a table, a voucher product)."""
    names = [part for part in loc if isinstance(part, str)]
    if not names:
        return list(PolicyFile.model_fields)
    if names == ["payout", "voucher_products"]:
        return [f.name for f in dataclasses.fields(VoucherProduct)]
    return list(PolicyFile.model_fields[names[0]].annotation.model_fields)


# An unknown key in a table (a model) or in a voucher product (a pydantic dataclass).
_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")
_WHY = {
    "missing": "is missing",
    "int_type": "must be an integer, got {got}",
    "string_type": "must be a string, got {got}",
    "list_type": "must be a list, got {got}",
    "dict_type": "must be a table, got {got}",
    "model_type": "must be a table, got {got}",
    "literal_error": "must be one of {expected}, got {got}",
    "too_short": "is empty",
    "greater_than_equal": "must be at least {ge}, got {got}",
    "less_than_equal": "must be at most {le}, got {got}",
    "string_pattern_mismatch": "{pattern}, got {got}",
}
_PATTERNS = {
    _ID: "must be letters, digits, '.', '_' or '-' (max 64)",
    _PHONE: "must be a phone number like 1577-7011",
    _TIER: "must be a positive whole tier number",
    r"\S": "is blank",
}


def _one_line(error: dict, name: str) -> str:
    """One pydantic error as `policy NAME: KEY: WHY`."""
    loc = error["loc"]
    ctx = error.get("ctx") or {}
    if error["type"] == "policy_rule" and "key" in ctx:
        loc = (*loc, *ctx["key"])
        why = ctx["why"]
    elif error["type"] in _UNKNOWN:
        why = f"unknown key (known: {', '.join(_known(loc[:-1]))})"
    elif error["type"] in _WHY:
        got = repr(error["input"])
        if "pattern" in ctx:
            ctx = {**ctx, "pattern": _PATTERNS.get(ctx["pattern"], f"does not match {ctx['pattern']}")}
        why = _WHY[error["type"]].format(**ctx, got=got if len(got) <= 60 else got[:57] + "...")
    else:
        why = error["msg"]
    return f"policy {name}: {_where(tuple(loc))}: {why.replace(chr(10), ' ')}"


def validate_document(doc: dict, name: str) -> PolicyFile:
    """The parsed TOML `doc` validated table by table. Raises RedressError with one line
    naming the first broken key (and how many more there are)."""
    try:
        return PolicyFile.model_validate(doc)
    except ValidationError as exc:
        # An unknown key first: a misspelt key also makes the intended one "missing",
        # and the misspelling is what the author must see.
        errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] not in _UNKNOWN)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise RedressError(_one_line(errors[0], name) + more) from None
