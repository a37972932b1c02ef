"""What the run report page (report.html, redress/reports/run_report.py) shows beyond
RunFacts: the funnel's people and money, entitlements per reason, the approval state and
what changed since the previous run. Typed and read by field, like RunFacts; aggregates
only, never a person's data. Kept apart from facts.py so summary.md's facts stay as they
are (issue 13 section 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from redress.rules.payments import RUN_ORDER, bank_returns_sql, pending_sql
from redress.rules.plans import CLAIMED, FIRST, KINDS, REISSUE, TOP_UP
from redress.vocabulary import ACCEPTED, CLAIM, ELIGIBLE, LIVE_STATUSES, WAITING, sql_list, sql_literal
from redress.sql import one


@dataclass(frozen=True)
class People:
    """The whole warehouse after this run: distinct exposures (customer, category),
    customers with a member exposure, eligible customers and what they are entitled to,
    and the ledger's money paid out (issued or settled, off the claim rail; won). Money
    on claim is the reconciliation's, held or unclaimed by the claim deadline (finance
    review: a deadline-blind `held_krw` called unclaimed money held)."""
    exposures: int
    exposed_customers: int
    eligible_customers: int
    entitled_krw: int
    paid_krw: int


@dataclass(frozen=True)
class ReasonRow:
    """Customers with an entitlement of one reason code, and their amount (won)."""
    reason: str
    customers: int
    amount_krw: int


@dataclass(frozen=True)
class Approval:
    """The run's disbursement plan (SPEC "Approval before release"): state (a
    PLAN_STATES code; or, with no plan, `not_required` when the run issued payments
    without one, `nothing_planned` when it issued none), who
    decided and when (ISO, policy timezone as stored), payments and won planned;
    `expires_at` (ISO) while it waits, the time after which it can no longer be decided;
    `finished_by` when someone other than the decider gave the decision again, after it
    did not finish, and their command did its last steps (plans.completed_by)."""
    state: str
    decided_by: str | None
    decided_at: str | None
    payments: int
    amount_krw: int
    expires_at: str | None = None
    finished_by: str | None = None
    decided_os_user: str | None = None  # the account of the process that recorded the decision


@dataclass(frozen=True)
class KindTotal:
    """This run's new (or planned) payments of one kind (redress/rules/plans.py KINDS)."""
    kind: str
    payments: int
    amount_krw: int


@dataclass(frozen=True)
class Changes:
    """What this run added: `revision` when an earlier run exists; exposures
    (customer, category) found only in scope files first accepted by this run; people
    told for the first time (customers, non-members); payments per kind."""
    revision: bool
    new_exposures: int
    new_customers: int
    new_non_members: int
    kinds: tuple[KindTotal, ...]


@dataclass(frozen=True)
class ReportFacts:
    people: People
    reasons: tuple[ReasonRow, ...]
    approval: Approval
    changes: Changes


NOT_REQUIRED = "not_required"
# A run with no plan that issued nothing: under any policy, nothing to approve (found by
# the accessibility review: such a run under a policy asking for approval said "not
# required: the policy releases payments without approval").
NOTHING_PLANNED = "nothing_planned"


def report_facts(con: duckdb.DuckDBPyConnection, run_id: str,
                 exposures: tuple[int, int, int] | None = None) -> ReportFacts:
    """The report facts of run `run_id`, each list in a stable order. `exposures`: the
    run's `exposure_pairs` as counted before (redress/warehouse/runs.py
    recorded_exposures), else counted here."""
    exposures, customers, new_exposures = exposures or exposure_pairs(con, run_id)
    return ReportFacts(people=_people(con, exposures, customers), reasons=_reasons(con),
                       approval=_approval(con, run_id), changes=_changes(con, run_id, new_exposures))


def exposure_pairs(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, int, int]:
    """(distinct exposures (customer, category), customers among them, exposures only
    the scope files this run accepted hold: the evidence the revision added; a file sent
    again under another name is a duplicate and adds none), from one grouping of
    scope_exposures (64M rows at scale) rather than one per figure."""
    row = one(con.execute(f"""
        WITH mine AS (SELECT file_sha256 FROM ingested_files
                      WHERE run_id = ? AND kind = 'scope' AND status = {sql_literal(ACCEPTED)}),
        pairs AS (SELECT customer_id, data_category,
                         bool_and(file_sha256 IN (SELECT file_sha256 FROM mine)) AS only_new
                  FROM scope_exposures GROUP BY ALL)
        SELECT count(*), count(DISTINCT customer_id), count(*) FILTER (only_new) FROM pairs""", [run_id]))
    return int(row[0]), int(row[1]), int(row[2])


def _people(con, exposures: int, customers: int) -> People:
    row = one(con.execute(f"""
        SELECT (SELECT count(*) FILTER (reason = {sql_literal(ELIGIBLE)}) FROM entitlements),
               (SELECT coalesce(sum(amount), 0) FROM entitlements),
               (SELECT coalesce(sum(amount) FILTER (status IN {sql_list(LIVE_STATUSES)}
                                                    AND rail <> {sql_literal(CLAIM)}), 0) FROM ledger)
    """))
    return People(exposures, customers, *(int(v) for v in row))


def _reasons(con) -> tuple[ReasonRow, ...]:
    rows = con.execute("SELECT reason, count(*), coalesce(sum(amount), 0) FROM entitlements "
                       "GROUP BY ALL ORDER BY reason").fetchall()
    return tuple(ReasonRow(r, int(n), int(a)) for r, n, a in rows)


def _approval(con, run_id: str) -> Approval:
    plan = one(con.execute("SELECT state, decided_by, decided_at, payments, amount, expires_at, completed_by, "
                           "decided_os_user FROM plans WHERE run_id = ?", [run_id]))
    if plan is None:
        (issued,), = con.execute("SELECT count(*) FROM ledger WHERE run_id = ?", [run_id]).fetchall()
        return Approval(NOT_REQUIRED if issued else NOTHING_PLANNED, None, None, 0, 0)
    state, by, at, payments, amount, expires_at, completed_by, account = plan
    return Approval(state, by, at.isoformat() if at is not None else None, int(payments), int(amount),
                    expires_at=expires_at.isoformat() if state == WAITING else None,
                    finished_by=completed_by if completed_by not in (None, by) else None, decided_os_user=account)


def _changes(con, run_id: str, new_exposures: int) -> Changes:
    revision = con.execute("SELECT count(*) FROM runs WHERE run_id <> ? AND started_at < "
                           "(SELECT started_at FROM runs WHERE run_id = ?)", [run_id, run_id]).fetchall()[0][0] > 0
    customers, non_members = one(con.execute(
        "SELECT count(customer_id), count(*) - count(customer_id) FROM notifications WHERE run_id = ?",
        [run_id]))
    return Changes(revision, int(new_exposures), int(customers), int(non_members), _kinds(con, run_id))


def _kinds(con, run_id: str) -> tuple[KindTotal, ...]:
    plan = one(con.execute("SELECT state, summary FROM plans WHERE run_id = ?", [run_id]))
    if plan is not None and plan[0] == WAITING:  # nothing released yet: what the plan would pay
        kinds = json.loads(plan[1])["kinds"]
        found = {k: (v["payments"], v["amount_krw"]) for k, v in kinds.items()}
    else:
        # The rule of redress/rules/plans.py payment_kinds, in SQL over the ledger so that
        # the report never loads a 33.7M-row ledger into memory: the ledger before this
        # run is its rows of earlier runs (run ids sort as they ran), the claimants those
        # whose claim a run up to this one applied; a page written again after later runs
        # counts as it did.
        rows = con.execute(f"""
            WITH mine AS (SELECT customer_id, rail, amount FROM ledger WHERE run_id = $run_id),
            before AS (SELECT customer_id, rail, status, attempt, run_id, updated_run_id FROM ledger
                       WHERE run_id < $run_id),
            run_seq AS ({RUN_ORDER}),
            ordered AS (SELECT b.*, i.seq AS issued_seq, u.seq AS back_seq FROM before b
                        LEFT JOIN run_seq i ON i.run_id = b.run_id LEFT JOIN run_seq u ON u.run_id = b.updated_run_id),
            came AS ({pending_sql("ordered")}),  -- came back and not sent again yet
            latest AS (SELECT customer_id, c.customer_id IS NOT NULL AS came_back,
                              bool_or(status IN {sql_list(LIVE_STATUSES)}) AS live
                       FROM ordered LEFT JOIN came c USING (customer_id) GROUP BY ALL),
            sent_since AS (SELECT customer_id FROM ({bank_returns_sql("ordered")})),
            claimants AS (SELECT DISTINCT customer_id FROM claims WHERE run_id <= $run_id)
            SELECT CASE WHEN m.rail = {sql_literal(CLAIM)} THEN {sql_literal(CLAIM)}
                        WHEN coalesce(l.came_back, false) AND m.customer_id IN (SELECT customer_id FROM claimants)
                             AND m.customer_id NOT IN (SELECT customer_id FROM sent_since) THEN $claimed
                        WHEN coalesce(l.came_back, false) THEN $reissue
                        WHEN coalesce(l.live, false) THEN $top_up
                        ELSE $first END AS kind, count(*), sum(m.amount)
            FROM mine m LEFT JOIN latest l USING (customer_id) GROUP BY ALL""",
                           {"run_id": run_id, "claimed": CLAIMED, "reissue": REISSUE, "top_up": TOP_UP,
                            "first": FIRST}).fetchall()
        found = {k: (n, a) for k, n, a in rows}
    return tuple(KindTotal(k, int(found.get(k, (0, 0))[0]), int(found.get(k, (0, 0))[1] or 0)) for k in KINDS)
