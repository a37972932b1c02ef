"""Every code redress writes into a table or file, with its plain-language text: the one
place to look for what a status, reason or rail means.

The Polars rules (redress/rules/), the SQL checks (redress/checks/) and the texts
(customer service, reports) import these constants instead of spelling the codes, so
a code cannot be renamed in one place and missed in another. Codes are plain strings
(they are stored as such in the warehouse); each family is a dict code -> text, in
the SPEC's order where the SPEC gives one. Where a code must appear inside SQL text it
is written as a constant from here (`sql_list`), never from outside input.
"""

from __future__ import annotations

# ----------------------------------------------------- eligibility: SPEC "Eligibility and entitlement"
TEST_ACCOUNT = "TEST_ACCOUNT"
UNCONFIRMED_ONLY = "UNCONFIRMED_ONLY"
OUTSIDE_WINDOW = "OUTSIDE_WINDOW"
STATUS_NOT_ELIGIBLE = "STATUS_NOT_ELIGIBLE"
CLOSED_BEFORE_BREACH = "CLOSED_BEFORE_BREACH"
BELOW_MINIMUM = "BELOW_MINIMUM"
ELIGIBLE = "ELIGIBLE"
# In rule order: the first that applies is the customer's reason.
ENTITLEMENT_REASONS = {
    TEST_ACCOUNT: "a test or internal account: never paid",
    UNCONFIRMED_ONLY: "only suspected exposures, none confirmed",
    OUTSIDE_WINDOW: "exposures the policy counts, but none inside the breach window",
    STATUS_NOT_ELIGIBLE: "account status is not eligible under the policy",
    CLOSED_BEFORE_BREACH: "account closed before the breach window",
    BELOW_MINIMUM: "amount after pro rata is below the minimum payment",
    ELIGIBLE: "eligible",
}

# ----------------------------------------------------- rails: SPEC "Payout rail"
BANK_TRANSFER = "bank_transfer"
VOUCHER = "voucher"
CLAIM = "claim"
RAILS = {
    BANK_TRANSFER: "paid into the customer's registered bank account",
    VOUCHER: "credited to the customer's account as vouchers",
    CLAIM: "held until the customer claims it with the reference code",
}

# ----------------------------------------------------- ledger statuses: SPEC "Ledger"
ISSUED = "issued"
SETTLED = "settled"
RETURNED = "returned"
CANCELLED = "cancelled"
LEDGER_STATUSES = {
    ISSUED: "sent to be paid, no result from finance yet",
    SETTLED: "paid: finance confirmed it",
    RETURNED: "came back unpaid: owed again",
    CANCELLED: "a held claim payment that a claim replaced",
}
# Payments that count as paid: a returned one is owed again, a cancelled one was replaced.
LIVE_STATUSES = (ISSUED, SETTLED)
# What a finance result may set a payment to (SPEC "Input: returns from finance").
FINANCE_OUTCOMES = (SETTLED, RETURNED)
# The rails whose payments leave redress, so that finance can have a result for them: a
# bank file, or the voucher system (an undeliverable voucher comes back `returned` and is
# reissued). A payment held on `claim` has been sent nowhere: a result for it is never
# applied, or the held money would count as paid out and the person could never claim it.
FINANCE_RAILS = (BANK_TRANSFER, VOUCHER)

# ----------------------------------------------------- where a scope row goes: SPEC "Nothing is lost"
EXPOSURE = "exposure"
NON_MEMBER = "non_member"
REVIEW = "review"
QUARANTINE = "quarantine"
DESTINATIONS = {
    EXPOSURE: "an exposure of a customer: counts toward their entitlement",
    NON_MEMBER: "a person who is not a customer: notified, not paid",
    REVIEW: "held for a person to decide",
    QUARANTINE: "rejected with a reason, never used",
}
# The identity a row resolves to (redress/rules/identity.py); a member's row becomes an
# exposure unless a later rule holds it.
MEMBER = "member"
IDENTITIES = {
    MEMBER: "matches exactly one customer",
    NON_MEMBER: DESTINATIONS[NON_MEMBER],
    REVIEW: "matches more than one customer",
    QUARANTINE: "matches nobody and cannot be told apart",
}

# ----------------------------------------------------- scope row reasons: SPEC "Row rules, then identity"
MISSING_IDENTIFIER = "missing_identifier"
UNKNOWN_CATEGORY = "unknown_category"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_CONFIDENCE = "invalid_confidence"
UNKNOWN_CUSTOMER_ID = "unknown_customer_id"
INVALID_IDENTIFIER = "invalid_identifier"
AMBIGUOUS_IDENTIFIER = "ambiguous_identifier"
EXPOSURE_BEFORE_ACCOUNT_CREATED = "exposure_before_account_created"
# A row the reader could not split into the header's fields (a CSV row with more fields
# than the header, a stray quote, a JSON Lines line that is no object or gives a key twice): quarantined
# alone, never the file.
MALFORMED_ROW = "malformed_row"
MALFORMED_ROW_TEXT = ("the row could not be read as the header's fields (more fields than the header: "
                      "quote values that contain commas; a stray quote: quote the value and double each quote in it; "
                      "or a JSON Lines line that is no object or gives a key twice)")
# In SPEC order, after malformed_row (a row that is not the header's fields is judged by
# no SPEC rule; the SPEC quarantines such a returns row alone, and a scope row too, so
# that one odd row never holds back its file): the first rule a row fails is its reason
# (ambiguous_identifier goes to review, the others to quarantine).
SCOPE_ROW_REASONS = {
    MALFORMED_ROW: MALFORMED_ROW_TEXT,
    MISSING_IDENTIFIER: "no customer id, email or phone",
    UNKNOWN_CATEGORY: "a data category the policy does not list",
    INVALID_TIMESTAMP: "accessed_at is not a timestamp",
    INVALID_CONFIDENCE: "confidence is neither confirmed nor suspected",
    UNKNOWN_CUSTOMER_ID: "a customer id the customer master does not have",
    INVALID_IDENTIFIER: "the email and phone are both malformed",
    AMBIGUOUS_IDENTIFIER: "the email or phone matches more than one customer",
    EXPOSURE_BEFORE_ACCOUNT_CREATED: "accessed before the account existed",
}
# The two readings of a row (Polars and SQL) disagree: held for review, never guessed.
CHECKS_DISAGREE = "checks_disagree"
REVIEW_REASONS = {
    AMBIGUOUS_IDENTIFIER: SCOPE_ROW_REASONS[AMBIGUOUS_IDENTIFIER],
    CHECKS_DISAGREE: "the rules and their SQL restatement place the row differently",
}

# What the forensics team does with a review row (quarantine/<run_id>/review.csv).
REVIEW_ACTIONS = {
    AMBIGUOUS_IDENTIFIER: ("find which of the candidate customers the evidence (source) names, then drop a "
                           "corrected scope row with that customer_id into inbox/scope/; until then nobody is paid for it"),
    CHECKS_DISAGREE: ("report the file and row to the data engineers: the rules disagree with their own "
                      "check (a bug, not a data quirk); the row is never paid until they agree"),
}
# ----------------------------------------------------- whole files: SPEC "Bad files"
UNREADABLE_FILE = "unreadable_file"
MISSING_COLUMN = "missing_column"
EMPTY_FILE = "empty_file"
# A file that was read but failed its suite: the quarantine reason (its status is REJECTED).
REJECTED_FILE = "rejected_file"
FILE_REASONS = {
    UNREADABLE_FILE: "the file cannot be read as its type says",
    MISSING_COLUMN: "a required column is missing or misnamed",
    EMPTY_FILE: "the file has no data rows",
    REJECTED_FILE: "the file was read but failed its checks: none of its rows is used",
}

# ----------------------------------------------------- inbox files: SPEC "File rules"
# ingested_files.status is one of these or a FILE_REASONS code (a file refused whole).
ACCEPTED = "accepted"
DUPLICATE_FILE = "duplicate_file"
REJECTED = "rejected"
# Never stored: a run's result lists it, and a later run reads the file.
NOT_READ = "not_read"
FILE_STATUSES = {
    ACCEPTED: "read and loaded",
    DUPLICATE_FILE: "the same content as a file seen before, under another name: not read again",
    REJECTED: "read, but its checks failed: none of its rows is used",
    NOT_READ: "not read by this run (still being copied, a link, or changed while read)",
}

# ----------------------------------------------------- finance results: SPEC "Input: returns from finance"
RETURN_REASONS = {
    MALFORMED_ROW: MALFORMED_ROW_TEXT,
    "missing_payment_id": "no payment_id",
    "invalid_status": "status is neither settled nor returned",
    "unknown_payment_id": "no such payment in the ledger",
    "result_after_return": "the payment was already returned (and reissued)",
    "result_after_cancel": "the payment was cancelled",
    "result_for_unsent_payment": "the payment was never sent out: it is held on the claim rail until the person claims it",
    "returned_after_settled": "the payment was already settled",
    "repeated_payment_id": "the file names this payment more than once: in rows that differ, or again after the row applied",
}

# ----------------------------------------------------- claims: SPEC "Input: claims from customer service"
UNKNOWN_REFERENCE_CODE = "unknown_reference_code"
UNVERIFIED_CLAIM = "unverified_claim"
INVALID_BANK_DETAILS = "invalid_bank_details"
CLAIM_AFTER_DEADLINE = "claim_after_deadline"
NOTHING_TO_CLAIM = "nothing_to_claim"
CLAIMANT_NOT_IN_MASTER = "claimant_not_in_master"
REPEATED_REFERENCE_CODE = "repeated_reference_code"
# In rule order (redress/checks/claims_checks.py): the first a row fails is its reason.
CLAIM_REASONS = {
    MALFORMED_ROW: MALFORMED_ROW_TEXT,
    UNKNOWN_REFERENCE_CODE: "no reference code, or one that names nobody",
    UNVERIFIED_CLAIM: ("verified_by is missing, or verified_at is missing or not an ISO 8601 time at most a day ahead of "
                       "the run's clock and at most a day before the run that gave the code started"),
    INVALID_BANK_DETAILS: "the bank code is not 3 digits or the account not 10 to 16 digits",
    CLAIM_AFTER_DEADLINE: "verified after the policy's claim deadline",
    CLAIMANT_NOT_IN_MASTER: ("the person is not in the current customers snapshot: nothing is decided or paid for "
                             "them, so a claim would cancel their held money and pay nothing; send a snapshot that "
                             "holds them, then the claim again"),
    NOTHING_TO_CLAIM: "the person has no payment held on the claim rail, nor a claim whose money has not gone out",
    REPEATED_REFERENCE_CODE: "the file names this reference code more than once",
}

# ----------------------------------------------------- customers rows: SPEC "Input: customers snapshot"
# A snapshot with any of these is rejected whole, its failing rows listed in quarantine.
CUSTOMER_ROW_REASONS = {
    "missing_customer_id": "a row without a customer id",
    "duplicate_customer_id": "a customer id given on more than one row",
    "unprintable_customer_id": "a customer id holding control or invisible characters",
    "customer_id_too_long": "a customer id longer than the rules allow",
    "missing_name": "a customer without a name",
    "unknown_status": "a status the rules do not know (an account: active, dormant, closed; a payment: its ledger statuses)",
    INVALID_TIMESTAMP: "created_at or closed_at is not a timestamp",
    "missing_closed_at": "a closed account without closed_at",
    "unexpected_closed_at": "closed_at given for an account that is not closed",
    "invalid_is_test": "is_test is not true or false",
    "unknown_payout_method": "a payout method other than voucher or bank_transfer",
    "unprintable_email": "an email holding control or invisible characters",
}
# ----------------------------------------------------- gates: expectations/*.json on what a run computed
# A gate failing means a bug, not a data quirk: the run stops before anything is paid.
GATE_REASONS = {
    "gate_failed_missing_column": "a computed table lacks a column it must have",
    "gate_failed_null_customer_id": "an exposure without a customer id",
    "gate_failed_null_data_category": "an exposure without a data category",
    "gate_failed_null_accessed_at": "an exposure without an access time",
    "gate_failed_null_confidence": "an exposure without a confidence",
    "gate_failed_null_file_sha256": "an exposure that names no file",
    "gate_failed_null_row_number": "an exposure that names no row",
    "gate_failed_unknown_category": "an exposure with a category the policy does not list",
    "gate_failed_invalid_confidence": "an exposure whose confidence is neither confirmed nor suspected",
    "gate_failed_unknown_matched_by": "an exposure matched by something other than id, email or phone",
    "gate_failed_duplicate_row": "the same file row became two exposures",
    "missing_file_sha256": "a scope row that names no file",
    "missing_row_number": "a scope row without its row number",
    "duplicate_row": "the same file row was loaded twice",
    "duplicate_entitlement": "a customer with two entitlements",
    "unknown_reason_code": "an entitlement reason the rules do not know",
    "negative_amount": "an entitlement below zero",
    "amount_without_eligibility": "an amount for a customer who is not eligible",
    "amount_above_base": "an amount above the tier's base amount",
    "unknown_rail": "a rail other than bank_transfer, voucher or claim",
    "wrong_policy_id": "stamped with another policy than the run's",
    "duplicate_payment_id": "two payments with one payment id",
    "amount_not_whole_minor_units": "an amount that is not whole won",
    "amount_not_positive": "a payment of zero or less",
    "overpays_entitlement": "payments above what the customer is entitled to",
    "payment_not_in_one_batch": "a payment in no batch, or in two",
    "payment_unlike_its_batch": "a payment of another rail or value date than its batch, or an id naming another date",
    "batch_id_names_another_batch": "a batch whose id is not its policy's, value date's and rail's",
    "value_date_before_run_date": "a batch dated before the run date of its plan",
    "transfer_to_another_account": "a bank transfer to an account that is neither the customer's nor their claim's",
    "voucher_parts_mismatch": "voucher products that do not add up to the payment",
    "missing_batch_id": "a batch without an id",
    "duplicate_batch_id": "two batches with one id",
    "batch_id_already_used": "a batch id an earlier run already used",
    "missing_value_date": "a batch without a value date",
    "item_count_mismatch": "a batch whose item count differs from its payments",
    "control_sum_mismatch": "a batch whose control sum differs from its payments",
    "batch_over_item_cap": "a batch with more payments than the policy allows",
    "batch_over_amount_cap": "a batch above the policy's amount per batch",
    "day_over_cash_cap": "bank transfers on one value date above the daily cash cap",
}
# ----------------------------------------------------- suite outcomes: the data-quality page
PASSED = "passed"
HANDLED = "handled"
STOPPED = "stopped"
SUITE_STATES = {
    PASSED: "every expectation met",
    HANDLED: "defects found and handled: the failing rows or files went to quarantine or review, the run went on",
    STOPPED: "a gate failed: the run stopped before anything further was paid or sent",
}
# ----------------------------------------------------- notification channels: SPEC "Notifications"
SMS = "sms"
EMAIL = "email"
NO_CHANNEL = "none"
CHANNELS = {
    SMS: "a text message to a Korean mobile number",
    EMAIL: "an email, when there is no mobile number",
    NO_CHANNEL: "no way to send it: listed for outreach by hand",
}

# ----------------------------------------------------- inputs the policy chooses among
CONFIRMED = "confirmed"
SUSPECTED = "suspected"
CONFIDENCES = {CONFIRMED: "the exposure is established", SUSPECTED: "the exposure is possible, not established"}
CLOSED = "closed"
ACCOUNT_STATUSES = {"active": "an open account in use", "dormant": "an open account not used lately",
                    CLOSED: "the customer left"}

# ----------------------------------------------------- plan states: SPEC "Approval before release"
WAITING = "waiting"
APPROVED = "approved"
REJECTED = "rejected"
SUPERSEDED = "superseded"
EXPIRED = "expired"
PLAN_STATES = {
    WAITING: "planned and checked; nothing is paid until someone approves or rejects it",
    APPROVED: "approved: its payments and batches were released",
    REJECTED: "rejected: discarded, nothing of it was paid",
    SUPERSEDED: "a later run planned afresh before anyone decided: it can no longer be approved",
    EXPIRED: "nobody decided before the approval timeout: it can no longer be approved",
}

FAMILIES = {
    "entitlement reasons": ENTITLEMENT_REASONS, "rails": RAILS, "ledger statuses": LEDGER_STATUSES,
    "destinations": DESTINATIONS, "identities": IDENTITIES, "scope row reasons": SCOPE_ROW_REASONS,
    "review reasons": REVIEW_REASONS, "file reasons": FILE_REASONS, "file statuses": FILE_STATUSES,
    "return reasons": RETURN_REASONS, "claim reasons": CLAIM_REASONS,
    "channels": CHANNELS,
    "confidences": CONFIDENCES, "account statuses": ACCOUNT_STATUSES,
    "plan states": PLAN_STATES,
    "customer row reasons": CUSTOMER_ROW_REASONS, "gate reasons": GATE_REASONS, "suite states": SUITE_STATES,
}


def sql_literal(code: str) -> str:
    """'issued' as SQL text `'issued'`, for a code of this module only (ValueError for
    anything else), so that nothing from outside reaches SQL text this way. For SQL that
    cannot take a bound parameter (a view's text)."""
    if not any(code in family for family in FAMILIES.values()):
        raise ValueError(f"not a vocabulary code: {code!r}")
    return f"'{code}'"


def sql_list(codes: tuple[str, ...] | list[str]) -> str:
    """('issued', 'settled') as SQL text `('issued', 'settled')` (see sql_literal)."""
    if not codes:
        raise ValueError("an SQL list needs at least one code")
    return "(" + ", ".join(sql_literal(c) for c in codes) + ")"


# Families whose codes name why a row, file or check failed, in the order a reason's
# text is looked up: a code in two families (missing_column) reads the first.
_REASON_FAMILIES = (SCOPE_ROW_REASONS, REVIEW_REASONS, FILE_REASONS, CUSTOMER_ROW_REASONS, RETURN_REASONS,
                    CLAIM_REASONS, GATE_REASONS)


# The family whose words a quarantine row of each kind takes first: a code two families
# share may mean another column in each (invalid_timestamp: a scope row's accessed_at, a
# customers row's created_at or closed_at; found by the oracle review, a rejected snapshot's
# line in summary.md named accessed_at).
_KIND_FAMILY = {"scope": SCOPE_ROW_REASONS, "customers": CUSTOMER_ROW_REASONS, "returns": RETURN_REASONS,
                "claims": CLAIM_REASONS}


def reason_text(code: str, kind: str | None = None) -> str:
    """The plain-language line of a quarantine, review or check reason code, as it reads
    for a quarantine row of `kind` (scope, customers, returns, claims; None: the first
    family holding it); the code itself for one the vocabulary lacks (an older record),
    never an error: a report must still be written."""
    if code in _KIND_FAMILY.get(kind, {}):
        return _KIND_FAMILY[kind][code]
    for family in _REASON_FAMILIES:
        if code in family:
            return family[code]
    return code
