"""redress/rules/notifications.py NEW_PEOPLE, as the notify stage runs it: who is told, to which recipient, through which
channel (SPEC "Notifications": sms only to a Korean mobile number; else email when one
is known; else none, for outreach by hand)."""

from __future__ import annotations

import re

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from redress.warehouse import SCHEMA
from tasks.notify import new_people


def _pieces(frame, chunk: int):
    """frame (a Polars frame of people) as the notify stage reads them: the table
    `people` of a DuckDB database, streamed in person_key order, `chunk` rows at a time."""
    from tasks.notify import people_in_order

    with duckdb.connect() as con:
        con.register("frame", frame)
        con.execute("CREATE TABLE people AS SELECT * FROM frame")
        yield from people_in_order(con, chunk, table="people")

# customer_id -> (email_norm, phone_e164): the keys as the warehouse stores them.
MEMBERS = {
    "m_mobile": ("a@example.com", "+821012345678"),
    "m_mobile_only": (None, "+821912345678"),
    "m_landline_email": ("b@example.com", "+8221234567"),
    "m_070_email": ("c@example.com", "+827012345678"),
    "m_landline_only": (None, "+8221234568"),
    "m_070_only": (None, "+827012345679"),
    "m_nothing": (None, None),
}
# (email_norm, phone_e164) of non-member exposure rows; the key is phone else email.
NON_MEMBERS = [
    ("x@example.com", "+821055556666"),
    ("y@example.com", "+8231234567"),       # landline key; email known
    ("z@example.com", "+8231234567"),       # same landline, another email: one person
    (None, "+827011112222"),                 # internet phone only
    ("w@example.com", None),
]


@pytest.fixture(scope="module")
def people() -> dict[str, tuple]:
    with duckdb.connect(":memory:") as con:
        con.execute(SCHEMA)
        for cid, (email, phone) in MEMBERS.items():
            con.execute("""INSERT INTO customers VALUES (?, NULL, NULL, ?, ?, 'active', NULL, NULL, now(), NULL, false,
                           'voucher', NULL, NULL, false, 'f0')""", [cid, email, phone])
            con.execute("""INSERT INTO entitlements VALUES (?, 'p', 'R1', 'ELIGIBLE', 1, 'email', 'email', 50000,
                           50000, 'voucher')""", [cid])
        con.execute("INSERT INTO customers SELECT * REPLACE ('m_test' AS customer_id) FROM customers LIMIT 1")
        con.execute("INSERT INTO entitlements VALUES ('m_test', 'p', 'R1', 'TEST_ACCOUNT', NULL, '', 'email', 0, 0, 'voucher')")
        for n, (email, phone) in enumerate(NON_MEMBERS, start=1):
            con.execute("""INSERT INTO non_member_exposures VALUES ('f1', ?, coalesce(?, ?), ?, ?, 'name', now(),
                           'confirmed')""", [n, phone, email, email, phone])
        new_people(con, b"test key")
        rows = con.execute("SELECT person_key, recipient, channel FROM notify_people ORDER BY person_key").fetchall()
    return {key: (recipient, channel) for key, recipient, channel in rows}


@pytest.mark.parametrize("key, recipient, channel", [
    ("customer:m_mobile", "+821012345678", "sms"),
    ("customer:m_mobile_only", "+821912345678", "sms"),
    ("customer:m_landline_email", "b@example.com", "email"),
    ("customer:m_070_email", "c@example.com", "email"),
    ("customer:m_landline_only", "+8221234568", "none"),    # listed for outreach by hand
    ("customer:m_070_only", "+827012345679", "none"),
    ("customer:m_nothing", None, "none"),
    ("nonmember:+821055556666", "+821055556666", "sms"),
    ("nonmember:+8231234567", "y@example.com", "email"),    # key unchanged; smallest email
    ("nonmember:+827011112222", "+827011112222", "none"),
    ("nonmember:w@example.com", "w@example.com", "email"),
])
def test_recipient_and_channel_follow_the_spec(people, key, recipient, channel):
    assert people[key] == (recipient, channel)


def test_one_row_per_person_and_test_accounts_are_not_told(people):
    assert len(people) == len(MEMBERS) + 4
    assert "customer:m_test" not in people
    assert not [k for k, (r, c) in people.items() if c == "sms" and not r.startswith(("+8210", "+8211", "+8216",
                                                                                        "+8217", "+8218", "+8219"))]


@pytest.mark.parametrize("chunk", [1_000_000, 1000, 97])
def test_one_render_writes_the_file_its_index_and_the_warehouse_rows_row_for_row(tmp_path, policy, chunk):
    """Issue 10: write_rendered renders once and writes three files in person_key order:
    the notification file (no person key, with the message), its index (who each row
    is for) and the warehouse rows (everything but the message text); the same files
    whether the people are rendered at once or in pieces (chunk)."""
    import polars as pl

    from redress.rules.notifications import messages
    from tasks.notify import COLUMNS, WAREHOUSE_COLUMNS, write_rendered

    n = 2500  # more than one Parquet page, fewer than one Polars morsel would hide
    people = pl.DataFrame({
        "person_key": [f"customer:c{i:05d}" for i in range(n)] + ["nonmember:+821055556666"],
        "kind": ["member"] * n + ["non_member"],
        "customer_id": [f"c{i:05d}" for i in range(n)] + [None],
        "recipient": [f"u{i}@example.com" for i in range(n)] + ["+821055556666"],
        "channel": ["email"] * n + ["sms"],
        "reason": ["ELIGIBLE" if i % 3 else "BELOW_MINIMUM" for i in range(n)] + [None],
        "amount": [50000 + i for i in range(n)] + [0],
        "rail": ["voucher" if i % 2 else "bank_transfer" for i in range(n)] + [None],
        "exposed_categories": ["email,name"] * n + ["phone"],
        "suspected_only": [False] * n + [True],
        "reference_code": [f"{i:08d}".translate(str.maketrans("0123456789", "ABCDEFGHJK")) for i in range(n + 1)],
    })
    out = {name: tmp_path / f"{name}.parquet" for name in ("final", "index", "rows")}
    write_rendered(_pieces(people, chunk), policy(), "R20251201-001", **out)
    expected = messages(people, policy()).with_columns(pl.lit("R20251201-001").alias("run_id"))
    final, index, rows = (pl.read_parquet(out[k]) for k in ("final", "index", "rows"))
    assert final.columns == list(COLUMNS) and rows.columns == list(WAREHOUSE_COLUMNS)
    assert final.equals(expected.select(COLUMNS))
    assert index.equals(expected.select("person_key", "customer_id", "reference_code"))
    assert rows.equals(expected.select(WAREHOUSE_COLUMNS))
    assert final["message"].str.contains("참조번호 " + final["reference_code"], literal=True).all()


def test_people_already_notified_are_not_in_people():
    """Told once (SPEC "Notifications"): NEW_PEOPLE leaves out every person_key that
    `notifications` holds, member or non-member, and keeps everyone else."""
    with duckdb.connect(":memory:") as con:
        con.execute(SCHEMA)
        for cid in ("a", "b"):
            con.execute("""INSERT INTO customers VALUES (?, NULL, NULL, NULL, '+821012345678', 'active', NULL, NULL, now(), NULL,
                           false, 'voucher', NULL, NULL, false, 'f0')""", [cid])
            con.execute("""INSERT INTO entitlements VALUES (?, 'p', 'R1', 'ELIGIBLE', 1, 'email', 'email', 50000,
                           50000, 'voucher')""", [cid])
        for n, phone in enumerate(("+821055556666", "+821077778888"), start=1):
            con.execute("""INSERT INTO non_member_exposures VALUES ('f1', ?, ?, NULL, ?, 'name', now(),
                           'confirmed')""", [n, phone, phone])
        for key in ("customer:a", "nonmember:+821055556666"):
            con.execute("INSERT INTO notifications VALUES (?, NULL, NULL, 'sms', 'ABCDEFGH', 't', 'ko', 'R0')", [key])
        new_people(con, b"test key")
        keys = [r[0] for r in con.execute("SELECT person_key FROM notify_people ORDER BY person_key").fetchall()]
    assert keys == ["customer:b", "nonmember:+821077778888"]


@pytest.mark.parametrize("suspected_counts", [False, True])
@pytest.mark.parametrize("at_once", [1, 40_000_000])  # a slice of customers per member, or one slice
def test_people_whose_every_exposure_is_suspected_are_marked_so(at_once, suspected_counts):
    """suspected_only (the message then says the data is suspected to be exposed; found
    by review: a non-member with `suspected` rows only was told it "was confirmed"): a
    member not paid for UNCONFIRMED_ONLY; a non-member when no row at their address is
    `confirmed`, one confirmed row among suspected ones being enough, under any key
    sent there. Under a policy counting suspected exposures too, a member is marked by
    their rows (found by the next review: paid, or outside the window, on a suspected
    exposure alone, they were told of "exposed data")."""
    with duckdb.connect(":memory:") as con:
        con.execute(SCHEMA)
        # each member's rows: a UNCONFIRMED_ONLY member has suspected ones alone, as its reason says
        rows_of = {"a": ["suspected"], "b": ["confirmed", "suspected"], "c": ["confirmed"],
                   "d": ["suspected"], "e": ["suspected", "suspected"]}
        for n, (cid, confidences) in enumerate(rows_of.items()):
            for m, confidence in enumerate(confidences):
                con.execute("INSERT INTO scope_exposures VALUES ('s', ?, ?, 'customer_id', 'name', now(), ?, NULL)",
                            [10 * n + m, cid, confidence])
        reasons = {"a": "UNCONFIRMED_ONLY", "b": "ELIGIBLE", "c": "OUTSIDE_WINDOW",
                   "d": "ELIGIBLE" if suspected_counts else "UNCONFIRMED_ONLY",
                   "e": "OUTSIDE_WINDOW" if suspected_counts else "UNCONFIRMED_ONLY"}
        for cid, reason in reasons.items():
            con.execute("""INSERT INTO customers VALUES (?, NULL, NULL, NULL, NULL, 'active', NULL, NULL, now(), NULL,
                           false, 'voucher', NULL, NULL, false, 'f0')""", [cid])
            con.execute("""INSERT INTO entitlements VALUES (?, 'p', 'R1', ?, 1, 'email', 'email', 0, 0, 'voucher')""",
                        [cid, reason])
        rows = [("+821055550001", None, "suspected"), ("+821055550001", None, "suspected"),
                ("+821055550002", None, "suspected"), ("+821055550002", None, "confirmed"),
                ("+8231110001", "x@example.org", "suspected"), (None, "x@example.org", "confirmed")]
        for n, (phone, email, confidence) in enumerate(rows, start=1):
            con.execute("""INSERT INTO non_member_exposures VALUES ('f1', ?, coalesce(?, ?), ?, ?, 'name', now(), ?)""",
                        [n, phone, email, email, phone, confidence])
        new_people(con, b"test key", at_once=at_once, suspected_counts=suspected_counts)
        marked = dict(con.execute("SELECT person_key, suspected_only FROM notify_people").fetchall())
    assert marked == {"customer:a": True, "customer:b": False, "customer:c": False, "customer:d": True,
                      "customer:e": True,
                      "nonmember:+821055550001": True, "nonmember:+821055550002": False,
                      "nonmember:x@example.org": False}


@pytest.mark.parametrize("n", [0, 3])
def test_write_rendered_types_every_file_whoever_is_in_the_first_piece(tmp_path, policy, n):
    """Review of 652c814: with nobody to tell, the three files still have their columns,
    all text; a first piece of people without customer id or recipient (all null) fixes
    no other Arrow type than the later pieces', so ParquetWriter takes them all."""
    import polars as pl

    from tasks.notify import COLUMNS, INDEX_COLUMNS, WAREHOUSE_COLUMNS, write_rendered

    text = dict.fromkeys(("person_key", "kind", "customer_id", "recipient", "channel", "reason", "rail",
                          "exposed_categories", "reference_code"), pl.String)
    people = pl.DataFrame({
        "person_key": [f"a{i}" for i in range(n)] + [f"b{i}" for i in range(n)],
        "kind": ["non_member"] * n + ["member"] * n,
        "customer_id": [None] * n + [f"c{i}" for i in range(n)],
        "recipient": [None] * n + [f"u{i}@example.com" for i in range(n)],
        "channel": ["none"] * n + ["email"] * n,
        "reason": [None] * n + ["ELIGIBLE"] * n,
        "amount": [0] * n + [50000] * n,
        "rail": [None] * n + ["voucher"] * n,
        "exposed_categories": ["phone"] * (2 * n),
        "suspected_only": [False] * (2 * n),
        "reference_code": [f"R{i:07d}" for i in range(2 * n)],
    }, schema={**text, "amount": pl.Int64, "suspected_only": pl.Boolean})
    out = {name: tmp_path / f"{name}.parquet" for name in ("final", "index", "rows")}
    write_rendered(_pieces(people, max(n, 1)), policy(), "R20251201-001", **out)
    for name, columns in (("final", COLUMNS), ("index", INDEX_COLUMNS), ("rows", WAREHOUSE_COLUMNS)):
        written = pl.read_parquet(out[name])
        assert written.schema == pl.Schema(dict.fromkeys(columns, pl.String)) and written.height == 2 * n
        with duckdb.connect() as con:
            assert {t for _, t, *_ in con.execute("DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)",
                                                   [str(out[name])]).fetchall()} == {"VARCHAR"}


def test_a_render_that_fails_midway_leaves_no_file_that_reads_as_whole(tmp_path, policy, monkeypatch):
    """write_rendered appends piece by piece: an error after the first piece removes the
    three files rather than leave short ones with a valid footer."""
    import polars as pl
    import pyarrow.parquet as pq

    from tasks.notify import write_rendered

    n = 30
    people = pl.DataFrame({
        "person_key": [f"customer:c{i:03d}" for i in range(n)], "kind": ["member"] * n,
        "customer_id": [f"c{i:03d}" for i in range(n)], "recipient": [f"u{i}@example.com" for i in range(n)],
        "channel": ["email"] * n, "reason": ["ELIGIBLE"] * n, "amount": [50000] * n, "rail": ["voucher"] * n,
        "exposed_categories": ["email"] * n, "suspected_only": [False] * n,
        "reference_code": [f"ABCDEF{i:02d}" for i in range(n)],
    })
    real, calls = pq.ParquetWriter.write_table, []

    def failing(self, table, *args, **kwargs):
        calls.append(1)
        if len(calls) > 3:  # the second piece's first file
            raise OSError("No space left on device")
        return real(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    out = {name: tmp_path / f"{name}.parquet" for name in ("final", "index", "rows")}
    with pytest.raises(OSError, match="No space left"):
        write_rendered(_pieces(people, 10), policy(), "R20251201-001", **out)
    assert not [path for path in out.values() if path.exists()]


def _people_frame(n: int):
    import polars as pl

    return pl.DataFrame({
        "person_key": [f"customer:c{i:05d}" for i in range(n)], "kind": ["member"] * n,
        "customer_id": [f"c{i:05d}" for i in range(n)],
        "recipient": [f"u{i}@example.com" if i % 4 else f"+8210{i:08d}" for i in range(n)],
        "channel": ["email" if i % 4 else "sms" for i in range(n)],
        "reason": ["ELIGIBLE" if i % 3 else "BELOW_MINIMUM" for i in range(n)],
        "amount": [50000 + i for i in range(n)], "rail": ["voucher" if i % 2 else "bank_transfer" for i in range(n)],
        "exposed_categories": ["email,name"] * n,
        "suspected_only": [i % 3 == 0 for i in range(n)],
        "reference_code": [f"{i:08d}".translate(str.maketrans("0123456789", "ABCDEFGHJK")) for i in range(n)],
    }, schema={**dict.fromkeys(("person_key", "kind", "customer_id", "recipient", "channel", "reason", "amount",
                                "rail", "exposed_categories", "reference_code"), pl.String), "amount": pl.Int64,
               "suspected_only": pl.Boolean})


def _written_one_by_one(people, policy, run_id: str, out: dict, chunk: int) -> None:
    """The reference for the bytes: each piece rendered from the whole people file,
    then appended to the three files one after the other, in this thread, each column
    in one chunk (Parquet's pages follow the chunks written)."""
    import polars as pl
    import pyarrow.parquet as pq

    from redress.rules.notifications import messages
    from tasks.notify import COLUMNS, DICTIONARY_COLUMNS, INDEX_COLUMNS, WAREHOUSE_COLUMNS

    rendered = messages(pl.scan_parquet(people), policy).with_columns(pl.lit(run_id).alias("run_id"))
    total = pl.scan_parquet(people).select(pl.len()).collect().item()
    columns = {"final": COLUMNS, "index": INDEX_COLUMNS, "rows": WAREHOUSE_COLUMNS}
    writers = {}
    for offset in range(0, max(total, 1), chunk):
        part = rendered.slice(offset, chunk).collect()
        for name, cols in columns.items():
            table = part.select(cols).to_arrow().combine_chunks()
            if name not in writers:
                writers[name] = pq.ParquetWriter(out[name], table.schema, compression="zstd", compression_level=3,
                                                 use_dictionary=[c for c in DICTIONARY_COLUMNS if c in cols])
            writers[name].write_table(table)
    for writer in writers.values():
        writer.close()


@given(n=st.integers(min_value=0, max_value=2000), chunk=st.integers(min_value=1, max_value=3000))
@example(n=30_000, chunk=60_000).via("pieces of 6,000 from DuckDB's uneven batches, messages over a 1 MB page")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_each_file_gets_its_pieces_in_order_from_its_own_thread(tmp_path_factory, policy, n, chunk):
    """Issue 10: write_rendered writes the three files on threads of their own while the
    next piece renders; for any number of people and any piece size the three files
    are byte for byte those of writing every piece in turn in one thread."""
    import hashlib

    from tasks.notify import write_rendered

    chunk = max(chunk // 10, n // 40, 1) if n > 500 else chunk  # up to 40 pieces for the bigger cases: quick
    folder = tmp_path_factory.mktemp("pieces")
    _people_frame(n).write_parquet(folder / "people.parquet")
    threaded = {name: folder / f"threaded-{name}.parquet" for name in ("final", "index", "rows")}
    reference = {name: folder / f"reference-{name}.parquet" for name in ("final", "index", "rows")}
    write_rendered(_pieces(_people_frame(n), chunk), policy(), "R20251201-001", **threaded)
    _written_one_by_one(folder / "people.parquet", policy(), "R20251201-001", reference, chunk)
    for name in threaded:
        assert hashlib.sha256(threaded[name].read_bytes()).digest() == \
            hashlib.sha256(reference[name].read_bytes()).digest(), name


@pytest.mark.parametrize("failing_call", [1, 2, 3, 5])
def test_a_writing_thread_that_fails_stops_the_render_and_leaves_no_file(tmp_path, policy, monkeypatch,
                                                                         failing_call):
    """An error inside a file's writing thread (the first piece's or a later one's, any
    of the three files) is raised by write_rendered, which then removes all three files
    and leaves no writing thread behind."""
    import threading

    import pyarrow.parquet as pq

    real, calls, lock = pq.ParquetWriter.write_table, [], threading.Lock()

    def failing(self, table, *args, **kwargs):
        with lock:
            calls.append(1)
            fail = len(calls) == failing_call
        if fail:
            raise OSError("No space left on device")
        return real(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    _render_fails_and_leaves_nothing(tmp_path, policy)


@given(n=st.integers(min_value=0, max_value=5000), chunk=st.integers(min_value=1, max_value=6000),
       threads=st.sampled_from([1, 4]), ranges=st.integers(min_value=1, max_value=8), null_key=st.booleans())
@example(n=30_000, chunk=1_000, threads=4, ranges=1, null_key=False).via(
    "DuckDB hands the sorted rows over in uneven batches")
@example(n=30_000, chunk=7_777, threads=4, ranges=3, null_key=True)
@settings(max_examples=40, deadline=None)
def test_people_come_in_person_key_order_in_pieces_of_exactly_the_chunk(n, chunk, threads, ranges, null_key):
    """people_in_order: whatever batches DuckDB's sort hands over (one thread or four),
    and however many ranges of person_key it sorts one after the other, the pieces are
    exactly `chunk` people each but the last, together every person once in person_key
    order (a NULL key last), and there is always a piece (without rows when nobody is
    told)."""
    import random

    import polars as pl

    from tasks.notify import key_ranges, people_in_order

    frame = _people_frame(n).sample(fraction=1.0, shuffle=True, seed=random.Random(n).randint(0, 9)) \
        if n else _people_frame(0)
    if null_key:
        frame = pl.concat([frame, _people_frame(1).with_columns(person_key=pl.lit(None, pl.String))])
    at_once = max(1, -(-frame.height // ranges))
    with duckdb.connect(config={"threads": threads}) as con:
        con.register("frame", frame)
        con.execute("CREATE TABLE people AS SELECT * FROM frame")
        cuts = key_ranges(con, "people", at_once)
        pieces = list(people_in_order(con, chunk, table="people", at_once=at_once))
    assert len(cuts) == 1 or frame.height > at_once
    assert len(cuts) <= ranges and cuts[0][0] is None and cuts[-1][1] is None
    assert all(high == low for (_, high), (low, _) in zip(cuts, cuts[1:]))  # they meet: no row between two
    assert pieces and all(p.height == chunk for p in pieces[:-1]) and 0 < pieces[-1].height <= chunk or n == 0
    assert frame.height or (len(pieces) == 1 and pieces[0].height == 0)
    together = pl.concat(pieces)
    assert together.schema == frame.schema
    assert together.equals(frame.sort("person_key", nulls_last=True))


def test_people_are_sorted_a_range_of_keys_at_a_time_past_the_sort_size():
    """Past SORT_PEOPLE (here 1,000) the people are read in ranges of about that many,
    cut at quantiles of a sample, each sorted on its own."""
    from tasks.notify import key_ranges

    with duckdb.connect() as con:
        con.register("frame", _people_frame(10_000))
        con.execute("CREATE TABLE people AS SELECT * FROM frame")
        cuts = key_ranges(con, "people", 1_000)
        sizes = [con.execute("SELECT count(*) FROM people WHERE person_key >= coalesce(?, '') "
                             "AND (? IS NULL OR person_key < ?)", [low, high, high]).fetchall()[0][0]
                 for low, high in cuts]
    assert len(cuts) == 10 and sum(sizes) == 10_000
    assert max(sizes) < 1_400  # quantiles of a sample of every key: close to even


@pytest.mark.parametrize("failing_close", [1, 2, 3])
def test_a_file_that_fails_to_close_leaves_no_file(tmp_path, policy, monkeypatch, failing_close):
    """A full disk may first fail at a file's footer, written when the file is closed
    (seen on a small tmpfs: the notification file and its index read as whole, the rows
    file short). Closing is part of writing: any of the three failing to close raises,
    and all three files are removed."""
    import pyarrow.parquet as pq

    real, calls = pq.ParquetWriter.close, []

    def failing(self):
        calls.append(1)
        if len(calls) == failing_close:
            raise OSError("No space left on device")
        return real(self)

    monkeypatch.setattr(pq.ParquetWriter, "close", failing)
    _render_fails_and_leaves_nothing(tmp_path, policy)


def test_a_full_disk_that_also_fails_the_footers_leaves_no_file(tmp_path, policy, monkeypatch):
    """When the disk is full, the other files' footers fail as well while write_rendered
    cleans up after the first error: that first error is raised, and no file is left."""
    import threading

    import pyarrow.parquet as pq

    from tasks.notify import write_rendered

    real_write, calls, lock = pq.ParquetWriter.write_table, [], threading.Lock()

    def failing_write(self, table, *args, **kwargs):
        with lock:
            calls.append(1)
            fail = len(calls) >= 5
        if fail:
            raise OSError("No space left on device (row group)")
        return real_write(self, table, *args, **kwargs)

    def failing_close(self):
        raise OSError("No space left on device (footer)")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing_write)
    monkeypatch.setattr(pq.ParquetWriter, "close", failing_close)
    out = {name: tmp_path / f"{name}.parquet" for name in ("final", "index", "rows")}
    with pytest.raises(OSError, match=r"row group"):
        write_rendered(_pieces(_people_frame(40), 10), policy(), "R20251201-001", **out)
    assert not [path for path in out.values() if path.exists()]


def _render_fails_and_leaves_nothing(tmp_path, policy) -> None:
    """write_rendered of 40 people in pieces of 10 raises the disk-full error the test
    arranged, and leaves none of the three files and no writing thread."""
    import threading

    from tasks.notify import write_rendered

    out = {name: tmp_path / f"{name}.parquet" for name in ("final", "index", "rows")}
    with pytest.raises(OSError, match="No space left"):
        write_rendered(_pieces(_people_frame(40), 10), policy(), "R20251201-001", **out)
    assert not [path for path in out.values() if path.exists()]
    assert not [t for t in threading.enumerate() if t.name.startswith("notify-file")]


@given(members=st.integers(0, 60), non_members=st.integers(0, 8), told=st.integers(0, 5), at_once=st.integers(1, 70))
@example(members=60, non_members=8, told=5, at_once=7)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_people_found_a_slice_of_customers_at_a_time_are_those_found_at_once(members, non_members, told, at_once):
    """Issue 10: past FIND_PEOPLE entitlements new_people joins them with the customers a
    slice of customer_id at a time. Whatever the slice size, notify_people holds the same
    rows, codes included, as one join: every member once, every non-member once (in
    slice 0 only), the already told and test accounts left out."""
    from redress.rules.notifications import NEW_PEOPLE_PARAMETERS, new_people_query

    with duckdb.connect(":memory:") as con:
        con.execute(SCHEMA)
        for n in range(members):
            phone = f"+8210{n:08d}" if n % 3 else None
            email = f"u{n}@example.com" if n % 4 else None
            con.execute("""INSERT INTO customers VALUES (?, NULL, NULL, ?, ?, 'active', NULL, NULL, now(), NULL, false,
                           'voucher', NULL, NULL, false, 'f0')""", [f"c{n:03d}", email, phone])
            if n % 5:  # a customer without an entitlement is nobody to tell
                reason = "TEST_ACCOUNT" if n % 11 == 0 else "ELIGIBLE"
                con.execute("""INSERT INTO entitlements VALUES (?, 'p', 'R1', ?, 1, 'email', 'email', ?, ?,
                               'voucher')""", [f"c{n:03d}", reason, 50000 + n, 50000 + n])
        for n in range(non_members):
            phone = f"+8219{n:08d}" if n % 2 else None
            con.execute("""INSERT INTO non_member_exposures VALUES ('f1', ?, coalesce(?, ?), ?, ?, 'name', now(),
                           'confirmed')""", [n, phone, f"x{n}@example.com", f"x{n}@example.com", phone])
        for n in range(told):  # told before: a member and a non-member
            con.execute("INSERT INTO notifications VALUES (?, NULL, NULL, 'sms', ?, 't', 'ko', 'R0')",
                        [f"customer:c{n * 7:03d}", f"CODE{n:04d}"])
            con.execute("INSERT INTO notifications VALUES (?, NULL, NULL, 'email', ?, 't', 'ko', 'R0')",
                        [f"nonmember:x{n}@example.com", f"DOCE{n:04d}"])
        everyone = "SELECT * FROM notify_people ORDER BY person_key"
        new_people(con, b"test key")
        at_once_rows = con.execute(everyone).fetchall()
        new_people(con, b"test key", at_once=at_once)
        sliced_rows = con.execute(everyone).fetchall()
        entitled = con.execute("SELECT count(*) FROM entitlements").fetchall()[0][0]
        slices = max(1, -(-entitled // at_once))
        parts = [con.execute(f"SELECT person_key FROM ({new_people_query(slices, part)})",
                             NEW_PEOPLE_PARAMETERS).fetchall() for part in range(slices)]
    assert sliced_rows == at_once_rows
    keys = sorted(key for part in parts for (key,) in part)
    assert keys == [row[0] for row in at_once_rows]  # each person in exactly one slice
    assert len(set(keys)) == len(keys)
    assert not [k for k in keys if k in {f"customer:c{n * 7:03d}" for n in range(told)}]


def test_a_slice_outside_the_slices_is_an_error():
    from redress.rules.notifications import new_people_query

    with pytest.raises(ValueError, match="slice 3 of 3"):
        new_people_query(3, 3)


# Non-member exposure rows drawn from a few contacts, so that keys and addresses collide:
# (phone_e164 or None, email_norm or None, data_category); at least one identifier.
CONTACT_PHONES = [None, "+821055550001", "+821055550002", "+8231110001", "+8231110002", "+827011110001"]
CONTACT_EMAILS = [None, "a@example.org", "b@example.org"]
non_member_rows = st.lists(st.tuples(st.sampled_from(CONTACT_PHONES), st.sampled_from(CONTACT_EMAILS),
                                     st.sampled_from(["name", "email", "phone", "entrance_code"]))
                           .filter(lambda r: r[0] or r[1]), min_size=1, max_size=10)


def _address(phone: str | None, email: str | None) -> str:
    """Where a key's message goes, in Python: the SPEC's words (sms to a Korean mobile;
    else the email; else the phone, for outreach by hand)."""
    return phone if phone and re.match(r"\+821[016-9]", phone) else (email or phone)


ADDRESSES = [a for a in CONTACT_PHONES + CONTACT_EMAILS if a]
# A non-member row's key (non_member_exposures.recipient), as tasks/validate.py stores it:
# the row's address; before 2026-12-07.2 (increments.RULES_VERSION), their phone, else their
# email: whoever a warehouse of that rule told under such a key is never told again.
KEY_RULES = {"address": _address, "phone_else_email": lambda phone, email: phone or email}


@pytest.mark.parametrize("key_rule, keyed_again", [("address", False), ("phone_else_email", False),
                                                   ("phone_else_email", True)])
@settings(max_examples=50, deadline=None)
@given(rows=non_member_rows, later=non_member_rows, members=st.sets(st.sampled_from(ADDRESSES), max_size=3))
@example(rows=[("+8231110001", "a@example.org", "name"), (None, "a@example.org", "email")], later=[],
         members=set()).via(
    "found by review: a landline's row with an email and that email alone, two messages to one inbox")
@example(rows=[("+8231110001", None, "name")],
         later=[("+8231110001", "a@example.org", "entrance_code"), (None, "a@example.org", "email")],
         members=set()).via(
    "found by the next review: the landline told by hand silenced the email its later row gave")
@example(rows=[("+821055550002", None, "name")], later=[("+821055550001", None, "name")],
         members={"+821055550001"}).via(
    "found by review: a member told at their phone, whose phone the next snapshot changed; the row that named "
    "that phone became a non-member's, and the handset told it would be paid was told it was no member")
@example(rows=[("+8231110001", "a@example.org", "name"), ("+8231110001", "b@example.org", "email")], later=[],
         members=set()).via(
    "found by review: two people at one office phone, each with their own email, were one key; one was told")
def test_one_message_per_address_telling_every_category_once_ever(key_rule, keyed_again, rows, later, members):
    """Every non-member's message goes to one address, and one address gets one message
    (with one reference code), telling every category exposed under any key sent there;
    nobody is told again, a key already told nor an address already written to (by a
    non-member's message or a member's: `members`, told between the two), when later
    rows come. Keyed by the row's address, every address of a row is told (the
    example of two emails at one office phone). `keyed_again`: told under the former
    key rule, then every row keyed by its address (the next run's full classification),
    before the later rows: still nobody told again."""
    key_of = KEY_RULES[key_rule]
    if key_rule == "address":
        written_to = {_address(phone, email) for phone, email, _ in rows}
    with duckdb.connect(":memory:") as con:
        con.execute(SCHEMA)

        def add(batch, start):
            for n, (phone, email, category) in enumerate(batch, start=start):
                con.execute("""INSERT INTO non_member_exposures VALUES ('f1', ?, ?, ?, ?, ?, now(),
                               'confirmed')""", [n, key_of(phone, email), email, phone, category])

        add(rows, 1)
        new_people(con, b"test key")
        told = con.execute("SELECT person_key, recipient, channel, exposed_categories FROM notify_people").fetchall()
        # the oracle: keys (phone else email) with their address (max phone, min email of their rows)
        keys: dict[str, list] = {}
        for phone, email, category in rows:
            keys.setdefault(key_of(phone, email), []).append((phone, email, category))
        address = {k: _address(max((p for p, _, _ in r if p), default=None), min((e for _, e, _ in r if e), default=None))
                   for k, r in keys.items()}
        expected = {}
        for k, a in address.items():
            expected.setdefault(a, set()).update(c for _, _, c in keys[k])
        assert sorted(r for _, r, _, _ in told) == sorted(expected)  # one message per address
        if key_rule == "address":  # and no row's address left out
            assert {r for _, r, _, _ in told} == written_to
        for person_key, recipient, channel, categories in told:
            assert set(categories.split(",")) == expected[recipient]
            key = person_key.removeprefix("nonmember:")
            assert address[key] == recipient  # under a key sent there: the address itself, else the least
            assert key == (recipient if recipient in keys else min(k for k, a in address.items() if a == recipient))
            assert channel == ("sms" if recipient.startswith("+8210") else "email" if "@" in recipient else "none")
        # told, then later rows: no key told again, no address written to again, and every
        # key never told at an address never written to is told there (found by review: a
        # landline told by hand silenced the email its later rows gave, and that email's own)
        con.execute("""INSERT INTO notifications SELECT person_key, customer_id, recipient, channel, reference_code,
                       't', 'ko', 'R1' FROM notify_people""")
        for n, address in enumerate(sorted(members)):  # members told meanwhile, at these addresses
            con.execute("INSERT INTO notifications VALUES (?, ?, ?, 'sms', ?, 't', 'ko', 'R1')",
                        [f"customer:M{n}", f"M{n}", address, f"MEMBER{n:02d}"])
        if keyed_again:
            key_of = KEY_RULES["address"]
            con.execute("DELETE FROM non_member_exposures")
            add(rows, 1)
        add(later, 100)
        new_people(con, b"test key")
        again = con.execute("SELECT person_key, recipient, exposed_categories FROM notify_people").fetchall()
    told_keys, told_addresses = {k.removeprefix("nonmember:") for k, _, _, _ in told}, {r for _, r, _, _ in told}
    every: dict[str, list] = {}
    for phone, email, category in rows + later:
        every.setdefault(key_of(phone, email), []).append((phone, email, category))
    now_at = {k: _address(max((p for p, _, _ in r if p), default=None), min((e for _, e, _ in r if e), default=None))
              for k, r in every.items() if k not in told_keys}
    expected_again = {}
    for k, a in now_at.items():
        if a not in told_addresses and a not in members:
            expected_again.setdefault(a, set()).update(c for _, _, c in every[k])
    assert {r: set(c.split(",")) for _, r, c in again} == expected_again
    assert len({r for _, r, _ in again}) == len(again)
    assert not [k for k, _, _ in again if k.removeprefix("nonmember:") in told_keys]


# (email_norm, phone_e164) of one non-member exposure row, the addresses a member had in
# an earlier snapshot, and whether the row's person is told: only the address a message
# would go to counts (the mobile, else the email, else the landline).
FORMER_CASES = [
    (("old@example.com", None), ["old@example.com"], False),                  # their email was a member's
    ((None, "+821033334444"), ["+821033334444"], False),                      # their mobile was
    (("old@example.com", "+821033334444"), ["old@example.com"], True),        # told by text: the email is not used
    (("old@example.com", "+821033334444"), ["+821033334444"], False),
    (("old@example.com", "+8221234567"), ["old@example.com"], False),         # a landline: told by email
    (("old@example.com", "+8221234567"), ["+8221234567"], True),
    ((None, "+8221234567"), ["+8221234567"], False),                          # the landline is the address
    (("new@example.com", None), ["old@example.com", "+821033334444"], True),  # someone else's addresses
]


@pytest.mark.parametrize("row, former, told", FORMER_CASES)
def test_no_non_member_is_told_at_an_address_a_member_had_before(row, former, told):
    """NEW_PEOPLE leaves out a non-member whose message would go to an address a member
    had in an earlier customers snapshot (former_addresses), and WITHHELD counts that
    address; any other address in their row does not matter (found by the mutation
    review: the exclusion was guarded by one flow test only)."""
    from redress.rules.notifications import MOBILE_E164, withheld_query

    email, phone = row
    with duckdb.connect(":memory:") as con:
        con.execute(SCHEMA)
        con.execute("""INSERT INTO non_member_exposures VALUES ('f1', 1, coalesce(?, ?), ?, ?, 'name', now(),
                       'confirmed')""", [phone, email, email, phone])
        for address in former:
            con.execute("INSERT INTO former_addresses VALUES (?, 'C1', 'f0')", [address])
        new_people(con, b"test key")
        keys = [r[0] for r in con.execute("SELECT person_key FROM notify_people").fetchall()]
        (withheld,), = con.execute(withheld_query(), {"mobile": MOBILE_E164}).fetchall()
    assert keys == ([f"nonmember:{phone or email}"] if told else [])
    assert withheld == (0 if told else 1)
