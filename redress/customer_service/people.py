"""Who an agent is asking about: a customer id, a reference code, an email or a phone.

An email or phone is normalised exactly as the pipeline normalises the customer master
(redress/rules/identity.py, whose values are stored in customers.email_norm and
customers.phone_e164), so `010-1234-5678`, `+82 10 1234 5678` and `01012345678` find
the same person, and explain can never disagree with the classifier. SPEC "Identity
resolution".
"""

from __future__ import annotations

import re
import string

import polars as pl

from redress import escape
from redress.characters import first_in
from redress.customer_service.case import table
from redress.rules.identity import MOBILE_E164, email_norm, phone_e164
from redress.rules.notifications import key_addresses
from redress.warehouse.reference_codes import typed_code_text

# What a phone typed or pasted by a person looks like (NFKC first, so fullwidth digits
# count): ASCII digits among anything but letters, as the classifier reads a scope row's
# phone, dropping every character but the digits and a leading + (SPEC "Identity
# resolution"): hyphens, en dashes, minus signs, tildes, slashes, dots, brackets, spaces
# of any kind, and the invisible marks a pasted number carries (bidirectional marks, a
# soft hyphen, a zero-width space). Found by review: `010–1111–0001` (en dashes), then
# `010−1111−0001` (minus signs) and a number pasted between bidirectional marks resolved
# scope rows to their customers, and explain of the same text said no customer. A
# letter makes the text no phone, so an id such as `C01012345678` is not read as one,
# but for the letters typed as a dash on Korean and Japanese keyboards (DASH_LETTERS;
# found by the next review: `010ㅡ1111ㅡ0001`).
# After NFKC: ㅡ (Hangul eu, U+3161, becomes U+1173), ー (long vowel mark; NFKC of ｰ), 一 (one).
DASH_LETTERS = frozenset("\u1173\u3161\u30fc\u4e00")


def _typed_as_phone(nfkc: str) -> bool:
    # Letters as the engines read them (redress/characters.py): Python 3.11 takes a letter
    # of a script added since Unicode 14 (Nag Mundari, Kawi...) for no letter.
    return (any(ch in string.digits for ch in nfkc)
            and first_in("".join(ch for ch in nfkc if ch not in DASH_LETTERS), r"\p{L}") is None)


def normalised(kind: str, value: str) -> str | None:
    """The pipeline's normalised email or E.164 phone of `value`, None when malformed."""
    rule = email_norm if kind == "email" else phone_e164
    return pl.select(rule(pl.lit(value, dtype=pl.String))).item()


def asked_kind(con, asked: str, reference_code: re.Pattern) -> tuple[str, str]:
    """(kind, key) of what the agent typed: customer_id (one that exists, as typed: an id
    wins over every other reading, since an id may be 8 letters, hold an @ or be all
    digits), payment_id (PAYMENT_ID after NFKC and upper case, its parts joined by dashes: the EndToEndId a bank
    statement shows), reference_code (8 letters once read as a typed code is: full-width, spaced
    or hyphenated, any case; redress/warehouse/reference_codes.py typed_code; the key is
    the code), email (with an @), phone (a well-formed Korean
    number), else customer_id (it will not match). Key: the id, code, or normalised
    email/phone. What else an existing id reads as is `contact_kind` and the code check
    of explain.py (`also_read_as`)."""
    if con.execute("SELECT 1 FROM customers WHERE customer_id = ? LIMIT 1", [asked]).fetchall():
        return "customer_id", asked
    # any run of characters but letters and digits between its parts, or around it (a full
    # stop or brackets pasted with it), or none at all (found by the fix reviews)
    typed = pl.select(pl.lit(asked, dtype=pl.String).str.normalize("NFKC")).item().upper()
    if parts := PAYMENT_ID.fullmatch(typed):
        return "payment_id", "-".join(p for p in parts.groups() if p)
    code = typed_code_text(asked)
    if reference_code.fullmatch(code):
        return "reference_code", code
    return contact_kind(asked) or ("customer_id", asked)


def contact_kind(asked: str) -> tuple[str, str] | None:
    """("email", normalised) for a text with an @, ("phone", E.164) for a well-formed
    Korean number as a person types it, else None."""
    nfkc = pl.select(pl.lit(asked, dtype=pl.String).str.normalize("NFKC")).item()
    if "@" in nfkc:
        return "email", normalised("email", asked) or asked
    if _typed_as_phone(nfkc) and normalised("phone", asked):
        return "phone", normalised("phone", asked)
    return None


# The normalised column of each kind of contact, in customers and non_member_exposures
# alike: column names of ours, never input.
CONTACT_COLUMN = {"email": "email_norm", "phone": "phone_e164"}

# A payment id as redress/rules/batches.py makes them (value date, rail letter and batch
# sequence, position in the batch: `20251205-B0001-000003`) as people type it: anything
# but letters and digits between its parts and around it, or nothing between them (then
# with the usual widths, 4 and 6). Its parts are the groups that matched.
PAYMENT_ID = re.compile(r"[\W_]*(\d{8})[\W_]*([BVC]\d{4,})[\W_]+(\d{6,})[\W_]*"
                        r"|[\W_]*(\d{8})([BVC]\d{4})(\d{6})[\W_]*")


def by_contact(con, kind: str, key: str) -> list[dict]:
    """Customers whose normalised email or phone is `key`, by customer id, with their
    masked contacts' sources (email_norm, phone_e164). No reference code: a phone or email
    lookup needs no --by, and a code is what a claim is paid on."""
    column = CONTACT_COLUMN[kind]
    found = con.execute(f"""
        SELECT customer_id, email_norm, phone_e164 FROM customers
        WHERE {column} = ? ORDER BY customer_id""", [key]).fetchall()
    return [dict(zip(("customer_id", "email", "phone"), r)) for r in found]


def non_member_notices(con, kind: str, key: str) -> list[dict]:
    """The notifications of the non-members (contacts in someone's address book) whose
    normalised phone or email is `key`, by person key; [] when none. A non-member's key is
    their E.164 phone, else their email (redress/rules/notifications.py), so one with
    both is found by either, through the contacts their exposure rows carry; and one
    message goes to one address, under one of the keys sent there, so a key is found by
    the notification sent to its address too."""
    column = CONTACT_COLUMN[kind]
    rel = con.execute(f"""
        WITH matched AS (SELECT DISTINCT recipient AS person FROM non_member_exposures WHERE {column} = $key
                         UNION SELECT $key),
        keys AS ({key_addresses("recipient IN (SELECT person FROM matched)")})
        SELECT * FROM notifications
        WHERE person_key IN (SELECT 'nonmember:' || person FROM matched)
           OR (starts_with(person_key, 'nonmember:') AND recipient IN (SELECT address FROM keys))
        ORDER BY person_key""", {"key": key, "mobile": MOBILE_E164})
    names = [d[0] for d in rel.description]
    return [dict(zip(names, row)) for row in rel.fetchall()]


def masked_contact(kind: str, value: str | None) -> str:
    """A contact shown enough to tell people apart and no more: a phone to its last 4
    digits (+82 ****-5678), an email to its first letter and domain (c***@example.com)."""
    if not value:
        return "-"
    if kind == "phone":
        return f"{value[:3]} ****-{value[-4:]}"
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def several_non_members(found: list[dict], kind: str) -> str:
    """The non-members one email matches (each keyed by their own phone), for the agent
    to ask again by the caller's phone; masked, and no reference code (see `several`)."""
    lines = [f"{len(found)} non-members (contacts in customers' address books) share this {kind}. Ask the caller "
             "for their phone number and explain again by it:", ""]
    for f in found:
        key = f["person_key"].removeprefix("nonmember:")
        lines.append(f"  {masked_contact('email' if '@' in key else 'phone', key)}")
    return "\n".join(lines)


def former_owners(con, key: str) -> list[dict]:
    """The customers whose email or phone was `key` (normalised) in an earlier customers
    snapshot and no longer is (former_addresses), with the file of the snapshot that
    changed it: customer_id, file; [] when none. Only asked when no customer has the
    address now and no non-member was told at it."""
    return [{"customer_id": c, "file": f} for c, f in con.execute("""
        SELECT a.customer_id, min(i.file_name) FROM former_addresses a
        LEFT JOIN ingested_files i ON i.kind = 'customers' AND i.file_sha256 = a.file_sha256
        WHERE a.address = ? GROUP BY a.customer_id ORDER BY a.customer_id""", [key]).fetchall()]


def no_longer_theirs(formerly: list[dict], kind: str) -> str:
    """For `explain` of an address no customer has now that `former_owners` found: whose
    it was, and what that means for rows naming it (SPEC "Identity resolution": they are
    non-member exposures under the current snapshot; the address is not told so)."""
    whose = ", ".join(f"{escape.terminal(f['customer_id'])} (until {escape.terminal(f['file'] or 'a later snapshot')})"
                      for f in formerly)
    return (f"No customer has this {kind} now; it was the {kind} of customer {whose} in an earlier customers "
            "snapshot. Rows naming it are non-member exposures under the current snapshot, not counted for that "
            "customer, and nobody is told at it that they are no member: explain the customer id to see the rows.")


def several(found: list[dict], kind: str) -> str:
    """The people one email or phone matches, for the agent to choose from by id."""
    lines = [f"{len(found)} customers share this {kind}. Ask the caller which account is theirs (verify them "
             "first), then explain again by its customer id:", ""]
    return "\n".join(lines + listed(found))


def listed(found: list[dict]) -> list[str]:
    """Customers as a table of id and masked contacts, no reference code (see `several`),
    aligned as explain's other tables are, by width on screen (case.table; found by
    review: a Korean mail domain pushed the phone column out of line)."""
    # No reference code: it is a bearer secret for claims, and this list is shown before
    # anyone is verified. The id and masked contacts suffice to pick one.
    return table([{"customer id": f["customer_id"], "email": masked_contact("email", f["email"]),
                   "phone": masked_contact("phone", f["phone"])} for f in found], ["customer id", "email", "phone"])
