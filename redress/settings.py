"""Where things live, from the environment: one settings object, built once at the entry
point. Unknown REDRESS_* variables are refused so that a typo fails loudly."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from redress.errors import RedressError

KNOWN = {
    "REDRESS_DATA_DIR": "the data folder (default ./data)",
    "REDRESS_HMAC_KEY": "secret key for reference codes (never in the repository)",
    "REDRESS_FAIL_AT": "test hook: abort the run at the named step",
    "REDRESS_DEBTOR_NAME": "the paying company's name, for bank files",
    "REDRESS_DEBTOR_ACCOUNT": "the account bank transfers are paid from",
    "REDRESS_DEBTOR_BANK_CODE": "the 3-digit clearing code of that account's bank",
    "REDRESS_INBOX_QUIET_SECONDS": "an inbox file is complete once unchanged this long (default 10)",
    "REDRESS_INBOX_WAIT_SECONDS": "the longest a run waits for files still being copied in (default 300)",
}
INBOX_QUIET_SECONDS = 10.0
INBOX_WAIT_SECONDS = 300.0


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    hmac_key: str | None
    fail_at: str | None
    debtor_name: str | None = None
    debtor_account: str | None = None
    debtor_bank_code: str | None = None
    inbox_quiet_seconds: float = INBOX_QUIET_SECONDS
    inbox_wait_seconds: float = INBOX_WAIT_SECONDS


def load_settings(environ: dict[str, str] | None = None, *, data_dir: Path | None = None) -> Settings:
    env = os.environ if environ is None else environ
    unknown = sorted(k for k in env if k.startswith("REDRESS_") and k not in KNOWN)
    if unknown:
        raise RedressError(
            f"unknown setting {unknown[0]} (known: {', '.join(sorted(KNOWN))})"
        )
    chosen = data_dir or Path(env.get("REDRESS_DATA_DIR") or "data")
    key = env.get("REDRESS_HMAC_KEY") or None
    return Settings(
        data_dir=chosen, hmac_key=key, fail_at=env.get("REDRESS_FAIL_AT") or None,
        debtor_name=env.get("REDRESS_DEBTOR_NAME") or None,
        debtor_account=env.get("REDRESS_DEBTOR_ACCOUNT") or None,
        debtor_bank_code=env.get("REDRESS_DEBTOR_BANK_CODE") or None,
        inbox_quiet_seconds=_seconds(env, "REDRESS_INBOX_QUIET_SECONDS", INBOX_QUIET_SECONDS),
        inbox_wait_seconds=_seconds(env, "REDRESS_INBOX_WAIT_SECONDS", INBOX_WAIT_SECONDS),
    )


def _seconds(env, key: str, default: float) -> float:
    """A duration setting: a number of seconds from 0 to one day; empty means the default."""
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:  # also refuses nan and inf
        raise RedressError(f"{key} must be a number of seconds from 0 to 86400, not {raw[:20]!r}")
    return value


def debtor(settings: Settings):
    """The payer of bank files. Treasury's account, not a compensation rule, so it comes
    from the environment rather than the policy; a bank file is never guessed."""
    from tasks.pain001 import Debtor

    missing = [k for k, v in (("REDRESS_DEBTOR_NAME", settings.debtor_name),
                              ("REDRESS_DEBTOR_ACCOUNT", settings.debtor_account),
                              ("REDRESS_DEBTOR_BANK_CODE", settings.debtor_bank_code)) if not v]
    if missing:
        raise RedressError(f"bank transfers need the paying account: set {', '.join(missing)}")
    account = settings.debtor_account.replace("-", "").replace(" ", "")
    if not account.isdigit() or not re.fullmatch(r"[0-9]{3}", settings.debtor_bank_code):
        raise RedressError("REDRESS_DEBTOR_ACCOUNT must be digits and REDRESS_DEBTOR_BANK_CODE 3 digits")
    return Debtor(name=settings.debtor_name, account=account, bank_code=settings.debtor_bank_code)
