"""`redress explain`: everything about one person, for customer service.

By customer id, by the reference code of a notification, or by email or phone
(normalised as the pipeline does: people.py; several matches are listed to choose from).
An existing customer id wins over every other reading of the text, whatever its shape
(8 letters, an @, all digits), and says what else it reads as (`also_read_as`);
every lookup is recorded and failed reference-code lookups are limited
(redress/customer_service/lookups.py). The case itself (decision and why, rail and what
to do, the message sent, exposures, payments, claims) is case.py; its sentences wording.py.
Personal data is shown to the agent, who needs it, and never logged or recorded.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path

from redress import escape
from redress.customer_service import lookups, people
from redress.customer_service.case import (ACCEPTED_SCOPE_FILES, member, refused_claims, rows, run_policy, sent_message,
                                           table)
from redress.customer_service.wording import when
from redress.errors import RedressError, WarehouseInUse
from redress.runtime.commands import redress_line
from redress.rules.identity import MOBILE_E164
from redress.rules.notifications import key_addresses
from redress.vocabulary import ACCEPTED, sql_literal
from redress.warehouse import connect
from redress.warehouse import path as warehouse_path
from redress.warehouse.reference_codes import typed_code_text
from redress.warehouse.runs import data_dir_lock


REFERENCE_CODE = re.compile(r"[A-Z]{8}")  # once read as typed (reference_codes.typed_code)
LOCK_WAIT_SECONDS = 3.0  # another explain holds the warehouse for a fraction of a second
RUN_GOING_ON = "a run is using {data_dir}: explain again when it ends"


def explain(data_dir: Path, who: str, by: str | None = None, *, now: datetime | None = None) -> str:
    """The case of one person as text for an agent on the phone, or the list of people
    a phone or email matches, each with its customer id to ask again by.

    `who` is a customer id, a reference code (8 letters), an email or a phone in any usual
    form (normalised as the pipeline does: redress/rules/identity.py), read in that
    order: a customer id that exists is that customer, whatever it looks like; a
    reference code needs `by`, the staff id of the person asking. Every lookup is recorded in the
    `lookups` table, a phone or email only masked (redress/customer_service/lookups.py),
    and failed code lookups are limited. Raises RedressError (one line) when there is no
    warehouse, a run is going on (the data folder's lock) or holds the warehouse, nothing matches, or lookups are refused. SPEC "The command
    line" (explain), "Identity resolution" and "Notifications" (reference codes)."""
    warehouse = warehouse_path(data_dir)
    if not warehouse.exists():
        raise RedressError(f"no warehouse in {data_dir}: run `{redress_line(data_dir, 'run')}` first")
    asked = who.strip()
    staff = lookups.staff_id(by)
    at = now or datetime.now(timezone.utc)
    # Under the data folder's lock, which `redress run` holds for all its length: an
    # explain that held the warehouse when the run next opened it would fail the run.
    with data_dir_lock(data_dir, busy=RUN_GOING_ON, wait_seconds=LOCK_WAIT_SECONDS), \
            _open(warehouse) as con:  # writable: the lookup is recorded
        # An existing customer id first, whatever it looks like (people.asked_kind): an id
        # of 8 letters is no code lookup, needs no --by and is never a failed code.
        kind, key = people.asked_kind(con, asked, REFERENCE_CODE)
        if kind == "reference_code" and by is None:  # refused, and recorded as such (the OS account)
            lookups.record(con, at, staff, asked, "reference_code", "refused")
            raise RedressError("a reference code lookup needs --by STAFF_ID: verify the person first (see README)")
        if kind == "reference_code":
            lookups.refuse_if_guessing(con, at, staff, asked)
        try:
            text = _answer(con, data_dir, kind, key)
            if kind == "customer_id":
                text = "\n".join(also_read_as(con, asked, by, at, staff) + [text])
        except RedressError:
            lookups.record(con, at, staff, lookups.recordable(asked, kind), kind, "no_match")
            raise
        lookups.record(con, at, staff, lookups.recordable(asked, kind), kind, "matched")
    return text


def _answer(con, data_dir: Path, kind: str, key: str) -> str:
    if kind == "reference_code":
        notice = next(iter(rows(con, "SELECT * FROM notifications WHERE reference_code = ?", [key.upper()])), None)
        if notice is None:
            raise RedressError(f"no customer or reference code {key!r} in the warehouse")
        if notice["customer_id"] is None:
            return _non_member(con, data_dir, notice)
        key = notice["customer_id"]
    elif kind == "payment_id":  # found by review: a bank's payment reference found nobody
        paid = rows(con, "SELECT customer_id FROM ledger WHERE payment_id = ?", [key])
        if not paid:
            raise RedressError(f"no payment {key!r} in the ledger (a planned payment is there once its plan is "
                               "released)")
        return f"Found by payment id {key}.\n\n" + member(con, data_dir, paid[0]["customer_id"])
    elif kind in ("email", "phone"):
        found = people.by_contact(con, kind, key)
        if not found:
            notices = people.non_member_notices(con, kind, key)
            # an address a customer had before: said first, whoever else its rows told
            formerly = people.former_owners(con, key)
            before = [people.no_longer_theirs(formerly, kind)] if formerly else []
            if not notices:
                if before:
                    return before[0]
                raise RedressError(f"no customer or notified person with that {kind}")
            told = (people.several_non_members(notices, kind) if len(notices) > 1
                    else _non_member(con, data_dir, notices[0]))
            return "\n\n".join([*before, told])
        if len(found) > 1:
            return people.several(found, kind)
        key = found[0]["customer_id"]
    return member(con, data_dir, key)


def also_read_as(con, asked: str, by: str | None, at: datetime, staff: str) -> list[str]:
    """Lines to put before a customer's case (then an empty line) when the id asked by
    reads as something else an agent may have been given: a reference code (8 letters),
    a phone or an email. The id wins (it is exact, and staff work from ids); the note tells the agent
    when the caller may be someone else.

    A code is a bearer secret, so whether the id is also someone's code is said only to
    a staff id given with --by whose code lookups are not refused, and never whose; the
    check is no code lookup (not counted as a failure). Without --by the note only says
    that the id is shaped like a code, whether or not it is one. The customers sharing
    it as a phone or email are listed as a phone or email lookup lists them (id and
    masked contacts: redress/customer_service/people.py), non-members counted."""
    notes = []
    shown = escape.terminal(asked)
    code = typed_code_text(asked)  # as a code lookup would read it (people.asked_kind)
    if REFERENCE_CODE.fullmatch(code):
        if by is None:
            notes.append(f"Found by customer id. {shown} is also shaped like a reference code: if the caller gave it "
                         "as the reference code in their message, this may not be their case; verify them and explain "
                         "it again with --by STAFF_ID to learn whether it is also another person's code.")
        elif lookups.guessing(con, at, staff):
            notes.append(f"Found by customer id. {shown} is also shaped like a reference code, but code lookups by "
                         f"{staff} are refused now, so whether it is also another person's code is not checked.")
        elif con.execute("SELECT 1 FROM notifications WHERE reference_code = ? AND customer_id IS DISTINCT FROM ? "
                         "LIMIT 1", [code, asked]).fetchall():
            notes.append(f"Found by customer id. {code} is also the reference code in another person's "
                         "message: if the caller gave it as their reference code, this is not their case; find "
                         "them by their phone or email instead.")
        else:
            notes.append(f"Found by customer id. {shown} is no other person's reference code.")
    contact = people.contact_kind(asked)
    if contact:
        kind, key = contact
        others = [f for f in people.by_contact(con, kind, key) if f["customer_id"] != asked]
        non_members = people.non_member_notices(con, kind, key)
        if others or non_members:
            notes.append(f"Found by customer id. {shown} is also the {kind} of other people: if the caller gave "
                         f"it as their {kind}, this may not be their case."
                         + (f" Customers with that {kind} (verify the caller, then explain again by customer id):"
                            if others else ""))
        if others:
            notes[-1] += "\n" + "\n".join(people.listed(others))
        if non_members:
            n = len(non_members)
            notes.append(f"And {n:,} non-member{'' if n == 1 else 's'} (a contact in a customer's address book) "
                         f"notified at it: explain {escape.terminal(_another_form(kind, key, asked))} to see "
                         f"{'them' if n > 1 else 'it'}.")
    return ["\n".join(notes), ""] if notes else []


def _another_form(kind: str, key: str, asked: str) -> str:
    """The phone or email `key` written so that it is no customer id `asked`: its
    normalised form, or else the national form of the phone, or the email with a
    fullwidth at sign (both normalise to the same key)."""
    if key != asked:
        return key
    return "0" + key.removeprefix("+82") if kind == "phone" else key.replace("@", "\uff20")


def _open(warehouse: Path):
    """The warehouse for writing; a short wait for another explain, then one line."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return connect(warehouse)
        except WarehouseInUse:
            if time.monotonic() > deadline:
                raise RedressError(f"another process (a redress run, or an analyst's connection) is using the "
                                   f"warehouse {warehouse}: explain again when it ends") from None
            time.sleep(0.1)


def now_a_customer(con, notice: dict) -> list[str]:
    """A line naming the customers whose phone or email (as the master holds them now)
    is the address a non-member's message went to: the address is a customer's since,
    and their case is what to tell the caller (found by review: the non-member case
    never said so). Empty when none."""
    owners = [r["customer_id"] for r in rows(con, """
        SELECT customer_id FROM customers WHERE phone_e164 = $to OR email_norm = $to ORDER BY customer_id""",
                                            {"to": notice["recipient"]})]
    if not owners:
        return []
    named = ", ".join(escape.terminal(o) for o in owners[:5]) + (f" and {len(owners) - 5:,} more" if len(owners) > 5
                                                                 else "")
    return [f"This address is now customer {named}'s: explain that customer for what they are owed; this message "
            "was for the address before."]


def _non_member(con, data_dir: Path, notice: dict) -> str:
    found = rows(con, f"""
        SELECT n.data_category AS category, n.confidence, n.accessed_at, f.file_name AS file, n.row_number AS row
        FROM non_member_exposures n
        LEFT JOIN ({ACCEPTED_SCOPE_FILES}) f USING (file_sha256)
        WHERE n.recipient = $key OR (n.recipient IN (
            SELECT person FROM ({key_addresses("recipient IN (SELECT recipient FROM non_member_exposures "
                                               "WHERE email_norm = $sent_to OR recipient = $sent_to)")})
            WHERE address = $sent_to
              AND 'nonmember:' || person NOT IN (SELECT person_key FROM notifications
                                                 WHERE starts_with(person_key, 'nonmember:')))
            AND n.file_sha256 IN (SELECT file_sha256 FROM ingested_files WHERE kind = 'scope'
                                  AND status = {sql_literal(ACCEPTED)} AND run_id <= $told_in))
        ORDER BY n.accessed_at, file, row""",
                 {"key": notice["person_key"].removeprefix("nonmember:"), "sent_to": notice["recipient"],
                  "told_in": notice["run_id"], "mobile": MOBILE_E164})
    # Looked up by the person's key, and by every other key the message told of: one
    # message goes to one address (redress/rules/notifications.py), for each key sent
    # there that has no message of its own, from the files read by the run that sent it
    # (a key told elsewhere before, or rows read after, were not in it). Not by the
    # recipient alone: an email is notified at its address even when the key is a landline.
    policy = run_policy(con, notice["run_id"])
    tz = policy.timezone if policy else "UTC"
    for f in found:
        f["accessed_at"] = when(f["accessed_at"], tz)
    out = [f"This is a non-member, {escape.terminal(notice['recipient'] or '(no contact)')}: a contact found in a "
           "customer's address book, not a customer. They were told of the exposure and are never paid.",
           "", *sent_message(data_dir, notice), *now_a_customer(con, notice), "",
           f"Exposures (accessed, in {tz} time):"]
    return "\n".join(out + table(found, ["accessed_at", "category", "confidence", "file", "row"])
                     + refused_claims(con, notice["reference_code"]))
