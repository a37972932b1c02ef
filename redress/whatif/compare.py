"""Every candidate policy priced over one warehouse, each customer read once.

Tens of millions of exposed customers are far fewer kinds of customer as far as the
rules can tell. Rules 2 and 3 read an exposure's category, its confidence and which side
of each candidate's window edges its time lies on (rules.entitlements.window_edges):
DuckDB groups the exposures by that signature (a few dozen), then every exposed customer
by the set of signatures they have, as a bit mask, joined with what the other rules and
the disburse rule read of them: status, which side of the window starts the closing date
lies on, test flag, payout method, bank validity, the entitlement in force and the
payment history (rules.payments.payment_history, run in Polars). Customers alike in all
of these are one class (10,295 of 32.3M exposed customers at 33.7M), counted; they are
priced per policy by the entitle stage's own rule (rules.entitlements.decided) on one
representative each, weighted by their count. The only figure that depends on who comes
first is the split of bank transfers into value days, in customer_id order: the
customers of the classes a policy pays by transfer are read in that order from the
per-customer TEMP table (class_order). Figures in redress/whatif/figures.py. Reads
only: the TEMP table is dropped before returning.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import polars as pl

from redress.policy import Policy
from redress.rules.entitlements import (decided, passing_base_sum, signature_sets, summary_from_signatures,
                                        window_edges)
from redress.rules.payments import LEDGER_SQL, payment_history
from redress.warehouse import memory_limit
from redress.whatif.figures import already_paid, figures, in_force_counts

# What `figures` reads of a priced class: the decision and the payment history.
_PRICED = ("class", "customers", "reason", "tier", "amount", "rail", "in_force", "paid", "came_back",
           "bank_returns", "claimed")
# What makes two exposed customers alike to every rule (besides their signature mask).
_KEYS = ("status", "closed_side", "is_test", "payout_method", "bank_valid", "in_force", "paid", "came_back",
         "bank_returns", "claimed")

# Every exposure: the warehouse's (evidence under every policy, only_for = -1) and the
# candidates' own (rows a candidate's row rules would accept: only_for = its position),
# when there are any: a union with an empty frame still costs seconds at 64M rows.
_EXPOSURES = """
    SELECT customer_id, data_category, confidence, accessed_at, -1::BIGINT AS only_for FROM scope_exposures"""
_EXTRA = """
    UNION ALL
    SELECT customer_id, data_category, confidence, accessed_at, only_for FROM whatif_extra_exposures"""

# The signature of an exposure as one number; $categories and $confidences list the
# values met (a value not listed, NULL, takes position 0); $sides, $policies: how many.
_CODE = """((coalesce(list_position($categories, data_category), 0) * (len($confidences) + 1)
             + coalesce(list_position($confidences, confidence), 0)) * $sides + side) * $policies + only_for + 1"""

EXTRA_SCHEMA = {"customer_id": pl.String, "data_category": pl.String, "confidence": pl.String,
                "accessed_at": pl.Datetime("us", "UTC"), "only_for": pl.Int64}


def _side(column: str, starts: list, ends: list) -> str:
    """SQL: the number of window edges `column` (an instant) has passed (>= a start,
    > an end); NULL when it is NULL. Every edge is a step that turns on once, so the
    count tells the sides of all of them. Edges are bound parameters $s0.., $e0.."""
    terms = [f"({column} >= $s{i})::INTEGER" for i in range(len(starts))]
    terms += [f"({column} > $e{i})::INTEGER" for i in range(len(ends))]
    return " + ".join(terms) or "0"


def _masks(words: int) -> str:
    return ", ".join(f"bit_or(CASE WHEN sig // 64 = {w} THEN 1::UBIGINT << (sig % 64)::UBIGINT "
                     f"ELSE 0::UBIGINT END) AS mask{w}" for w in range(words))


def _sig_of_code(signatures: pl.DataFrame) -> list[int | None]:
    """The signature number of every code from 0 to the largest (None: no exposure has
    that code), for SQL to look up in one step per exposure: list_extract($sigs, code + 1)."""
    sigs = [None] * (int(signatures["code"].max() or 0) + 1)
    for sig, code in signatures.select("sig", "code").iter_rows():
        sigs[code] = sig
    return sigs


def exposed_classes(con: duckdb.DuckDBPyConnection, policies: list[Policy], extra: pl.DataFrame,
                    history: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(signatures, classes, mask words) over `con`'s tables scope_exposures, customers
    and entitlements, the `extra` exposures (EXTRA_SCHEMA) and the payment `history`
    (payment_history's columns); leaves the TEMP table whatif_people (customer_id, key: the
    class's hash) for `class_order`.

    signatures: sig, data_category, confidence, accessed_at (the earliest of the
    signature), only_for. classes: class (UInt32, from 0), key, customers (how many),
    mask0.. (UInt64), status, closed_at (the earliest of the class: every one of them is
    on the same side of each window start, in UTC), is_test, payout_method, bank_valid,
    in_force (KRW; null when none), paid, came_back, bank_returns, claimed (null without
    a history).

    Raises ValueError when two classes share a key (a 64-bit hash: never seen)."""
    starts, ends = window_edges(policies)
    exposures = _EXPOSURES + (_EXTRA if extra.height else "")
    edges = {f"s{i}": t for i, t in enumerate(starts)} | {f"e{i}": t for i, t in enumerate(ends)}
    con.register("whatif_extra_exposures", extra)
    con.register("whatif_history", history)
    try:
        found = con.sql(f"""
            SELECT data_category, confidence, {_side('accessed_at', starts, ends)} AS side, only_for,
                   min(accessed_at) AS accessed_at
            FROM ({exposures}) GROUP BY ALL""", params=edges).pl()
        code = {"categories": sorted(found["data_category"].drop_nulls().unique().to_list()),
                "confidences": sorted(found["confidence"].drop_nulls().unique().to_list()),
                "sides": len(starts) + len(ends) + 1, "policies": len(policies) + 1}
        con.register("whatif_found", found)
        # numbered in code order, which is fixed: the same warehouse gives the same masks
        signatures = (con.sql(f"SELECT *, {_CODE} AS code FROM whatif_found", params=code).pl()
                      .sort("code").with_row_index("sig")
                      .with_columns(pl.col("sig").cast(pl.Int64), pl.col("accessed_at").dt.convert_time_zone("UTC")))
        words = max(1, -(-signatures.height // 64))
        masks = [f"mask{w}" for w in range(words)]
        keys = ", ".join(masks + list(_KEYS))
        con.execute("DROP TABLE IF EXISTS whatif_people")
        con.execute(f"""
            CREATE TEMP TABLE whatif_people AS SELECT *, hash({keys}) AS key FROM (
                SELECT g.*, c.status, c.closed_at, {_side('c.closed_at', starts, [])} AS closed_side, c.is_test,
                       c.payout_method, c.bank_valid, f.amount AS in_force, h.paid, h.came_back, h.bank_returns,
                       h.claimed
                FROM (SELECT customer_id, {_masks(words)}
                      FROM (SELECT customer_id, list_extract($sigs, {_CODE} + 1) AS sig
                            FROM (SELECT *, {_side('accessed_at', starts, ends)} AS side FROM ({exposures})))
                      GROUP BY customer_id) g
                LEFT JOIN customers c USING (customer_id)
                LEFT JOIN entitlements f USING (customer_id)
                LEFT JOIN whatif_history h USING (customer_id))""",
                    edges | code | {"sigs": _sig_of_code(signatures)})
        classes = con.sql(f"""
            SELECT key, {keys}, count(*) AS customers, min(closed_at) AS closed_at
            FROM whatif_people GROUP BY ALL""").pl()
    finally:
        for name in ("whatif_extra_exposures", "whatif_history", "whatif_found"):
            con.unregister(name)
    if classes["key"].n_unique() != classes.height:
        raise ValueError("two kinds of customer share a hash; what-if cannot tell them apart")
    # status and payout method take a handful of values: 4 bytes a row, not 16
    classes = classes.sort("key").with_row_index("class").with_columns(
        pl.col("closed_at").dt.convert_time_zone("UTC"), pl.col("status", "payout_method").cast(pl.Categorical))
    return signatures.drop("code"), classes, words


def class_order(con: duckdb.DuckDBPyConnection, classes: pl.DataFrame, wanted: np.ndarray) -> np.ndarray:
    """The class of every exposed customer whose class is one of `wanted`, in customer_id
    order (the order the disburse stage cuts batches in), from the TEMP table that
    exposed_classes left: the bank transfers of one policy are a few of the classes."""
    con.register("whatif_wanted", classes.filter(pl.col("class").is_in(wanted)).select("key", "class"))
    try:
        return con.sql("SELECT w.class FROM whatif_people p JOIN whatif_wanted w USING (key) ORDER BY p.customer_id"
                       ).pl()["class"].to_numpy()
    finally:
        con.unregister("whatif_wanted")


def compare(con: duckdb.DuckDBPyConnection, policies: list[Policy], run_date: date, released: dict[date, int],
            claimants: pl.LazyFrame, extra: list[pl.DataFrame] | None = None) -> list[dict]:
    """The figures (redress/whatif/figures.py) of each policy, in the order given, over
    `con`'s scope_exposures, customers, entitlements and ledger (the evidence, the
    master, what is in force, what is paid), the applied claims' customer_id and the
    bank cash released per date. extra[n]: exposures that only policy n's own row rules
    accept (customer_id, data_category, confidence, accessed_at), counted under it
    alone (figure `exposures_from_quarantine`).

    Raises ValueError when an exposed customer is not in the customer master."""
    extra = extra or [pl.DataFrame(schema=EXTRA_SCHEMA)] * len(policies)
    rows = pl.concat([e.select(*(c for c in EXTRA_SCHEMA if c != "only_for")).with_columns(pl.lit(n).alias("only_for"))
                      .cast(EXTRA_SCHEMA) for n, e in enumerate(extra)] or [pl.DataFrame(schema=EXTRA_SCHEMA)])
    # Three quarters of what a run lets DuckDB take: the joins over tens of millions of
    # customers slow down when they must partition, and whatif's own frames are small.
    con.execute("SET memory_limit = ?", [memory_limit(0.3)])
    ledger = con.sql(LEDGER_SQL).pl().lazy()  # with the run order (rules.payments.pending)
    history = payment_history(ledger, claimants).collect()
    del ledger  # tens of millions of rows, summed per customer: let them go before grouping
    paid = already_paid(history.lazy())
    counts = in_force_counts(con.sql("SELECT amount FROM entitlements").pl().lazy())
    try:
        signatures, classes, words = exposed_classes(con, policies, rows, history)
        del history

        def order(wanted: np.ndarray) -> np.ndarray:
            return class_order(con, classes, wanted)
        sets = signature_sets(signatures, policies)
        out = []
        for n, policy in enumerate(policies):
            summary = summary_from_signatures(classes.lazy(), sets[n], words)
            passing_sum = passing_base_sum(summary, policy, weight="customers")
            priced = decided(summary, policy, passing_sum).select(_PRICED).collect()
            out.append(figures(priced, passing_sum, counts, paid, policy, run_date, released, order)
                       | {"exposures_from_quarantine": extra[n].height})
    finally:
        con.execute("DROP TABLE IF EXISTS whatif_people")
    return out
