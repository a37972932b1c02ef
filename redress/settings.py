"""Where things live, from the environment: one settings object, built once at the entry
point. Unknown REDRESS_* variables are refused so that a typo fails loudly."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from redress.errors import RedressError

KNOWN = {
    "REDRESS_DATA_DIR": "the data folder (default ./data)",
    "REDRESS_HMAC_KEY": "secret key for reference codes (never in the repository)",
    "REDRESS_FAIL_AT": "test hook: abort the run at the named step",
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    hmac_key: str | None
    fail_at: str | None


def load_settings(environ: dict[str, str] | None = None, *, data_dir: Path | None = None) -> Settings:
    env = os.environ if environ is None else environ
    unknown = sorted(k for k in env if k.startswith("REDRESS_") and k not in KNOWN)
    if unknown:
        raise RedressError(
            f"unknown setting {unknown[0]} (known: {', '.join(sorted(KNOWN))})"
        )
    chosen = data_dir or Path(env.get("REDRESS_DATA_DIR") or "data")
    key = env.get("REDRESS_HMAC_KEY") or None
    return Settings(data_dir=chosen, hmac_key=key, fail_at=env.get("REDRESS_FAIL_AT") or None)
