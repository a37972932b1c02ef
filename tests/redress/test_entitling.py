"""redress/entitling.py: the entitle stage's inputs in customer slices (issue 10, 150M
customers). Entitlements made one slice of the exposure summary at a time must be those
of one slice, row for row and won for won, in full and incremental mode, with and
without a capped fund (whose pro rata sums over every slice)."""

from __future__ import annotations

import shutil

import duckdb
import polars as pl
import pytest

from redress.entitling import entitlements_file, export_inputs
from redress.warehouse import SCHEMA

CATEGORIES = ["name", "email", "phone", "shipping_address", "order_history", "entrance_code"]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """3,000 customers of every status, payout and test flag; 2 to 7 exposures each over
    two files, of every category, confidence and time (inside and outside the window);
    customers 2,990-2,999 have none."""
    path = tmp_path_factory.mktemp("entitling") / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(SCHEMA)
        con.execute("""
            INSERT INTO customers (customer_id, status, created_at, closed_at, is_test, payout_method, bank_valid,
                                   file_sha256)
            SELECT printf('C%08d', i), ['active', 'dormant', 'closed'][i % 3 + 1],
                   TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_days(i % 900),
                   CASE WHEN i % 3 = 2 THEN TIMESTAMPTZ '2025-05-01 00:00:00+00' + to_days(i % 300) END,
                   i % 97 = 0, CASE WHEN i % 3 = 0 THEN 'bank_transfer' ELSE 'voucher' END, i % 5 <> 0, 'f0'
            FROM range(3000) t(i)""")
        con.execute("""
            INSERT INTO scope_exposures (file_sha256, row_number, customer_id, matched_by, data_category,
                                         accessed_at, confidence)
            SELECT CASE WHEN j % 2 = 0 THEN 'a' ELSE 'b' END, i * 10 + j, printf('C%08d', i), 'customer_id',
                   $categories[(i * 7 + j) % 6 + 1],
                   TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_hours((i * 31 + j * 17) % 4800),
                   CASE WHEN (i + j) % 6 = 0 THEN 'suspected' ELSE 'confirmed' END
            FROM range(2990) t(i), range(7) u(j) WHERE j < 2 + i % 6""", {"categories": CATEGORIES})
    return path


def entitled(warehouse, tmp_path, policy, slice_customers: int, **mode) -> tuple[pl.DataFrame, int, int]:
    work = tmp_path / f"work-{slice_customers}"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        slices = export_inputs(con, work, slice_customers=slice_customers, **mode)
    result, passing = entitlements_file(slices, policy, work)
    return pl.read_parquet(result).sort("customer_id"), passing, len(slices)


@pytest.mark.parametrize("cap", [0, 40_000_000])
@pytest.mark.parametrize("mode", [{"every": True}, {"every": False, "files": ["b"]}])
def test_slices_give_the_entitlements_of_one(warehouse, tmp_path, policy, cap, mode):
    rules = policy(total_cap=cap, minimum_amount=1000)
    whole, whole_sum, one = entitled(warehouse, tmp_path, rules, 20_000_000, **mode)
    sliced, sliced_sum, many = entitled(warehouse, tmp_path, rules, 350, **mode)
    assert one == 1 and many == 9  # 3,000 customers (or those of file b) in slices of 350
    assert sliced.equals(whole) and sliced_sum == whole_sum
    assert whole.height > 2_000 and whole["amount"].sum() > 0
    if cap:  # the fund was short: pro rata over the sum of every slice, not of one
        assert whole["amount"].sum() <= cap < whole["base_amount"].sum()


@pytest.mark.parametrize("slice_customers", [20_000_000, 350, 30])
def test_the_export_holds_everyone_in_full_mode_and_only_the_affected_otherwise(warehouse, tmp_path,
                                                                                 slice_customers):
    """Full mode reads both tables whole (3,000 customers, ten of them never exposed, and
    every exposure); the incremental one only the customers with an exposure in the
    given files (here a new file naming 100 of them), with all their exposures, earlier
    files' too. Whole and in slices (in slices of 30, the incremental export too)."""
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("""
            INSERT INTO scope_exposures (file_sha256, row_number, customer_id, matched_by, data_category,
                                         accessed_at, confidence)
            SELECT 'c', i, printf('C%08d', i * 7), 'customer_id', 'email', TIMESTAMPTZ '2025-06-02 00:00:00+00',
                   'confirmed'
            FROM range(100) t(i)""")
        (all_exposures,), = con.execute("SELECT count(*) FROM scope_exposures").fetchall()
        (of_c,), = con.execute("SELECT count(*) FROM scope_exposures WHERE customer_id IN "
                               "(SELECT customer_id FROM scope_exposures WHERE file_sha256 = 'c')").fetchall()

    def exported(**mode) -> tuple[set, int]:
        work = tmp_path / f"export-{len(list(tmp_path.iterdir()))}"
        with duckdb.connect(str(copy), read_only=True) as con:
            slices = export_inputs(con, work, slice_customers=slice_customers, **mode)
        if mode.get("files") == ["c"]:  # the 100 affected customers are sliced too below 100 a slice
            assert (len(slices) > 1) == (slice_customers < 100)
        customers = {c for _, files in slices for f in files
                     for c in pl.read_parquet(f, glob=False)["customer_id"].to_list()}
        return customers, sum(pl.read_parquet(f, glob=False).height for files, _ in slices for f in files)

    assert exported(every=True) == ({f"C{i:08d}" for i in range(3000)}, all_exposures)
    assert exported(every=False, files=["c"]) == ({f"C{i * 7:08d}" for i in range(100)}, of_c)
    assert of_c > 200  # their exposures in files a and b came with them
    assert exported(every=False, files=["not-a-file"]) == (set(), 0)


def test_an_exposed_customer_missing_from_the_master_is_refused_in_slices_too(warehouse, tmp_path, policy):
    with duckdb.connect(str(warehouse)) as con:
        con.execute("""INSERT INTO scope_exposures (file_sha256, row_number, customer_id, matched_by, data_category,
                                                    accessed_at, confidence)
                       VALUES ('z', 1, 'C99999999', 'customer_id', 'email', TIMESTAMPTZ '2025-07-01 00:00:00+00',
                               'confirmed')""")
    try:
        for slice_customers in (20_000_000, 350):
            with pytest.raises(ValueError):
                entitled(warehouse, tmp_path, policy(), slice_customers)
    finally:
        with duckdb.connect(str(warehouse)) as con:
            con.execute("DELETE FROM scope_exposures WHERE file_sha256 = 'z'")
