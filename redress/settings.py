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
    "REDRESS_SHARE_GROUP": "a group that may read what runs write (default: the owner only)",
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    hmac_key: str | None
    fail_at: str | None
    debtor_name: str | None = None
    debtor_account: str | None = None
    debtor_bank_code: str | None = None
    share_group: str | None = None


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
        share_group=env.get("REDRESS_SHARE_GROUP") or None,
    )


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
