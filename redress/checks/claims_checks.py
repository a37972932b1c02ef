"""Claims checks: `claims_staging` is one customer-service claims file (SPEC "Input:
claims from customer service") as given, with one boolean per rule, checked by
`expectations/claims_staging.json`, stated in SQL apart from the stage that applies the
accepted rows (tasks/claims.py).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

import duckdb

from redress import sql, vocabulary
from redress.inbox.streaming import ts
from redress.rules.payments import LEDGER_SQL, RUN_ORDER, bank_returns_sql
from redress.rules.printable import UNPRINTABLE

# First failing rule decides, so a rejected row has exactly one reason: a malformed row
# (one the reader could not split into the header's fields: a CSV row with more fields
# than the header, a JSON Lines line that is no object; its values may sit under the
# wrong names, a bank account under verified_by, so none is trusted), then who the claim
# is for (a reference code that names a notified person), then whether it was verified
# (both who and when, `verified_at` an ISO 8601 time no later than a day after the
# check: a time still to come, `2031-01-01`, is a typo or a forgery, no verification,
# found by review; the day allows for a customer-service clock that runs ahead, found
# by the next review, since a claim refused is never read again; and no earlier than a
# day before the run that gave the person their code, by its start or the start of its
# run date in the policy's timezone, whichever is earlier (a catch-up run dated in the
# past): nobody can be verified by a code not yet given, `2015-12-02` for `2025-12-02`,
# found by review), then the bank
# details by the master's rule (redress/inbox/customers.py bank_details, computed by the reader), then
# the deadline (verified_at's date in the policy's timezone after payout.claim_deadline),
# then whether the person has anything held on `claim` (issued payments on that rail),
# then a code the file names more than once. The last counts every row of the code,
# valid or not, and a malformed row that names the code anywhere as written: two rows
# for one person, perhaps with two accounts, leave which one is meant a guess, so none
# is applied.
# "Anything held" counts a claim not yet paid out too (`_UNSENT_CLAIMS`).
# How far ahead of the check, or before the code was given, a verified_at may lie
# (clocks that disagree), no further.
FUTURE_TOLERANCE = timedelta(days=1)

# A claimant whose latest claim's money has not gone out: no bank transfer to them issued
# or settled in that claim's run or a later one (by the order runs started in), its plan
# rejected, superseded or still waiting, or every transfer since returned. A new claim
# of theirs corrects the account (the latest claim's account is paid: claims.py), as the
# person's held money once claimed is no longer held. Found by review: an account
# mistyped by customer service, the plan rejected, could never be corrected (a claim
# for the right one was nothing_to_claim, and every later plan paid the wrong one); and
# a claimed transfer returned could be sent again only to the account that returned it.
# Not when the transfers that came back reach max_attempts (redress/rules/payments.py
# bank_returns, as the run's disburse will count them): the run then holds the money on
# `claim` again, and a claim that cancelled nothing would read as applied while nothing
# went to its account (found by the next review); it is nothing_to_claim, and the person's
# next claim, once the money is held, is applied as any claim is.
# A SQL fragment (a CTE `unsent`, customer_id; one ? parameter: max_attempts) over the
# warehouse's claims, ledger and runs.
_UNSENT_CLAIMS = f"""
            ledger_seq AS ({LEDGER_SQL}),
            returns_counted AS ({bank_returns_sql("ledger_seq")}),
            unsent AS (
                SELECT c.customer_id
                FROM (SELECT customer_id, arg_max(run_id, (claimed_at, run_id)) AS run_id FROM claims GROUP BY ALL) c
                JOIN ({RUN_ORDER}) claimed USING (run_id)
                LEFT JOIN returns_counted r USING (customer_id)
                WHERE coalesce(r.bank_returns, 0) < ? AND NOT EXISTS (
                    SELECT 1 FROM ledger_seq l
                    WHERE l.customer_id = c.customer_id AND l.rail = {vocabulary.sql_literal(vocabulary.BANK_TRANSFER)}
                      AND l.status IN {vocabulary.sql_list(vocabulary.LIVE_STATUSES)} AND l.issued_seq >= claimed.seq))"""

# The quarantine detail of a row whose code another claims file read with it names
# (`named_elsewhere`): tasks/claims.py finds it again after a run stopped half-way.
NAMED_BY_ANOTHER_FILE = "another claims file read with this one names this reference code too: none is applied"

# The quarantine detail of an unknown code redress gave a non-member: the address matched
# no customer, so there is nothing to claim (found by the lifecycle review: nothing said so).
NON_MEMBER_CODE = ("this code was sent to an address that matched no customer (a non-member message), so there is "
                   "nothing to claim: `redress explain` of the code says which address")

CLAIM_RULES = {
    "row_malformed": vocabulary.MALFORMED_ROW,
    "code_unknown": vocabulary.UNKNOWN_REFERENCE_CODE,
    "unverified": vocabulary.UNVERIFIED_CLAIM,
    "bank_invalid": vocabulary.INVALID_BANK_DETAILS,
    "after_deadline": vocabulary.CLAIM_AFTER_DEADLINE,
    "not_in_master": vocabulary.CLAIMANT_NOT_IN_MASTER,
    "nothing_held": vocabulary.NOTHING_TO_CLAIM,
    "code_repeated": vocabulary.REPEATED_REFERENCE_CODE,
}


def create_claims_staging(con: duckdb.DuckDBPyConnection, staged: Path, timezone: str,
                          deadline: date | None, checked_at: datetime | None = None, max_attempts: int = 3,
                          named_elsewhere: frozenset[str] = frozenset()) -> None:
    """claims_staging: one claims file staged as text (Parquet at `staged`, from
    redress.inbox.claims_frame: row_number, reference_code, bank_code, bank_account,
    verified_at, verified_by, bank_account_digits, bank_valid, malformed, as_written),
    with `customer_id` and `notified_code` (the person the code was given to, from notifications, and the code
    as given then: a code is matched case-insensitively, as explain does; NULL when
    unknown), `verified_at_ts`
    (TIMESTAMPTZ; a time without an offset is in the policy's `timezone`), `detail` (what
    of an `unverified` row is wrong, or that a repeated code is named by another file, in
    words; NULL otherwise), `held_amount`
    (won held on `claim` for the person: issued payments on that rail) and one boolean per
    CLAIM_RULES key (true only for the row's first failing rule). `max_attempts`: the
    policy's payout.max_attempts (`_UNSENT_CLAIMS`). `deadline`: the policy's
    payout.claim_deadline (None: no deadline). `named_elsewhere`: the codes
    (typed_code form) another claims file read by the same run names: a row for one is
    `code_repeated`, as a code named twice in one file is (found by review: two desks'
    claims for one code, to two accounts, in two files of one run, were both applied, the
    file modified later silently winning). `checked_at`: the time the claims are
    checked at (aware; None: now): a verified_at more than FUTURE_TOLERANCE after it,
    or more than FUTURE_TOLERANCE before the run that gave the code (the earlier of its
    `runs.started_at` and the start of its run date in `timezone`), is `unverified`. SPEC "Input: claims from customer service"."""
    checked_at = checked_at or datetime.now(dt_timezone.utc)
    con.execute("SET TimeZone = ?", [timezone])
    try:
        con.execute(f"""
            CREATE OR REPLACE TABLE claims_staging AS
            WITH given AS (
                SELECT r.row_number::BIGINT AS row_number, r.reference_code::VARCHAR AS reference_code,
                       n.reference_code AS notified_code,
                       r.bank_code::VARCHAR AS bank_code, r.bank_account::VARCHAR AS bank_account,
                       r.bank_account_digits::VARCHAR AS bank_account_digits, r.bank_valid::BOOLEAN AS bank_valid,
                       r.verified_at::VARCHAR AS verified_at, r.verified_by::VARCHAR AS verified_by,
                       r.malformed::VARCHAR AS malformed, r.as_written::VARCHAR AS as_written,
                       {ts('r.verified_at')} AS verified_at_ts,
                       n.customer_id, least(coded.started_at, coded.run_date::TIMESTAMPTZ) AS code_run_started_at,
                       nm.reference_code IS NOT NULL AS non_member_code
                FROM read_parquet(?, hive_partitioning = false) r
                -- Codes are upper-case letters; read as `redress explain` reads them.
                LEFT JOIN notifications n ON n.reference_code = upper(r.reference_code) AND n.customer_id IS NOT NULL
                LEFT JOIN runs coded ON coded.run_id = n.run_id
                -- a code told to a non-member: nothing to claim (found by the lifecycle review: nothing said so)
                LEFT JOIN (SELECT DISTINCT reference_code FROM notifications WHERE customer_id IS NULL) nm
                       ON nm.reference_code = upper(r.reference_code)
            ),
            held AS (
                SELECT customer_id, sum(amount) AS held_amount FROM ledger
                WHERE rail = {vocabulary.sql_literal(vocabulary.CLAIM)}
                  AND status = {vocabulary.sql_literal(vocabulary.ISSUED)}
                GROUP BY customer_id
            ),
            {_UNSENT_CLAIMS},
            -- The codes a malformed row names anywhere in it as written (its columns may
            -- be misplaced: a header in another order): a sound row for one is a guess too.
            named_by_malformed AS (
                -- spaces dropped, as a typed code's are (claims_frame): `LJCW KVAH` names LJCWKVAH
                SELECT DISTINCT replace(unnest({sql.names("as_written")}), ' ', '') AS code FROM given
                WHERE malformed IS NOT NULL
            ),
            timed AS (
                SELECT g.*, g.verified_at_ts > ?::TIMESTAMPTZ AS verified_ahead,
                       g.verified_at_ts < g.code_run_started_at - ?::INTERVAL AS verified_before_code
                FROM given g
            ),
            ruled AS (
                SELECT g.*, coalesce(h.held_amount, 0)::BIGINT AS held_amount,
                    CASE
                        WHEN g.malformed IS NOT NULL THEN 'row_malformed'
                        WHEN g.customer_id IS NULL THEN 'code_unknown'
                        WHEN g.verified_by IS NULL OR g.verified_at_ts IS NULL
                          OR g.verified_ahead OR g.verified_before_code
                          OR regexp_matches(g.verified_by, {sql.literal(UNPRINTABLE)}) THEN 'unverified'
                        WHEN NOT g.bank_valid THEN 'bank_invalid'
                        WHEN ?::DATE IS NOT NULL AND g.verified_at_ts::DATE > ?::DATE THEN 'after_deadline'
                        -- found by the operations review: a claim for a person a later
                        -- snapshot left out cancelled their held money and paid nothing
                        -- (no decision is made for them), the money then nowhere
                        WHEN g.customer_id NOT IN (SELECT customer_id FROM customers) THEN 'not_in_master'
                        WHEN coalesce(h.held_amount, 0) = 0
                          AND g.customer_id NOT IN (SELECT customer_id FROM unsent) THEN 'nothing_held'
                        WHEN count(*) OVER (PARTITION BY upper(g.reference_code)) > 1
                          OR replace({sql.name_key("g.reference_code")}, ' ', '') IN (SELECT code FROM named_by_malformed)
                          OR g.reference_code IN (SELECT unnest(?::VARCHAR[])) THEN 'code_repeated'
                    END AS first_failed_rule
                FROM timed g LEFT JOIN held h USING (customer_id)
            )
            SELECT row_number, reference_code, notified_code, bank_code, bank_account, bank_account_digits, bank_valid,
                   verified_at, verified_by, malformed, verified_at_ts, customer_id, held_amount,
                   -- what of an unverified claim to fix (found by review: the reason said
                   -- "verified_at or verified_by is missing" beside a verified_by given)
                   CASE WHEN first_failed_rule = 'unverified' THEN CASE
                       WHEN verified_at IS NULL AND verified_by IS NULL THEN 'verified_at and verified_by are missing'
                       WHEN verified_by IS NULL THEN 'verified_by is missing'
                       -- found by review: an escape sequence and a right-to-left override
                       -- were recorded as who verified, and the claim paid
                       WHEN regexp_matches(verified_by, {sql.literal(UNPRINTABLE)})
                           THEN 'verified_by holds a control or invisible character: give the staff id as it reads'
                       WHEN verified_at IS NULL THEN 'verified_at is missing'
                       WHEN verified_at_ts IS NULL
                           THEN 'verified_at is not an ISO 8601 time such as 2025-12-02T10:00:00+09:00 or 2025-12-02'
                       WHEN verified_ahead THEN 'verified_at is more than a day ahead of the clock of the run reading it'
                       ELSE 'verified_at is more than a day before the run that gave the reference code started'
                   END WHEN first_failed_rule = 'code_unknown' AND non_member_code THEN {sql.literal(NON_MEMBER_CODE)}
                   WHEN first_failed_rule = 'code_repeated' AND reference_code IN (SELECT unnest(?::VARCHAR[]))
                       THEN {sql.literal(NAMED_BY_ANOTHER_FILE)}
                   END AS detail,
                   {", ".join(f"first_failed_rule IS NOT DISTINCT FROM '{r}' AS {r}" for r in CLAIM_RULES)}
            FROM ruled ORDER BY row_number
        """, [sql.file_path(staged), max_attempts, checked_at + FUTURE_TOLERANCE, FUTURE_TOLERANCE, deadline, deadline,
              sorted(named_elsewhere), sorted(named_elsewhere)])
    finally:
        # verified_at_ts::DATE above is the policy timezone's date; the warehouse is UTC.
        con.execute("SET TimeZone = 'UTC'")
