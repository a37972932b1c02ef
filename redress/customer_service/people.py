"""Who an agent is asking about: a customer id, a reference code, an email or a phone.

An email or phone is normalised exactly as the pipeline normalises the customer master
(redress/rules/identity.py, whose values are stored in customers.email_norm and
customers.phone_e164), so `010-1234-5678`, `+82 10 1234 5678` and `01012345678` find
the same person, and explain can never disagree with the classifier. SPEC "Identity
resolution".
"""

from __future__ import annotations

import re

import polars as pl

from redress.rules.identity import email_norm, phone_e164
from redress.sql import one

# What a phone typed by a person looks like before normalisation: digits, a leading +,
# spaces, hyphens, dots and brackets (NFKC first, so fullwidth digits count).
PHONE_TYPED = re.compile(r"\+?[0-9 ().\-]+")


def normalised(kind: str, value: str) -> str | None:
    """The pipeline's normalised email or E.164 phone of `value`, None when malformed."""
    rule = email_norm if kind == "email" else phone_e164
    return pl.select(rule(pl.lit(value, dtype=pl.String))).item()


def asked_kind(con, asked: str, reference_code: re.Pattern) -> tuple[str, str]:
    """(kind, key) of what the agent typed: reference_code (8 letters), customer_id (one
    that exists, as typed), email (with an @), phone (a well-formed Korean number), else
    customer_id (it will not match). Key: the code, id, or normalised email/phone."""
    if reference_code.fullmatch(asked):
        return "reference_code", asked
    if con.execute("SELECT 1 FROM customers WHERE customer_id = ? LIMIT 1", [asked]).fetchall():
        return "customer_id", asked
    nfkc = pl.select(pl.lit(asked, dtype=pl.String).str.normalize("NFKC")).item()
    if "@" in nfkc:
        return "email", normalised("email", asked) or asked
    if PHONE_TYPED.fullmatch(nfkc.strip()) and normalised("phone", asked):
        return "phone", normalised("phone", asked)
    return "customer_id", asked


def by_contact(con, kind: str, key: str) -> list[dict]:
    """Customers whose normalised email or phone is `key`, by customer id, with their
    reference code when notified."""
    column = {"email": "email_norm", "phone": "phone_e164"}[kind]  # a column name of ours, not input
    found = con.execute(f"""
        SELECT c.customer_id, c.email_norm, c.phone_e164, n.reference_code
        FROM customers c LEFT JOIN notifications n USING (customer_id)
        WHERE c.{column} = ? ORDER BY c.customer_id""", [key]).fetchall()
    return [dict(zip(("customer_id", "email", "phone", "reference_code"), r)) for r in found]


def non_member_notice(con, key: str) -> dict | None:
    """The notification of a non-member (a contact in someone's address book) by their
    normalised phone or email, None when there is none."""
    rel = con.execute("SELECT * FROM notifications WHERE person_key = ?", [f"nonmember:{key}"])
    row = one(rel)
    return dict(zip([d[0] for d in rel.description], row)) if row else None


def masked_contact(kind: str, value: str | None) -> str:
    """A contact shown enough to tell people apart and no more: a phone to its last 4
    digits (+82 ****-5678), an email to its first letter and domain (c***@example.com)."""
    if not value:
        return "-"
    if kind == "phone":
        return f"{value[:3]} ****-{value[-4:]}"
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def several(found: list[dict], kind: str) -> str:
    """The people one email or phone matches, for the agent to choose from by id."""
    lines = [f"{len(found)} customers share this {kind}. Ask the caller which account is theirs (verify them "
             "first), then explain again by its customer id:", ""]
    width = max(len("customer id"), *(len(f["customer_id"]) for f in found))
    lines.append(f"  {'customer id'.ljust(width)}  {'email':<24}  {'phone':<16}  reference code")
    for f in found:
        lines.append(f"  {f['customer_id'].ljust(width)}  {masked_contact('email', f['email']):<24}  "
                     f"{masked_contact('phone', f['phone']):<16}  {f['reference_code'] or '(not notified)'}")
    return "\n".join(lines)
