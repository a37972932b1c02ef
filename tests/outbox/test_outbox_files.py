"""redress/outbox/files.py: spreadsheet-safe CSV cells and batch folders with a manifest."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyarrow as pa
import pyarrow.parquet as pq

from redress.outbox.files import (discard_written, exact_pieces, publish, spreadsheet_safe, staging_folder,
                                  write_batch)


# ----------------------------------------------------------------- spreadsheet_safe

@pytest.mark.parametrize("cell, expected", [
    ("=1+2", "'=1+2"),
    ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
    ("+821012345678", "+821012345678"),  # a plain number: an E.164 phone is left as is
    ("-5", "-5"),
    ("+82-10-1234", "'+82-10-1234"),
    ("-5.0", "'-5.0"),
    ("+", "'+"),
    ("-", "'-"),
    ("=1", "'=1"),
    ("\t5", "'\t5"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"),
    ("\rx", "'\rx"),
    ("c0001", "c0001"),
    ("a=b", "a=b"),
    ("1-2", "1-2"),
    (" =1", " =1"),
    ("'=1", "'=1"),
    ("", ""),
    (None, None),
])
def test_formula_cells_get_a_leading_apostrophe(cell, expected):
    frame = pl.DataFrame({"text": [cell]}, schema={"text": pl.String})
    assert spreadsheet_safe(frame)["text"].item() == expected


def test_only_text_columns_change_and_the_input_is_kept():
    frame = pl.DataFrame({
        "payment_id": ["=evil", "ok"], "amount": [-5, 50000], "ratio": [-0.5, 1.0],
        "value_date": [date(2025, 12, 1), date(2025, 12, 2)], "flag": [True, False],
    })
    before = frame.clone()
    out = spreadsheet_safe(frame)
    assert out["payment_id"].to_list() == ["'=evil", "ok"]
    assert out.drop("payment_id").equals(frame.drop("payment_id"))
    assert out.schema == frame.schema
    assert frame.equals(before)


PLAIN_NUMBER = st.from_regex(r"\A[+-]?[0-9]+\Z")
FORMULA_LIKE = st.tuples(st.sampled_from("=+-@\t\r"), st.text()).map("".join).filter(
    lambda s: not re.fullmatch(r"[+-]?[0-9]+", s))


def _safe(cells: list) -> list:
    return spreadsheet_safe(pl.DataFrame({"c": cells}, schema={"c": pl.String}))["c"].to_list()


@given(st.lists(PLAIN_NUMBER, min_size=1))
def test_a_plain_number_is_never_changed(cells):
    assert _safe(cells) == cells


@given(st.lists(FORMULA_LIKE, min_size=1))
def test_a_formula_like_cell_is_always_prefixed_and_unprefixing_restores_it(cells):
    out = _safe(cells)
    assert all(c.startswith("'") for c in out)
    assert [c[1:] for c in out] == cells


@given(st.lists(st.text() | st.none()))
def test_any_cell_is_either_kept_or_only_prefixed(cells):
    for before, after in zip(cells, _safe(cells)):
        assert after == before or (after == "'" + before and before[:1] in "=+-@\t\r" and before)


# ----------------------------------------------------------------- write_batch

MANIFEST = {"batch_id": "coupang-2025-v1-20251201-bank_transfer-0001", "rail": "bank_transfer",
            "currency": "KRW", "value_date": "2025-12-01", "item_count": 2, "control_sum": 100000,
            "created_at": "2025-12-01T00:00:00+00:00"}
PAYMENTS = pl.DataFrame({"payment_id": ["20251201-B0001-000001", "20251201-B0001-000002"],
                         "customer_id": ["=cmd|' /C calc'!A0", "c2"], "amount": [50000, 50000]})


def test_manifest_lists_the_sha256_of_every_other_file(tmp_path):
    folder = write_batch(tmp_path, MANIFEST, PAYMENTS, {"pain.001.xml": b"<Document/>"})
    assert folder == staging_folder(tmp_path, MANIFEST["batch_id"])
    assert folder.name == ".tmp-coupang-2025-v1-20251201-bank_transfer-0001"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    files = {p.name for p in folder.iterdir()}
    assert files == {"manifest.json", "payments.parquet", "payments.csv", "payments.xlsx", "pain.001.xml"}
    assert set(manifest["files"]) == files - {"manifest.json"}
    for name, digest in manifest["files"].items():
        assert digest == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    assert manifest["files"]["pain.001.xml"] == hashlib.sha256(b"<Document/>").hexdigest()
    assert {k: manifest[k] for k in MANIFEST} == MANIFEST


def test_csv_is_spreadsheet_safe_and_parquet_keeps_the_data(tmp_path):
    folder = write_batch(tmp_path, MANIFEST, PAYMENTS)
    assert pl.read_parquet(folder / "payments.parquet").equals(PAYMENTS)
    csv = pl.read_csv(folder / "payments.csv")
    assert csv["customer_id"].to_list() == ["'=cmd|' /C calc'!A0", "c2"]
    assert csv["amount"].to_list() == [50000, 50000]


def test_a_stale_staging_folder_is_replaced(tmp_path):
    stale = staging_folder(tmp_path, MANIFEST["batch_id"])
    stale.mkdir()
    (stale / "leftover.txt").write_text("from a crashed run")
    folder = write_batch(tmp_path, MANIFEST, PAYMENTS)
    assert not (folder / "leftover.txt").exists()
    assert "leftover.txt" not in json.loads((folder / "manifest.json").read_text())["files"]


def test_publish_moves_the_folder_into_place(tmp_path):
    folder = write_batch(tmp_path, MANIFEST, PAYMENTS)
    final = tmp_path / MANIFEST["batch_id"]
    publish(folder, final)
    assert not folder.exists()
    assert (final / "manifest.json").is_file()


# ----------------------------------------------------------------- exact_pieces, discard_written

@given(st.lists(st.integers(min_value=0, max_value=30), max_size=12), st.integers(min_value=1, max_value=25))
def test_exact_pieces_are_the_rows_in_order_cut_every_rows_rows(sizes, rows):
    start = [0, *itertools.accumulate(sizes)]
    batches = [pa.record_batch({"n": pa.array(range(a, b), pa.int64())}) for a, b in zip(start, start[1:])]
    pieces = list(exact_pieces(batches, rows))
    total = start[-1]
    # Every piece holds `rows` rows but the last, which holds the rest; none when there are no rows.
    assert [p.num_rows for p in pieces] == [rows] * (total // rows) + ([total % rows] if total % rows else [])
    assert [v for p in pieces for v in p.column("n").to_pylist()] == list(range(total))


def test_a_failed_write_leaves_no_file_and_the_first_error_stands(tmp_path):
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    table = pa.table({"n": [1, 2]})
    writers = [pq.ParquetWriter(p, table.schema) for p in paths]
    writers[0].write_table(table)

    class FailingClose:  # a full disk fails the footer of every other file too
        def close(self):
            raise OSError("no space left on device")

    thread, release = ThreadPoolExecutor(max_workers=1), threading.Event()
    running = thread.submit(release.wait, 10)
    queued = thread.submit(lambda: None)
    threading.Timer(0.2, release.set).start()
    try:
        raise RuntimeError("the first error")
    except RuntimeError:
        discard_written([thread], [FailingClose(), *writers], [*paths, tmp_path / "never-written.parquet"])
    assert not any(p.exists() for p in paths)
    assert running.result() is True and queued.cancelled()  # the running piece ends; queued ones never start
    assert not any(w.is_open for w in writers)
