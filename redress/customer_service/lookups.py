"""Who looked whom up, and a brake on guessing reference codes.

A reference code (SPEC "Notifications") is 8 letters printed in a message to the person;
whoever holds it can have customer service read out that person's case. So every
`redress explain` is recorded in the `lookups` table (who, when, what was asked, how it
ended; never what was shown), and failed reference-code lookups are limited: after
MAX_FAILED_CODES codes not found within WINDOW by one staff id or one OS account, further
code lookups by them are refused, even of a real code, until the oldest failure leaves
the window. Lookups by customer id, email or phone are recorded, not limited (staff work
from them); an email or phone only masked (`recordable`): it is personal data.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import duckdb

from redress.errors import RedressError
from redress.runtime.commands import is_placeholder_name, os_user
from redress.warehouse import lookups as lookups_table

MAX_FAILED_CODES = 5
WINDOW = timedelta(minutes=10)
STAFF_ID = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MAX_ASKED_CHARS = 100  # what is recorded of a (mistyped) question


def staff_id(by: str | None) -> str:
    """The staff id given with --by, checked, or the OS user when there is none."""
    if by is None:
        return os_user()
    by = by.strip()
    if not STAFF_ID.fullmatch(by):
        raise RedressError("--by must be a staff id of 1 to 64 letters, digits or . _ @ -")
    if is_placeholder_name(by):  # YOUR_STAFF_ID pasted from the demo's line: no one's id, yet recorded
        raise RedressError(f"--by {by} is the placeholder of the printed command, not a staff id: give yours, "
                           "which every lookup records")
    return by


def recordable(asked: str, kind: str) -> str:
    """What the lookups table keeps of the question: an email or phone is personal data,
    so only its kind and its last 4 characters (enough to match a complaint to a
    lookup, not to find the person), and so is a customer id that reads as one (an id
    `someone@mail.example` or `01012345678`: found by review, kept in full), or holds
    one with words around it that explain does not read as a phone (`Tel. 010-1234-5678`,
    which the phone rule reads as one: found by the next review, kept in full); another
    id or a code as typed."""
    from redress.customer_service.people import contact_kind, normalised

    contact = contact_kind(asked) if kind == "customer_id" else None
    if contact:
        kind = contact[0]
    elif kind == "customer_id" and normalised("phone", asked):
        kind = "phone"
    if kind in ("email", "phone"):
        return f"{kind} ***{asked[-4:]}" if len(asked) > 8 else f"{kind} ***"
    return asked


def record(con: duckdb.DuckDBPyConnection, at: datetime, staff: str, asked: str, kind: str, outcome: str) -> None:
    lookups_table.record(con, at, staff, os_user(), asked[:MAX_ASKED_CHARS], kind, outcome)


def refuse_if_guessing(con: duckdb.DuckDBPyConnection, at: datetime, staff: str, asked: str) -> None:
    """Record and refuse a reference-code lookup by someone with MAX_FAILED_CODES codes
    not found in the last WINDOW (by this staff id or from this OS account)."""
    failures = _failures(con, at, staff)
    if len(failures) >= MAX_FAILED_CODES:
        record(con, at, staff, asked, "reference_code", "refused")
        until = failures[-1][0] + WINDOW
        raise RedressError(
            f"{MAX_FAILED_CODES} reference codes not found in {WINDOW.seconds // 60} minutes for {staff}: "
            f"code lookups are refused until {until.astimezone().strftime('%H:%M:%S %Z')}; "
            "look the person up by customer id after verifying them")


def guessing(con: duckdb.DuckDBPyConnection, at: datetime, staff: str) -> bool:
    """Whether code lookups by `staff` (or this OS account) are refused now; nothing recorded."""
    return len(_failures(con, at, staff)) >= MAX_FAILED_CODES


def _failures(con: duckdb.DuckDBPyConnection, at: datetime, staff: str) -> list[tuple]:
    """The latest MAX_FAILED_CODES codes not found in the last WINDOW, newest first."""
    return con.execute("""
        SELECT looked_up_at FROM lookups
        WHERE asked_kind = 'reference_code' AND outcome = 'no_match' AND looked_up_at > ?
          AND (staff_id = ? OR os_user = ?)
        ORDER BY looked_up_at DESC LIMIT ?""", [at - WINDOW, staff, os_user(), MAX_FAILED_CODES]).fetchall()
