"""`redress explain`: everything about one person, for customer service.

By customer id or by the reference code of a notification; every lookup is recorded and
failed reference-code lookups are limited (redress/customer_service/lookups.py). Shows the exposures and the
files they came from, rows held in review or quarantine for the same customer id, the
entitlement and its reason, the rail, every payment with its batch, and every claim
(the account masked to its last 4 digits, who verified the person and when) or claim
row that was not applied.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from redress import escape
from redress.customer_service import lookups
from redress.errors import RedressError, WarehouseInUse
from redress.policy import load_policy
from redress.vocabulary import ENTITLEMENT_REASONS, LIVE_STATUSES
from redress.warehouse import connect, masked_account
from redress.warehouse import path as warehouse_path
from redress.vocabulary import ACCEPTED, sql_literal

REASON_TEXT = ENTITLEMENT_REASONS


def _rows(con, sql: str, params: list) -> list[dict]:
    rel = con.execute(sql, params)
    names = [d[0] for d in rel.description]
    return [dict(zip(names, r)) for r in rel.fetchall()]


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    if not rows:
        return ["  (none)"]
    # File names and values from input files: one line each, no terminal escapes.
    cells = [[("" if r[c] is None else escape.terminal(r[c])) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  " + "  ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    return [line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells]


def _display_timezone(con) -> str:
    """Times are shown in the timezone of the policy of the latest run (people read
    their own local time), UTC when there is none."""
    latest = con.execute("SELECT parameters FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()
    if latest:
        try:
            return load_policy(Path(json.loads(latest[0][0])["policy"])).timezone
        except (RedressError, KeyError, ValueError):
            pass
    return "UTC"


REFERENCE_CODE = re.compile(r"[A-Za-z]{8}")
LOCK_WAIT_SECONDS = 3.0  # another explain holds the warehouse for a fraction of a second


def explain(data_dir: Path, who: str, by: str | None = None, *, now: datetime | None = None) -> str:
    """The case of one person as text, for customer service.

    `who` is a customer id or a reference code (8 letters); a reference code needs `by`,
    the staff id of the person asking. Every lookup is recorded in the `lookups` table and
    failed code lookups are limited (redress/customer_service/lookups.py). Raises RedressError (one line)
    when there is no warehouse, a run holds it, nothing matches, or lookups are refused.
    SPEC "The command line" (explain) and "Notifications" (reference codes)."""
    warehouse = warehouse_path(data_dir)
    if not warehouse.exists():
        raise RedressError(f"no warehouse in {data_dir}: run `redress run` first")
    asked = who.strip()
    kind = "reference_code" if REFERENCE_CODE.fullmatch(asked) else "customer_id"
    if kind == "reference_code" and by is None:
        raise RedressError("a reference code lookup needs --by STAFF_ID: verify the person first (see README)")
    staff = lookups.staff_id(by)
    at = now or datetime.now(timezone.utc)
    with _open(warehouse) as con:  # writable: the lookup is recorded
        if kind == "reference_code":
            lookups.refuse_if_guessing(con, at, staff, asked)
        try:
            text = _case(con, asked)
        except RedressError:
            lookups.record(con, at, staff, asked, kind, "no_match")
            raise
        lookups.record(con, at, staff, asked, kind, "matched")
    return text


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


def _case(con, who: str) -> str:
    con.execute("SET TimeZone = ?", [_display_timezone(con)])
    notice = None
    if REFERENCE_CODE.fullmatch(who):
        found = _rows(con, "SELECT * FROM notifications WHERE reference_code = ?", [who.upper()])
        if found:
            notice = found[0]
            if notice["customer_id"] is None:
                return _non_member(con, notice)
            who = notice["customer_id"]
    customer = _rows(con, "SELECT * FROM customers WHERE customer_id = ?", [who])
    if not customer:
        raise RedressError(f"no customer or reference code {who!r} in the warehouse")
    c = customer[0]
    if notice is None:
        found = _rows(con, "SELECT * FROM notifications WHERE customer_id = ?", [who])
        notice = found[0] if found else None
    ent = _rows(con, "SELECT * FROM entitlements WHERE customer_id = ?", [who])
    exposures = _rows(con, f"""
        SELECT e.data_category AS category, e.confidence, e.accessed_at, e.matched_by,
               f.file_name AS file, e.row_number AS row
        FROM scope_exposures e
        LEFT JOIN (SELECT file_sha256, min(file_name) AS file_name FROM ingested_files
                   WHERE status = {sql_literal(ACCEPTED)} GROUP BY ALL) f USING (file_sha256)
        WHERE e.customer_id = ? ORDER BY e.accessed_at, file, row""", [who])
    held = _rows(con, """
        SELECT q.reason, q.file_name AS file, q.row_number AS row FROM quarantine q
        WHERE q.kind = 'scope' AND json_extract_string(q.row_json, '$.customer_id') = ?
        ORDER BY file, row""", [who])
    payments = _rows(con, """
        SELECT l.payment_id, l.amount, l.rail, l.attempt, l.status, l.status_reason AS why,
               l.batch_id, b.value_date, l.run_id
        FROM ledger l JOIN batches b USING (batch_id)
        WHERE l.customer_id = ? ORDER BY l.payment_id""", [who])
    claims = _rows(con, f"""
        SELECT reference_code, bank_code, {masked_account('bank_account')} AS account, verified_by,
               verified_at, cancelled_amount AS cancelled, claimed_at, run_id
        FROM claims WHERE customer_id = ? ORDER BY claimed_at, file_sha256, row_number""", [who])
    refused = _rows(con, """
        SELECT q.reason, q.file_name AS file, q.row_number AS row, json_extract_string(q.row_json, '$.verified_by')
               AS verified_by
        FROM quarantine q
        WHERE q.kind = 'claims' AND upper(json_extract_string(q.row_json, '$.reference_code')) = ?
        ORDER BY file, row""", [notice["reference_code"] if notice else None])

    out = [f"customer {escape.terminal(c['customer_id'])}  status {escape.terminal(c['status'])}  created {c['created_at']}"
           + (f"  closed {c['closed_at']}" if c["closed_at"] else "") + ("  TEST ACCOUNT" if c["is_test"] else "")]
    out.append(f"payout method {c['payout_method']}, bank details {'valid' if c['bank_valid'] else 'not valid or none'}")
    if notice:
        out.append(f"reference code {notice['reference_code']}, notified by {notice['channel']} in run {notice['run_id']}")
    out += ["", "exposures:"] + _table(exposures, ["category", "confidence", "accessed_at", "matched_by", "file", "row"])
    if held:
        out += ["", "rows naming this customer id that were not accepted:"] + _table(held, ["reason", "file", "row"])
    out.append("")
    if ent:
        e = ent[0]
        out.append(f"entitlement under {e['policy_id']} (run {e['run_id']}): {e['reason']} - {REASON_TEXT.get(e['reason'], '')}")
        out.append(f"  tier {e['tier'] if e['tier'] is not None else '-'}, counted categories: {e['categories'] or '-'}")
        out.append(f"  base {e['base_amount']:,} KRW, amount {e['amount']:,} KRW, rail {e['rail']}")
        paid = sum(p["amount"] for p in payments if p["status"] in LIVE_STATUSES)
        out.append(f"  paid so far {paid:,} KRW; owed {max(e['amount'] - paid, 0):,} KRW")
    else:
        out.append("entitlement: none (no accepted exposure)")
    out += ["", "payments:"] + _table(payments, ["payment_id", "amount", "rail", "attempt", "status", "why", "batch_id", "value_date", "run_id"])
    if claims or refused:  # SPEC "Input: claims from customer service"
        out += ["", "claims (paid by bank transfer to the claimed account):"] + _table(
            claims, ["reference_code", "bank_code", "account", "verified_by", "verified_at", "cancelled", "claimed_at", "run_id"])
    if refused:
        out += ["", "claim rows for this reference code that were not applied:"] + _table(
            refused, ["reason", "file", "row", "verified_by"])
    return "\n".join(out)


def _non_member(con, notice: dict) -> str:
    rows = _rows(con, f"""
        SELECT n.data_category AS category, n.confidence, n.accessed_at, f.file_name AS file, n.row_number AS row
        FROM non_member_exposures n
        LEFT JOIN (SELECT file_sha256, min(file_name) AS file_name FROM ingested_files
                   WHERE status = {sql_literal(ACCEPTED)} GROUP BY ALL) f USING (file_sha256)
        WHERE n.recipient = ? ORDER BY n.accessed_at, file, row""", [notice["person_key"].removeprefix("nonmember:")])
    # Looked up by the person's key, not by the notification's recipient: an email is
    # notified at its address even when the key is a landline (SPEC "Notifications").
    out = [f"non-member {escape.terminal(notice['recipient'] or '(no contact)')} (reference code {notice['reference_code']}): "
           "a contact in a customer's address book; notified, never paid",
           f"notified by {notice['channel']} in run {notice['run_id']}", "", "exposures:"]
    return "\n".join(out + _table(rows, ["category", "confidence", "accessed_at", "file", "row"]))
