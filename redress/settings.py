"""Where things live, from the environment: one settings object, built once at the entry
point and handed down as an argument (STYLE 5). Unknown REDRESS_* variables are refused
so that a typo fails loudly.

The entry points: the CLI (flows/cli.py main) and the flow run itself (a served run
has no CLI: flows/remediation.py builds them at its start with `for_run`). Never a flow
parameter: Prefect's API stores parameters, and the settings hold the HMAC key, kept
as a SecretStr whose repr and str hide it."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from redress.debtor import Debtor
from redress.errors import RedressError
from redress.rules.printable import first_unprintable
from redress.runtime.commands import full_path
from redress.sql import check_printable, check_utf8

KNOWN = {
    "REDRESS_DATA_DIR": "the data folder (default ./data)",
    "REDRESS_HMAC_KEY": "secret key for reference codes (never in the repository)",
    "REDRESS_FAIL_AT": "test hook: abort the run at the named step",
    "REDRESS_DEBTOR_NAME": "the paying company's name, for bank files",
    "REDRESS_DEBTOR_ACCOUNT": "the account bank transfers are paid from",
    "REDRESS_DEBTOR_BANK_CODE": "the 3-digit clearing code of that account's bank",
    "REDRESS_INBOX_QUIET_SECONDS": "an inbox file is complete once unchanged this long (default 10)",
    "REDRESS_INBOX_WAIT_SECONDS": "the longest a run waits for files still being copied in (default 300)",
    "REDRESS_SHARE_GROUP": "a group that may read what runs write (default: the owner only)",
    "REDRESS_APPROVAL_TIMEOUT_SECONDS": "how long a plan waits for approval before it expires (default 86400)",
}
INBOX_QUIET_SECONDS = 10.0
INBOX_WAIT_SECONDS = 300.0
APPROVAL_TIMEOUT_SECONDS = 86_400.0  # a day: the next daily run would plan afresh anyway


@dataclass(frozen=True)
class Settings:
    """Every REDRESS_* setting, typed. `hmac_key` as given (an empty value is not
    "unset": check_settings refuses it by name); `fail_at` the step a crash test kills
    the run at (redress/runtime/faults.py), None in production; seconds as floats."""

    data_dir: Path
    hmac_key: SecretStr | None
    fail_at: str | None = None
    debtor_name: str | None = None
    debtor_account: str | None = None
    debtor_bank_code: str | None = None
    inbox_quiet_seconds: float = INBOX_QUIET_SECONDS
    inbox_wait_seconds: float = INBOX_WAIT_SECONDS
    share_group: str | None = None
    approval_timeout_seconds: float = APPROVAL_TIMEOUT_SECONDS


def load_settings(environ: dict[str, str] | None = None, *, data_dir: Path | None = None) -> Settings:
    """The settings in `environ` (default: the process environment); `data_dir`, when
    given (--data-dir, a flow's parameter), wins over REDRESS_DATA_DIR, and is made
    absolute against the working directory (symbolic links kept, unless a `..` is
    resolved: redress.runtime.commands.full_path). RedressError
    naming the first unknown REDRESS_* variable, or a malformed duration, or a data
    folder whose path is not UTF-8 (redress/sql.py check_utf8)."""
    env = os.environ if environ is None else environ
    unknown = sorted(k for k in env if k.startswith("REDRESS_") and k not in KNOWN)
    if unknown:
        raise RedressError(
            f"unknown setting {unknown[0]} (known: {', '.join(sorted(KNOWN))})"
        )
    # Absolute from here on: DuckDB reads a path that starts with `~` as the home folder
    # (redress/sql.py), so a folder given as `~data` must reach it as /cwd/~data.
    chosen = full_path(data_dir or Path(env.get("REDRESS_DATA_DIR") or "data"))  # printed in paths: no `..`
    check_utf8(chosen, "the data folder")  # every command opens it, and its path is in every report
    check_printable(chosen, "the data folder")  # and in the commands to paste
    # Kept as given (an empty value is not "unset"): check_settings refuses it by name.
    key = env.get("REDRESS_HMAC_KEY")
    return Settings(
        data_dir=chosen, hmac_key=None if key is None else SecretStr(key), fail_at=env.get("REDRESS_FAIL_AT") or None,
        debtor_name=env.get("REDRESS_DEBTOR_NAME") or None,
        debtor_account=env.get("REDRESS_DEBTOR_ACCOUNT") or None,
        debtor_bank_code=env.get("REDRESS_DEBTOR_BANK_CODE") or None,
        inbox_quiet_seconds=_seconds(env, "REDRESS_INBOX_QUIET_SECONDS", INBOX_QUIET_SECONDS),
        inbox_wait_seconds=_seconds(env, "REDRESS_INBOX_WAIT_SECONDS", INBOX_WAIT_SECONDS),
        share_group=env.get("REDRESS_SHARE_GROUP") or None,
        approval_timeout_seconds=_seconds(env, "REDRESS_APPROVAL_TIMEOUT_SECONDS", APPROVAL_TIMEOUT_SECONDS),
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


def debtor(settings: Settings) -> Debtor:
    """The payer of bank files. Treasury's account, not a compensation rule, so it comes
    from the environment rather than the policy; a bank file is never guessed."""
    missing = [k for k, v in (("REDRESS_DEBTOR_NAME", settings.debtor_name),
                              ("REDRESS_DEBTOR_ACCOUNT", settings.debtor_account),
                              ("REDRESS_DEBTOR_BANK_CODE", settings.debtor_bank_code)) if not v]
    if missing:
        raise RedressError(f"bank transfers need the paying account: set {', '.join(missing)}")
    account = settings.debtor_account.replace("-", "").replace(" ", "")
    if settings.debtor_name != settings.debtor_name.strip():
        raise RedressError("REDRESS_DEBTOR_NAME has leading or trailing whitespace: set it exactly")
    # It goes into every bank file as Dbtr/Nm and InitgPty/Nm: ISO 20022 Max140Text, and
    # XML cannot carry control characters (redress/rules/printable.py holds the rule for ids);
    # categories as the engines read them (redress/characters.py).
    if len(settings.debtor_name) > 140:
        raise RedressError("REDRESS_DEBTOR_NAME is longer than 140 characters, the bank file's limit")
    # The one definition of unprintable (found by the fix review: this check had an older,
    # narrower class, and a Hangul filler went into every bank file).
    if first_unprintable(settings.debtor_name) is not None:
        raise RedressError("REDRESS_DEBTOR_NAME holds a control or invisible character: set it as plain text")
    if not re.fullmatch(r"[0-9]{10,16}", account):
        raise RedressError("REDRESS_DEBTOR_ACCOUNT must be 10 to 16 digits (hyphens and spaces allowed)")
    if not re.fullmatch(r"[0-9]{3}", settings.debtor_bank_code):
        raise RedressError("REDRESS_DEBTOR_BANK_CODE must be exactly 3 digits")
    return Debtor(name=settings.debtor_name, account=account, bank_code=settings.debtor_bank_code)


HMAC_KEY_MIN_CHARS = 32  # e.g. `openssl rand -hex 32` gives 64; 32 hex characters hold 16 bytes
# Fewer different characters than this is a made-up key (`aaaa...`, `abab...`): 32 random
# hex characters hold fewer than 8 different ones with a chance of 4e-8.
HMAC_KEY_MIN_DISTINCT = 8


def check_fail_at(settings: Settings) -> None:
    """REDRESS_FAIL_AT, when set, names a step (redress/runtime/faults.py CHECKPOINTS):
    a misspelt step would otherwise kill nothing, and a crash test pass without its
    crash. Raises RedressError. Checked by every command that has checkpoints, `reject`
    too, which needs no other setting."""
    from redress.runtime.faults import CHECKPOINTS

    if settings.fail_at is not None and settings.fail_at not in CHECKPOINTS:
        raise RedressError(f"REDRESS_FAIL_AT={settings.fail_at[:60]!r} names no step: use one of {', '.join(CHECKPOINTS)}")


def _repeats(key: str) -> bool:
    """True when `key` says the same thing over: fewer than two thirds of its runs of
    four characters are different ones (`abcdefgh` four times, with or without a
    character more: 9 of 30; a 16-character part twice: 16 of 31). A random key's are
    nearly all different. Found by the fix reviews:
    an exact repeat, then one with a character added, passed."""
    runs = [key[i:i + 4] for i in range(len(key) - 3)]
    return len(set(runs)) * 3 < len(runs) * 2


def check_settings(settings: Settings) -> None:
    """Every setting a run needs, checked before anything is written (CLI and flow).

    The HMAC key must be set, at least HMAC_KEY_MIN_CHARS long, of at least
    HMAC_KEY_MIN_DISTINCT different characters, without a control or invisible
    character (redress/rules/printable.py), and exactly as meant: a
    key with surrounding whitespace is refused, never stripped, since a stripped key
    would silently give every person a different reference code. The debtor settings
    are required only once a bank transfer is planned (disburse, before anything is
    paid: only the data says whether there is one), but when any is set all three must
    be set and well-formed now. Raises RedressError naming the setting.
    """
    check_fail_at(settings)
    key = None if settings.hmac_key is None else settings.hmac_key.get_secret_value()
    if key is None:
        raise RedressError("REDRESS_HMAC_KEY is not set: reference codes need a secret key (see README)")
    if key != key.strip():
        raise RedressError("REDRESS_HMAC_KEY has leading or trailing whitespace: set it exactly, without spaces or newlines")
    if len(key) < HMAC_KEY_MIN_CHARS:
        raise RedressError(f"REDRESS_HMAC_KEY is {'empty' if not key else 'too short'}: use a secret of at least "
                           f"{HMAC_KEY_MIN_CHARS} characters (e.g. `openssl rand -hex 32`)")
    # Found by review: 32 times `a`, and a key holding an escape sequence, were taken.
    hidden = first_unprintable(key)
    if hidden is not None:
        raise RedressError(f"REDRESS_HMAC_KEY holds a control or invisible character (U+{ord(hidden):04X}): set it "
                           "exactly as meant (e.g. `openssl rand -hex 32`)")
    if len(set(key)) < HMAC_KEY_MIN_DISTINCT or _repeats(key):
        raise RedressError(f"REDRESS_HMAC_KEY has fewer than {HMAC_KEY_MIN_DISTINCT} different characters or says "
                           "the same over (fewer than two thirds of its four-character runs differ: `abcdefgh` four "
                           "times), which no secret that guards every reference code does: use a random one (e.g. "
                           "`openssl rand -hex 32`)")
    if any((settings.debtor_name, settings.debtor_account, settings.debtor_bank_code)):
        debtor(settings)


# Settings a caller in this process built for the flow runs it starts (the CLI, with the
# demo's values; the inbox-watch flow for its pipeline run). A context variable rather
# than a flow parameter: Prefect stores parameters through its API (the HMAC key would
# be kept there), while a context variable stays in this process and is seen by the
# flow function, which Prefect runs in the caller's thread and context.
_GIVEN: ContextVar[Settings | None] = ContextVar("redress_settings", default=None)


@contextmanager
def given(settings: Settings) -> Iterator[Settings]:
    """Within the block, flow runs started in this process use `settings` (`for_run`)."""
    token = _GIVEN.set(settings)
    try:
        yield settings
    finally:
        _GIVEN.reset(token)


def for_run(data_dir: Path) -> Settings:
    """The settings of a flow run, built once at its start: those `given` by its caller
    in this process, else the environment's (a served run), naming `data_dir`.
    RedressError as load_settings."""
    chosen = _GIVEN.get()
    return chosen if chosen is not None else load_settings(data_dir=Path(data_dir))


def demo_settings(settings: Settings, out: Path, say: Callable[[str], None]) -> Settings:
    """`redress demo`'s settings: these, naming the demo folder `out`, with the demo's
    values where the environment gave none: a generated HMAC key (written to
    out/.hmac_key, owner-only, so the reader can reuse it) and a made-up paying account.
    `say` tells the user which were filled in. The process environment is not written.
    The demo's run reads its inbox at once (inbox quiet and wait 0 s): the demo wrote
    every file there itself, whole, before the run starts, so there is no copy to wait
    for; with the environment's quiet time (default 10 s) it waited on its own files."""
    settings = dataclasses.replace(settings, data_dir=out, inbox_quiet_seconds=0.0, inbox_wait_seconds=0.0)
    if not settings.hmac_key:
        key_file = out / ".hmac_key"
        key = secrets.token_hex(32)
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        settings = dataclasses.replace(settings, hmac_key=SecretStr(key))
        say(f"REDRESS_HMAC_KEY was not set: the demo generated one in {key_file} (never commit a real key)")
    if not all((settings.debtor_name, settings.debtor_account, settings.debtor_bank_code)):
        settings = dataclasses.replace(settings, debtor_name="Demo Payer Corp.", debtor_account="1002003004005",
                                       debtor_bank_code="020")
        say("REDRESS_DEBTOR_* were not set: the demo's bank files use a made-up paying account")
    return settings

