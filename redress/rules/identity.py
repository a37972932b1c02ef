"""Identifiers: how emails and phones are normalised, and who a scope row is about.

This module is the one place the normalisation rules live (SPEC "Identity
resolution"); the values are computed once, in Polars, and stored: the master's in
`customers.email_norm`/`phone_e164` (ingest, and `renormalised_master` for warehouses
written under an older rule), the scope rows' in the classified Parquet, which the SQL
input check (redress/checks/input_checks.py) reads instead of deriving keys of its own.

- Both identifiers are first put in Unicode NFKC form (fullwidth digits and `＠`
  become ASCII; no-break and ideographic spaces become plain spaces) and trimmed of
  Unicode whitespace.
- An email is then lower-cased on the ASCII letters A-Z only: full Unicode lowercasing
  differs between engines (`İ`, final `Σ`), so other characters are kept as given. It
  is well-formed with exactly one `@`, text on both sides, no whitespace and no
  unprintable character (EMAIL_FORM).
- A phone keeps its digits and a leading `+` (one before its first digit, whatever
  precedes it: `(+82) 10-...`, a spreadsheet's `'+82 ...`, a pasted direction mark);
  a leading 0 becomes +82 and a 0 right after +82 is dropped; well-formed is +82 and 8
  to 10 digits, the first not 0.

Resolution: customer_id first, then email, then phone. A given but unknown customer_id
quarantines the row; an email or phone that matches exactly one customer resolves it,
several send it to review, none (or a malformed one) passes to the next identifier. A
row nothing resolved is a non-member exposure when any identifier was well-formed, else
it is quarantined.
"""

from __future__ import annotations

import string

import polars as pl

from redress import vocabulary as v
from redress.rules.printable import UNPRINTABLE_CHARS

# One `@` with text on both sides, no whitespace, and no unprintable character
# (redress/rules/printable.py: a control or invisible one, `ali@example.com\x00` or a
# zero-width space before it): the SPEC's well-formed email is one a sender can write to,
# and the master refuses the same characters (unprintable_email). Found by review: such
# an address in a scope row was well-formed, matched nobody, and made a non-member of
# the customer's own mailbox, told three times with a NUL in the notifications file.
EMAIL_FORM = rf"^[^@\s{UNPRINTABLE_CHARS}]+@[^@\s{UNPRINTABLE_CHARS}]+$"
E164_KR = r"^\+82[1-9][0-9]{7,9}$"
# SPEC "Notifications": a Korean mobile number, the only kind that can take a text.
# +8210, +8211, +8216 to +8219; landlines (+822...) and internet phones (+8270) are not.
# Bound as a parameter where SQL needs it (tasks/notify.py): one definition.
MOBILE_E164 = r"^\+821[016-9]"

_UPPER, _LOWER = list(string.ascii_uppercase), list(string.ascii_lowercase)


def _expr(col: str | pl.Expr) -> pl.Expr:
    return pl.col(col) if isinstance(col, str) else col


# Text with a character past U+007F: NFKC leaves pure ASCII text as it is.
_NON_ASCII = r"[^\x00-\x7F]"


def nfkc_trimmed(col: str | pl.Expr) -> pl.Expr:
    """NFKC form, trimmed of Unicode whitespace (Rust's White_Space: U+00A0, U+3000...).

    Only text with a non-ASCII character is normalised (every normalisation form leaves
    ASCII text as it is), and Polars then normalises those rows alone: on the 3.37 M
    emails of the benchmark's customers, all ASCII, 1.12 s to 0.14 s; with 1% of them
    holding a fullwidth letter 0.99 to 0.27 s, the same values. `col` should be a
    column (a name): an expression would be computed more than once."""
    text = _expr(col)
    return pl.when(text.str.contains(_NON_ASCII)).then(text.str.normalize("NFKC")).otherwise(text).str.strip_chars()


def _whole_match(pattern: str) -> str:
    """An anchored pattern (^...$) as one capture of the whole text: `str.extract` of it
    is the text when it matches, else NULL."""
    return f"^({pattern.removeprefix('^').removesuffix('$')})$"


# Each rule is one chain of steps, every intermediate used once: Polars computes a
# subexpression used twice (in a condition and in its branch) twice. The phones of
# 3.37 M customers: 1.4 to 1.0 s (both keys 2.3 to 1.8 s; best of five, 2 cores).
def email_norm(col: str | pl.Expr) -> pl.Expr:
    """String -> normalised email (NFKC, trimmed, A-Z lower-cased, nothing else
    changed); NULL when missing or malformed. SPEC "Identity resolution"."""
    return nfkc_trimmed(col).str.replace_many(_UPPER, _LOWER).str.extract(_whole_match(EMAIL_FORM), 1)


def phone_e164(col: str | pl.Expr) -> pl.Expr:
    """String -> Korean phone in E.164 (+82...); NULL when missing or malformed.

    After NFKC, every character but ASCII digits and a leading '+' (the first '+',
    when no digit comes before it) is dropped; a leading 0 becomes +82, and a 0 right
    after +82 is dropped. SPEC "Identity resolution". Found by review: only a '+' that
    was the very first character was kept, so `(+82) 10-1111-0003`, the `'+82 10-...`
    a spreadsheet-safe list writes, and a number pasted after a direction mark were
    malformed: a customer's own phone made a non-member, told "not a member".
    """
    # "^[^0-9]*?(\+)|[^0-9]": what precedes the first '+' before any digit, and that
    # '+', become the '+' (group 1); any other character but a digit becomes the empty
    # group.
    return (nfkc_trimmed(col).str.replace_all(r"^[^0-9]*?(\+)|[^0-9]", "$1")
            .str.replace(r"^0", "+82").str.replace(r"^\+820", "+82")
            .str.extract(_whole_match(E164_KR), 1))


def customer_keys(customers: pl.LazyFrame) -> pl.LazyFrame:
    """A customers snapshot (email, phone as text) with its identity keys added:
    email_norm and phone_e164 (NULL when missing or malformed). Computed once per
    snapshot, by the ingest stage, and stored in the master. SPEC "Identity resolution"."""
    return customers.with_columns(
        email_norm("email").alias("email_norm"),
        phone_e164("phone").alias("phone_e164"),
    )


def is_mobile(e164: str | pl.Expr) -> pl.Expr:
    """E.164 phone -> whether it is a Korean mobile number (can take a text); False
    for NULL. SPEC "Notifications"."""
    return _expr(e164).str.contains(MOBILE_E164).fill_null(False)


def normalised_master(master: pl.LazyFrame) -> pl.LazyFrame:
    """customers with email, phone -> the same with email_norm and phone_e164 computed
    under the current rule (replacing any stored ones)."""
    return master.with_columns(email_norm("email").alias("email_norm"), phone_e164("phone").alias("phone_e164"))


def _index(master: pl.LazyFrame, key: str, wanted: pl.LazyFrame) -> pl.LazyFrame:
    """One row per normalised identifier among `wanted` (a frame of that one column):
    how many customers of the whole master have it, which one (the smallest id) and
    when that one was created (exact where it matters: for a key exactly one customer
    has). Only identifiers some row needs are counted: the same counts, fewer groups."""
    return (
        master.filter(pl.col(key).is_not_null())
        .join(wanted.filter(pl.col(key).is_not_null()).unique(), on=key, how="semi")
        .group_by(key)
        .agg(pl.len().alias(f"{key}_n"), pl.col("customer_id").min().alias(f"{key}_cid"),
             pl.col("created_at").sort_by("customer_id").first().alias(f"{key}_created"))
    )


def resolve(rows: pl.LazyFrame, master: pl.LazyFrame) -> pl.LazyFrame:
    """Add the identity outcome to scope rows that passed rules 1-4.

    rows: customer_id, email, phone (as given). master: customer_id, email_norm,
    phone_e164, created_at. Adds: email_norm, phone_e164, resolved_id, matched_by,
    candidates, resolved_created_at (the resolved customer's created_at) and identity
    ('member' | 'review' | 'non_member' | 'quarantine') with reason.

    The master is joined by customer_id once, which gives both whether an id is known
    and its created_at; the email and phone indexes are built only for the keys of
    rows without a customer_id (the only rows that fall back to them), so a scope of
    tens of millions of rows, nearly all named by id, is not joined to the master
    three more times.
    """
    ids = master.select(pl.col("customer_id").alias("_known_id"), pl.lit(True).alias("_known"),
                        pl.col("created_at").alias("_id_created"))
    keyed = rows.with_columns(email_norm("email").alias("email_norm"), phone_e164("phone").alias("phone_e164"))
    fallback = keyed.filter(pl.col("customer_id").is_null())
    r = (
        keyed
        .join(ids, left_on="customer_id", right_on="_known_id", how="left", maintain_order="left")
        .join(_index(master, "email_norm", fallback.select("email_norm")), on="email_norm", how="left",
              maintain_order="left")
        .join(_index(master, "phone_e164", fallback.select("phone_e164")), on="phone_e164", how="left",
              maintain_order="left")
    )
    has_id = pl.col("customer_id").is_not_null()
    known = pl.col("_known").fill_null(False)
    e_n = pl.col("email_norm_n").fill_null(0)
    p_n = pl.col("phone_e164_n").fill_null(0)
    wellformed = pl.col("email_norm").is_not_null() | pl.col("phone_e164").is_not_null()

    by_id = has_id & known
    by_email = ~has_id & (e_n == 1)
    email_ambiguous = ~has_id & (e_n > 1)
    by_phone = ~has_id & (e_n == 0) & (p_n == 1)
    phone_ambiguous = ~has_id & (e_n == 0) & (p_n > 1)

    identity = (
        pl.when(by_id | by_email | by_phone).then(pl.lit(v.MEMBER))
        .when(has_id).then(pl.lit(v.QUARANTINE))
        .when(email_ambiguous | phone_ambiguous).then(pl.lit(v.REVIEW))
        .when(wellformed).then(pl.lit(v.NON_MEMBER))
        .otherwise(pl.lit(v.QUARANTINE))
    )
    reason = (
        pl.when(by_id | by_email | by_phone).then(None)
        .when(has_id).then(pl.lit(v.UNKNOWN_CUSTOMER_ID))
        .when(email_ambiguous | phone_ambiguous).then(pl.lit(v.AMBIGUOUS_IDENTIFIER))
        .when(wellformed).then(None)
        .otherwise(pl.lit(v.INVALID_IDENTIFIER))
    )
    return r.with_columns(
        identity.alias("identity"),
        reason.alias("identity_reason"),
        pl.when(by_id).then(pl.col("customer_id"))
        .when(by_email).then(pl.col("email_norm_cid"))
        .when(by_phone).then(pl.col("phone_e164_cid"))
        .alias("resolved_id"),
        pl.when(by_id).then(pl.lit("customer_id"))
        .when(by_email | email_ambiguous).then(pl.lit("email"))
        .when(by_phone | phone_ambiguous).then(pl.lit("phone"))
        .alias("matched_by"),
        pl.when(email_ambiguous).then(e_n).when(phone_ambiguous).then(p_n).otherwise(0)
        .cast(pl.Int64).alias("candidates"),
        pl.when(by_id).then(pl.col("_id_created"))
        .when(by_email).then(pl.col("email_norm_created"))
        .when(by_phone).then(pl.col("phone_e164_created"))
        .alias("resolved_created_at"),
    ).drop("_known", "_id_created", "email_norm_n", "email_norm_cid", "email_norm_created",
           "phone_e164_n", "phone_e164_cid", "phone_e164_created")
