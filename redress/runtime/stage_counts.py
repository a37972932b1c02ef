"""The counts of a finished stage as one short line for people (redress/runtime/progress.py):
`3,370,000 customers rows · 6,412,118 scope rows read · 2 files quarantined`.

Read from the stage results (redress/results.py), the same values `runs.counts` stores,
so the console and the warehouse never disagree. Numbers with thousands separators,
money in won; no personal data (counts only).
"""

from __future__ import annotations

from redress import results as r
from redress.vocabulary import ACCEPTED, CLAIM, DUPLICATE_FILE, ELIGIBLE, NOT_READ


def counted(n: int, noun: str) -> str:
    """`1 payment`, `2 payments`, `1 batch`, `3 batches`."""
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {noun}{'es' if noun.endswith(('ch', 'sh', 's', 'x')) else 's'}"


def _files(files: tuple[r.FileRead, ...]) -> list[str]:
    new = [f for f in files if f.status not in (DUPLICATE_FILE, NOT_READ)]
    parts = [counted(len(new), "new file")]
    refused = sum(f.status != ACCEPTED for f in new)
    duplicates = sum(f.status == DUPLICATE_FILE for f in files)
    not_read = sum(f.status == NOT_READ for f in files)
    if refused:
        parts.append(f"{refused:,} quarantined whole")
    if duplicates:
        parts.append(counted(duplicates, "duplicate"))
    if not_read:
        parts.append(f"{not_read:,} not read (the log and the summary say why)")
    return parts


def _ingest(result: r.IngestResult) -> list[str]:
    def rows(kind: str) -> int:
        return sum(f.rows_read or 0 for f in result.files if f.kind == kind and f.status == ACCEPTED)

    return [f"{rows('customers'):,} customers rows", f"{rows('scope'):,} scope rows read", *_files(result.files)]


def _returns(result: r.ReturnsResult) -> list[str]:
    return [*_files(result.files), f"{counted(result.payments_applied, 'payment')} applied",
            f"{counted(result.rows_quarantined, 'row')} quarantined"]


def _claims(result: r.ClaimsResult) -> list[str]:
    shared = ([f"{counted(result.claimants_sharing, 'claimant')} sharing "
               f"{counted(result.shared_accounts, 'bank account')} (see summary.md)"] if result.shared_accounts else [])
    return [*_files(result.files), f"{counted(result.claims_applied, 'claim')} applied",
            f"{counted(result.rows_quarantined, 'row')} quarantined", *shared]


def _validate(result: r.ValidateResult) -> list[str]:
    d = result.destinations
    # Destinations cover every accepted scope file, not only this run's new ones (as
    # summary.md's "Scope rows (all accepted files)"): the line says so.
    return [f"all accepted files: {d.rows_read:,} scope rows", f"{d.exposure:,} exposures", f"{d.non_member:,} non-member",
            f"{d.review:,} in review", f"{d.quarantine:,} quarantined"]


def _entitle(result: r.EntitleResult) -> list[str]:
    people = sum(t.customers for t in result.by_reason.values())
    eligible = result.by_reason.get(ELIGIBLE, r.ReasonTotal(0, 0))
    return [f"{people:,} customers", f"{eligible.customers:,} eligible", f"{eligible.amount_krw:,} KRW",
            f"{result.customers_recomputed:,} recomputed"]


def _money(payments: int, batches: int, amount_krw: int, held_payments: int, held_krw: int,
           unclaimed: bool) -> list[str]:
    """Payments and batches, the won paid out apart from the won held on the claim rail,
    which leaves nobody's account until the person claims it; past the claim deadline
    (`unclaimed`) that money is unclaimed, as the reports call it (found by the audit
    review: the console said held where summary.md said unclaimed)."""
    parts = [counted(payments, "payment"), counted(batches, "batch"), f"{amount_krw - held_krw:,} KRW to pay out"]
    if held_payments:
        parts.append(f"{held_krw:,} KRW {'unclaimed on claim, deadline passed' if unclaimed else 'held on claim'} "
                     f"({counted(held_payments, 'payment')})")
    return parts


def _disburse(result: r.DisburseResult) -> list[str]:
    held = result.per_rail.get(CLAIM, r.RailTotal(0, 0))
    parts = _money(result.payments, result.batches, result.amount_krw, held.payments, held.amount_krw,
                   result.claim_deadline_passed)
    shared = ([f"{counted(result.payees_sharing, 'payee')} sharing {counted(result.shared_accounts, 'bank account')} "
               "(see summary.md)"] if result.shared_accounts else [])
    changed = ([f"{counted(result.changed_payees, 'payee')} paid to a changed bank account (see summary.md)"]
               if result.changed_payees else [])
    gone = ([f"{counted(result.folders_gone, 'released batch folder')} gone from the outbox ({result.gone_krw:,} KRW; "
             "see summary.md)"] if result.folders_gone else [])
    past = ([f"{counted(result.before_today_payments, 'bank transfer')} dated before today ({result.before_today_krw:,} "
             "KRW; see summary.md)"] if result.before_today_payments else [])
    return parts + shared + changed + gone + past + (["waiting for approval"] if result.awaiting_approval else [])


def _release(result: r.ReleaseResult) -> list[str]:
    return _money(result.payments, result.batches, result.amount_krw, result.held_payments, result.held_krw,
                  result.claim_deadline_passed)


def _notify(result: r.NotifyResult) -> list[str]:
    return [f"{result.notifications:,} people notified"] + (
        [f"{result.withheld:,} non-member address(es) never told, in all: a member had it"] if result.withheld else []) + (
        [f"{counted(result.told_otherwise, 'customer')} paid now, told otherwise before (listed in "
         f"{result.told_otherwise_list or 'quarantine/<run id>/told_otherwise.csv'})"]
        if result.told_otherwise else [])


_BY_TYPE = {r.IngestResult: _ingest, r.ReturnsResult: _returns, r.ClaimsResult: _claims,
            r.ValidateResult: _validate, r.EntitleResult: _entitle, r.DisburseResult: _disburse,
            r.ReleaseResult: _release, r.NotifyResult: _notify}


def counts_text(stage: str, result: object) -> str:
    """The line's counts for a stage's result, joined by ` · `; empty for a result that
    carries no counts (the report's text)."""
    describe = _BY_TYPE.get(type(result))
    return " · ".join(describe(result)) if describe else ""
