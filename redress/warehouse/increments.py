"""Full or incremental: the one place that decides how much evidence a run re-reads.

The rule (issue 10):

- A scope row's classification (SPEC "Row rules, then identity") depends only on the row
  itself, the current customer master (its customer ids, normalised keys and created_at)
  and the policy's categories. An entitlement (SPEC "Eligibility and entitlement")
  depends only on the customer's exposures, the customer's master row and the policy.
- So a run's **basis** is: the sha256 of the current customers snapshot (the content the
  `customers` table was promoted from), the sha256 of the policy file, and RULES_VERSION,
  a constant of this module bumped whenever classification, identity normalisation or
  entitlement code changes meaning. Each successful classification records, per
  accepted scope file, the basis it was classified under (`classified_files`).
- Same basis as the recorded one: **incremental**. Only the rows of accepted scope files
  not yet classified under it are classified, checked and appended; every earlier row
  would be classified exactly as before (same row, same master, same policy, same code).
  Only customers with an exposure from such a file are re-entitled.
- Anything else (no record yet, a new customers snapshot, a changed policy file, a new
  RULES_VERSION, a recorded file that is no longer accepted): **full**, everything
  classified again as before issue 10, and every entitlement recomputed.
- Entitlements with `budget.total_cap` > 0 are always recomputed for everyone: the
  pro-rata factor depends on every customer's base amount (tasks/entitle.py).

`classified_files.entitled` records whether the entitlements already include a file's
exposures: validate appends files with entitled = false in the same transaction as their
outcome rows, and entitle sets it in the same transaction as the entitlement rows it
replaces, so a run killed between the two stages re-entitles on the rerun.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
from redress.vocabulary import ACCEPTED, sql_literal

# Bump when redress/rules/classify.py, redress/rules/identity.py, redress/checks/input_checks.py,
# redress/rules/entitlements.py or the non-member key (tasks/validate.py) change what they decide: every warehouse then takes the full
# path once, and the master's stored keys are normalised again.
RULES_VERSION = "2026-12-07.2"

FULL, INCREMENTAL = "full", "incremental"


@dataclass(frozen=True)
class Basis:
    master_sha256: str  # the content of the customers snapshot in `customers` ('' when none)
    policy_sha256: str
    rules_version: str = RULES_VERSION


@dataclass(frozen=True)
class Plan:
    """What validate does this run: `mode` full | incremental, `files` the accepted scope
    files (sha256, sorted) whose rows it classifies, `why` one line for the log and the
    stage result, `renormalise` whether the master's stored keys must be normalised
    again: no record says they were computed under this RULES_VERSION, and the master
    was not promoted by this run (whose ingest computed them with this code)."""

    mode: str
    basis: Basis
    files: tuple[str, ...]
    why: str
    renormalise: bool = field(default=False)


def current_basis(con: duckdb.DuckDBPyConnection, policy_sha256: str) -> Basis:
    """The basis of this run: the master's snapshot sha256 (several, joined, should a
    warehouse ever hold rows of more than one) and the policy file's."""
    shas = [r[0] for r in con.execute("SELECT DISTINCT file_sha256 FROM customers ORDER BY 1").fetchall()]
    return Basis(",".join(shas), policy_sha256)


def plan(con: duckdb.DuckDBPyConnection, policy_sha256: str, run_id: str | None = None) -> Plan:
    """Decide full or incremental (module docstring) from the warehouse as committed.
    `run_id`: this run's; a master promoted by this very run had its keys normalised by
    this code, so it needs no second normalisation even with nothing recorded."""
    basis = current_basis(con, policy_sha256)
    fresh_master = bool(run_id) and con.execute(f"""
        SELECT count(*) FROM ingested_files WHERE kind = 'customers' AND status = {sql_literal(ACCEPTED)}
        AND run_id = ? AND file_sha256 IN (SELECT DISTINCT file_sha256 FROM customers)""", [run_id]).fetchall()[0][0] > 0
    accepted = [r[0] for r in con.execute(f"""
        SELECT DISTINCT file_sha256 FROM ingested_files WHERE kind = 'scope' AND status = {sql_literal(ACCEPTED)}
        ORDER BY 1""").fetchall()]
    recorded = con.execute("""
        SELECT DISTINCT master_sha256, policy_sha256, rules_version FROM classified_files""").fetchall()
    classified = {r[0] for r in con.execute("SELECT file_sha256 FROM classified_files").fetchall()}
    full = Plan(FULL, basis, tuple(accepted), "", renormalise=not fresh_master)
    if not recorded:
        return _why(full, "full: nothing classified yet")
    if len(recorded) > 1:
        return _why(full, "full: files classified under different bases")
    master, policy, rules = recorded[0]
    if rules != basis.rules_version:
        return _why(full, f"full: classification rules changed ({rules} -> {basis.rules_version})")
    full = Plan(FULL, basis, tuple(accepted), "", renormalise=False)
    if master != basis.master_sha256:
        return _why(full, "full: new customers snapshot")
    if policy != basis.policy_sha256:
        return _why(full, "full: policy changed")
    if classified - set(accepted):
        return _why(full, "full: a classified scope file is no longer accepted")
    new = tuple(f for f in accepted if f not in classified)
    return Plan(INCREMENTAL, basis, new, f"incremental: {len(new):,} new file{'' if len(new) == 1 else 's'}")


def _why(p: Plan, why: str) -> Plan:
    return Plan(p.mode, p.basis, p.files, why, p.renormalise)


def record_classified(con: duckdb.DuckDBPyConnection, p: Plan, run_id: str) -> None:
    """Inside the caller's transaction: `p.files` are classified under `p.basis`, not yet
    entitled. A full plan replaces every earlier record (all files were re-classified)."""
    if p.mode == FULL:
        con.execute("DELETE FROM classified_files")
    b = p.basis
    con.execute("""
        INSERT INTO classified_files
        SELECT unnest(?::VARCHAR[]), ?, ?, ?, ?, false""",
                [list(p.files), b.master_sha256, b.policy_sha256, b.rules_version, run_id])


def pending_entitlement(con: duckdb.DuckDBPyConnection) -> tuple[bool, list[str]]:
    """(whether any file's exposures are already in `entitlements`, the files whose
    exposures are not yet). None entitled means the last classification was full (or
    nothing was ever entitled): every entitlement must be recomputed."""
    rows = con.execute("SELECT file_sha256, entitled FROM classified_files ORDER BY 1").fetchall()
    return any(e for _, e in rows), [f for f, e in rows if not e]


def mark_entitled(con: duckdb.DuckDBPyConnection) -> None:
    """Inside the caller's transaction: every classified file is in `entitlements`."""
    con.execute("UPDATE classified_files SET entitled = true WHERE NOT entitled")
