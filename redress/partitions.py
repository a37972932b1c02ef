"""Customer partitions: the pipeline's decisions computed on N slices of the customers,
then one writer. Issue 10 "Beyond one machine"; the proof that N partitions give the
entitlements and ledger of one (tests/redress/test_partitions.py).

The partition of a customer is the first 8 bytes of MD5 of the UTF-8 customer_id, read
as a little-endian unsigned integer, mod N: DuckDB's `md5_number_upper`. MD5 is fixed by
RFC 1321, so every process, machine, engine and version agrees on it (Python's `hash` is
salted per process; DuckDB's `hash()` and Polars' `Expr.hash` may change between
versions). It is not a security measure, only a spread.

Identity resolution is a join on the master's keys (SPEC "Identity resolution"), so
scope rows are routed before they are classified:
- a row naming a customer_id goes to that id's partition: resolution never looks at its
  email or phone, and the named customer, if they exist, is there;
- a row known only by email or phone needs the key -> customer index. The index is
  shuffled, not broadcast: the master's (key, customer_id) pairs and the rows are both
  partitioned by the hash of the key, and each key partition joins its own two halves
  (email first; rows whose email names nobody then the same way by phone). Each row
  learns the customers holding its deciding key. A row with exactly one goes to that
  customer's partition; any other (ambiguous, non-member, malformed) to its key's
  partition, carrying its candidates: a partition's master slice is its own customers
  plus the candidates its rows carry, so `classified_scope` counts, per row, exactly the
  customers it would count over the whole master.
  Cost: the id-less rows and the master's two key columns cross the network once per
  key (about 2 x customers pairs), against N copies of the index for a broadcast.

Per partition: classification, the exposure summary and the partial sum of base amounts
that pro rata divides the cap by (phase 1); then, with the one global sum, entitlements
and what is owed (phase 2). The single writer merges the new payments, orders them by
customer_id and numbers batches, places value dates under the daily cash cap and writes
ledger rows: all four are global (unique for ever, a running sum).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from datetime import date
from typing import Sequence

import duckdb
import polars as pl

from redress.policy import Policy
from redress.rules.batches import batches
from redress.rules.classify import classified_scope
from redress.rules.entitlements import entitlements_of, exposure_summary, passing_base_sum
from redress.rules.identity import email_norm, phone_e164
from redress.rules.payments import new_payments
from redress.vocabulary import EXPOSURE, ISSUED

# The customer fields the entitlement rules read (redress/rules/entitlements.py, redress/rules/rails.py).
CUSTOMER_FIELDS = ("customer_id", "status", "closed_at", "is_test", "payout_method", "bank_valid")
# The master's columns a partition's classification reads (redress/rules/classify.py).
KEY_FIELDS = ("customer_id", "email_norm", "phone_e164", "created_at")


def partition_of(keys: pl.Series, n: int) -> pl.Series:
    """String series -> UInt32 series `partition` in [0, n), null where the key is null.

    The first 8 bytes of MD5(UTF-8 key) as a little-endian unsigned integer, mod n
    (module docstring: why MD5). Raises ValueError when n < 1.
    """
    if n < 1:
        raise ValueError(f"the number of partitions must be at least 1, not {n}")
    keyed = pl.DataFrame({"key": keys.cast(pl.String)}).with_row_index("i")  # noqa: F841 (read by DuckDB)
    with _engine().cursor() as con:
        # `keyed` is found by its Python name (DuckDB's replacement scan): registering
        # the frame instead costs some 30 ms a call.
        out = con.sql(
            "SELECT CAST(md5_number_upper(key) % ? AS UINTEGER) AS partition FROM keyed ORDER BY i", params=[n]
        ).pl()
    return out["partition"]


@cache
def _engine() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB for hashing, made on first use (opening one costs ~50 ms);
    each call takes its own cursor, so threads do not share one."""
    return duckdb.connect(":memory:")


def with_partition(frame: pl.DataFrame, key: str, n: int, name: str = "partition") -> pl.DataFrame:
    """frame with a UInt32 column `name`: the partition of its `key` column."""
    return frame.with_columns(partition_of(frame[key], n).alias(name))


def split(frame: pl.DataFrame, n: int, column: str = "partition") -> list[pl.DataFrame]:
    """frame -> n frames, the i-th holding the rows whose `column` is i, without it."""
    return [frame.filter(pl.col(column) == i).drop(column) for i in range(n)]


def _key_candidates(rows: pl.DataFrame, master: pl.DataFrame, key: str, n: int) -> pl.DataFrame:
    """(_row, customer_id): every customer holding each row's `key`, joined inside each
    key partition, as a shuffle join would on n workers."""
    index = with_partition(master.select(key, "customer_id").drop_nulls(key), key, n, "_kp")
    asked = with_partition(rows.select("_row", key).drop_nulls(key), key, n, "_kp")
    joined = [a.join(i, on=key, how="inner") for a, i in zip(split(asked, n, "_kp"), split(index, n, "_kp"))]
    return pl.concat(joined).select("_row", "customer_id")


def routed_scope(rows: pl.DataFrame, master: pl.DataFrame, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scope rows -> (rows with `partition`, needs: partition, customer_id).

    rows: as classified_scope takes them (customer_id, email, phone, ...). master:
    customer_id, email_norm, phone_e164. needs lists, per partition, the customers of
    other partitions its id-less rows must count (the candidates of an ambiguous key).
    """
    rows = rows.with_row_index("_row")
    keyed = rows.filter(pl.col("customer_id").is_null()).select(
        "_row", email_norm("email").alias("email_norm"), phone_e164("phone").alias("phone_e164"))
    by_email = _key_candidates(keyed, master, "email_norm", n)
    # The phone decides only when the email names nobody (redress/rules/identity.py).
    by_phone = _key_candidates(keyed.filter(~pl.col("_row").is_in(by_email["_row"].implode())), master,
                               "phone_e164", n)
    candidates = pl.concat([by_email, by_phone])
    homes = candidates.group_by("_row").agg(
        pl.when(pl.len() == 1).then(pl.col("customer_id").first()).alias("_home"))
    keyed = keyed.join(homes, on="_row", how="left").with_columns(
        pl.coalesce("_home", "email_norm", "phone_e164").alias("_route"))
    keyed = with_partition(keyed, "_route", n).with_columns(pl.col("partition").fill_null(0))
    with_id = rows.filter(pl.col("customer_id").is_not_null()).select("_row", "customer_id")
    placed = pl.concat([with_partition(with_id, "customer_id", n).select("_row", "partition"),
                        keyed.select("_row", "partition")])
    routed = rows.join(placed, on="_row", how="left").drop("_row")
    needs = (
        candidates.join(keyed.select("_row", "partition"), on="_row")
        .select("partition", "customer_id").unique().sort("partition", "customer_id")
    )
    return routed, needs


def master_slices(master: pl.DataFrame, needs: pl.DataFrame, n: int) -> list[pl.DataFrame]:
    """Per partition, the master rows its classification reads: its own customers plus
    the ones in needs, each once."""
    own = with_partition(master, "customer_id", n)
    wanted = pl.concat([own.select("partition", "customer_id"), needs]).unique()
    sliced = wanted.join(master, on="customer_id", how="inner").sort("partition", "customer_id")
    return split(sliced, n)


def entitlement_partitions(exposures: Sequence[pl.DataFrame], customers: Sequence[pl.DataFrame],
                           policy: Policy) -> list[pl.DataFrame]:
    """Per partition: exposures (customer_id, data_category, accessed_at, confidence) and
    customers (CUSTOMER_FIELDS) -> its entitlements, by customer_id.

    Two phases, so that pro rata sees every customer (SPEC "Eligibility and
    entitlement"): each partition's sum of passing base amounts, then one global sum,
    applied in every partition. Raises ValueError when an exposed customer is missing.
    """
    summaries = [exposure_summary(e.lazy(), c.lazy(), policy).collect() for e, c in zip(exposures, customers)]
    passing_sum = sum(passing_base_sum(s.lazy(), policy) for s in summaries)
    return [entitlements_of(s.lazy(), policy, passing_sum).collect().sort("customer_id") for s in summaries]


def ledger_rows(planned: pl.DataFrame, policy: Policy, run_id: str) -> pl.DataFrame:
    """Planned payments (redress/rules/batches.py) -> the ledger rows tasks/disburse.py inserts for
    them (status issued), in the columns and order of the warehouse's `ledger` table
    (redress/warehouse/__init__.py), by payment_id."""
    return planned.select(
        "payment_id", "customer_id", "amount", pl.lit(policy.currency).alias("currency"), "rail", "batch_id",
        pl.lit(policy.id).alias("policy_id"), pl.lit(run_id).alias("run_id"), "attempt",
        pl.lit(ISSUED).alias("status"), pl.lit(None, pl.String).alias("status_reason"),
        pl.lit(run_id).alias("updated_run_id"),
    ).sort("payment_id")


def single_writer(payments: Sequence[pl.DataFrame], policy: Policy, run_date: date, run_id: str, *,
                  next_seq: dict | None = None, released: dict | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """New payments of every partition -> (planned payments, ledger rows).

    One process: batch ids are unique for ever and numbered in customer_id order, and the
    daily cash cap is a running sum over every bank transfer; next_seq and released are
    what earlier runs used (redress/rules/batches.py).
    """
    # batches() orders each rail by customer_id itself: the order the partitions
    # finish in cannot change a batch, a sequence number or a value date.
    planned = batches(pl.concat(payments), policy, run_date, next_seq=next_seq, released=released)
    return planned, ledger_rows(planned, policy, run_id)


@dataclass(frozen=True)
class PartitionedRun:
    classified: pl.DataFrame     # every scope row, classified, by row_key
    entitlements: pl.DataFrame   # by customer_id
    planned: pl.DataFrame        # new payments with batch_id, value_date, seq, payment_id
    ledger: pl.DataFrame         # new ledger rows, by payment_id
    customers: list[int]         # customers per partition


def partitioned_run(rows: pl.DataFrame, master: pl.DataFrame, ledger: pl.DataFrame, policy: Policy, n: int, *,
                    run_date: date, run_id: str, row_key: Sequence[str], next_seq: dict | None = None,
                    released: dict | None = None) -> PartitionedRun:
    """Scope rows, the customer master (KEY_FIELDS + CUSTOMER_FIELDS) and the ledger so
    far (customer_id, amount, status, rail, attempt) -> the run's decisions computed in n
    customer partitions, then merged by the single writer. row_key: the rows' unique key, for
    ordering the classified rows. Raises ValueError when n < 1.
    """
    categories = sorted(policy.categories)
    routed, needs = routed_scope(rows, master, n)
    slices = master_slices(master.select(KEY_FIELDS), needs, n)
    classified = [classified_scope(r.lazy(), m.lazy(), categories).collect() for r, m in zip(split(routed, n), slices)]
    exposures = [
        c.filter(pl.col("destination") == EXPOSURE)
        .select(pl.col("resolved_id").alias("customer_id"), "data_category", "accessed_at", "confidence")
        for c in classified
    ]
    customers = split(with_partition(master.select(CUSTOMER_FIELDS), "customer_id", n), n)
    entitled = entitlement_partitions(exposures, customers, policy)
    histories = split(with_partition(ledger, "customer_id", n), n)
    owed = [new_payments(e.lazy(), h.lazy(), policy) for e, h in zip(entitled, histories)]
    planned, new_ledger = single_writer(owed, policy, run_date, run_id, next_seq=next_seq, released=released)
    return PartitionedRun(
        classified=pl.concat(classified).sort(*row_key),
        entitlements=pl.concat(entitled).sort("customer_id"),
        planned=planned,
        ledger=new_ledger,
        customers=[c.height for c in customers],
    )
