-- The reference: the SPEC's decisions for a first run, in plain DuckDB SQL, as a data
-- engineer would write them instead of adopting redress. benchmarks/reference.py reads
-- the inbox (newest customers snapshot; every scope file once by content, unreadable
-- ones skipped) into two views and the policy into variables, then runs this script:
--
--   customers_file   the snapshot as written (any column types)
--   scope_file_rows  customer_id, email, phone, data_category, accessed_at, confidence
--                    of every readable scope file, as VARCHAR, and malformed (BOOLEAN:
--                    a CSV line of more fields than the header, its other columns NULL)
--   variables        window_start, window_end (TIMESTAMPTZ), counted_confidences,
--                    statuses (VARCHAR[]), category_tiers, tier_amounts (STRUCT[]),
--                    total_cap, minimum_amount (BIGINT), whitespace, ascii_whitespace (VARCHAR)
--
-- Its result: one row per figure (measure, key, n, amount) for the benchmark to print
-- and to compare with redress's warehouse. Nothing is written.
--
-- Approximations (exact for the generator's files, which hold no other case):
-- * NFKC: DuckDB has only nfc_normalize, so only the fullwidth ASCII block (U+FF01 to
--   U+FF5E) and the ideographic space are mapped to ASCII; other compatibility forms
--   (ligatures, circled digits...) are kept as given.
-- * Regex \s is RE2's ASCII whitespace, Polars' is Unicode; the trims use the Unicode
--   White_Space set (variable whitespace), as Polars does.
-- * The customers snapshot is taken as valid (redress rejects a bad one whole), and
--   scope column names must be exact (redress trims and refuses look-alikes).

-- Speed: the Unicode-aware steps (trim by a set, translate) cost ten times the ASCII
-- ones, so each takes an ASCII fast path (strlen = length: one byte per character),
-- and every step reads a column of the step before (a macro repeats its argument).

-- SPEC "Input: scope files": trimmed of Unicode whitespace, blank is missing.
CREATE OR REPLACE TEMP MACRO clean(x) AS nullif(CASE WHEN strlen(x) = length(x)
    THEN trim(x, getvariable('ascii_whitespace')) ELSE trim(x, getvariable('whitespace')) END, '');
-- NFKC, approximated (header): fullwidth ASCII and the ideographic space to ASCII.
CREATE OR REPLACE TEMP MACRO nfkc(x) AS CASE WHEN strlen(x) = length(x) THEN x ELSE trim(translate(x,
    '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～　',
    '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~ '),
    getvariable('whitespace')) END;
-- ISO 8601 only; without an offset, in the session TimeZone (the policy's).
CREATE OR REPLACE TEMP MACRO iso_ts(x) AS CASE
    WHEN regexp_full_match(x, '\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s?(Z|[+-]\d{2}(:?\d{2})?)?')
    THEN TRY_CAST(x AS TIMESTAMPTZ) END;
-- SPEC "Identity resolution": email lower-cased on A-Z only (lower() of ASCII text does
-- just that), well-formed with one @; phone to E.164, well-formed as +82 and 8-10 digits.
CREATE OR REPLACE TEMP MACRO lower_az(e) AS CASE WHEN strlen(e) = length(e) THEN lower(e)
    ELSE translate(e, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') END;
CREATE OR REPLACE TEMP MACRO email_form(e) AS CASE WHEN regexp_full_match(e, '[^@\s]+@[^@\s]+') THEN e END;
CREATE OR REPLACE TEMP MACRO phone_kept(p) AS
    CASE WHEN regexp_matches(p, '^[^0-9]*\+') THEN '+' ELSE '' END || regexp_replace(p, '[^0-9]', '', 'g');
CREATE OR REPLACE TEMP MACRO phone_local(k) AS regexp_replace(regexp_replace(k, '^0', '+82'), '^\+820', '+82');
CREATE OR REPLACE TEMP MACRO phone_form(p) AS CASE WHEN regexp_full_match(p, '\+82[1-9][0-9]{7,9}') THEN p END;
-- A table (by name) with cleaned email and phone columns, plus email_key and phone_key.
CREATE OR REPLACE TEMP MACRO with_keys(t) AS TABLE
WITH s1 AS (SELECT *, nfkc(email) AS _e, nfkc(phone) AS _p FROM query_table(t)),
     s2 AS (SELECT * EXCLUDE (_e, _p), lower_az(_e) AS _e, phone_kept(_p) AS _p FROM s1),
     s3 AS (SELECT * EXCLUDE (_e, _p), email_form(_e) AS email_key, phone_local(_p) AS _p FROM s2)
SELECT * EXCLUDE (_p), phone_form(_p) AS phone_key FROM s3;

-- SPEC "Input: customers snapshot".
CREATE OR REPLACE TEMP VIEW customers_clean AS
SELECT clean(customer_id::VARCHAR) AS customer_id, clean(status::VARCHAR) AS status,
       clean(created_at::VARCHAR) AS created_at, clean(closed_at::VARCHAR) AS closed_at,
       clean(is_test::VARCHAR) AS is_test, clean(payout_method::VARCHAR) AS payout_method,
       clean(bank_code::VARCHAR) AS bank_code, clean(bank_account::VARCHAR) AS bank_account,
       clean(email::VARCHAR) AS email, clean(phone::VARCHAR) AS phone
FROM customers_file;

CREATE OR REPLACE TEMP TABLE master AS
SELECT customer_id, status, iso_ts(created_at) AS created_at, iso_ts(closed_at) AS closed_at,
       coalesce(lower(is_test) IN ('true', 't', 'yes', 'y', '1'), FALSE) AS is_test,
       coalesce(payout_method, 'voucher') AS payout_method,
       coalesce(regexp_full_match(bank_code, '[0-9]{3}'), FALSE)
         AND coalesce(regexp_full_match(regexp_replace(bank_account, '[\s-]', '', 'g'), '[0-9]{10,16}'), FALSE)
         AS bank_valid,
       email_key, phone_key
FROM with_keys('customers_clean');

CREATE OR REPLACE TEMP VIEW scope_clean AS
SELECT clean(customer_id) AS customer_id, clean(email) AS email, clean(phone) AS phone,
       clean(data_category) AS data_category, clean(accessed_at) AS accessed_at,
       coalesce(clean(confidence), 'confirmed') AS confidence, malformed
FROM scope_file_rows;

-- Every scope row's destination and reason: a malformed row, row rules 1-4, identity, rule 6.
CREATE OR REPLACE TEMP TABLE classified AS
WITH category_tiers AS (SELECT unnest(getvariable('category_tiers'), recursive := true)),
parsed AS (
    SELECT r.* REPLACE (iso_ts(r.accessed_at) AS accessed_at), t.tier
    FROM with_keys('scope_clean') r LEFT JOIN category_tiers t USING (data_category)
),
keyed AS (
    SELECT *,
           CASE WHEN malformed THEN 'malformed_row'
                WHEN customer_id IS NULL AND email IS NULL AND phone IS NULL THEN 'missing_identifier'
                WHEN tier IS NULL THEN 'unknown_category'
                WHEN accessed_at IS NULL THEN 'invalid_timestamp'
                WHEN confidence NOT IN ('confirmed', 'suspected') THEN 'invalid_confidence'
           END AS row_reason
    FROM parsed
),
by_email AS (
    SELECT email_key, count(*) AS n, min(customer_id) AS cid, arg_min(created_at, customer_id) AS created_at
    FROM master WHERE email_key IS NOT NULL GROUP BY email_key
),
by_phone AS (
    SELECT phone_key, count(*) AS n, min(customer_id) AS cid, arg_min(created_at, customer_id) AS created_at
    FROM master WHERE phone_key IS NOT NULL GROUP BY phone_key
),
resolved AS (
    SELECT k.row_reason, k.data_category, k.accessed_at, k.confidence, k.tier,
           CASE WHEN k.customer_id IS NOT NULL THEN CASE WHEN m.customer_id IS NOT NULL THEN 'member' ELSE 'unknown_customer_id' END
                WHEN e.n = 1 THEN 'member'
                WHEN e.n > 1 THEN 'ambiguous_identifier'
                WHEN p.n = 1 THEN 'member'
                WHEN p.n > 1 THEN 'ambiguous_identifier'
                WHEN k.email_key IS NOT NULL OR k.phone_key IS NOT NULL THEN 'non_member'
                ELSE 'invalid_identifier' END AS identity,
           CASE WHEN k.customer_id IS NOT NULL THEN m.customer_id WHEN e.n = 1 THEN e.cid
                WHEN e.n IS NULL AND p.n = 1 THEN p.cid END AS resolved_id,
           CASE WHEN k.customer_id IS NOT NULL THEN m.created_at WHEN e.n = 1 THEN e.created_at
                WHEN e.n IS NULL AND p.n = 1 THEN p.created_at END AS created_at
    FROM keyed k
    LEFT JOIN master m ON k.customer_id = m.customer_id
    -- an id given decides alone; email and phone are looked up only without one
    LEFT JOIN by_email e ON k.customer_id IS NULL AND k.email_key = e.email_key
    LEFT JOIN by_phone p ON k.customer_id IS NULL AND k.phone_key = p.phone_key
)
SELECT resolved_id AS customer_id, data_category, accessed_at, confidence, tier,
       CASE WHEN row_reason IS NOT NULL THEN 'quarantine'
            WHEN identity = 'member' AND accessed_at < created_at THEN 'quarantine'
            WHEN identity = 'member' THEN 'exposure'
            WHEN identity = 'non_member' THEN 'non_member'
            WHEN identity = 'ambiguous_identifier' THEN 'review'
            ELSE 'quarantine' END AS destination,
       CASE WHEN row_reason IS NOT NULL THEN row_reason
            WHEN identity = 'member' AND accessed_at < created_at THEN 'exposure_before_account_created'
            WHEN identity IN ('member', 'non_member') THEN NULL
            ELSE identity END AS reason
FROM resolved;

-- SPEC "Eligibility and entitlement" and "Payout rail": one row per exposed customer.
CREATE OR REPLACE TEMP TABLE entitlements AS
WITH tier_amounts AS (SELECT unnest(getvariable('tier_amounts'), recursive := true)),
per_customer AS (
    SELECT customer_id,
           bool_or(list_contains(getvariable('counted_confidences'), confidence)) AS any_confidence,
           bool_or(list_contains(getvariable('counted_confidences'), confidence)
                   AND accessed_at BETWEEN getvariable('window_start') AND getvariable('window_end')) AS any_counted,
           max(tier) FILTER (list_contains(getvariable('counted_confidences'), confidence)
                   AND accessed_at BETWEEN getvariable('window_start') AND getvariable('window_end')) AS tier
    FROM classified WHERE destination = 'exposure' GROUP BY customer_id
),
checked AS (
    SELECT c.customer_id, coalesce(t.amount, 0)::BIGINT AS base_amount,
           CASE WHEN m.is_test THEN 'TEST_ACCOUNT'
                WHEN NOT c.any_confidence THEN 'UNCONFIRMED_ONLY'
                WHEN NOT c.any_counted THEN 'OUTSIDE_WINDOW'
                WHEN NOT list_contains(getvariable('statuses'), m.status) THEN 'STATUS_NOT_ELIGIBLE'
                WHEN m.status = 'closed' AND m.closed_at < getvariable('window_start') THEN 'CLOSED_BEFORE_BREACH'
           END AS early_reason,
           CASE WHEN m.status = 'closed' AND m.bank_valid THEN 'bank_transfer'
                WHEN m.status = 'closed' THEN 'claim'
                WHEN m.payout_method = 'bank_transfer' AND m.bank_valid THEN 'bank_transfer'
                ELSE 'voucher' END AS rail
    FROM per_customer c JOIN master m USING (customer_id) LEFT JOIN tier_amounts t USING (tier)
),
fund AS (SELECT coalesce(sum(base_amount) FILTER (early_reason IS NULL), 0)::HUGEINT AS passing_sum FROM checked),
amounts AS (
    SELECT checked.*,
           CASE WHEN early_reason IS NOT NULL THEN 0
                WHEN getvariable('total_cap') > 0 AND passing_sum > getvariable('total_cap')
                THEN (base_amount::HUGEINT * getvariable('total_cap') // passing_sum)::BIGINT
                ELSE base_amount END AS pro_rata_amount
    FROM checked, fund
)
SELECT customer_id, rail,
       coalesce(early_reason, CASE WHEN pro_rata_amount < getvariable('minimum_amount') THEN 'BELOW_MINIMUM'
                                   ELSE 'ELIGIBLE' END) AS reason,
       CASE WHEN early_reason IS NULL AND pro_rata_amount >= getvariable('minimum_amount')
            THEN pro_rata_amount ELSE 0 END AS amount
FROM amounts;

-- SPEC "Ledger" on a first run: every ELIGIBLE customer is owed the whole amount.
SELECT 'reason' AS measure, reason AS key, count(*) AS n, sum(amount)::BIGINT AS amount
FROM entitlements GROUP BY reason
UNION ALL
SELECT 'rail', rail, count(*), sum(amount)::BIGINT
FROM entitlements WHERE reason = 'ELIGIBLE' AND amount >= greatest(getvariable('minimum_amount'), 1) GROUP BY rail
UNION ALL
SELECT 'destination', destination || coalesce(':' || reason, ''), count(*), NULL
FROM classified GROUP BY ALL
ORDER BY measure, key;
