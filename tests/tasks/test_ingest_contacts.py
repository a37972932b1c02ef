"""The contacts of a customers snapshot that no scope row can match (tasks/ingest.py
unusable_contacts): counted for the run's summary, never refused, never silent."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from redress.rules.identity import customer_keys
from tasks.ingest import unusable_contacts


@pytest.mark.parametrize("phones, emails, said", [
    (["010-1234-5678", None], ["a@example.com", None], []),
    (["010-1234", "(+82) 10-1234-5678"], [None, None], ["1 phone(s)"]),
    (["N/A", "12345"], ["kim at example.com", "a@b@c"], ["2 phone(s) and 2 email(s)"]),
    ([None, "02-123-4567"], ["@example.com", "b@example.com"], ["1 email(s)"]),
])
def test_contacts_on_file_not_well_formed_are_counted(phones, emails, said):
    staged = customer_keys(pl.LazyFrame({"phone": phones, "email": emails}, schema={"phone": pl.String,
                                                                                   "email": pl.String})).collect()
    with duckdb.connect() as con:
        con.register("staged", staged)
        con.execute("CREATE TABLE customers_staging AS SELECT * FROM staged")
        got = unusable_contacts(con)
    assert got == [f"{s} on file not well-formed, kept as given: no scope row is matched by them and no message goes "
                   "to them" for s in said]
