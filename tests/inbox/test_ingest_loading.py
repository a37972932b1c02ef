"""Loading inbox files into the warehouse (issue 10): each file is read once by Polars
into a work file that DuckDB reads on all its threads, in the file's row order and in
full row groups; typed timestamps go on typed, and a promoted snapshot is renamed
rather than copied. The values landing in scope_rows and customers
are the ones the text reader gives (SPEC "Reading files", "Input: scope files",
"Input: customers snapshot"): asserted here against the text form of the same data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from redress.warehouse import connect
from redress import inbox as io
from redress.inbox import streaming
from redress.runtime.machine_errors import machine_error
from redress.rules.identity import customer_keys

SEOUL = ZoneInfo("Asia/Seoul")
SHA = "ab" * 32
SCOPE_SELECT = """SELECT row_number, customer_id, email, phone, data_category, accessed_at_raw, accessed_at,
                         confidence, source FROM scope_rows ORDER BY file_sha256, row_number"""


def scope_rows(tmp_path: Path, path: Path, tz: str = "Asia/Seoul") -> list[tuple]:
    with connect(tmp_path / f"w-{path.stem}.duckdb") as con:
        assert io.load_scope_rows(con, io.scope_frame(path), SHA, tz, tmp_path) > 0
        return con.execute(SCOPE_SELECT).fetchall()


def scope_parquet(tmp_path: Path, name: str, accessed_at: pl.Series, **columns) -> Path:
    n = len(accessed_at)
    frame = pl.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "data_category": ["name"] * n}).with_columns(
        accessed_at, *(pl.Series(k, v) for k, v in columns.items()))
    frame.write_parquet(tmp_path / name)
    return tmp_path / name


def as_text(values: pl.Series) -> pl.Series:
    """The same timestamps written as text, with the offset when the column has a zone."""
    zoned = values.dtype.time_zone is not None
    return values.dt.strftime("%Y-%m-%dT%H:%M:%S%.f%:z" if zoned else "%Y-%m-%dT%H:%M:%S%.f")


# ------------------------------------------------------------------ typed timestamps


def test_a_zoned_parquet_timestamp_is_taken_as_it_is_and_keeps_its_text(tmp_path):
    values = pl.Series("accessed_at", [datetime(2025, 7, 1, 10, 0, 0, 123456), None]).dt.replace_time_zone("Asia/Seoul")
    got = scope_rows(tmp_path, scope_parquet(tmp_path, "z.parquet", values), tz="America/New_York")
    assert [(r[5], r[6]) for r in got] == [
        ("2025-07-01T10:00:00.123456+09:00", datetime(2025, 7, 1, 1, 0, 0, 123456, tzinfo=timezone.utc)),
        (None, None)]


def test_a_naive_parquet_timestamp_is_in_the_policy_timezone(tmp_path):
    values = pl.Series("accessed_at", [datetime(2025, 7, 1, 10, 0, 0), datetime(2025, 1, 1, 0, 0, 0)])
    got = scope_rows(tmp_path, scope_parquet(tmp_path, "n.parquet", values))
    assert [(r[5], r[6]) for r in got] == [
        ("2025-07-01T10:00:00", datetime(2025, 7, 1, 1, 0, tzinfo=timezone.utc)),
        ("2025-01-01T00:00:00", datetime(2024, 12, 31, 15, 0, tzinfo=timezone.utc))]


@given(
    # nanoseconds from 1970 to 2100: a ns column keeps digits below the microsecond.
    # (Not earlier: before 1908 Asia/Seoul's offset has seconds, which the text twin's
    # %:z cannot write, so the twin itself would be wrong.)
    nanos=st.lists(st.integers(0, 4_102_444_800 * 10**9), min_size=1, max_size=12),
    nulls=st.lists(st.booleans(), min_size=12, max_size=12),
    unit=st.sampled_from(["us", "ns", "ms"]),
    zone=st.sampled_from([None, "Asia/Seoul", "UTC", "America/St_Johns"]),
    policy=st.sampled_from(["Asia/Seoul", "UTC", "America/New_York"]),
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_typed_timestamps_land_exactly_as_their_text_would(tmp_path, nanos, nulls, unit, zone, policy):
    """Any typed timestamp (unit, zone or none, any policy timezone) gives the same
    accessed_at and accessed_at_raw as the same values sent as text: a nanosecond one
    too, cut to the microsecond as its text is (DuckDB rounded it, so 23:59:59.9999996
    became the next day's midnight, outside a window its text is inside)."""
    values = pl.Series("accessed_at", [None if nulls[i] else n for i, n in enumerate(nanos)], pl.Int64)
    typed = values.cast(pl.Datetime("ns")).dt.cast_time_unit(unit)
    if zone:
        typed = typed.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    typed_rows = scope_rows(tmp_path, scope_parquet(tmp_path, "typed.parquet", typed), policy)
    text_rows = scope_rows(tmp_path, scope_parquet(tmp_path, "text.parquet", as_text(typed)), policy)
    assert typed_rows == text_rows
    assert all((r[5] is None) == (r[6] is None) for r in typed_rows)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hours=st.integers(0, 99), minutes=st.integers(0, 99), sign=st.sampled_from("+-"),
       colon=st.sampled_from([":", ""]), with_minutes=st.booleans())
def test_an_offset_no_zone_has_is_an_invalid_timestamp_not_a_shift_by_days(tmp_path_factory, hours, minutes, sign,
                                                                            colon, with_minutes):
    """Found by a new user: `+99` and `+09:99` were taken, moving a closing date by days."""
    offset = f"{sign}{hours:02d}" + (f"{colon}{minutes:02d}" if with_minutes else "")
    folder = tmp_path_factory.mktemp("offset")
    path = folder / "s.csv"
    path.write_text(f"customer_id,data_category,accessed_at\nC1,name,2025-06-25T10:00:00{offset}\n", encoding="utf-8")
    got = scope_rows(folder, path)[0][6]
    valid = (hours < 14 and (not with_minutes or minutes <= 59)) or (hours == 14 and (not with_minutes or minutes == 0))
    shift = timedelta(hours=hours, minutes=minutes if with_minutes else 0) * (1 if sign == "+" else -1)
    assert got == (datetime(2025, 6, 25, 10, tzinfo=timezone.utc) - shift if valid else None)


def test_a_nanosecond_timestamp_just_before_midnight_stays_on_its_day(tmp_path):
    ns = int(datetime(2025, 8, 31, 23, 59, 59, 999999, tzinfo=timezone.utc).timestamp()) * 10**9 + 999_999_600
    values = pl.Series("accessed_at", [ns]).cast(pl.Datetime("ns"))
    got = scope_rows(tmp_path, scope_parquet(tmp_path, "ns.parquet", values.dt.replace_time_zone("UTC")))
    assert [(r[5], r[6]) for r in got] == [
        ("2025-08-31T23:59:59.999999600+00:00", datetime(2025, 8, 31, 23, 59, 59, 999999, tzinfo=timezone.utc))]


def test_a_typed_customers_snapshot_gives_the_master_its_text_twin_gives(tmp_path):
    created = pl.Series("created_at", [datetime(2024, 1, 1, 9, 0), datetime(2023, 5, 5, 23, 59, 59)])
    closed = pl.Series("closed_at", [None, datetime(2025, 2, 1, 12, 0)]).dt.replace_time_zone("UTC")
    base = pl.DataFrame({"customer_id": ["C1", "C2"], "name": ["Kim", "Lee"], "status": ["active", "closed"],
                         "is_test": [False, True]}).with_columns(
        pl.lit(None, pl.String).alias(c) for c in ("email", "phone", "payout_method", "bank_code", "bank_account"))
    typed = base.with_columns(created, closed)
    text = base.with_columns(as_text(created), as_text(closed), pl.col("is_test").cast(pl.String))
    masters = []
    for name, frame in (("typed", typed), ("text", text)):
        frame.write_parquet(tmp_path / f"{name}.parquet")
        with connect(tmp_path / f"{name}.duckdb") as con:
            io.load_customers_staging(con, customer_keys(io.customers_frame(tmp_path / f"{name}.parquet")), "Asia/Seoul", tmp_path)
            io.promote_customers(con, SHA)
            masters.append(con.execute("SELECT * FROM customers ORDER BY customer_id").fetchall())
    assert masters[0] == masters[1]
    assert [(r[0], r[8], r[9], r[10]) for r in masters[0]] == [
        ("C1", datetime(2024, 1, 1, 0, 0, tzinfo=timezone.utc), None, False),
        ("C2", datetime(2023, 5, 5, 14, 59, 59, tzinfo=timezone.utc),
         datetime(2025, 2, 1, 12, 0, tzinfo=timezone.utc), True)]


# ------------------------------------------------------------------ values as given


def test_integer_and_decimal_identifier_columns_land_as_their_text(tmp_path):
    frame = pl.DataFrame({
        "customer_id": [12345678901234567, None],
        "phone": pl.Series([Decimal("1012345678"), Decimal("1.50")], dtype=pl.Decimal(20, 2)),
        "email": [" kim@example.com ", ""],
        "data_category": ["name", "phone"], "accessed_at": ["2025-07-01", "2025-07-01T10:00:00Z"],
        "confidence": [None, "suspected"], "source": [1.5, None],
    })
    frame.write_parquet(tmp_path / "ids.parquet")
    assert scope_rows(tmp_path, tmp_path / "ids.parquet") == [
        (1, "12345678901234567", "kim@example.com", "1012345678.00", "name", "2025-07-01",
         datetime(2025, 6, 30, 15, 0, tzinfo=timezone.utc), None, "1.5"),
        (2, None, None, "1.50", "phone", "2025-07-01T10:00:00Z",
         datetime(2025, 7, 1, 10, 0, tzinfo=timezone.utc), "suspected", None),
    ]


def test_a_csv_with_quoted_newlines_lands_value_for_value(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b'customer_id,data_category,accessed_at,source\n'
                     b'"C1","name","2025-07-01 10:00","line one\nline two, with comma"\n\n'
                     b'C2,phone,not a date,\n')
    assert scope_rows(tmp_path, path) == [
        (1, "C1", None, None, "name", "2025-07-01 10:00", datetime(2025, 7, 1, 1, 0, tzinfo=timezone.utc),
         None, "line one\nline two, with comma"),
        (3, "C2", None, None, "phone", "not a date", None, None, None),  # a record spans lines: row 3
    ]


def test_jsonl_rows_land_with_their_line_numbers(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"customer_id": 7, "data_category": "name", "accessed_at": "2025-07-01T00:00:00+09:00"}\n\n'
                     b'{"email": "a@b.test", "data_category": "phone", "accessed_at": null}\n')
    assert scope_rows(tmp_path, path) == [
        (1, "7", None, None, "name", "2025-07-01T00:00:00+09:00", datetime(2025, 6, 30, 15, 0, tzinfo=timezone.utc),
         None, None),
        (3, None, "a@b.test", None, "phone", None, None, None, None),
    ]


# ------------------------------------------------------------------ failures while streaming


def failing_frame() -> pl.LazyFrame:
    """A scope frame whose seventh value Polars cannot convert: the error only shows once
    the rows are read."""
    good = [str(i) for i in range(6)]
    return pl.LazyFrame({"n": good + ["x"]}).select(
        pl.int_range(1, 8, dtype=pl.Int64).alias("row_number"),
        pl.col("n").cast(pl.Int64, strict=True).cast(pl.String).alias("customer_id"),
        *(pl.lit(None, pl.String).alias(c) for c in ("email", "phone")),
        pl.lit("name").alias("data_category"), pl.lit("2025-07-01").alias("accessed_at"),
        *(pl.lit(None, pl.String).alias(c) for c in ("confidence", "source")))


def test_a_file_failing_mid_stream_is_unreadable_and_appends_nothing(tmp_path, monkeypatch):
    """An error that only shows once rows are read (here a value Polars cannot convert,
    in the fourth row group of the work file) rejects the file; nothing is appended, the
    session is back in UTC and the work file is gone."""
    monkeypatch.setattr(streaming, "ROW_GROUP_ROWS", 2)
    scratch = tmp_path / "work"
    with connect(tmp_path / "w.duckdb") as con:
        con.execute("SET disabled_optimizers = 'top_n'")
        settings = "SELECT current_setting('threads'), current_setting('disabled_optimizers'), current_setting('TimeZone')"
        before = con.execute(settings).fetchall()
        with io.loading(con):
            con.execute("BEGIN")
            with pytest.raises(io.FileRejected) as caught:
                io.load_scope_rows(con, failing_frame(), SHA, "Asia/Seoul", scratch)
            con.execute("ROLLBACK")
        assert caught.value.reason == "unreadable_file"
        assert con.execute("SELECT count(*) FROM scope_rows").fetchall() == [(0,)]
        assert con.execute(settings).fetchall() == before == [(before[0][0], "top_n", "UTC")]  # restored
    assert list(scratch.iterdir()) == []


def test_a_work_file_that_cannot_be_written_is_not_the_senders_fault(tmp_path, monkeypatch):
    """Polars reports a full disk as a ComputeError, as it does a broken file: the file
    is read again alone, and as that succeeds, the error is an OSError (retried, then
    one line), never the file's unreadable_file; a file that is broken stays unreadable."""
    def full_disk(self, path, **options):
        Path(path).write_bytes(b"PAR1")  # what a write cut short leaves
        raise pl.exceptions.ComputeError("parquet: underlying IO error: No space left on device (os error 28)")

    path = scope_parquet(tmp_path, "fine.parquet", pl.Series("accessed_at", ["2025-07-01T10:00:00"] * 3))
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", full_disk)
    scratch = tmp_path / "work"
    with connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(OSError, match="No space left on device") as full:
            io.load_scope_rows(con, io.scope_frame(path), SHA, "Asia/Seoul", scratch)
        # one line on the command line and in the run record, not a traceback
        assert machine_error(full.value).startswith("no space left on the device")
        with pytest.raises(io.FileRejected) as caught:
            io.load_scope_rows(con, failing_frame(), SHA, "Asia/Seoul", scratch)
        assert caught.value.reason == "unreadable_file"
        assert con.execute("SELECT count(*) FROM scope_rows").fetchall() == [(0,)]
    assert list(scratch.iterdir()) == []


def test_a_large_file_lands_in_full_row_groups_on_every_thread(tmp_path):
    """Three work-file row groups, read on two threads, become three full row groups of
    the table (none split and merged again at the checkpoint, which doubled the file
    when an Arrow stream was read on two threads), in the file's order; the work file is
    gone after the load."""
    n = 2 * streaming.ROW_GROUP_ROWS + 1_000
    path = scope_parquet(tmp_path, "big.parquet", pl.Series("accessed_at", ["2025-07-01T10:00:00"] * n))
    scratch = tmp_path / "work"
    with connect(tmp_path / "w.duckdb") as con:
        con.execute("SET threads = 2")
        with io.loading(con):
            con.execute("BEGIN")
            assert io.load_scope_rows(con, io.scope_frame(path), SHA, "Asia/Seoul", scratch) == n
            con.execute("COMMIT")
        con.execute("CHECKPOINT")
        groups = con.execute("""SELECT row_group_id, max("count") FROM pragma_storage_info('scope_rows')
                                WHERE column_name = 'row_number' GROUP BY ALL ORDER BY ALL""").fetchall()
        assert [rows for _, rows in groups] == [streaming.ROW_GROUP_ROWS, streaming.ROW_GROUP_ROWS, 1_000]
        numbers = con.sql("SELECT row_number FROM scope_rows").pl()["row_number"]  # no ORDER BY: stored order
        assert numbers.to_list() == list(range(1, n + 1))
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("kind", ["scope", "customers"])
def test_a_header_only_file_is_empty_and_leaves_no_table_behind(tmp_path, kind):
    path = tmp_path / "h.csv"
    path.write_text(",".join(io.CUSTOMER_COLUMNS if kind == "customers" else io.SCOPE_COLUMNS) + "\n")
    with connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(io.FileRejected) as caught:
            if kind == "scope":
                io.load_scope_rows(con, io.scope_frame(path), SHA, "Asia/Seoul", tmp_path)
            else:
                io.load_customers_staging(con, customer_keys(io.customers_frame(path)), "Asia/Seoul", tmp_path)
        assert caught.value.reason == "empty_file"
        assert con.execute("SELECT count(*) FROM scope_rows").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'customers_staging'"
                           ).fetchall() == [(0,)]


# ------------------------------------------------------------------ promotion


def snapshot(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    text = {c: pl.String for c in io.CUSTOMER_COLUMNS}
    pl.DataFrame(rows, schema=text).write_parquet(tmp_path / name)
    return tmp_path / name


ROW = dict(name="Kim", status="active", created_at="2024-01-01", is_test="no")


def test_promote_stores_what_the_copy_did_in_the_schema_order(tmp_path):
    """The renamed staging table holds exactly what the former copy (a SELECT of the
    staging columns) held: same columns, same order, same values, keys normalised once."""
    path = snapshot(tmp_path, "c.parquet", [
        dict(ROW, customer_id="C2", email=" ＫＩＭ@Example.COM ", phone="０１０-1234-5678", payout_method=None,
             bank_code="020", bank_account="123-456-7890"),
        dict(ROW, customer_id="C1", email="bad", phone="02-123", status="closed", closed_at="2025-01-02T03:04:05Z",
             is_test="Yes", payout_method="bank_transfer", bank_code="20", bank_account="1 2"),
    ])
    with connect(tmp_path / "w.duckdb") as con:
        schema_columns = [r[0] for r in con.execute("DESCRIBE customers").fetchall()]
        io.load_customers_staging(con, customer_keys(io.customers_frame(path)), "Asia/Seoul", tmp_path)
        copied = con.execute("""
            SELECT customer_id, email, phone, email_norm, phone_e164, status,
                   created_at AS created_at_raw, closed_at AS closed_at_raw, created_at_ts AS created_at, closed_at_ts AS closed_at, is_test_bool AS is_test,
                   coalesce(payout_method, 'voucher') AS payout_method, bank_code,
                   bank_account_digits AS bank_account, bank_valid, ? AS file_sha256
            FROM customers_staging ORDER BY row_number""", [SHA]).fetchall()
        con.execute("BEGIN")
        assert io.promote_customers(con, SHA) == 2
        con.execute("COMMIT")
        assert [r[0] for r in con.execute("DESCRIBE customers").fetchall()] == schema_columns
        assert con.execute("SELECT * FROM customers").fetchall() == copied
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'customers_staging'"
                           ).fetchall() == [(0,)]
    assert [r[1:5] for r in copied] == [
        (" ＫＩＭ@Example.COM ".strip(), "０１０-1234-5678", "kim@example.com", "+821012345678"),
        ("bad", "02-123", None, None)]
    assert [r[6:8] for r in copied] == [(ROW["created_at"], None), (ROW["created_at"], "2025-01-02T03:04:05Z")]
    assert [r[10:15] for r in copied] == [(False, "voucher", "020", "1234567890", True),
                                         (True, "bank_transfer", "20", "12", False)]


def test_a_later_snapshot_replaces_the_master_and_a_new_row_gets_no_stale_default(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        for name, ids, sha in (("a.parquet", ["C1", "C2"], "a" * 64), ("b.parquet", ["C3"], "b" * 64)):
            path = snapshot(tmp_path, name, [dict(ROW, customer_id=i) for i in ids])
            io.load_customers_staging(con, customer_keys(io.customers_frame(path)), "UTC", tmp_path)
            con.execute("BEGIN")
            io.promote_customers(con, sha)
            con.execute("COMMIT")
        assert con.execute("SELECT customer_id, file_sha256 FROM customers").fetchall() == [("C3", "b" * 64)]
        assert con.execute("""SELECT column_default FROM duckdb_columns()
                              WHERE table_name = 'customers' AND column_name = 'file_sha256'""").fetchall() == [(None,)]


def test_a_promotion_rolled_back_keeps_the_previous_master(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        io.load_customers_staging(con, customer_keys(io.customers_frame(snapshot(tmp_path, "a.parquet", [dict(ROW, customer_id="C1")]))), "UTC", tmp_path)
        io.promote_customers(con, "a" * 64)
        io.load_customers_staging(con, customer_keys(io.customers_frame(snapshot(tmp_path, "b.parquet", [dict(ROW, customer_id="C9")]))), "UTC", tmp_path)
        con.execute("BEGIN")
        io.promote_customers(con, "b" * 64)
        con.execute("ROLLBACK")  # a crash before the commit
        assert con.execute("SELECT customer_id, file_sha256 FROM customers").fetchall() == [("C1", "a" * 64)]
        assert con.execute("SELECT customer_id FROM customers_staging").fetchall() == [("C9",)]


def test_no_inbox_path_reaches_duckdb(tmp_path):
    """A folder name with glob and quote characters is read as a name (Polars, glob=False)."""
    folder = tmp_path / "it's [a] *folder*"
    folder.mkdir()
    other = folder.parent / "it's a folder"  # what the pattern would match
    other.mkdir()
    (other / "s.csv").write_text("customer_id,data_category,accessed_at\nWRONG,name,2025-07-01\n")
    (folder / "s.csv").write_text("customer_id,data_category,accessed_at\nRIGHT,name,2025-07-01\n")
    assert [r[1] for r in scope_rows(tmp_path, folder / "s.csv")] == ["RIGHT"]


# ------------------------------------------------------------ time zones Polars does not know


def offset_zoned(tmp_path: Path, name: str, zone: str, extra: dict | None = None) -> Path:
    """A Parquet file whose timestamp column carries an Arrow time zone as pyarrow
    writes it (a fixed offset is valid Arrow), which Polars cannot parse."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"customer_id": ["C1", "C2"], "data_category": ["name", "name"],
               "accessed_at": pa.array([1754000000000, None], pa.timestamp("ms", tz=zone))}
    pq.write_table(pa.table(columns | (extra or {})), tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("zone", ["+05:30", "-03:30", "+05:45", "Z", "Mars/Olympus"])
def test_a_timestamp_in_a_zone_polars_does_not_know_is_the_instant_arrow_stores(tmp_path, zone):
    """Polars knows whole-hour offsets but not India's, Newfoundland's or Nepal's, nor
    `Z`: it panics on such a schema, which stopped the whole run; then the file was
    refused whole (found by review: the SPEC takes a typed timestamp as it is). Arrow
    stores such a timestamp as a UTC instant whatever its zone says: read so."""
    got = scope_rows(tmp_path, offset_zoned(tmp_path, "offset.parquet", zone))
    assert [r[6] for r in got] == [datetime(2025, 7, 31, 22, 13, 20, tzinfo=timezone.utc), None]
    assert [r[1] for r in got] == ["C1", "C2"]  # in the file's order


@pytest.mark.parametrize("nesting", ["list", "struct", "map", "list of structs"])
def test_such_timestamps_inside_an_extra_column_never_refuse_the_file(tmp_path, nesting):
    """Found by review: an extra struct column of such timestamps made Polars panic (the
    file refused as "PanicException"), and a list refused the file; columns beyond the
    SPEC's are ignored, whatever they hold."""
    import pyarrow as pa

    at = pa.timestamp("ms", tz="+05:30")
    kinds = {"list": (pa.list_(at), [[1754000000000], None]),
             "struct": (pa.struct([("when", at)]), [{"when": 1754000000000}, None]),
             "map": (pa.map_(pa.string(), at), [[("k", 1754000000000)], None]),
             "list of structs": (pa.list_(pa.struct([("when", at)])), [[{"when": 1754000000000}], None])}
    kind, values = kinds[nesting]
    got = scope_rows(tmp_path, offset_zoned(tmp_path, "nested.parquet", "+05:30", {"seen": pa.array(values, kind)}))
    assert [r[6] for r in got] == [datetime(2025, 7, 31, 22, 13, 20, tzinfo=timezone.utc), None]


@given(ids=st.lists(st.uuids(), min_size=1, max_size=5))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_parquet_column_of_uuids_is_read_as_their_canonical_text(tmp_path, ids):
    """Found by review: a customer_id column of Parquet's UUID type (as DuckDB and
    Postgres exports write it) refused the whole file, a snapshot too, as "Binary, which
    has no text form"; a UUID has a text form, lowercase 8-4-4-4-12."""
    path = tmp_path / "uuid.parquet"
    frame = pl.DataFrame({"customer_id": [str(u) for u in ids], "data_category": ["name"] * len(ids),
                          "accessed_at": ["2025-07-01T10:00:00"] * len(ids)})
    with duckdb.connect() as con:
        con.register("frame", frame)
        con.execute("COPY (SELECT customer_id::UUID AS customer_id, data_category, accessed_at FROM frame) TO "
                    f"'{path}' (FORMAT parquet)")  # a path of the test's own, no input
    got = io.scope_frame(path).collect()
    assert got["customer_id"].to_list() == [str(u) for u in ids]


def test_an_extra_interval_column_refuses_the_file_in_words_not_a_panic(tmp_path):
    """Found by review: an extra column of intervals made Polars panic reading the
    schema, and the file was refused with the detail "PanicException". Polars cannot
    read the file even to leave the column out: refused, naming the column."""
    path = tmp_path / "interval.parquet"
    with duckdb.connect() as con:
        con.execute("COPY (SELECT 'C1' AS customer_id, 'name' AS data_category, '2025-07-01' AS accessed_at, "
                    f"INTERVAL 1 DAY AS iv) TO '{path}' (FORMAT parquet)")
    with pytest.raises(io.FileRejected) as caught:
        io.scope_frame(path).collect()
    assert caught.value.reason == "unreadable_file"
    assert "column iv is of an interval type" in caught.value.detail


@pytest.mark.parametrize("names", [["customer_id", "data_category", "accessed_at", "extra", "extra"],
                                   ["customer_id", "data_category", "accessed_at", "data_category"]])
def test_a_parquet_column_name_given_twice_refuses_the_file_naming_it(tmp_path, names):
    """Found by review: the detail was Polars' "DuplicateError", naming nothing. Polars
    cannot read such a file even to leave the unwanted column out (a CSV can: it is
    ignored there), so it is refused, naming the column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "twice.parquet"
    pq.write_table(pa.table([pa.array(["x"])] * len(names), names=names), path)
    with pytest.raises(io.FileRejected) as caught:
        io.scope_frame(path).collect()
    assert caught.value.reason == "unreadable_file"
    assert caught.value.detail.startswith(f"column {names[-1]!r} is given twice")


def test_named_zones_and_utc_offsets_polars_knows_still_load(tmp_path):
    for zone in ("UTC", "+00:00", "-08:00", "Asia/Kolkata"):
        got = scope_rows(tmp_path, offset_zoned(tmp_path, f"z{zone.replace('/', '_')}.parquet", zone))
        assert got[0][6] == datetime(2025, 7, 31, 22, 13, 20, tzinfo=timezone.utc), zone


@pytest.mark.parametrize("kind", ["scope", "customers"])
def test_a_file_of_many_batches_lands_in_the_same_row_order_every_time(tmp_path, monkeypatch, kind):
    """Issue 10: a file of many row groups lands in the warehouse with every row once and
    in the file's order on every load, with DuckDB on several threads (an Arrow stream
    read on two shuffled a snapshot's rows differently each run): the same inputs give
    the same warehouse. Read back without ORDER BY on purpose."""
    monkeypatch.setattr(streaming, "ROW_GROUP_ROWS", 997)
    n = 30_000
    if kind == "customers":
        path = snapshot(tmp_path, "many.parquet", [dict(ROW, customer_id=f"C{i:05d}", email=f"u{i}@example.com")
                                                   for i in range(n)])
    else:
        path = scope_parquet(tmp_path, "many.parquet", pl.Series("accessed_at", ["2025-07-01T10:00:00"] * n))
    loads = []
    for attempt in range(4):
        with connect(tmp_path / f"w{attempt}.duckdb") as con:
            con.execute("SET threads = 4")
            if kind == "customers":
                io.load_customers_staging(con, customer_keys(io.customers_frame(path)), "Asia/Seoul", tmp_path)
                loads.append(con.execute("SELECT row_number, customer_id FROM customers_staging").fetchall())
            else:
                with io.loading(con):
                    con.execute("BEGIN")
                    io.load_scope_rows(con, io.scope_frame(path), SHA, "Asia/Seoul", tmp_path)
                    con.execute("COMMIT")
                loads.append(con.execute("SELECT row_number, customer_id FROM scope_rows").fetchall())
    assert loads[0] == [(i + 1, f"C{i:05d}" if kind == "customers" else f"C{i}") for i in range(n)]
    assert all(load == loads[0] for load in loads[1:])


def test_a_timestamp_polars_cannot_print_makes_the_file_unreadable_not_a_write_error(tmp_path):
    """A typed Parquet timestamp out of Polars' range panics its engine while the work
    file is written; reading the file alone panics too, so the file is the sender's
    unreadable_file (quarantined, the run goes on), not a failed write that stops every
    run (found by a reviewer: collect_batches() ended quietly on the panic)."""
    values = pl.Series("accessed_at", [2**63 - 2], pl.Int64).cast(pl.Datetime("us"))
    path = scope_parquet(tmp_path, "far.parquet", values)
    with connect(tmp_path / "w.duckdb") as con, pytest.raises(io.FileRejected) as caught:
        with io.loading(con):
            con.execute("BEGIN")
            try:
                io.load_scope_rows(con, io.scope_frame(path), SHA, "UTC", tmp_path / "work")
            finally:
                con.execute("ROLLBACK")
    assert caught.value.reason == "unreadable_file"
    assert list((tmp_path / "work").iterdir()) == []


# ISO 8601's offsets in the extended and the basic form, with their shift.
OFFSETS = [("", "", None), ("Z", "Z", timedelta(0)), ("+09:00", "+0900", timedelta(hours=9)),
           ("-03:30", "-0330", timedelta(hours=-3, minutes=-30)), ("+05", "+05", timedelta(hours=5))]


@settings(max_examples=100, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2100, 1, 1)),
       digits=st.integers(0, 9), offset=st.sampled_from(OFFSETS), space=st.booleans(), lower=st.booleans())
def test_every_iso_8601_spelling_of_a_time_is_the_same_instant(moment, digits, offset, space, lower):
    """Found by review: `2025-07-01T12:00:00,123+09:00` (a decimal comma, which ISO 8601
    prefers and log4j writes) and `20250701T120000+0900` (the basic format) were
    invalid_timestamp, and the people they named went unpaid. Every spelling of a time
    is the instant its extended form is, in the session's timezone when it has no
    offset; the basic form without seconds too."""
    extended_offset, basic_offset, _ = offset
    fraction = f"{moment.microsecond:06d}"[:digits] if digits else ""
    seconds = moment.strftime("%S") + (f".{fraction}" if fraction else "")
    extended = moment.strftime("%Y-%m-%dT%H:%M:") + seconds + extended_offset
    spellings = [extended.replace(".", ",", 1), moment.strftime("%Y%m%dT%H%M") + seconds.replace(".", ",")
                 + basic_offset, moment.strftime("%Y%m%dT%H%M") + seconds + basic_offset]
    if space:
        spellings.append(moment.strftime("%Y-%m-%d %H:%M:") + seconds.replace(".", ",") + extended_offset)
    if extended_offset:  # a space before the zone (Ruby's and git's `2025-07-01 12:00:00 +0900`)
        spellings += [f"{extended[:-len(extended_offset)]} {extended_offset}",
                      moment.strftime("%Y-%m-%d %H:%M:") + seconds + " " + basic_offset]
    if lower:  # RFC 3339's `t` and `z` (found by review: invalid_timestamp)
        spellings = [text.replace("T", "t").replace("Z", "z") for text in spellings]
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'Asia/Seoul'")
        got = [con.execute(f"SELECT {streaming.ts('t')} FROM (SELECT ?::VARCHAR AS t)", [text]).fetchall()[0][0]
               for text in [extended, *spellings]]
        minutes = con.execute(f"SELECT {streaming.ts('t')} FROM (SELECT ?::VARCHAR AS t)",
                              [moment.strftime("%Y%m%dT%H%M") + basic_offset]).fetchall()[0][0]
    assert got[0] is not None
    assert got == [got[0]] * len(got)
    assert minutes == got[0].replace(second=0, microsecond=0)


@pytest.mark.parametrize("text", ["20250701T12000", "20250701T1200000", "2025-07-01T12:00,5", "2025-07-01T12+09:00",
                                  "20250701", "2025-07-01T12:00:00,", "20251301T120000", "2025-07-01T12:00:00,,5",
                                  "20250701T120000+09:00:00", "2025-07-01T12:00:00.5,5", "20250701T1200:30",
                                  "2025-07-01 12:00:00  +09:00", "2025-07-01 +09:00", "2025-07-01 12:00:00 +99",
                                  "2025-07-01x12:00:00", "2025-07-01T12:00:00y", "2025-07-01tt12:00", "2025-07-01z",
                                  "2025-07-01T12:00:00zz"])
def test_a_text_no_iso_8601_spelling_reads_is_no_time(text):
    with duckdb.connect() as con:
        assert con.execute(f"SELECT {streaming.ts('t')} FROM (SELECT ?::VARCHAR AS t)", [text]).fetchall() == [(None,)]


EARLIEST = datetime(1, 1, 2, tzinfo=timezone.utc)
LATEST = datetime(9999, 12, 30, tzinfo=timezone.utc)


@settings(max_examples=60, deadline=None)
@example(moment=datetime(9999, 12, 31, 23, 59, 59), minutes=-14 * 60, zone="UTC")  # the review's
@example(moment=datetime(9999, 12, 30, 0, 0), minutes=0, zone="UTC")  # LATEST itself: outside
@example(moment=datetime(9999, 12, 30, 8, 59, 59), minutes=9 * 60, zone="Asia/Seoul")  # a second before it
@example(moment=datetime(1, 1, 2, 0, 0), minutes=0, zone="America/New_York")  # EARLIEST itself: inside
@example(moment=datetime(1, 1, 1, 0, 0), minutes=14 * 60, zone="Asia/Seoul")  # the year 0 in UTC
@given(moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
       minutes=st.integers(-14 * 60, 14 * 60), zone=st.sampled_from(["Asia/Seoul", "UTC", "America/New_York"]))
def test_a_time_whose_instant_no_reader_can_show_is_no_time(moment, minutes, zone):
    """Found by the standards review: `9999-12-31T23:59:59-14:00`, an instant of the year
    10000, was stored; its person was paid as outside the window and `explain` failed
    with a traceback. A time read from the inbox is its instant when that lies between
    0001-01-02 and 9999-12-30 UTC (a day inside Python's years, for any timezone it is
    shown in), else NULL, as an unparseable time is (invalid_timestamp; a customers
    snapshot refused whole)."""
    moment = moment.replace(microsecond=0)
    sign = "+" if minutes >= 0 else "-"
    offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    text = moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + offset
    seconds = (moment - datetime(1970, 1, 1)).total_seconds() - minutes * 60  # no datetime past 9999 needed
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    inside = (EARLIEST - epoch).total_seconds() <= seconds < (LATEST - epoch).total_seconds()
    with duckdb.connect() as con:
        con.execute("SET TimeZone = ?", [zone])
        (got,), = con.execute(f"SELECT {streaming.ts('t')} FROM (SELECT ?::VARCHAR AS t)", [text]).fetchall()
    assert got == (epoch + timedelta(seconds=seconds) if inside else None)


@pytest.mark.parametrize("zone, moment, kept", [
    ("America/New_York", datetime(9999, 12, 31, 23, 0), False),   # the year 10000 in UTC
    ("Asia/Seoul", datetime(9999, 12, 29, 23, 0), True),          # 9999-12-29 14:00 UTC
    ("Asia/Seoul", datetime(1, 1, 1, 12, 0), False),              # the year 0 in UTC
])
def test_a_typed_timestamp_whose_instant_no_reader_can_show_is_no_time(tmp_path, zone, moment, kept):
    got = scope_rows(tmp_path, scope_parquet(tmp_path, "far.parquet", pl.Series("accessed_at", [moment])), zone)
    assert (got[0][6] is not None) == kept
