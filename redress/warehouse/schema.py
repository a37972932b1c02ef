"""The warehouse's schema: every table, with what its columns mean (SPEC "The warehouse");
the migrations of a warehouse written by an earlier version are in migrations.py.

Every table is created here and nowhere else, so an analyst can read the schema in one
place. Money columns are BIGINT in the currency's minor unit (KRW: whole won). Each
table has one module that writes it (OWNERS below; tests/warehouse/test_owners.py holds
every module to it): this module and migrations.py only create and migrate them.
"""

from __future__ import annotations

import re


SCHEMA = """
CREATE TABLE IF NOT EXISTS ingested_files (
    file_sha256   VARCHAR NOT NULL,
    file_name     VARCHAR NOT NULL,      -- name inside inbox/<kind>/
    kind          VARCHAR NOT NULL,      -- customers | scope | returns | claims
    size_bytes    BIGINT NOT NULL,
    status        VARCHAR NOT NULL,      -- accepted | duplicate_file | empty_file | unreadable_file
                                         -- | missing_column | rejected
    reason        VARCHAR,
    rows_read     BIGINT,
    run_id        VARCHAR NOT NULL,
    ingested_at   TIMESTAMPTZ NOT NULL,
    timezone      VARCHAR,               -- an accepted customers or scope file's: the timezone its
                                         -- times without an offset are read in now (redress/inbox/retime.py)
    -- A file is its content within its folder (redress/inbox/new_files.py): the same bytes
    -- refused in the wrong folder are read when moved, even under the same name, to the right one.
    PRIMARY KEY (kind, file_sha256, file_name)
);

-- Tables of tens of millions of rows carry no PRIMARY KEY or UNIQUE constraint: DuckDB
-- keeps an in-memory index per constraint, which at 33.7 million rows costs gigabytes
-- and slows every insert. Their uniqueness is checked by the suites instead.

-- Every data row of every accepted scope file, as given (trimmed, blank = NULL), so that
-- each run can classify all evidence again under the current master and policy.
CREATE TABLE IF NOT EXISTS scope_rows (
    file_sha256   VARCHAR NOT NULL,
    row_number    BIGINT NOT NULL,       -- 1-based data row within the file
    customer_id   VARCHAR,
    email         VARCHAR,
    phone         VARCHAR,
    data_category VARCHAR,
    accessed_at_raw VARCHAR,
    accessed_at   TIMESTAMPTZ,           -- NULL when accessed_at_raw does not parse
    confidence    VARCHAR,
    source        VARCHAR,
    malformed     VARCHAR                -- what is wrong with a row that is not the header's fields
                                         -- (quarantined as malformed_row; its other columns NULL)
);

-- The current customer master: the newest accepted snapshot, typed and normalised.
-- Only what some output reads: the snapshot's name is checked at the door and not kept.
CREATE TABLE IF NOT EXISTS customers (
    customer_id   VARCHAR NOT NULL,
    email         VARCHAR,
    phone         VARCHAR,
    email_norm    VARCHAR,               -- NFKC, trimmed, A-Z lower-cased (redress/rules/identity.py); NULL when malformed
    phone_e164    VARCHAR,               -- NFKC, +82...; NULL when malformed
    status        VARCHAR NOT NULL,
    created_at_raw VARCHAR,              -- as written, so a new timezone can read it again
    closed_at_raw VARCHAR,               -- (redress/inbox/retime.py); absent in a master of an earlier version
    created_at    TIMESTAMPTZ NOT NULL,
    closed_at     TIMESTAMPTZ,
    is_test       BOOLEAN NOT NULL,
    payout_method VARCHAR NOT NULL,      -- voucher | bank_transfer
    bank_code     VARCHAR,
    bank_account  VARCHAR,               -- digits only
    bank_valid    BOOLEAN NOT NULL,
    file_sha256   VARCHAR NOT NULL
);

-- The contacts (email_norm, phone_e164) a customer had in an earlier customer master and
-- not in the snapshot that replaced it (an email or phone changed, or the customer left
-- the master): a scope row naming such an address only is a non-member's exposure under
-- the current master, but the address was a member's, who is never told they are no
-- member (redress/rules/notifications.py; `explain` lists those rows with the customer).
CREATE TABLE IF NOT EXISTS former_addresses (
    address       VARCHAR NOT NULL,      -- a normalised email or E.164 phone
    customer_id   VARCHAR NOT NULL,
    file_sha256   VARCHAR NOT NULL       -- the snapshot that replaced it
);

-- The bank accounts (bank code and account digits, both null for none) a customer had in
-- an earlier customer master and not in the snapshot that replaced it: a transfer to an
-- account that replaced another is what a master changed by someone other than the
-- customer looks like (redress/disbursement/planning.py changed_accounts, shown to finance).
CREATE TABLE IF NOT EXISTS former_bank_accounts (
    customer_id   VARCHAR NOT NULL,
    bank_code     VARCHAR,
    bank_account  VARCHAR,               -- digits only
    file_sha256   VARCHAR NOT NULL       -- the snapshot that replaced it
);

CREATE TABLE IF NOT EXISTS scope_exposures (
    file_sha256   VARCHAR NOT NULL,
    row_number    BIGINT NOT NULL,
    customer_id   VARCHAR NOT NULL,
    matched_by    VARCHAR NOT NULL,      -- customer_id | email | phone
    data_category VARCHAR NOT NULL,
    accessed_at   TIMESTAMPTZ NOT NULL,
    confidence    VARCHAR NOT NULL,
    source        VARCHAR
);

CREATE TABLE IF NOT EXISTS non_member_exposures (
    file_sha256   VARCHAR NOT NULL,
    row_number    BIGINT NOT NULL,
    recipient     VARCHAR NOT NULL,      -- the row's address (notifications.message_address)
    email_norm    VARCHAR,
    phone_e164    VARCHAR,
    data_category VARCHAR NOT NULL,
    accessed_at   TIMESTAMPTZ NOT NULL,
    confidence    VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS review (
    file_sha256   VARCHAR NOT NULL,
    row_number    BIGINT NOT NULL,
    reason        VARCHAR NOT NULL,      -- ambiguous_identifier | checks_disagree
    matched_by    VARCHAR,               -- email | phone (ambiguous_identifier)
    candidates    BIGINT NOT NULL,       -- how many customers share the identifier
    email         VARCHAR,
    phone         VARCHAR,
    data_category VARCHAR,
    accessed_at   TIMESTAMPTZ,
    confidence    VARCHAR,
    classified_as VARCHAR,               -- checks_disagree: the classification's reason or destination
    checked_as    VARCHAR                -- checks_disagree: the SQL checks' rule, or exposure | non_member
);

-- Rejected files (row_number NULL) and rejected rows, with the SPEC reason and the
-- row as given, so that it can be fixed and dropped in again.
CREATE TABLE IF NOT EXISTS quarantine (
    run_id        VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,      -- customers | scope | returns | claims
    file_sha256   VARCHAR NOT NULL,
    file_name     VARCHAR NOT NULL,
    row_number    BIGINT,
    reason        VARCHAR NOT NULL,
    detail        VARCHAR,
    row_json      VARCHAR,               -- the row as given, JSON; customers rows masked
                                         -- (see masked_account)
    customer_id   VARCHAR                -- a scope row's: the customer its identifiers resolved
                                         -- to, for `explain` (exposure_before_account_created, or a
                                         -- row rule failed on a row naming a customer by email)
);

-- Which accepted scope files are classified, under which basis (redress/warehouse/increments.py):
-- the customers snapshot, the policy file and the code's RULES_VERSION. Written in the
-- same transaction as the files' outcome rows; `entitled` in the same transaction as
-- the entitlements that include their exposures.
CREATE TABLE IF NOT EXISTS classified_files (
    file_sha256   VARCHAR NOT NULL,      -- once: a full classification deletes and re-inserts all
    master_sha256 VARCHAR NOT NULL,
    policy_sha256 VARCHAR NOT NULL,
    rules_version VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,
    entitled      BOOLEAN NOT NULL
);

CREATE TABLE IF NOT EXISTS entitlements (
    customer_id   VARCHAR NOT NULL,      -- unique: checked by the entitlements suite
    policy_id     VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,
    reason        VARCHAR NOT NULL,
    tier          INTEGER,
    categories    VARCHAR NOT NULL,      -- counted categories, sorted, comma-separated
    exposed_categories VARCHAR NOT NULL, -- every accepted category, sorted
    base_amount   BIGINT NOT NULL,       -- minor units, before pro rata
    amount        BIGINT NOT NULL,       -- minor units; 0 unless ELIGIBLE
    rail          VARCHAR NOT NULL       -- voucher | bank_transfer | claim
);

CREATE TABLE IF NOT EXISTS ledger (
    payment_id    VARCHAR NOT NULL,      -- unique: checked by the ledger suite before emission
    customer_id   VARCHAR NOT NULL,
    amount        BIGINT NOT NULL,       -- minor units
    currency      VARCHAR NOT NULL,
    rail          VARCHAR NOT NULL,
    batch_id      VARCHAR NOT NULL,
    policy_id     VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,
    attempt       INTEGER NOT NULL,
    status        VARCHAR NOT NULL,      -- issued | settled | returned | cancelled (a held claim
                                         -- payment a claim replaced: not paid)
    status_reason VARCHAR,
    updated_run_id VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS batches (
    batch_id      VARCHAR NOT NULL PRIMARY KEY,
    rail          VARCHAR NOT NULL,
    currency      VARCHAR NOT NULL,
    value_date    DATE NOT NULL,
    item_count    BIGINT NOT NULL,
    control_sum   BIGINT NOT NULL,       -- minor units
    policy_id     VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    folder        VARCHAR NOT NULL,      -- relative to the data folder
    manifest_sha256 VARCHAR              -- of its manifest.json as released (none: an earlier version's batch)
);

CREATE TABLE IF NOT EXISTS notifications (
    person_key    VARCHAR NOT NULL,      -- customer:<id> or nonmember:<recipient>; unique
    customer_id   VARCHAR,
    recipient     VARCHAR,
    channel       VARCHAR NOT NULL,      -- sms | email | none (no usable contact)
    reference_code VARCHAR NOT NULL,     -- unique by construction (reference_codes.py)
    template_id   VARCHAR NOT NULL,
    language      VARCHAR NOT NULL,      -- the message text is in outbox/notifications only
    run_id        VARCHAR NOT NULL
);

-- Every claim applied (SPEC "Input: claims from customer service"): the bank details a
-- verified person gave for what was held on `claim`. The customer master is never
-- changed: the disburse stage pays a claimant to their latest claim's account. A claim
-- quarantined is in quarantine (kind claims), not here.
CREATE TABLE IF NOT EXISTS claims (
    reference_code VARCHAR NOT NULL,     -- as given (notifications.reference_code)
    customer_id   VARCHAR NOT NULL,      -- the person the code was given to
    bank_code     VARCHAR NOT NULL,      -- 3 digits, as written
    bank_account  VARCHAR NOT NULL,      -- digits only (spaces and hyphens removed)
    verified_at   TIMESTAMPTZ NOT NULL,  -- when customer service verified the person
    verified_by   VARCHAR NOT NULL,      -- the staff id of whoever verified them
    cancelled_amount BIGINT NOT NULL,    -- minor units: the held claim payments it cancelled
    file_sha256   VARCHAR NOT NULL,      -- the claims file (ingested_files)
    row_number    BIGINT NOT NULL,       -- 1-based data row within that file
    run_id        VARCHAR NOT NULL,      -- the run that applied it
    claimed_at    TIMESTAMPTZ NOT NULL   -- when that run applied it
);

-- Every `redress explain`: who asked, when, what was asked (never the answer) and how it
-- ended. Reference codes are bearer secrets: failed guesses are limited (redress/customer_service/lookups.py).
CREATE TABLE IF NOT EXISTS lookups (
    looked_up_at  TIMESTAMPTZ NOT NULL,
    staff_id      VARCHAR NOT NULL,      -- --by, else the OS user
    os_user       VARCHAR NOT NULL,      -- the account that ran the command
    asked         VARCHAR NOT NULL,      -- the customer id or reference code typed, trimmed; an email
                                         -- or phone masked to its kind and last 4 characters
    asked_kind    VARCHAR NOT NULL,      -- customer_id | reference_code | email | phone
    outcome       VARCHAR NOT NULL       -- matched | no_match | refused (too many failures)
);

CREATE TABLE IF NOT EXISTS runs (
    run_id        VARCHAR NOT NULL PRIMARY KEY,
    started_at    TIMESTAMPTZ NOT NULL,
    ended_at      TIMESTAMPTZ,
    run_date      DATE NOT NULL,
    parameters    VARCHAR NOT NULL,      -- JSON
    policy_id     VARCHAR NOT NULL,
    policy_sha256 VARCHAR NOT NULL,
    input_files   VARCHAR,               -- JSON list of {kind, file_name, file_sha256, status}
    counts        VARCHAR,               -- JSON
    totals        VARCHAR,               -- JSON, minor units
    outcome       VARCHAR NOT NULL,      -- running | succeeded | failed | recovered (rebuilt from the outbox)
    error         VARCHAR,
    approved_by   VARCHAR,               -- who released this run's plan (--by, or the approval form); NULL
                                         -- when released without approval or not (yet) released
    approved_at   TIMESTAMPTZ,           -- when it was released
    approval_note VARCHAR,               -- --note, or the form's note
    exposures     VARCHAR,               -- JSON [exposures (customer, category), customers exposed, exposures
                                         -- only this run's scope files hold], as its report counted them
    policy_rules_sha256 VARCHAR,         -- of the policy's tables that decide amounts and rails (redress/policy
                                         -- RULE_TABLES); NULL for runs rebuilt by recover-ledger or recorded earlier
    policy_text   VARCHAR,               -- the policy file as the run read it (policy_sha256's bytes), so that
                                         -- explain reads the rules it ran under after the file is edited; NULL
                                         -- for runs rebuilt by recover-ledger or recorded earlier
    told_checked  BOOLEAN                -- true once a notify stage committed having listed this run's payees
                                         -- told otherwise before (rules/notifications.py TOLD_OTHERWISE); until
                                         -- then every notify stage looks at its ledger rows
);

-- A run under `disbursement.require_approval` stops with its plan (SPEC "Approval
-- before release"): the payments and batches it would issue, kept here until someone
-- approves (released as they are) or rejects it. Nothing of a plan is in the ledger,
-- batches or outbox before it is approved.
CREATE TABLE IF NOT EXISTS plans (
    run_id        VARCHAR NOT NULL PRIMARY KEY,  -- the run that planned it
    state         VARCHAR NOT NULL,      -- waiting | approved | rejected | superseded | expired
    policy_id     VARCHAR NOT NULL,
    policy_sha256 VARCHAR NOT NULL,      -- the policy file it was planned under; approval re-reads it
    planned_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,  -- planned_at + REDRESS_APPROVAL_TIMEOUT_SECONDS
    payments      BIGINT NOT NULL,
    amount        BIGINT NOT NULL,       -- minor units
    batches       BIGINT NOT NULL,
    summary       VARCHAR NOT NULL,      -- JSON: per rail and value date against the daily cash cap, per
                                         -- kind (first, top_up, reissue, claim): redress/rules/plans.py
    decided_at    TIMESTAMPTZ,           -- approved, rejected, superseded or expired at
    decided_by    VARCHAR,               -- approver or rejecter; for superseded, the run that superseded it
    note          VARCHAR,
    completed_at  TIMESTAMPTZ,           -- a decision's last steps done (approved: people told, report page
                                         -- and exports written again; rejected, superseded, expired: its
                                         -- page); NULL while one is unfinished, which repeating it finishes
                                         -- (flows/approval.py), or, for the last two, the next run's start
    completed_by  VARCHAR,               -- who gave the decision whose command did those last steps: the
                                         -- decider, or whoever repeated a decision that did not finish
    decided_os_user VARCHAR              -- the operating-system account of the process that recorded an
                                         -- approval or rejection (served: the service's); NULL for the rest
);

-- The planned payments of each plan, as the emission gate passed them, with the bank
-- details they will be paid to (voucher parts are derived again on release from the
-- policy file, whose SHA-256 must not have changed since).
CREATE TABLE IF NOT EXISTS plan_payments (
    run_id        VARCHAR NOT NULL,
    payment_id    VARCHAR NOT NULL,
    customer_id   VARCHAR NOT NULL,
    amount        BIGINT NOT NULL,       -- minor units
    rail          VARCHAR NOT NULL,
    attempt       INTEGER NOT NULL,      -- 1 until money of the person's came back, then its highest attempt + 1
    batch_id      VARCHAR NOT NULL,
    value_date    DATE NOT NULL,
    bank_code     VARCHAR,               -- bank transfers: as the plan will pay them
    bank_account  VARCHAR                -- digits only
);

-- The planned batches of each plan: the totals their manifests will carry.
CREATE TABLE IF NOT EXISTS plan_batches (
    run_id        VARCHAR NOT NULL,
    batch_id      VARCHAR NOT NULL,      -- never given to another batch, even once the plan is discarded
    rail          VARCHAR NOT NULL,
    value_date    DATE NOT NULL,
    item_count    BIGINT NOT NULL,
    control_sum   BIGINT NOT NULL        -- minor units
);
"""

# The one module that writes each table (INSERT, UPDATE, DELETE, replace or rename).
OWNERS = {
    "ingested_files": "redress/warehouse/files.py",
    "scope_rows": "redress/warehouse/scope_rows.py",
    "scope_exposures": "redress/warehouse/scope_rows.py",
    "non_member_exposures": "redress/warehouse/scope_rows.py",
    "review": "redress/warehouse/scope_rows.py",
    "customers": "redress/warehouse/customers.py",
    "former_addresses": "redress/warehouse/customers.py",
    "former_bank_accounts": "redress/warehouse/customers.py",
    "quarantine": "redress/warehouse/quarantine.py",
    "classified_files": "redress/warehouse/increments.py",
    "entitlements": "redress/warehouse/entitlements.py",
    "ledger": "redress/warehouse/ledger.py",
    "batches": "redress/warehouse/ledger.py",
    "notifications": "redress/warehouse/notifications.py",
    "claims": "redress/warehouse/claims.py",
    "lookups": "redress/warehouse/lookups.py",
    "runs": "redress/warehouse/runs.py",
    "plans": "redress/warehouse/plans.py",
    "plan_payments": "redress/warehouse/plans.py",
    "plan_batches": "redress/warehouse/plans.py",
}


def tables() -> list[str]:
    """The names of the warehouse's tables, in the order SCHEMA creates them."""
    return re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)


def create_statement(table: str) -> str:
    """SCHEMA's `CREATE TABLE IF NOT EXISTS` statement of one table (for a migration that
    rebuilds it); KeyError for a table SCHEMA does not create."""
    found = re.search(rf"CREATE TABLE IF NOT EXISTS {re.escape(table)} \(.*?\n\);", SCHEMA, re.DOTALL)
    if found is None:
        raise KeyError(table)
    return found.group(0)
