"""One owner per warehouse table (issue 11, item 2): every write of a table (INSERT,
UPDATE, DELETE, replace, rename, drop) is in the one module schema.OWNERS names for it,
which stages call. The sources are scanned, like tests/redress/test_sql.py does, so the
rule holds for code written later, not just once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from redress.warehouse.schema import OWNERS, tables

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("redress", "tasks", "flows")
SCHEMA_MODULES = ("redress/warehouse/schema.py", "redress/warehouse/migrations.py")  # create and migrate every table

# A statement that writes a table, and the table's name (a `{...}` name is built in Python).
WRITES = re.compile(
    r"\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM|TRUNCATE|CREATE\s+OR\s+REPLACE\s+(?:TEMP\s+)?TABLE"
    r"|ALTER\s+TABLE|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|RENAME\s+TO|COPY)\s+(\{[^}]*\}|\w+)(\s+SET\b|\s+FROM\b)?",
    re.IGNORECASE)

# Modules that write tables whose names they build in Python, and why none is a warehouse table.
BUILT_NAMES = {
    "redress/warehouse/reference_codes.py": "drops its own scratch tables (_taken, _losers, _won)",
    "redress/warehouse/quarantine.py": "the owner: appends validate's staged_quarantine and drops it",
    "redress/warehouse/scope_rows.py": "the owner: replaces its outcome tables by their staged tables",
    "tasks/notify.py": "creates and drops its own scratch table, notify_people (PEOPLE), while it runs",
}


def writes(text: str) -> list[str]:
    """The table names written by the SQL in `text`: UPDATE only as `UPDATE x SET`,
    COPY only as `COPY x FROM` (COPY (query) TO writes a file, not a table)."""
    found = []
    for match in WRITES.finditer(text):
        verb, name, tail = match[0].split()[0].upper(), match[1], (match[2] or "").strip().upper()
        if (verb == "UPDATE" and tail != "SET") or (verb == "COPY" and tail != "FROM"):
            continue
        found.append(name)
    return found


def violations(sources: dict[str, str]) -> list[str]:
    """`module: table` for every write of a warehouse table outside its owner, and every
    write of a table named in Python outside BUILT_NAMES."""
    known = set(tables())
    wrong = []
    for module, text in sorted(sources.items()):
        for name in writes(text):
            if name.startswith("{"):
                if module not in BUILT_NAMES:
                    wrong.append(f"{module}: a table named in Python ({name})")
            elif name in known and module not in (OWNERS[name], *SCHEMA_MODULES):
                wrong.append(f"{module}: {name} (owner: {OWNERS[name]})")
    return wrong


def project_sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for folder in SOURCES for p in sorted((ROOT / folder).rglob("*.py"))}


def test_no_module_but_its_owner_writes_a_warehouse_table():
    assert violations(project_sources()) == []


def test_every_table_has_one_owner_and_the_owner_writes_it():
    assert sorted(OWNERS) == sorted(tables())
    sources = project_sources()
    for table, owner in OWNERS.items():
        found = writes(sources[owner])
        # scope_rows.py writes its three outcome tables in one loop over their names
        assert table in found or (owner in BUILT_NAMES and table in sources[owner]), f"{owner} does not write {table}"


@pytest.mark.parametrize("statement, table", [
    ("INSERT INTO ledger BY NAME SELECT * FROM x", "ledger"),
    ("insert into quarantine values (?)", "quarantine"),
    ("UPDATE runs SET outcome = 'failed'", "runs"),
    ("DELETE FROM entitlements WHERE true", "entitlements"),
    ("CREATE OR REPLACE TABLE customers AS SELECT 1", "customers"),
    ("ALTER TABLE staged RENAME TO scope_exposures", "scope_exposures"),
    ("DROP TABLE IF EXISTS review", "review"),
    ("COPY notifications FROM 'x.parquet'", "notifications"),
])
def test_a_write_outside_the_owner_is_found(statement, table):
    found = violations({"tasks/somewhere.py": f'con.execute("""{statement}""")'})
    assert found == [f"tasks/somewhere.py: {table} (owner: {OWNERS[table]})"]
    assert violations({OWNERS[table]: f'con.execute("""{statement}""")'}) == []


@pytest.mark.parametrize("statement", [
    "SELECT * FROM ledger", "COPY (SELECT * FROM ledger) TO ? (FORMAT parquet)",
    "CREATE OR REPLACE TABLE planned_payments AS SELECT 1", "ALTER TABLE customers_staging DROP COLUMN name",
])
def test_reads_and_staging_tables_are_not_writes_of_a_warehouse_table(statement):
    assert violations({"tasks/somewhere.py": statement}) == []


def test_a_table_named_in_python_is_found_outside_the_modules_allowed():
    found = violations({"tasks/somewhere.py": 'con.execute(f"INSERT INTO {table} SELECT 1")'})
    assert found == ["tasks/somewhere.py: a table named in Python ({table})"]
