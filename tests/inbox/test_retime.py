"""The evidence's times read again when the policy's timezone changes
(redress/inbox/retime.py; SPEC "Input: scope files", "Input: customers snapshot": a time
without an offset is in the policy's timezone). The property: scope files and a customers
snapshot read in one timezone, then typed again in another, hold exactly the instants a
first reading in the other gives, for every form of time the reader takes (text with and
without an offset, dates alone, fractions, text that is not a time, typed Parquet
timestamps with and without a zone, past year 9999)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redress import inbox as io
from redress.errors import RedressError
from redress.inbox.retime import retime
from redress.rules.identity import customer_keys
from redress.warehouse import connect, files

ZONES = ["UTC", "Asia/Seoul", "America/New_York", "America/St_Johns", "Australia/Lord_Howe", "Europe/London"]
FORMS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%SZ",
         "%Y-%m-%dT%H:%M:%S+09:00", "%Y-%m-%dT%H:%M:%S-0330", "%Y-%m-%d %H:%M:%S +05",
         # ISO 8601's other spellings (redress/inbox/streaming.py OTHER_SPELLINGS)
         "%Y%m%dT%H%M%S+0900", "%Y%m%dT%H%M", "%Y-%m-%dT%H:%M:%S,%f", "%Y%m%dT%H%M%S,%fZ",
         "%Y-%m-%dt%H:%M:%Sz", "%Y%m%dt%H%M"]
NOT_TIMES = ["yesterday", "2025-13-01", "2025/07/01 10:00", "2025-02-30T10:00:00"]

moments = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2100, 1, 1))
written = st.tuples(moments, st.sampled_from(FORMS)).map(lambda m: m[0].strftime(m[1]))
texts = st.one_of(written, st.sampled_from(NOT_TIMES))


def scope_csv(folder: Path, times: list[str]) -> Path:
    path = folder / "scope.csv"
    path.write_text("customer_id,data_category,accessed_at\n"
                    + "".join(f'C{i},name,"{t}"\n' for i, t in enumerate(times)), encoding="utf-8")
    return path


def customers_csv(folder: Path, created: list[str], closed: list[str | None]) -> Path:
    path = folder / "customers.csv"
    path.write_text("customer_id,name,email,phone,status,created_at,closed_at,is_test,payout_method,bank_code,bank_account\n"
                    + "".join(f"C{i},Kim,,,{'closed' if c else 'active'},\"{t}\",\"{c or ''}\",false,,,\n"
                              for i, (t, c) in enumerate(zip(created, closed))), encoding="utf-8")
    return path


def read_in(warehouse: Path, tz: str, scope: Path | pl.LazyFrame, customers: Path | None, scratch: Path) -> None:
    """The files read as a run's ingest reads them, in `tz`, and recorded so."""
    with connect(warehouse) as con:
        with io.loading(con):
            con.execute("BEGIN")
            frame = io.scope_frame(scope) if isinstance(scope, Path) else scope
            rows = io.load_scope_rows(con, frame, "s" * 64, tz, scratch)
            files.record(con, sha256="s" * 64, name="scope", kind="scope", size_bytes=1, status="accepted",
                         reason=None, rows=rows, run_id="R1", read_in=tz)
            con.execute("COMMIT")
        if customers is not None:
            rows = io.load_customers_staging(con, customer_keys(io.customers_frame(customers)), tz, scratch)
            io.promote_customers(con, "c" * 64)
            files.record(con, sha256="c" * 64, name="customers", kind="customers", size_bytes=1, status="accepted",
                         reason=None, rows=rows, run_id="R1", read_in=tz)


def times(warehouse: Path) -> tuple[list, list]:
    with connect(warehouse) as con:
        # microseconds since 1970: a year past 9999 has no Python datetime
        scope = con.execute("SELECT row_number, accessed_at_raw, epoch_us(accessed_at) FROM scope_rows "
                            "ORDER BY row_number").fetchall()
        master = con.execute("SELECT customer_id, epoch_us(created_at), epoch_us(closed_at) FROM customers "
                             "ORDER BY customer_id").fetchall()
    return scope, master


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scope=st.lists(texts, min_size=1, max_size=12), created=st.lists(moments, min_size=1, max_size=6),
       closed=st.lists(st.one_of(st.none(), written), min_size=6, max_size=6),
       form=st.sampled_from(FORMS), zones=st.permutations(ZONES).map(lambda z: z[:2]))
def test_times_read_again_are_the_times_a_first_reading_gives(tmp_path_factory, scope, created, closed, form, zones):
    folder = tmp_path_factory.mktemp("retime")
    before, after = zones
    scope_file = scope_csv(folder, scope)
    master = customers_csv(folder, [c.strftime(form) for c in created], closed[:len(created)])
    read_in(folder / "again.duckdb", before, scope_file, master, folder)
    with connect(folder / "again.duckdb") as con:
        done = retime(con, after)
        assert retime(con, after).line(after) == ""  # recorded: nothing left to read again
        assert files.read_elsewhere(files.evidence(con), after) == []
    read_in(folder / "first.duckdb", after, scope_file, master, folder)
    assert times(folder / "again.duckdb") == times(folder / "first.duckdb")
    assert (done.scope_files, done.scope_rows, done.customers, done.earlier) == (1, len(scope), len(created), (before,))


def test_typed_parquet_timestamps_with_and_without_a_zone_and_past_year_9999(tmp_path):
    year_12000 = 316_224_000_000_000_000  # microseconds since 1970: in the year 11990; no Python datetime
    nov_18 = 1_763_508_600_000_000  # 2025-11-18 23:30, as a naive timestamp's microseconds
    naive = pl.Series("accessed_at", [nov_18, year_12000, None], dtype=pl.Int64).cast(pl.Datetime("us"))
    for name, values in (("naive", naive), ("zoned", naive.dt.replace_time_zone("Asia/Seoul"))):
        frame = pl.DataFrame({"customer_id": ["C1", "C2", "C3"], "data_category": ["name"] * 3}).with_columns(values)
        path = tmp_path / f"{name}.parquet"
        frame.write_parquet(path)
        read_in(tmp_path / f"again-{name}.duckdb", "UTC", path, None, tmp_path)
        with connect(tmp_path / f"again-{name}.duckdb") as con:
            assert retime(con, "Asia/Seoul").scope_rows == 3
        read_in(tmp_path / f"first-{name}.duckdb", "Asia/Seoul", path, None, tmp_path)
        again, first = times(tmp_path / f"again-{name}.duckdb")[0], times(tmp_path / f"first-{name}.duckdb")[0]
        assert again == first
        if name == "naive":  # 23:30 in Seoul, not in UTC: nine hours earlier
            assert again[0][1] == "2025-11-18T23:30:00"
            assert again[0][2] == int(datetime.fromisoformat("2025-11-18T14:30:00+00:00").timestamp()) * 10**6
            assert again[1][1].startswith("+11990-")  # text the reader never parses
            assert again[1][2] is None  # past any time a reader can show: invalid_timestamp (standards review)


def test_a_file_of_an_earlier_version_is_taken_as_read_in_the_policy_timezone(tmp_path):
    read_in(tmp_path / "w.duckdb", "UTC", scope_csv(tmp_path, ["2025-07-01T10:00:00"]), None, tmp_path)
    with connect(tmp_path / "w.duckdb") as con:
        con.execute("UPDATE ingested_files SET timezone = NULL")
        before = con.execute("SELECT accessed_at FROM scope_rows").fetchall()
        assert retime(con, "Asia/Seoul").line("Asia/Seoul") == ""  # recorded, not read again
        assert con.execute("SELECT accessed_at FROM scope_rows").fetchall() == before
        assert con.execute("SELECT timezone FROM ingested_files").fetchall() == [("Asia/Seoul",)]


def test_a_master_of_an_earlier_version_cannot_be_read_again_and_nothing_changes(tmp_path):
    master = customers_csv(tmp_path, ["2020-01-01T00:00:00"], [None])
    read_in(tmp_path / "w.duckdb", "UTC", scope_csv(tmp_path, ["2025-07-01T10:00:00"]), master, tmp_path)
    with connect(tmp_path / "w.duckdb") as con:
        con.execute("ALTER TABLE customers DROP COLUMN closed_at_raw")  # one of them dropped by hand, found by review
        with pytest.raises(RedressError, match=r"^the policy's timezone is Asia/Seoul, but the current customers "):
            retime(con, "Asia/Seoul")
        con.execute("ALTER TABLE customers DROP COLUMN created_at_raw")  # as an earlier version promoted it
        with pytest.raises(RedressError, match=r"^the policy's timezone is Asia/Seoul, but the current customers "
                                               r"snapshot was read in UTC by an earlier version"):
            retime(con, "Asia/Seoul")
        # rolled back: the scope rows too, and the session is in UTC again
        assert con.execute("SELECT accessed_at FROM scope_rows").fetchall()[0][0] - timedelta(hours=10) == \
            datetime.fromisoformat("2025-07-01T00:00:00+00:00")
        assert {tz for (tz,) in con.execute("SELECT timezone FROM ingested_files").fetchall()} == {"UTC"}
        assert con.execute("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
