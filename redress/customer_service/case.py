"""One customer's case as text, for an agent on the phone (SPEC "Eligibility and
entitlement": "Customer service must be able to see, for any customer id, the
entitlement, the reason, the exposures and files it came from, and every payment").

Plain sentences first (the decision and why, how the money goes and what the person must
do, the scope rows held in review that could be theirs, what they were told), then the
tables behind them. Amounts with thousands separators
and the currency; times in the policy's timezone; accounts masked to their last 4 digits.
The sentences live in wording.py; this module reads the warehouse and the sent message.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from rich.cells import cell_len

from redress import escape
from redress.characters import nfkc
from redress.customer_service import wording
from redress.errors import RedressError
from redress.policy import Policy, load_policy, policy_from_text
from redress.rules.entitlements import exposure_not_counted
from redress.rules.identity import email_norm, phone_e164
from redress.rules.payments import LEDGER_SQL, bank_returns_sql
from redress.rules.plans import past_claim_deadline
from redress.vocabulary import (
    ACCEPTED, AMBIGUOUS_IDENTIFIER, CHECKS_DISAGREE, CHANNELS, CLAIM, RAILS, ENTITLEMENT_REASONS, LEDGER_STATUSES,
    LIVE_STATUSES, MALFORMED_ROW, MISSING_COLUMN, REJECTED, RETURNED, UNREADABLE_FILE, VOUCHER, reason_text,
    sql_literal,
)
from redress.warehouse import masked_account
from redress.warehouse.claims import unpaid_claims_sql


# SQL of ours: each accepted scope file's name (the first, when one content came under
# several), by file_sha256, for the exposures, review and non-member rows a case lists.
ACCEPTED_SCOPE_FILES = ("SELECT file_sha256, min(file_name) AS file_name FROM ingested_files "
                    f"WHERE kind = 'scope' AND status = {sql_literal(ACCEPTED)} GROUP BY ALL")


# A payment on the claim rail once payout.claim_deadline has passed (the reports' word).
UNCLAIMED_WHY = "unclaimed: the claim deadline has passed, so it can no longer be claimed"


def rows(con, sql: str, params: list) -> list[dict]:
    rel = con.execute(sql, params)
    names = [d[0] for d in rel.description]
    return [dict(zip(names, r)) for r in rel.fetchall()]


def table(found: list[dict], columns: list[str]) -> list[str]:
    """Rows as an aligned text table under `columns` (keys of each row), aligned by the
    columns a terminal gives each character (rich's cell_len: a Korean or full-width
    character takes two; found by review, `범위_2차_수정본.csv` pushed its row's cells
    out of their columns)."""
    if not found:
        return ["  (none)"]
    # File names and values from input files: one line each, no terminal escapes.
    cells = [[("" if r[c] is None else escape.terminal(r[c])) for c in columns] for r in found]
    widths = [max(cell_len(c), *(cell_len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  " + "  ".join(v + " " * (w - cell_len(v)) for v, w in zip(vals, widths))  # noqa: E731
    return [line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells]


def run_policy(con, run_id: str | None) -> Policy | None:
    """The policy a run used (that run, else the latest): as the run read it
    (`runs.policy_text`), else its file while that still holds the bytes the run read
    (`runs.policy_sha256`; a run recorded by an earlier version). None when there is no
    run, or the policy as it was cannot be read: the policy's numbers are then left out,
    never guessed. Found by review: the file was read as it is now, so after an edit of
    the breach window an exposure the run paid for was shown as outside it."""
    found = con.execute("SELECT parameters, policy_sha256, policy_text FROM runs WHERE run_id = ? OR ? IS NULL "
                        "ORDER BY started_at DESC LIMIT 1", [run_id, run_id]).fetchall()
    if not found and run_id is not None:
        return run_policy(con, None)
    if not found:
        return None
    parameters, sha256, text = found[0]
    try:
        path = Path(json.loads(parameters)["policy"])
        policy = policy_from_text(text, path) if text is not None else load_policy(path)
    except (RedressError, KeyError, ValueError, TypeError):
        return None
    return policy if policy.sha256 == sha256 else None


def sent_message(data_dir: Path, notice: dict) -> list[str]:
    """The message the person was actually sent, from outbox/notifications/<run_id>.parquet."""
    head = (f"What they were told: reference code {notice['reference_code']}, sent in run {notice['run_id']} "
            f"by {notice['channel']} ({CHANNELS.get(notice['channel'], '')}) to {notice['recipient'] or '(no contact)'}.")
    path = data_dir / "outbox" / "notifications" / f"{notice['run_id']}.parquet"
    try:
        found = pl.scan_parquet(path, glob=False).filter(
            pl.col("reference_code") == notice["reference_code"]).select("message").collect()
    except (OSError, pl.exceptions.PolarsError):
        found = pl.DataFrame()
    if found.height != 1:
        return [head, f"  (its text is not in outbox/notifications/{notice['run_id']}.parquet: the file was moved)"]
    return [head, "  " + escape.terminal(found["message"].item())]


def member(con, data_dir: Path, who: str) -> str:
    """The case of customer `who` (a customer id in the master); RedressError when none."""
    customer = rows(con, "SELECT * FROM customers WHERE customer_id = ?", [who])
    if not customer:
        c = left_the_master(con, who)
        if c is None:
            raise RedressError(f"no customer or reference code {who!r} in the warehouse")
    else:
        c = customer[0]
    notice = next(iter(rows(con, "SELECT * FROM notifications WHERE customer_id = ?", [who])), None)
    ent = next(iter(rows(con, "SELECT * FROM entitlements WHERE customer_id = ?", [who])), None)
    policy = run_policy(con, ent["run_id"] if ent else None)
    tz = policy.timezone if policy else "UTC"
    cur = policy.currency if policy else "KRW"
    unclaimed = policy is not None and past_claim_deadline(policy.today(), policy.claim_deadline)
    exposures = rows(con, f"""
        SELECT e.data_category AS data, e.confidence, e.accessed_at, e.matched_by AS "matched by",
               f.file_name AS file, e.row_number AS row
        FROM scope_exposures e
        LEFT JOIN ({ACCEPTED_SCOPE_FILES}) f USING (file_sha256)
        WHERE e.customer_id = ? ORDER BY e.accessed_at, file, row""", [who])
    held = rows(con, """
        SELECT q.reason, q.file_name AS file, q.row_number AS row,
               CASE WHEN json_extract_string(q.row_json, '$.customer_id') = $who THEN 'customer id'
                    ELSE 'email or phone' END AS "named by"
        FROM quarantine q
        WHERE q.kind = 'scope' AND (json_extract_string(q.row_json, '$.customer_id') = $who OR q.customer_id = $who)
        ORDER BY file, row""", {"who": who})
    # Scope evidence nobody's values were read from: malformed rows (their values may be
    # shifted: redress/inbox/scope.py) and files refused whole, but for a file whose
    # content another folder has since read as its own kind, accepted or rejected by its
    # checks (a snapshot dropped among the scope files, then moved): never scope evidence;
    # and one whose content was since accepted (refused for its name, then renamed:
    # redress/inbox/new_files.py): read after all.
    unreadable = rows(con, f"""
        SELECT q.row_number IS NULL AS whole, q.file_name AS file, count(*) AS rows FROM quarantine q
        WHERE q.kind = 'scope' AND (q.row_number IS NOT NULL AND q.reason = {sql_literal(MALFORMED_ROW)}
                                    OR q.row_number IS NULL AND q.reason IN ({sql_literal(UNREADABLE_FILE)},
                                                                             {sql_literal(MISSING_COLUMN)})
                                       AND q.file_sha256 NOT IN (SELECT file_sha256 FROM ingested_files
                                                                 WHERE status = {sql_literal(ACCEPTED)}
                                                                    OR kind <> 'scope' AND status = {sql_literal(REJECTED)}))
        GROUP BY ALL ORDER BY whole, file""", [])
    reviewed = in_review(con, c)
    formerly = former_rows(con, who)
    payments = rows(con, """
        SELECT l.payment_id AS "payment id", l.amount, l.rail, l.attempt, l.status, l.status_reason AS why,
               l.batch_id AS batch, b.value_date AS "value date", l.run_id AS run
        FROM ledger l JOIN batches b USING (batch_id)
        WHERE l.customer_id = ? ORDER BY l.payment_id""", [who])
    # the times their money sent by transfer came back, as the ledger rule counts them
    # (rules.payments.bank_returns: since the latest claim, a voucher's return no bank return)
    (returned,), = con.execute(f"""
        WITH mine AS (SELECT * FROM ({LEDGER_SQL}) WHERE customer_id = $who)
        SELECT coalesce(max(bank_returns), 0) FROM ({bank_returns_sql("mine")})""", {"who": who}).fetchall()
    claims = rows(con, f"""
        SELECT reference_code AS "reference code", bank_code AS bank, {masked_account('bank_account')} AS account,
               verified_by AS "verified by", verified_at AS "verified at", cancelled_amount AS cancelled,
               claimed_at AS "claimed at", run_id AS run
        FROM claims WHERE customer_id = ? ORDER BY claimed_at, file_sha256, row_number""", [who])
    refused = refused_claims(con, notice["reference_code"] if notice else None)

    closed = f", closed {wording.when(c['closed_at'], tz)}" if c["closed_at"] else ""
    if c.get("current_snapshot") is not None:  # paid or told before, then left out of the master
        out = [f"Customer {escape.terminal(c['customer_id'])}: not in the current customers snapshot "
               f"({escape.terminal(c['current_snapshot'])}), though an earlier snapshot held them: no decision is "
               "made for them now and nothing more is paid. If they are still a customer, the snapshot left them "
               "out: send one that holds them.",
               "Contact on file: none now."]
    else:
        out = [f"Customer {escape.terminal(c['customer_id'])}: {c['status']} account, opened "
               f"{wording.when(c['created_at'], tz)}{closed} (times in {tz} time)."
               + (" This is a test or internal account." if c["is_test"] else ""),
               # in NFKC, as identity resolution compares them (found by review: a phone
               # stored full-width was shown so, for an agent to compare a caller's with)
               f"Contact on file: phone {escape.terminal(nfkc(c['phone'] or 'none'))}, "
               f"email {escape.terminal(nfkc(c['email'] or 'none'))}."]
    out.append("")
    if ent is None and c.get("current_snapshot") is not None:
        out.append(_left_out_decision(payments, cur))
    elif ent is None:
        # paid before under evidence a later run reads otherwise (the master's phone or
        # email changed, so the rows naming the old one are someone else's or nobody's)
        sent = sum(p["amount"] for p in payments if p["status"] in LIVE_STATUSES)
        kept = sum(p["amount"] for p in payments if p["status"] in LIVE_STATUSES and p["rail"] == CLAIM)
        out.append("Decision: none yet. No accepted exposure names this customer, so nothing is owed." if not sent
                   else "Decision: none now. No accepted exposure names this customer any more (the evidence "
                   "that did was read again against a newer customer master), so nothing is owed now; "
                   + (f"{wording.money(sent - kept, cur)} paid before is not taken back (an overpayment "
                      "exception in the run report)" if sent - kept else "")
                   + ("; " if sent - kept and kept else "")
                   + (f"{wording.money(kept, cur)} held until claimed is above the entitlement now and has not "
                      "been paid out (held above entitlement in the run report)" if kept else "") + ".")
    elif policy is None:
        out.append(f"Decision under {ent['policy_id']}: {ENTITLEMENT_REASONS.get(ent['reason'], ent['reason'])}; "
                   f"amount {wording.money(ent['amount'], cur)}, rail {ent['rail']} (the policy file of run "
                   f"{ent['run_id']} cannot be read as that run read it, so the reasons behind it are not shown).")
    else:
        out.append(f"Decision under policy {ent['policy_id']} (run {ent['run_id']}): "
                   f"{ENTITLEMENT_REASONS.get(ent['reason'], ent['reason'])}.")
        out.append(wording.reason_why(c, ent, policy))
        # A claim payment counts toward what is owed (SPEC "Ledger") but is held, not paid out.
        on_hold = sum(p["amount"] for p in payments if p["status"] in LIVE_STATUSES and p["rail"] == CLAIM)
        paid = sum(p["amount"] for p in payments if p["status"] in LIVE_STATUSES and p["rail"] != CLAIM)
        owed = ent["amount"] - paid - on_hold
        if ent["amount"] > 0 or payments:
            # what goes as vouchers: the voucher payments made and what is still owed
            vouchers = [p["amount"] for p in payments if p["status"] in LIVE_STATUSES and p["rail"] == VOUCHER]
            vouchers += [owed] if owed > 0 else []
            # held now, or to be held by the next payment: what is still owed after transfers
            # came back max_attempts times goes on claim (rules.payments.paying_rail), also
            # while the plan that holds it waits for approval (found by review: explain said
            # bank transfer beside a plan listing it held)
            held_now = (any(p["rail"] == CLAIM and p["status"] in LIVE_STATUSES for p in payments)
                        or (owed > 0 and returned >= policy.max_attempts))
            out.append(wording.rail_why(c, {**ent, "vouchers": vouchers}, policy, returned,
                                        notice["reference_code"] if notice else None,
                                        held=held_now, claimed=claims[-1] if claims else None))
        # Above the entitlement, held money first: it has not left (redress/rules/payments.py
        # overpayments; finance review: held money read as paid more than entitled).
        held_above = min(on_hold, max(-owed, 0))
        paid_above = max(-owed, 0) - held_above
        # past the claim deadline, money on claim is unclaimed, as the reports call it
        # (found by the audit review: "held until claimed" beside "this money is unclaimed")
        on_claim = ("Unclaimed (the claim deadline has passed)" if unclaimed else "Held until claimed")
        out.append(f"Paid out so far: {wording.money(paid, cur)} (payments sent or settled)."
                   + (f" {on_claim}: {wording.money(on_hold, cur)}." if on_hold else "")
                   + f" Still owed: {wording.money(max(owed, 0), cur)}."
                   + (f" Paid {wording.money(paid_above, cur)} more than the entitlement now says; it is not "
                      "taken back." if paid_above else "")
                   + (f" Of the money {'unclaimed' if unclaimed else 'held until claimed'}, "
                      f"{wording.money(held_above, cur)} is above the entitlement now; it has not been paid out."
                      if held_above else ""))
    if reviewed:  # possibly theirs, held: the decision above does not count them (SPEC "Nothing is lost")
        n = len(reviewed)
        out.append(f"Held in review: {n:,} scope row{'' if n == 1 else 's'} that could be this customer's, not "
                   "counted in the decision above. " + " ".join(review_sentences(reviewed)))
    out.append("")
    out += sent_message(data_dir, notice) if notice else ["What they were told: nothing yet (not notified)."]
    out += told_as_non_member(con, c)
    for e, code in zip(exposures, _not_counted(exposures, policy, ent)):
        e["counted"] = "-" if code is False else wording.counted(code)
        e["accessed_at"] = wording.when(e["accessed_at"], tz)
    out += ["", f"Exposures (accessed, in {tz} time):"] + table(
        exposures, ["accessed_at", "data", "confidence", "counted", "matched by", "file", "row"])
    if reviewed:
        for r in reviewed:
            r["accessed_at"] = wording.when(r["accessed_at"], tz)
            r["shared by"] = (f"{r['candidates']:,} customers ({r['matched_by']})"
                              if r["reason"] == AMBIGUOUS_IDENTIFIER else "-")
        out += ["", f"Rows held in review that could be this customer's (accessed, in {tz} time):"] + table(
            reviewed, ["accessed_at", "data", "confidence", "reason", "shared by", "file", "row"])
    if held:
        out += ["", "Rows naming this customer (by id, or by an email or phone resolved to them) that were not "
                "accepted:"] + table(held, ["reason", "named by", "file", "row"])
    if formerly:
        for r in formerly:
            r["accessed_at"] = wording.when(r["accessed_at"], tz)
        out += ["", "Rows naming an email or phone this customer had in an earlier customers snapshot, and no "
                "customer has now: each is a non-member's exposure under the current snapshot (not counted in the "
                f"decision above), and that address is never told it is no member (accessed, in {tz} time):"] + table(
            formerly, ["accessed_at", "data", "confidence", "named by", "file", "row"])
    if unreadable:
        out += ["", _unread(unreadable)]
    for p in payments:
        held_here = p["rail"] == CLAIM and p["status"] in LIVE_STATUSES
        p["why"] = p["why"] or (UNCLAIMED_WHY if held_here and unclaimed else RAILS[CLAIM] if held_here
                                else LEDGER_STATUSES.get(p["status"], ""))
        p["amount"] = wording.money(p["amount"], cur)
    out += ["", "Payments:"] + table(payments, ["payment id", "amount", "rail", "attempt", "status", "why", "batch",
                                                "value date", "run"])
    if claims:  # SPEC "Input: claims from customer service"
        for cl in claims:
            cl["cancelled"] = wording.money(cl["cancelled"], cur)
            # claimed at: the run's clock, to the second (found by the lifecycle review: its microseconds shown)
            cl["verified at"] = wording.when(cl["verified at"], tz)
            cl["claimed at"] = wording.when(cl["claimed at"].replace(microsecond=0), tz)
        # found by the lifecycle review: a claimant the master left out, their transfer not issued, read as paid
        # (only while their latest claim's transfer is not issued: found by the fix review)
        unpaid = c.get("current_snapshot") is not None and rows(
            con, f"SELECT 1 FROM ({unpaid_claims_sql()}) WHERE customer_id = ?", [who])
        waits = "; not paid while the current customers snapshot leaves them out, paid once one holds them again" \
            if unpaid else ""
        out += ["", f"Claims (paid by bank transfer to the claimed account{waits}):"] + table(
            claims, ["reference code", "bank", "account", "verified by", "verified at", "cancelled", "claimed at", "run"])
    return "\n".join(out + refused)


def refused_claims(con, code: str | None) -> list[str]:
    """Lines for the claims rows quoting reference code `code` (as typed, upper-cased)
    that were quarantined, with why: a table under a blank line and a heading; none when
    there are none. For a member's case and a non-member's (found by the lifecycle review:
    a claim quoting a non-member's code was listed nowhere `explain` looks)."""
    refused = rows(con, """
        SELECT q.reason, q.detail, q.file_name AS file, q.row_number AS row,
               json_extract_string(q.row_json, '$.verified_by') AS "verified by"
        FROM quarantine q
        WHERE q.kind = 'claims' AND upper(json_extract_string(q.row_json, '$.reference_code')) = ?
        ORDER BY file, row""", [code])
    for r in refused:
        r["why"] = r["detail"] or reason_text(r["reason"], "claims")  # an unverified row's own fault, when known
    return ["", "Claim rows for this reference code that were not applied:"] + table(
        refused, ["reason", "why", "file", "row", "verified by"]) if refused else []


def _left_out_decision(payments: list[dict], cur: str) -> str:
    """The decision sentence of a customer the current snapshot leaves out (found by the
    audit review: one whose only transfer came back was told "nothing is owed", as if no
    exposure had ever named them): what the ledger holds of them, by what became of it."""
    def total(keep) -> int:
        return sum(p["amount"] for p in payments if keep(p))

    sent = total(lambda p: p["status"] in LIVE_STATUSES and p["rail"] != CLAIM)
    held = total(lambda p: p["status"] in LIVE_STATUSES and p["rail"] == CLAIM)
    latest = max(payments, key=lambda p: (p["attempt"], p["payment id"]), default=None)
    came_back = latest["amount"] if latest is not None and latest["status"] == RETURNED else 0
    parts = ([f"{wording.money(sent, cur)} paid before is not taken back"] if sent else []) + (
        [f"{wording.money(held, cur)} held until claimed stays held"] if held else []) + (
        [f"their last payment, {wording.money(came_back, cur)}, came back and is not sent again unless a customers "
         "snapshot holds them again"] if came_back else [])
    return ("Decision: none now: the current customers snapshot leaves this customer out, so no decision is made "
            "for them and nothing more is paid" + ("; " + "; ".join(parts) if parts else "") + ".")


def told_as_non_member(con, c: dict) -> list[str]:
    """Lines for the messages a non-member was sent at customer `c`'s phone or email
    (as the master holds them now), before the address was theirs as a customer's: a
    caller may quote that code, which told them they are no member and get nothing
    (found by review: their case never said so). Empty when none."""
    earlier = rows(con, """
        SELECT reference_code, run_id, channel, recipient FROM notifications
        WHERE starts_with(person_key, 'nonmember:') AND recipient IN (?, ?) ORDER BY run_id, reference_code""",
                   [c.get("phone_e164"), c.get("email_norm")])
    return [f"Told before as a non-member at their {'phone' if n['recipient'] == c.get('phone_e164') else 'email'}: "
            f"reference code {n['reference_code']}, sent in run {n['run_id']} by {n['channel']}, saying they are "
            "no member and get nothing. That message was for the address before this customer was known by it; "
            "this case is theirs now." for n in earlier]


def left_the_master(con, who: str) -> dict | None:
    """A customer row for `who` when no customer of the current master has that id but
    the warehouse paid, held or told them before, or kept an address of theirs (ledger,
    notifications, claims, former_addresses): a later snapshot left them out. Every column empty, and `current_snapshot`, the file
    name of the current master; None when nothing is known of the id."""
    known = con.execute("""
        SELECT EXISTS (SELECT 1 FROM ledger WHERE customer_id = $who)
            OR EXISTS (SELECT 1 FROM notifications WHERE customer_id = $who)
            OR EXISTS (SELECT 1 FROM claims WHERE customer_id = $who)
            OR EXISTS (SELECT 1 FROM former_addresses WHERE customer_id = $who)""", {"who": who}).fetchall()[0][0]
    if not known:
        return None
    (snapshot,), = con.execute("""
        SELECT coalesce(min(file_name), '(none)') FROM ingested_files
        WHERE kind = 'customers' AND file_sha256 IN (SELECT file_sha256 FROM customers LIMIT 1)""").fetchall()
    columns = [name for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'").fetchall()]
    return {**dict.fromkeys(columns), "customer_id": who, "is_test": False, "current_snapshot": snapshot}


def former_rows(con, who: str) -> list[dict]:
    """The non-member exposures (SPEC "Identity resolution": no customer of the current
    master) whose phone or email customer `who` had in an earlier customers snapshot
    (former_addresses): data, confidence, accessed_at, named by (email or phone), file, row,
    in time order. What the current snapshot took from them, shown with their case."""
    return rows(con, f"""
        WITH mine AS (SELECT address FROM former_addresses WHERE customer_id = $who)
        SELECT n.data_category AS data, n.confidence, n.accessed_at,
               CASE WHEN n.phone_e164 IN (SELECT address FROM mine) THEN 'phone' ELSE 'email' END AS "named by",
               f.file_name AS file, n.row_number AS row
        FROM non_member_exposures n
        LEFT JOIN ({ACCEPTED_SCOPE_FILES}) f USING (file_sha256)
        WHERE n.phone_e164 IN (SELECT address FROM mine) OR n.email_norm IN (SELECT address FROM mine)
        ORDER BY n.accessed_at, file, row""", {"who": who})


def in_review(con, customer: dict) -> list[dict]:
    """The scope rows held in `review` that could be this customer's, by file name and
    row: an ambiguous_identifier row whose email (or phone, as it was matched by) is the
    customer's, and a checks_disagree row giving their customer id, email or phone.
    Each row: file, row, data, accessed_at, confidence, reason, matched_by, candidates.

    Filtered in DuckDB (the table can be large): the SQL keeps a superset, every row
    whose identifier is not pure ASCII (normalised by NFKC) and every ASCII one whose
    lower-cased email contains the customer's, or whose digits end with the customer's
    national number (every form a phone normalises from: redress/rules/identity.py);
    the pipeline's own rules then decide on those few rows in Polars, so explain holds
    the same rows the classifier held, with no second spelling of the rules."""
    email, phone = customer["email_norm"], customer["phone_e164"]
    found = rows(con, f"""
        WITH named AS (SELECT file_sha256, row_number, true AS by_id FROM scope_rows WHERE customer_id = $id)
        SELECT f.file_name AS file, r.row_number AS row, r.data_category AS data, r.accessed_at, r.confidence,
               r.reason, r.matched_by, r.candidates, r.email, r.phone,
               r.reason = $disagree AND n.by_id IS NOT NULL AS by_id
        FROM review r
        LEFT JOIN named n USING (file_sha256, row_number)
        LEFT JOIN ({ACCEPTED_SCOPE_FILES}) f USING (file_sha256)
        WHERE (r.reason = $disagree OR r.matched_by = 'email') AND $email IS NOT NULL
              AND (strlen(r.email) > length(r.email) OR contains(lower(r.email), $email))
           OR (r.reason = $disagree OR r.matched_by = 'phone') AND $national IS NOT NULL
              AND (strlen(r.phone) > length(r.phone)
                   OR ends_with(regexp_replace(r.phone, '[^0-9]', '', 'g'), $national))
           OR r.reason = $disagree AND n.by_id IS NOT NULL
        ORDER BY file, row""",
                 {"id": customer["customer_id"], "email": email, "disagree": CHECKS_DISAGREE,
                  "national": phone.removeprefix("+82") if phone else None})
    if not found:
        return []
    keys = pl.DataFrame({"email": [f["email"] for f in found], "phone": [f["phone"] for f in found]},
                        schema={"email": pl.String, "phone": pl.String}).select(
        email_norm("email").alias("email"), phone_e164("phone").alias("phone")).rows()
    return [f for f, (e, p) in zip(found, keys)
            if f["by_id"]
            or (f["reason"] == CHECKS_DISAGREE or f["matched_by"] == "email") and email is not None and e == email
            or (f["reason"] == CHECKS_DISAGREE or f["matched_by"] == "phone") and phone is not None and p == phone]


def review_sentences(held: list[dict]) -> list[str]:
    """What the agent can tell the caller of their rows held in review (`in_review`), a
    sentence per reason (SPEC "Identity resolution", "Nothing is lost"): who decides, and
    that nothing of them is paid until then."""
    out = []
    for reason, one, many in (
            (AMBIGUOUS_IDENTIFIER,
             "is held for the forensics team to decide between this customer and the other customers who share "
             "its email or phone; it is not paid until they decide",
             "are held for the forensics team to decide between this customer and the other customers who share "
             "their email or phone; they are not paid until the team decides"),
            (CHECKS_DISAGREE,
             "is held because the pipeline's rules and their own check place it differently (a bug the data "
             "engineers look into); it is not paid until they settle it",
             "are held because the pipeline's rules and their own check place them differently (a bug the data "
             "engineers look into); they are not paid until they settle it")):
        these = [h for h in held if h["reason"] == reason]
        if not these:
            continue
        per_file: dict[str, int] = {}
        for h in these:
            name = h["file"] or "(a file no longer listed)"
            per_file[name] = per_file.get(name, 0) + 1
        named = [f"{n:,} row{'' if n == 1 else 's'} of file {escape.terminal(name)}" for name, n in per_file.items()]
        which = ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]
        out.append(f"{which} {many if len(these) > 1 else one}.")
    return out


def _unread(unreadable: list[dict]) -> str:
    """One paragraph on the scope evidence whose values nobody's case could read: rows
    that could not be split into their columns and files refused whole, with at most
    three file names of each."""
    def files(names: list[str]) -> str:
        shown = ", ".join(escape.terminal(n) for n in names[:3])
        return shown + (f" and {len(names) - 3:,} more" if len(names) > 3 else "")

    parts = []
    split = [u for u in unreadable if not u["whole"]]
    whole = [u["file"] for u in unreadable if u["whole"]]
    if split:
        count = sum(u["rows"] for u in split)
        parts.append(f"{count:,} scope row{'' if count == 1 else 's'} could not be split into their columns "
                     f"({MALFORMED_ROW}), so none of their values was read, in {files([u['file'] for u in split])}")
    if whole:
        parts.append(f"{len(whole):,} scope file{'' if len(whole) == 1 else 's'} could not be read at all "
                     f"({files(whole)})")
    return ("; ".join(parts) + ". If this person's exposure is in one, it counts only once the forensics team "
            "fixes it and sends it again (quarantine lists each by file and row).")


def _not_counted(exposures: list[dict], policy: Policy | None, ent: dict | None) -> list[str | None | bool]:
    """Per exposure row, why it did not count toward the amount (a code), None when it
    did, False when unknown (no entitlement yet, or its policy cannot be read): by the
    entitle stage's own rule (redress/rules/entitlements.py), so the column cannot
    contradict the decision above it."""
    if policy is None or ent is None:
        return [False] * len(exposures)
    frame = pl.DataFrame(
        {"data_category": [e["data"] for e in exposures], "confidence": [e["confidence"] for e in exposures],
         "accessed_at": [e["accessed_at"] for e in exposures]},
        schema={"data_category": pl.String, "confidence": pl.String, "accessed_at": pl.Datetime("us", "UTC")})
    return frame.with_columns(exposure_not_counted(policy, ent["reason"]).alias("code"))["code"].to_list()
