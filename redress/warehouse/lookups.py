"""Writes of `lookups`: every `redress explain`, who asked, when, what was asked (never
the answer) and how it ended (redress/customer_service/lookups.py limits failed guesses
from it). The one module that writes the table (redress/warehouse/schema.py OWNERS).
"""

from __future__ import annotations

from datetime import datetime

import duckdb


def record(con: duckdb.DuckDBPyConnection, at: datetime, staff_id: str, os_user: str, asked: str,
           asked_kind: str, outcome: str) -> None:
    """One lookup: `asked` as typed (trimmed and cut by the caller), `asked_kind`
    customer_id | reference_code, `outcome` matched | no_match | refused."""
    con.execute("INSERT INTO lookups VALUES (?, ?, ?, ?, ?, ?)", [at, staff_id, os_user, asked, asked_kind, outcome])
