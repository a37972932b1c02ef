"""Eligibility and entitlement: SPEC "Eligibility and entitlement".

One row per customer with at least one accepted exposure. The first rule that applies
gives the reason code; amounts are whole minor units, integer arithmetic only.
"""

from __future__ import annotations

from datetime import timezone

import polars as pl

from redress.policy import Policy
from redress.policy.tables import MAX_CATEGORIES
from redress.rules.rails import rail
from redress.vocabulary import (BELOW_MINIMUM, CLOSED, CLOSED_BEFORE_BREACH, ELIGIBLE, OUTSIDE_WINDOW,
                                STATUS_NOT_ELIGIBLE, TEST_ACCOUNT, UNCONFIRMED_ONLY, UNKNOWN_CATEGORY)


def _category_names(mask: pl.Expr, names: list[str]) -> pl.Expr:
    """The categories whose bit is set, in name order, comma-separated ('' for none)."""
    parts = [pl.when((mask & (1 << bit)) != 0).then(pl.lit(name)) for bit, name in enumerate(names)]
    return pl.concat_str(parts, separator=",", ignore_nulls=True).fill_null("")


def _counts(policy: Policy) -> tuple[pl.Expr, pl.Expr]:
    """(confidence counts, inside the window) of one exposure row: rules 2 and 3."""
    start, end = (t.astimezone(timezone.utc) for t in (policy.window_start, policy.window_end))
    # Instants are compared in UTC: Polars refuses to compare timestamps of two zones, and
    # a caller's frame may carry any zone (the warehouse's Parquet export is UTC).
    in_window = pl.col("accessed_at").dt.convert_time_zone("UTC").is_between(start, end, closed="both")
    return pl.col("confidence").is_in(list(policy.confidence)), in_window


# The reasons that are about the person, not one exposure: under them no exposure counts.
PERSON_REASONS = (TEST_ACCOUNT, STATUS_NOT_ELIGIBLE, CLOSED_BEFORE_BREACH, BELOW_MINIMUM)


def exposure_not_counted(policy: Policy, reason: str) -> pl.Expr:
    """Why one exposure row (data_category, confidence, accessed_at) does not count toward
    the amount of a person whose entitlement reason is `reason`, as a code; null when it
    counts. The same rules as `exposure_summary` and `_checked` (SPEC "Eligibility and
    entitlement"): under a person-level reason (test account, status, closed before the
    breach, below the minimum) no exposure counts, that reason is every row's; else a category
    the policy does not list (UNKNOWN_CATEGORY), a confidence it does not count
    (UNCONFIRMED_ONLY) or a time outside the window (OUTSIDE_WINDOW), in that order."""
    if reason in PERSON_REASONS:
        return pl.lit(reason, dtype=pl.String)
    counted_conf, in_window = _counts(policy)
    return (
        pl.when(~pl.col("data_category").is_in(list(policy.categories))).then(pl.lit(UNKNOWN_CATEGORY))
        .when(~counted_conf).then(pl.lit(UNCONFIRMED_ONLY))
        .when(~in_window.fill_null(False)).then(pl.lit(OUTSIDE_WINDOW))
    )


def _exposure_flags(policy: Policy, masks: bool = True, mine: pl.Expr | None = None) -> tuple[dict, list]:
    """({name: per-exposure flag}, [its per-customer aggregate]) of rules 2 and 3 under
    `policy`: _listed (some exposure is in a category the policy lists), _any_conf (some
    listed one has a counted confidence), _any_counted (some of those also lies in the
    window), tier (the highest tier among those), and with masks the counted and
    exposed categories as bit masks (one bit per policy category, in name order; every
    category must then be listed). A run's exposures are all in listed categories (the
    row rules quarantine the others); a what-if of another policy may meet some that are
    not, and they count for nothing, as that policy's run would have quarantined them.
    mine: a boolean per exposure, whether it is evidence under this policy at all
    (None: all)."""
    names = sorted(policy.categories)
    if len(names) > MAX_CATEGORIES:  # the policy check refuses more (a Policy built in code may not)
        raise ValueError(f"a policy may have at most {MAX_CATEGORIES} categories")
    listed = pl.col("data_category").is_in(names)
    if mine is not None:
        listed = listed & mine
    tier_of = pl.col("data_category").replace_strict(policy.categories, default=None, return_dtype=pl.Int32)
    counted_conf, in_window = _counts(policy)
    counted_conf = counted_conf & listed
    counted = counted_conf & in_window
    rows = {"_listed": listed, "_any_conf": counted_conf, "_any_counted": counted,
            "tier": pl.when(counted).then(tier_of)}
    out = [pl.col("_listed").any(), pl.col("_any_conf").any(), pl.col("_any_counted").any(), pl.col("tier").max()]
    if masks:
        bit = pl.col("data_category").replace_strict({n: 1 << i for i, n in enumerate(names)},
                                                     return_dtype=pl.Int64)
        rows |= {"_counted_mask": pl.when(counted).then(bit).otherwise(0), "_exposed_mask": bit}
        out += [pl.col("_counted_mask").bitwise_or(), pl.col("_exposed_mask").bitwise_or()]
    return rows, out


def exposure_summary(exposures: pl.LazyFrame, customers: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """One row per exposed customer: what counts, the tier and categories, joined with
    the customer fields the rules need.

    exposures: customer_id, data_category, accessed_at, confidence.
    customers: customer_id, status, closed_at, is_test, payout_method, bank_valid.
    Categories are carried as a bit mask (one bit per policy category, in name order):
    tens of millions of per-customer string lists would not fit in memory.
    """
    names = sorted(policy.categories)
    # each exposure's flags first, then plain aggregations: what a streaming group_by
    # takes at its fastest (a filter inside an aggregation is not)
    rows, aggregates = _exposure_flags(policy)
    per_customer = exposures.select("customer_id", **rows).group_by("customer_id").agg(*aggregates)
    return per_customer.join(customers, on="customer_id", how="left").with_columns(
        _category_names(pl.col("_counted_mask"), names).alias("categories"),
        _category_names(pl.col("_exposed_mask"), names).alias("exposed_categories"),
        pl.col("closed_at").dt.convert_time_zone("UTC"),
    ).drop("_counted_mask", "_exposed_mask", "_listed")


def window_edges(policies: list[Policy]) -> tuple[list, list]:
    """(starts, ends) of the candidates' breach windows, as UTC instants, each sorted and
    without repeats: an exposure's side of each (t >= start, t > end) is all rule 3 asks
    of its time, so exposures on the same sides of every edge are alike to every policy."""
    starts = sorted({p.window_start.astimezone(timezone.utc) for p in policies})
    ends = sorted({p.window_end.astimezone(timezone.utc) for p in policies})
    return starts, ends


def signature_sets(signatures: pl.DataFrame, policies: list[Policy]) -> list[dict]:
    """For each policy, which exposure signatures pass which of rules 2 and 3, from the
    rules themselves (_exposure_flags' per-exposure flags) run on one
    representative exposure per signature. signatures: sig (Int64, from 0),
    data_category, confidence, accessed_at (an instant on the same side of every
    window edge as all of that signature's exposures), only_for (Int64: -1 when the
    exposure is evidence under every policy, else the one policy position it is
    evidence under). Returns per policy {"listed", "conf", "counted": sorted sig lists,
    "tiers": {tier: sorted sig lists of counted exposures of that tier}}."""
    out = []
    for n, policy in enumerate(policies):
        mine = (pl.col("only_for") == -1) | (pl.col("only_for") == n)
        rows, _ = _exposure_flags(policy, masks=False, mine=mine)
        flags = signatures.select("sig", **rows)
        picked = {name: sorted(flags.filter(pl.col(column))["sig"].to_list())
                  for name, column in (("listed", "_listed"), ("conf", "_any_conf"), ("counted", "_any_counted"))}
        tiers = flags.filter(pl.col("tier").is_not_null()).group_by("tier").agg(pl.col("sig").sort())
        picked["tiers"] = {int(t): sigs for t, sigs in sorted(tiers.iter_rows())}
        out.append(picked)
    return out


def _any_of(sigs: list[int], words: int) -> pl.Expr:
    """Whether a customer's signature mask (columns mask0..mask<words-1>, UInt64, bit
    sig % 64 of word sig // 64) has any of `sigs`."""
    wanted = [0] * words
    for sig in sigs:
        wanted[sig // 64] |= 1 << (sig % 64)
    parts = [(pl.col(f"mask{w}") & pl.lit(bits, pl.UInt64)) != 0 for w, bits in enumerate(wanted) if bits]
    return pl.any_horizontal(parts) if parts else pl.lit(False)


def summary_from_signatures(customers: pl.LazyFrame, sets: dict, words: int) -> pl.LazyFrame:
    """One policy's exposure summary (exposure_summary's columns but the category names)
    out of each exposed customer's signature mask (customers: customer_id, mask0..,
    and the customer fields, which are kept) and the policy's signature_sets: the
    customers with an exposure it lists, with _any_conf, _any_counted and tier."""
    tier = pl.max_horizontal([pl.when(_any_of(sigs, words)).then(pl.lit(t, pl.Int32))
                              for t, sigs in sets["tiers"].items()]) if sets["tiers"] else pl.lit(None, pl.Int32)
    return (customers.filter(_any_of(sets["listed"], words))
            .with_columns(_any_of(sets["conf"], words).alias("_any_conf"),
                          _any_of(sets["counted"], words).alias("_any_counted"),
                          tier.alias("tier"))
            .drop(f"mask{w}" for w in range(words)))


def _checked(summary: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """The summary with base_amount and _reason, the first of rules 1-5 that fails (null
    when all pass)."""
    start = policy.window_start.astimezone(timezone.utc)
    base = pl.col("tier").replace_strict(policy.tiers, default=0, return_dtype=pl.Int64).fill_null(0)
    reason_1_to_5 = (
        pl.when(pl.col("is_test")).then(pl.lit(TEST_ACCOUNT))
        .when(~pl.col("_any_conf")).then(pl.lit(UNCONFIRMED_ONLY))
        .when(~pl.col("_any_counted")).then(pl.lit(OUTSIDE_WINDOW))
        .when(~pl.col("status").is_in(list(policy.statuses))).then(pl.lit(STATUS_NOT_ELIGIBLE))
        .when((pl.col("status") == CLOSED) & (pl.col("closed_at") < start))
        .then(pl.lit(CLOSED_BEFORE_BREACH))
    )
    return summary.with_columns(base.alias("base_amount"), reason_1_to_5.alias("_reason"))


def passing_base_sum(summary: pl.LazyFrame, policy: Policy, weight: str | None = None) -> int:
    """The sum of base amounts (minor units) of the customers in an exposure summary who
    pass rules 1-5: what pro rata divides total_cap by. Sums of disjoint summaries add up,
    which is what lets a partitioned run share one factor (redress/partitions.py).
    weight: the column saying how many customers a row stands for (a what-if's classes
    of alike customers: redress/whatif/compare.py); None: one each.

    Raises ValueError when an exposed customer is not in the customer master.
    """
    each = pl.col(weight).cast(pl.Int64) if weight else pl.lit(1, pl.Int64)
    missing, passing_sum = _checked(summary, policy).select(
        each.filter(pl.col("status").is_null()).sum(),
        (pl.col("base_amount") * each).filter(pl.col("_reason").is_null()).sum(),
    ).collect().row(0)
    if missing:
        # Cannot happen when exposures were resolved against this master.
        raise ValueError(f"{missing} exposed customers are not in the customer master")
    return int(passing_sum or 0)


def decided(summary: pl.LazyFrame, policy: Policy, passing_sum: int | None = None) -> pl.LazyFrame:
    """The summary with each customer's decision added: base_amount, reason, amount
    (KRW, 0 unless ELIGIBLE), rail and policy_id; every column of the summary kept (a
    what-if carries the payment history along). Reads the summary for the sum that
    decides pro rata unless passing_sum is given (see entitlements_of)."""
    if passing_sum is None:
        passing_sum = passing_base_sum(summary, policy)
    checked = _checked(summary, policy)
    amount = pro_rata(pl.col("base_amount"), policy.total_cap, passing_sum)
    checked = checked.with_columns(
        pl.when(pl.col("_reason").is_null()).then(amount).otherwise(0).alias("_amount")
    )
    reason = (
        pl.when(pl.col("_reason").is_not_null()).then(pl.col("_reason"))
        .when(pl.col("_amount") < policy.minimum_amount).then(pl.lit(BELOW_MINIMUM))
        .otherwise(pl.lit(ELIGIBLE))
    )
    return (
        checked.with_columns(reason.alias("reason"))
        .with_columns(
            pl.when(pl.col("reason") == ELIGIBLE).then(pl.col("_amount")).otherwise(0)
            .cast(pl.Int64).alias("amount"),
            rail().alias("rail"),
            pl.lit(policy.id).alias("policy_id"),
        )
        .drop("_reason", "_amount")
    )


def entitlements_of(summary: pl.LazyFrame, policy: Policy, passing_sum: int | None = None) -> pl.LazyFrame:
    """The entitlement of every customer in an exposure summary. Reads the summary twice:
    once for the sum that decides pro rata, once for the amounts.

    passing_sum: the sum over every customer when the summary is one partition of them
    (phase 2 of a partitioned run: redress/partitions.py, whose phase 1 ran passing_base_sum,
    and its master check, on every partition); None computes it from this summary.
    """
    return decided(summary, policy, passing_sum).select(
        "customer_id", "policy_id", "reason", "tier", "categories", "exposed_categories",
        "base_amount", "amount", "rail",
    )


def entitlements(exposures: pl.LazyFrame, customers: pl.LazyFrame, policy: Policy) -> pl.DataFrame:
    """exposure_summary then entitlements_of, collected and ordered by customer_id: the
    whole rule for small frames (the stage runs the two halves through Parquet)."""
    summary = exposure_summary(exposures, customers, policy).collect().lazy()
    return entitlements_of(summary, policy).collect().sort("customer_id")


def pro_rata(base: pl.Expr, total_cap: int, passing_sum: int) -> pl.Expr:
    """floor(base x cap / sum) when a cap is set and exceeded, else base.

    Computed in 128-bit integers: base x cap can pass 2^63 for a large fund.
    """
    if total_cap <= 0 or passing_sum <= total_cap:
        return base
    scaled = base.cast(pl.Int128) * pl.lit(total_cap, pl.Int128) // pl.lit(passing_sum, pl.Int128)
    return scaled.cast(pl.Int64)
