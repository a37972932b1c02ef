"""Stage 5, notify: everyone who became known in this run, told once.

Customers with an entitlement (any reason but TEST_ACCOUNT) and non-member exposures,
one row per person, the first time they become known. The HMAC key comes with the
settings the flow built at its start (redress/settings.py), never as a flow parameter,
so it is not stored with the flow run.

Beside each file, `index/<run_id>.parquet` says who each row is for (person_key,
customer_id, reference_code): the notification file itself names no customer, and
without the index a lost warehouse could not be rebuilt from the outbox without
notifying everyone again (redress/outbox/recovery.py).

Each message is rendered once, a million people at a time, and the notification file,
its index and the rows for the warehouse are written from that one pass
(write_rendered). The warehouse's `notifications` table records who was told, how, with
which template and code, but not the message text: the outbox file holds it, and nothing
reads it back (explain shows the code, channel and run; recovery restores rows from the
file and its index)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, time, timezone
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from redress import sql
from redress.context import RunContext
from redress.results import NotifyResult
from redress.errors import RedressError
from redress.policy import Policy
from redress.runtime.faults import checkpoint
from redress.settings import Settings
from redress.vocabulary import SUSPECTED
from redress.warehouse import connect, notifications
from redress.warehouse import runs as runs_table
from redress.outbox import files as outbox
from redress.outbox.recovery import INDEX
from redress.outbox.xlsx import write_xlsx
from redress.rules.identity import MOBILE_E164
from redress.reports.summary import TOLD_OTHERWISE_STEM
from redress.rules.notifications import (NEW_PEOPLE_PARAMETERS, TOLD_OTHERWISE, TOLD_OTHERWISE_NAMED, messages,
                                         new_people_query, withheld_query)
from redress.warehouse.reference_codes import code_parameters, settle_codes, with_first_code

# Excel opens at most 1,048,576 rows; beyond that the CSV would mislead, so only Parquet.
CSV_MAX_ROWS = outbox.SHEET_MAX_ROWS
COLUMNS = ("recipient", "channel", "reference_code", "template_id", "language", "message")
WAREHOUSE_COLUMNS = ("person_key", "customer_id", "recipient", "channel", "reference_code", "template_id",
                     "language", "run_id")
INDEX_COLUMNS = ("person_key", "customer_id", "reference_code")
DICTIONARY_COLUMNS = ("channel", "template_id", "language", "run_id")  # a few values each
# People rendered at once by write_rendered: a million rendered messages are about 0.5 GB
# (40M people: peak 2.1 GB in pieces of a million, 8.0 GB in pieces of five).
RENDER_PEOPLE = 1_000_000
# The people to tell, while notify runs: a table of the warehouse, dropped once the files
# are written. Not a temporary table: DuckDB compresses a stored table, not a temporary
# one, which it spills raw, and twice while it was rewritten with the codes. Notifying
# the 142.6 M people of 150 M customers that way spilled to within 2 GB of a full disk.
PEOPLE = "notify_people"
# Entitlements joined with the customers at once by new_people; more are joined a slice
# of customers at a time, so that the join stays in DuckDB's memory: with the 142.5 M
# entitlements of 150 M customers, at once, it spilled 12 to 14 GB: the least free disk of
# the whole 150 M benchmark (6 GB).
FIND_PEOPLE = 40_000_000
# People sorted at once by people_in_order; more are sorted a range of person_key at a
# time, so that DuckDB's sort stays in memory rather than spilling the whole table.
SORT_PEOPLE = 20_000_000


def new_people(con, key: bytes, at_once: int = FIND_PEOPLE, suspected_counts: bool = False) -> None:
    """The table notify_people (PEOPLE; redress.rules.notifications.NEW_PEOPLE, the rule
    of who is told and how): person_key, kind, customer_id, recipient, channel, reason,
    amount (minor units), rail, exposed_categories, for every customer with an
    entitlement but TEST_ACCOUNT and every non-member, leaving out everyone
    `notifications` holds (told once); and reference_code, each person's first choice
    under the HMAC `key` (redress/warehouse/reference_codes.py), which settle_codes then
    makes unique. SPEC "Notifications".

    Past `at_once` entitlements, built a slice of customers at a time (new_people_query),
    each slice's join about `at_once` rows or fewer. Every reader orders the table
    explicitly (people_in_order, settle_codes), so the slices change no byte written.
    `suspected_counts`: the policy counts suspected exposures (new_people_query)."""
    entitlements = con.execute("SELECT count(*) FROM entitlements").fetchall()[0][0]
    slices = max(1, -(-entitlements // at_once))
    parameters = {**NEW_PEOPLE_PARAMETERS, **code_parameters(key)}
    for part in range(slices):
        into = f"CREATE OR REPLACE TABLE {PEOPLE} AS" if part == 0 else f"INSERT INTO {PEOPLE}"
        con.execute(f"{into} {with_first_code(new_people_query(slices, part, suspected_counts))}", parameters)


def drop_people(con) -> None:
    """Drop notify_people (PEOPLE), if there: its disk is reused by the warehouse."""
    con.execute(f"DROP TABLE IF EXISTS {PEOPLE}")


def key_ranges(con, table: str = PEOPLE, at_once: int = SORT_PEOPLE) -> list[tuple[str | None, str | None]]:
    """[(low, high)]: ranges of person_key that cover `table` (low included, high
    excluded; None: no bound), each about `at_once` people or fewer, cut at quantiles of
    a sample. One range, unbounded, when the table holds at most `at_once`. Every row is
    in exactly one range, a NULL key in the last; where the cuts fall changes no byte
    written (people_in_order cuts its own pieces)."""
    people = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    parts = -(-people // at_once)
    if parts <= 1:
        return [(None, None)]
    quantiles = [n / parts for n in range(1, parts)]
    (cuts,), = con.execute(f"""
        SELECT quantile_disc(person_key, ?::DOUBLE[])
        FROM (SELECT person_key FROM {table} USING SAMPLE reservoir(100000 ROWS) REPEATABLE (1))""",
                           [quantiles]).fetchall()
    bounds = [None, *sorted({cut for cut in cuts if cut is not None}), None]
    return list(zip(bounds, bounds[1:]))


def people_in_order(con, chunk: int = RENDER_PEOPLE, table: str = PEOPLE,
                    at_once: int = SORT_PEOPLE) -> Iterator[pl.DataFrame]:
    """The coded people of `table` (notify_people) in person_key order (the order of
    every file write_rendered writes), as frames of exactly `chunk` rows, the last one
    shorter; one frame without rows, with the table's columns, when nobody is to be told.
    Streamed from DuckDB's sort as Arrow, with no file in between (at 32 M people, a
    Parquet copy sorted by DuckDB's COPY took 33 s, the sorted stream 10 s), one range of
    person_key after the other (key_ranges), so each sort holds at most about `at_once`
    people. The pieces are cut here, not where DuckDB's batches or the ranges end, so
    the files' row groups (a piece each) depend on neither DuckDB's threads nor the cuts."""
    readers = []

    def batches():
        for low, high in key_ranges(con, table, at_once):
            conditions, bounds = [], []
            if low is not None:  # the last range also holds a NULL key, as ORDER BY puts it last
                conditions.append("person_key >= ?" if high is not None else "(person_key >= ? OR person_key IS NULL)")
                bounds.append(low)
            if high is not None:
                conditions.append("person_key < ?")
                bounds.append(high)
            where = " AND ".join(conditions) or "true"
            reader = con.sql(f"SELECT * FROM {table} WHERE {where} ORDER BY person_key",
                             params=bounds).to_arrow_reader(chunk)
            readers.append(reader)
            yield from reader

    given = False
    for rows in outbox.exact_pieces(batches(), chunk):
        yield pl.from_arrow(rows).rechunk()  # rendered and written fastest whole
        given = True
    if not given:
        yield pl.from_arrow(readers[0].schema.empty_table())


def tally(con, rows: Path) -> list[tuple[str, str, int]]:
    """(channel, template_id, count) of the rows written, sorted."""
    return con.execute("""SELECT channel, template_id, count(*) FROM read_parquet(?, hive_partitioning = false)
                          GROUP BY ALL ORDER BY ALL""", [sql.file_path(rows)]).fetchall()


# In a notify stage's staging folder, the run's list of payees told otherwise before,
# published into quarantine/<run_id>/ with the notifications: a run killed before its
# commit leaves no list (the next run lists them), one killed after it leaves the list
# its commit counted (found by review: written by both runs).
TOLD_OTHERWISE_STAGED = "told_otherwise"


def _publish(tmp, ctx: RunContext, run_id: str) -> None:
    staged = tmp / TOLD_OTHERWISE_STAGED
    if staged.is_dir():
        folder = ctx.data_dir / "quarantine" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(staged.iterdir()):
            outbox.publish(path, folder / path.name)
        staged.rmdir()
    # The index first: a published notification file always has its index beside it.
    index = tmp / INDEX
    if index.is_dir():
        (ctx.notifications_dir / INDEX).mkdir(exist_ok=True)
        for path in sorted(index.iterdir()):
            outbox.publish(path, ctx.notifications_dir / INDEX / path.name)
        index.rmdir()
    for path in sorted(tmp.iterdir()):
        outbox.publish(path, ctx.notifications_dir / path.name)
    tmp.rmdir()


def recover_notifications(ctx: RunContext) -> None:
    """Publish the files of a run that committed its notifications and then stopped;
    drop those of a run that did not commit."""
    if not ctx.notifications_dir.is_dir():
        return
    with connect(ctx.warehouse) as con:
        notified = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM notifications").fetchall()}
        checked = {r[0] for r in con.execute("SELECT run_id FROM runs WHERE told_checked").fetchall()}

    def committed(run_id: str) -> bool:
        # a run that told nobody committed too when it marked its payees looked at; only a
        # run of this code stages a list, so a warehouse migrated with every run marked
        # does not publish what an older run left uncommitted
        staged = outbox.staging_folder(ctx.notifications_dir, run_id) / TOLD_OTHERWISE_STAGED
        return run_id in notified or (run_id in checked and staged.is_dir())

    outbox.settle_leftovers(ctx.notifications_dir, committed, lambda tmp, run_id: _publish(tmp, ctx, run_id))


def write_rendered(pieces: Iterable[pl.DataFrame], policy: Policy, run_id: str, *, final: Path, index: Path,
                   rows: Path, run_date: date | None = None) -> None:
    """Render every message once, a piece of people at a time, and write from that one
    pass: `final`, the notification file (COLUMNS); `index`, who each row is for
    (person_key, customer_id, reference_code); `rows`, the warehouse's notifications rows
    (no message text). `pieces`: the coded people in person_key order (people_in_order),
    at least one piece (an empty one for nobody: the files then hold only their columns);
    each file keeps that order and gets a row group per piece. SPEC "Notifications".

    In pieces, each appended to the three files: Polars's streaming sink of the whole
    rendered frame held about 0.23 GB per million people (a message is hundreds of
    bytes), and was killed for memory at 24 GB with the 142.6 M people of 150 M customers.
    A message depends only on its person's MESSAGE_KEY and code, so rendering a piece
    alone gives the text rendering everyone at once would. `run_date`: the run's, for
    the claim deadline's wording (rules.notifications.messages).
    Each file has its own writing thread, which converts and compresses a piece while
    Polars renders the next (both release the GIL): at most two pieces are held, and each
    file gets its pieces in order, so the bytes are those of writing them one by one
    (3.37 M people: 5.4 s to 3.7 s, `benchmarks/notify_steps.py`). On any error, here or
    in a writing thread, the three files are removed and the error raised."""
    outputs = {final: list(COLUMNS), index: list(INDEX_COLUMNS), rows: list(WAREHOUSE_COLUMNS)}
    writers: dict[Path, pq.ParquetWriter] = {}
    threads = {path: ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify-file") for path in outputs}
    pending: dict[Path, Future] = {}

    def append(path: Path, piece: pl.DataFrame) -> None:  # in the file's own thread
        # One chunk per column: Parquet's pages follow the chunks written, and a piece of
        # DuckDB's uneven batches must give the bytes of the same rows in one chunk.
        table = piece.select(outputs[path]).to_arrow().combine_chunks()
        if path not in writers:
            # A dictionary only where few values repeat: as small as Polars's files
            writers[path] = pq.ParquetWriter(
                path, table.schema, compression="zstd", compression_level=3,
                use_dictionary=[c for c in DICTIONARY_COLUMNS if c in outputs[path]])
        writers[path].write_table(table)

    try:
        for people in pieces:
            part = messages(people, policy, run_date).with_columns(pl.lit(run_id).alias("run_id"))
            for path in outputs:
                if path in pending:
                    pending[path].result()  # the file's previous piece: a writer's error is raised here
                pending[path] = threads[path].submit(append, path, part)
        for done in pending.values():
            done.result()
        for thread in threads.values():
            thread.shutdown()
        for writer in writers.values():
            writer.close()  # writes the footer: a full disk may fail here first
    except BaseException:
        outbox.discard_written(threads.values(), writers.values(), outputs)
        raise


@task(name="notify", task_run_name="notify", cache_policy=NO_CACHE, timeout_seconds=3600)
def notify(ctx: RunContext, settings: Settings) -> NotifyResult:
    """Stage 5 (SPEC "Notifications"): everyone newly known, told once; returns a
    NotifyResult (redress/results.py)."""
    logger = get_run_logger()
    policy = ctx.policy()
    if not settings.hmac_key:
        raise RedressError("REDRESS_HMAC_KEY is not set: reference codes need a secret key (see README)")
    key = settings.hmac_key.get_secret_value()
    recover_notifications(ctx)
    rows = ctx.work_dir / "notification_rows.parquet"
    # Same order as a batch: files under a temporary name, then the commit, then the
    # rename; recover_notifications settles what a crash left in between.
    tmp = outbox.staging_folder(ctx.notifications_dir, ctx.run_id)
    (tmp / INDEX).mkdir(parents=True, exist_ok=True)
    final = tmp / f"{ctx.run_id}.parquet"
    with connect(ctx.warehouse) as con:
        # before this run's notifications are added: those told in earlier runs only
        told_otherwise = con.sql(TOLD_OTHERWISE, params={"run": ctx.run_id, "named": TOLD_OTHERWISE_NAMED}).pl()
        if told_otherwise.height:  # who, by customer id and code, is personal data: beside the review list
            outbox.write_run_list(told_otherwise, tmp / TOLD_OTHERWISE_STAGED, TOLD_OTHERWISE_STEM, ctx.run_date,
                                  logger)
        try:
            new_people(con, key.encode("utf-8"), suspected_counts=SUSPECTED in policy.confidence)
            settle_codes(con, PEOPLE, "SELECT reference_code FROM notifications", key.encode("utf-8"))
            # Whether a person told now can still claim is a matter of today, not of the
            # run's date: a plan made on the deadline and approved the next day, or a
            # catch-up run dated before it, tells people after it (found by review: told
            # to call and be paid, while explain said the deadline had passed). The later
            # of the two, as the claims check reads a verification on a later day as late.
            told_on = max(ctx.run_date, policy.today())
            write_rendered(people_in_order(con), policy, ctx.run_id, final=final, run_date=told_on,
                           index=tmp / INDEX / f"{ctx.run_id}.parquet", rows=rows)
        finally:
            drop_people(con)  # before the notifications are inserted, which reuse its disk
    with connect(ctx.warehouse) as con:
        counts = tally(con, rows)
        count = sum(n for _, _, n in counts)
        (withheld,), = con.execute(withheld_query(), {"mobile": MOBILE_E164}).fetchall()
        if count <= CSV_MAX_ROWS:
            told = pl.read_parquet(final, glob=False)
            # with a UTF-8 BOM, for people opening it (SPEC "Notifications"): without one, a
            # spreadsheet in a Korean locale reads the Korean messages as CP949 (found by review)
            outbox.spreadsheet_safe(told).write_csv(tmp / f"{ctx.run_id}.csv", include_bom=True)
            # and as a workbook of text cells: a spreadsheet opening the CSV reads a phone
            # `+821012345678` as the number 821012345678 (found by review). Dated by the
            # run date, so the same run gives the same bytes.
            try:
                write_xlsx(told, tmp / f"{ctx.run_id}.xlsx", datetime.combine(ctx.run_date, time(), timezone.utc),
                           sheet="notifications")
            except ValueError as exc:  # a value no sheet can hold: the list is told all the same
                (tmp / f"{ctx.run_id}.xlsx").unlink(missing_ok=True)
                logger.warning("notifications: no workbook beside the list (%s); the Parquet and CSV files hold it",
                               exc)
        for path in [*tmp.iterdir(), *(tmp / INDEX).iterdir()]:
            if path.is_file():
                outbox.fsync(path)
        checkpoint("notify:files-written", settings)
        con.execute("BEGIN")
        # The warehouse keeps who was told, how and with which template, not the text:
        # the text of every message is in the outbox file, and 32 million messages
        # would double the warehouse and the time to write it.
        # bound, never SQL text, glob characters escaped (redress/sql.py); in person_key
        # order already: no second sort
        notifications.add(con, sql.file_path(rows))
        runs_table.record_told_checked(con, ctx.run_id)  # their payees told otherwise are listed above
        con.execute("COMMIT")
        checkpoint("notify:committed", settings)
    per_channel, per_template = {}, {}
    for channel, template, n in counts:
        per_channel[channel] = per_channel.get(channel, 0) + n
        per_template[template] = per_template.get(template, 0) + n
    per_template = dict(sorted(per_template.items()))
    _publish(tmp, ctx, ctx.run_id)
    logger.info("notifications: %s new (%s)", f"{count:,}",
                ", ".join(f"{channel} {n:,}" for channel, n in sorted(per_channel.items())) or "none")
    if withheld:
        logger.info("notifications: %s non-member address(es) never told, in all: a member had it", f"{withheld:,}")
    listed = f"quarantine/{ctx.run_id}/{TOLD_OTHERWISE_STEM}.csv" if told_otherwise.height else None
    if listed:
        logger.info("notifications: %s customer(s) paid or held by this run were told otherwise before (listed in "
                    "%s)", f"{told_otherwise['customer_id'].n_unique():,}", listed)
    return NotifyResult(notifications=count, per_channel=per_channel, per_template=per_template, withheld=withheld,
                        told_otherwise=told_otherwise["customer_id"].n_unique(),
                        told_otherwise_krw=int(told_otherwise["amount"].sum() or 0), told_otherwise_list=listed)
