"""What each stage of a run returns: frozen dataclasses, read by field.

The report (redress/reports/summary.py), the `runs` row (redress/warehouse/runs.py) and
the flow's returned summary all read these types, so a count a stage adds is a field
the type checker and `run_counts` see, not a dict key a reader may never ask for.
`run_counts` turns every field of every stage result into plain JSON values: it is the
one function that fills `runs.counts` and the summary `redress run` returns (SPEC "The
warehouse", `runs`: counts and totals of the run).

Money is integer won (`*_krw`: KRW has no minor unit, redress/policy/ refuses any
other currency). Counts are rows or people, as each field says. No frame, no row value
and no personal data: file names, reason codes, rails, channels and numbers only.
Prefect passes these between tasks in-process.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileRead:
    """One inbox file the ingest or returns stage met: its record in `ingested_files`
    (status accepted, rejected, duplicate_file, a quarantine reason, or not_read when
    this run passed it over). `rows_read` is None when the file was not read whole;
    `detail` says why a file was not read or was refused."""
    kind: str
    file_name: str
    file_sha256: str | None
    status: str
    rows_read: int | None
    detail: str | None = None


@dataclass(frozen=True)
class IngestResult:
    """Stage 1 (SPEC "Input: customers", "Input: scope files"): the customers and
    scope files of this run, in read order; `retimed`, one line when the policy's new
    timezone had the evidence's times read again (redress/inbox/retime.py), else '';
    `gone`, a line per file read before that is no longer in the inbox as read
    (redress/inbox/new_files.py evidence_gone)."""
    files: tuple[FileRead, ...]
    retimed: str = ""
    gone: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReturnsFileRead(FileRead):
    """A returns file (SPEC "Input: returns from finance") and what its rows did:
    payments whose status moved, rows asking for the status a payment already had
    (`already_settled`), rows quarantined (a whole-file failure counts too); and in
    whole won the payments it returned and settled, and those still issued that a
    quarantined row names (redress/warehouse/ledger.py results_money)."""
    payments_applied: int = 0
    already_settled: int = 0
    rows_quarantined: int = 0
    returned_krw: int = 0
    settled_krw: int = 0
    not_applied_krw: int = 0


@dataclass(frozen=True)
class ReturnsResult:
    """Stage 1b: the returns files of this run, in read order, and their totals."""
    files: tuple[ReturnsFileRead, ...]
    payments_applied: int
    already_settled: int
    rows_quarantined: int


@dataclass(frozen=True)
class ClaimsFileRead(FileRead):
    """A claims file (SPEC "Input: claims from customer service") and what its rows
    did: claims applied, held claim payments they cancelled and the amount (won) those
    held, rows quarantined (a whole-file failure counts too)."""
    claims_applied: int = 0
    payments_cancelled: int = 0
    cancelled_krw: int = 0
    rows_quarantined: int = 0


@dataclass(frozen=True)
class ClaimsResult:
    """Stage 1c: the claims files of this run, in read order, and their totals; and,
    over every claim applied so far, the bank accounts named by more than one
    claimant's latest claim (`shared_accounts`) and those claimants
    (`claimants_sharing`): redress/warehouse/claims.py shared_accounts_sql."""
    files: tuple[ClaimsFileRead, ...]
    claims_applied: int
    payments_cancelled: int
    cancelled_krw: int
    rows_quarantined: int
    shared_accounts: int = 0
    claimants_sharing: int = 0


@dataclass(frozen=True)
class Destinations:
    """Scope rows of every accepted file (rows): read, and where each went. They
    balance: rows_read = exposure + non_member + review + quarantine (SPEC "Nothing is
    lost")."""
    rows_read: int
    exposure: int
    non_member: int
    review: int
    quarantine: int


@dataclass(frozen=True)
class DisagreeingRow:
    """A scope row held in review as checks_disagree: where it is and both answers
    (reason codes or destinations, never a row value)."""
    file_name: str
    row_number: int
    classified_as: str
    checked_as: str


@dataclass(frozen=True)
class Disagreements:
    """Rows the input checks and the classification disagree on: how many are held
    (`rows`), and the first ones by file and row number."""
    rows: int
    listed: tuple[DisagreeingRow, ...]


@dataclass(frozen=True)
class FileBalance:
    """One accepted scope file's conservation count (rows): read, per destination,
    accounted for, and whether they balance."""
    file_name: str
    rows_read: int
    exposure: int
    non_member: int
    review: int
    quarantine: int
    accounted: int
    balanced: bool


@dataclass(frozen=True)
class ValidateResult:
    """Stage 2 (SPEC "Input: scope files"): how much was classified (`mode`, `why`,
    `classified_files` new files), the rows of every accepted file per destination,
    scope rows quarantined per reason, the `scope_rows` suite's agreed counts per
    reason (`input_checks`), the rows held as checks_disagree and each file's balance."""
    mode: str
    why: str
    classified_files: int
    destinations: Destinations
    quarantine_reasons: dict[str, int]
    input_checks: dict[str, int]
    checks_disagree: Disagreements
    files: tuple[FileBalance, ...]


@dataclass(frozen=True)
class ReasonTotal:
    """Customers with an entitlement of one reason code, and their amount (won)."""
    customers: int
    amount_krw: int


@dataclass(frozen=True)
class EntitleResult:
    """Stage 3 (SPEC "Entitlement"): full or incremental and why, customers whose
    entitlement was recomputed, and the whole `entitlements` table per reason code."""
    mode: str
    why: str
    customers_recomputed: int
    by_reason: dict[str, ReasonTotal]


@dataclass(frozen=True)
class RailTotal:
    """New payments on one rail and their amount (won)."""
    payments: int
    amount_krw: int


@dataclass(frozen=True)
class TreasuryDay:
    """Bank-transfer cash this run released on one value date (ISO date), and the
    policy's daily cash cap it was held to (won)."""
    value_date: str
    amount_krw: int
    daily_cash_cap_krw: int


@dataclass(frozen=True)
class Overpayments:
    """Customers paid out more than they are now entitled to (no clawback), and by how
    much in all (won); apart from it, `held_customers` and `held_krw`: money held on
    `claim` (never paid out) above the entitlement (rules.payments.overpayments: a
    person's held money is the first in excess; finance review: it read as overpaid)."""
    customers: int
    amount_krw: int
    held_customers: int = 0
    held_krw: int = 0


@dataclass(frozen=True)
class ReleaseResult:
    """A waiting plan released by `redress approve` (SPEC "Approval before release"): its
    batches, payments and amount (won), now issued; of them, `held_payments` and
    `held_krw` are held on the `claim` rail, not paid out until the person claims;
    `claim_deadline_passed`: payout.claim_deadline has passed at the plan's run date, so
    that money is unclaimed, not held (the reports' word)."""
    batches: int
    payments: int
    amount_krw: int
    held_payments: int = 0
    held_krw: int = 0
    claim_deadline_passed: bool = False


@dataclass(frozen=True)
class DisburseResult:
    """Stage 4 (SPEC "Payments", "Treasury"): new batches and payments, their amount
    (won), per rail, bank-transfer cash per value date, overpayment exceptions, and the
    batch folders a crashed run left that this run published. `awaiting_approval`:
    these payments and batches are a plan waiting for approval, not issued (SPEC
    "Approval before release"). `shared_accounts`, `payees_sharing`, `shared_krw`: the
    bank accounts this run's bank transfers go to for more than one customer, those
    customers and their money (redress/disbursement/planning.py shared_accounts).
    `changed_payees`, `changed_krw`: this run's bank transfers to an account that
    replaced the customer's earlier one in a customers snapshot, and their money
    (planning.changed_accounts). `claim_deadline_passed`: as ReleaseResult's.
    `folders_gone`, `gone_payments`, `gone_krw`: the batches released before this run
    whose folder is no longer in the outbox, their payments and money
    (redress/outbox/audit.py folders_gone). `before_today_payments`, `before_today_krw`,
    `before_today_from`, `before_today_until`: this run's bank transfers dated before
    `today` (where the policy pays; ISO dates), as a catch-up run dates them
    (redress/rules/plans.py dated_before_today)."""
    batches: int
    payments: int
    amount_krw: int
    per_rail: dict[str, RailTotal]
    treasury: tuple[TreasuryDay, ...]
    overpayments: Overpayments
    recovered_batches: tuple[str, ...]
    awaiting_approval: bool = False
    shared_accounts: int = 0
    payees_sharing: int = 0
    shared_krw: int = 0
    changed_payees: int = 0
    changed_krw: int = 0
    claim_deadline_passed: bool = False
    folders_gone: int = 0
    gone_payments: int = 0
    gone_krw: int = 0
    before_today_payments: int = 0
    before_today_krw: int = 0
    before_today_from: str | None = None
    before_today_until: str | None = None
    today: str | None = None


@dataclass(frozen=True)
class NotifyResult:
    """Stage 5 (SPEC "Notifications"): people told for the first time, per channel and
    per template; `withheld`: the non-member addresses never told, by this run or an
    earlier one, because a member had them in an earlier customers snapshot
    (redress/rules/notifications.py WITHHELD): a running total, not this run's.
    `told_otherwise`, `told_otherwise_krw`: the customers this run pays or holds money
    for whose one message, sent by an earlier run, said otherwise (told they get nothing,
    or another rail: redress/rules/notifications.py TOLD_OTHERWISE), and that money; the
    SPEC tells a person once, so they are listed for customer service, not told again;
    `told_otherwise_list`: where, relative to the data folder (the planning run's
    quarantine folder, for an approval too), None when nobody is listed."""
    notifications: int
    per_channel: dict[str, int]
    per_template: dict[str, int]
    withheld: int = 0
    told_otherwise: int = 0
    told_otherwise_krw: int = 0
    told_otherwise_list: str | None = None


# The stage results a run records, in pipeline order: the fields of RunSummary that
# run_counts writes to `runs.counts`.
STAGES = ("ingest", "returns", "claims", "validate", "entitle", "disburse", "notify")


@dataclass
class RunSummary:
    """A run as far as it got: each stage's result once the stage finished, None
    before; `report` is the text of summary.md once written. Filled in by the parent
    flow, stage by stage, so a failed run's report shows what was done."""
    run_id: str
    ingest: IngestResult | None = None
    returns: ReturnsResult | None = None
    claims: ClaimsResult | None = None
    validate: ValidateResult | None = None
    entitle: EntitleResult | None = None
    disburse: DisburseResult | None = None
    notify: NotifyResult | None = None
    report: str | None = field(default=None, repr=False)
    # Earlier runs that stopped before writing their report, whose report this run wrote
    # (tasks/report.py report_killed_runs); not a stage, so not in run_counts.
    earlier_reports: tuple[str, ...] = ()
    # The plans still waiting for approval that this run superseded when it started
    # (SPEC "Approval before release"; redress/warehouse/plans.py superseded_by).
    superseded_plans: tuple[str, ...] = ()

    def files_read(self) -> list[FileRead]:
        """Every inbox file this run met (customers, scope, returns, claims), in stage order."""
        return [*(self.ingest.files if self.ingest else ()), *(self.returns.files if self.returns else ()),
                *(self.claims.files if self.claims else ())]

    def as_dict(self) -> dict:
        """The whole summary as plain JSON values (what the flow returns): run_id, the
        stage results (run_counts) and the report text."""
        return {"run_id": self.run_id, **run_counts(self), "report": self.report}


def run_counts(summary: RunSummary) -> dict:
    """Every field of every stage result as plain JSON values (tuples as lists), keyed
    by stage; a stage that did not finish is null. What `runs.counts` stores."""
    return json.loads(json.dumps(
        {stage: _plain(getattr(summary, stage)) for stage in STAGES}, sort_keys=True))


def _plain(result):
    return None if result is None else dataclasses.asdict(result)
