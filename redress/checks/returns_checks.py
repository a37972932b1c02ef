"""Returns checks: `returns_staging` is one finance result file (SPEC "Input: returns from
finance") as given, with one boolean per rule, checked by `expectations/returns_staging.json`,
stated in SQL apart from the stage that applies the accepted rows (tasks/returns.py).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from redress import sql, vocabulary

# First failing rule decides, so a rejected row has exactly one reason: a malformed row
# first (one the reader could not split into the header's fields: a CSV row with more
# fields than the header, as an unquoted comma in `reason` makes, or a JSON Lines line
# that is no object; its values may sit under the wrong names, so none is trusted), then
# no payment_id, then a status that is neither value, then the ledger lookups,
# then a payment named by more than one otherwise valid row of the file, or by one and
# named anywhere in a malformed row as written (which one would apply is a guess: none
# is applied; the malformed row's status may differ, and its columns may be misplaced).
#
# A payment's status moves once (SPEC "Input: returns from finance", "Ledger"): issued
# -> settled or issued -> returned. A returned payment is final (it has been reissued),
# so any later result for it is `result_after_return`, whatever it says; a settled one
# being returned is `returned_after_settled`. `cancelled` (a held claim payment a claim
# replaced) is final too: a result for it is `result_after_cancel`. A payment held on
# `claim` was never sent out (vocabulary.FINANCE_RAILS), so no bank can have a result for
# it: `result_for_unsent_payment`; applied, a `settled` would count held money as paid
# out and leave the person nothing to claim, a `returned` would have it reissued. A
# `settled` for a payment already settled is no rule break: it agrees with the ledger
# and changes nothing, so it is not quarantined but counted as `already_settled` in the
# stage result (column `already_applied`), since banks resend confirmations.
RETURN_RULES = {
    "row_malformed": vocabulary.MALFORMED_ROW,
    "payment_id_missing": "missing_payment_id",
    "status_invalid": "invalid_status",
    "payment_unknown": "unknown_payment_id",
    "after_return": "result_after_return",
    "after_cancel": "result_after_cancel",
    "payment_not_sent": "result_for_unsent_payment",
    "already_settled_returned": "returned_after_settled",
    "payment_repeated": "repeated_payment_id",
}

# The only statuses a result may leave: every UPDATE of ledger.status is guarded by it.
OPEN_STATUS = vocabulary.ISSUED


def create_returns_staging(con: duckdb.DuckDBPyConnection, staged: Path) -> None:
    """returns_staging: one returns file staged as text (Parquet at `staged`: row_number,
    payment_id, status, reason, malformed, as_written; trimmed, blank = NULL; `malformed`
    says what the reader found wrong with the row and `as_written` holds such a row as
    written, redress.inbox.returns_frame), looked up in the ledger of the
    same warehouse, with one boolean per RETURN_RULES key (true only for the row's first
    failing rule) that `expectations/returns_staging.json` checks, plus `ledger_status`
    (NULL for an unknown payment), `already_applied` (a row that passes every rule
    and asks for the status the payment already has: a repeated `settled`) and
    `plan_detail` (an unknown payment a plan holds: the run that planned it and what
    became of the plan; NULL otherwise).
    SPEC "Input: returns from finance"."""
    con.execute(f"""
        CREATE OR REPLACE TABLE returns_staging AS
        WITH given AS (
            SELECT r.row_number::BIGINT AS row_number, r.payment_id::VARCHAR AS payment_id,
                   r.status::VARCHAR AS status, r.reason::VARCHAR AS reason, r.malformed::VARCHAR AS malformed,
                   r.as_written::VARCHAR AS as_written,
                   l.payment_id IS NOT NULL AS in_ledger, l.status AS ledger_status, l.rail AS ledger_rail,
                   pp.run_id AS planned_by, pp.state AS plan_state
            FROM read_parquet(?, hive_partitioning = false) r
            LEFT JOIN ledger l ON l.payment_id = r.payment_id
            LEFT JOIN (SELECT p.payment_id, p.run_id, pl.state FROM plan_payments p JOIN plans pl USING (run_id)) pp
                   ON pp.payment_id = r.payment_id
        ),
        ruled AS (
            SELECT *,
                CASE
                    WHEN malformed IS NOT NULL THEN 'row_malformed'
                    WHEN payment_id IS NULL THEN 'payment_id_missing'
                    WHEN status IS NULL OR status NOT IN {vocabulary.sql_list(vocabulary.FINANCE_OUTCOMES)} THEN 'status_invalid'
                    WHEN NOT in_ledger THEN 'payment_unknown'
                    WHEN ledger_status = '{vocabulary.RETURNED}' THEN 'after_return'
                    WHEN ledger_status NOT IN {vocabulary.sql_list((OPEN_STATUS, vocabulary.SETTLED))} THEN 'after_cancel'
                    WHEN ledger_rail NOT IN {vocabulary.sql_list(vocabulary.FINANCE_RAILS)} THEN 'payment_not_sent'
                    WHEN status = '{vocabulary.RETURNED}' AND ledger_status = '{vocabulary.SETTLED}'
                        THEN 'already_settled_returned'
                END AS row_rule
            FROM given
        ),
        -- The payments a malformed row names anywhere in it as written, as a whole word
        -- (sql.names: in any case, whatever surrounds it): its named columns may be misplaced (a header in another
        -- order), the text is not.
        named_by_malformed AS (
            SELECT DISTINCT unnest({sql.names("as_written")}) AS word FROM ruled
            WHERE row_rule = 'row_malformed'
        ),
        counted AS (
            SELECT *,
                CASE
                    WHEN row_rule IS NOT NULL THEN row_rule
                    -- Sound rows naming one payment: copies of one row (the same status
                    -- and reason; a bank sends a line twice) are applied once, by the
                    -- first; rows that differ are a guess, and none applies (found by
                    -- review: a line sent twice held the return back). A later copy of a
                    -- `returned` is repeated_payment_id, as it would be in a later file
                    -- (result_after_return); of a `settled`, counted as settled again,
                    -- as in a later file (found by the fix review).
                    WHEN count(*) OVER same_payment > 1
                         AND ((row_number > min(row_number) OVER same_payment
                               AND status = '{vocabulary.RETURNED}')
                              OR min(status) OVER same_payment <> max(status) OVER same_payment
                              OR min(coalesce(reason, '')) OVER same_payment
                                 <> max(coalesce(reason, '')) OVER same_payment)
                        THEN 'payment_repeated'
                    WHEN {sql.name_key("payment_id")} IN (SELECT word FROM named_by_malformed)
                        THEN 'payment_repeated'
                END AS first_failed_rule
            FROM ruled
            WINDOW same_payment AS (PARTITION BY payment_id, row_rule IS NULL)
        )
        SELECT row_number, payment_id, status, reason, malformed, as_written, ledger_status,
               -- an unknown payment a plan holds: which, and why no bank has it (found by the
               -- lifecycle review: a superseded plan's payment id was unknown with nothing said)
               CASE WHEN first_failed_rule = 'payment_unknown' AND planned_by IS NOT NULL THEN
                   'planned by run ' || planned_by || CASE plan_state
                       WHEN '{vocabulary.WAITING}' THEN ', whose plan is waiting for approval: not released yet'
                       ELSE ', whose plan was ' || plan_state || ': never released' END
                   || ', so no bank was sent it' END AS plan_detail,
               first_failed_rule IS NULL
                 AND (status = ledger_status
                      OR row_number > min(row_number) OVER (PARTITION BY payment_id, first_failed_rule IS NULL))
                   AS already_applied,
               {", ".join(f"first_failed_rule IS NOT DISTINCT FROM '{r}' AS {r}" for r in RETURN_RULES)}
        FROM counted ORDER BY row_number
    """, [sql.file_path(staged)])
