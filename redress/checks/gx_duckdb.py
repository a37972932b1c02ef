"""Great Expectations on the DuckDB warehouse, through SQLAlchemy (duckdb-engine).

GX 1.24 has no DuckDB dialect. Its SQL engine opens a connection per query and reads
some results after that connection is closed; duckdb-engine drops a result when its
connection closes, so every SQL expectation fails (an IndexError inside GX). GX already
keeps one connection open for the whole validation for SQLite and a few others: it
checks the engine's dialect name, and the start of the connection string, against
`_PERSISTED_CONNECTION_DIALECTS`. Adding
"duckdb" to that tuple is the whole shim. tests/checks/test_suites.py fails if GX changes
that constant or no longer needs it.

Data stays in DuckDB: GX sends SQL, never loads a table into pandas.

Inside a run that holds the warehouse's instance open (redress.warehouse.held_open), GX
validates through connections to that instance (SQLAlchemy's `creator`), not an open of
the file: closing the instance and opening the file around each suite took a suite of a
200-customer run from about 160 to 230 ms, and in the moment the file was closed another
process could take its lock.

GX's engines are built on a dialect of this module's (`SkipFailingReflection`, URL
`duckdb+redress:///...`): duckdb-engine's, without the two reflection queries GX sends
for each suite that cannot succeed on DuckDB 2 with SQLAlchemy 2.1 (PostgreSQL's
catalog queries: no REGCLASS type, no pg_collation). GX catches their failure and goes
on with no primary key and the column names its fallback reads from a query of the
table (no types). The dialect answers "no primary key, no columns" at once, so GX goes
straight to its fallback and ends up with exactly that: a ledger suite outside a run
took 202 and 209 ms against 249 and 222 ms (the two failing queries took about 11 and
13 ms in a profile). tests/checks/test_suites.py fails if the queries start to work, and
holds GX's column metadata through this dialect equal to that through duckdb-engine's
for every warehouse table (a staging table among them) and a view.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb_engine
import great_expectations as gx
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.datasource.fluent.interfaces import Batch
from great_expectations.execution_engine import sqlalchemy_execution_engine as gx_sql
from sqlalchemy.dialects import registry
from sqlalchemy.engine import URL

from redress.sql import check_path
from redress.warehouse import held_connection, memory_limit


class _DialectName(str):
    """A dialect name shaped like GX's own `GXSqlDialect` members: equal to the engine's
    dialect name (`get_connection`) and with a `.value` (`_dialect_requires_persisted_connection`,
    which then builds the engine with a StaticPool: one connection)."""

    @property
    def value(self) -> str:
        return str(self)


DUCKDB = _DialectName("duckdb")


class SkipFailingReflection(duckdb_engine.Dialect):
    """duckdb-engine's dialect (name "duckdb") with the primary key and the columns of a
    table answered as GX ends up with them when duckdb-engine's queries fail (see the
    module doc): no primary key, and no columns, so that GX reads their names from its
    fallback.
    For GX's engines only: any other reader of these answers would be misled."""

    supports_statement_cache = False  # duckdb-engine's; SQLAlchemy asks each subclass again

    def get_pk_constraint(self, connection, table_name, schema=None, **kw):
        return {"constrained_columns": [], "name": None}

    def get_columns(self, connection, table_name, schema=None, **kw):
        return []


# SQLAlchemy finds it as "duckdb.redress" in its registry. It must start with "duckdb":
# GX chooses the one persisted connection by the connection string's start.
DRIVER = "duckdb+redress"
registry.register("duckdb.redress", __name__, "SkipFailingReflection")


def persist_duckdb_connection() -> None:
    """Make GX hold one DuckDB connection for a whole validation (see the module doc).
    Idempotent; reading the constant fails loudly if a GX upgrade removes it."""
    if DUCKDB not in gx_sql._PERSISTED_CONNECTION_DIALECTS:
        gx_sql._PERSISTED_CONNECTION_DIALECTS = (*gx_sql._PERSISTED_CONNECTION_DIALECTS, DUCKDB)


def quiet_context() -> gx.data_context.EphemeralDataContext:
    """An in-memory GX context: writes no gx/ folder, sends no analytics, draws no
    progress bars (a batch pipeline's logs are not a terminal)."""
    return gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        ),
    )


def warehouse_url(warehouse: Path) -> str:
    """The SQLAlchemy URL of the warehouse file, on the dialect above. Built, not pasted:
    in `duckdb+redress:///{path}` a `?` or `#` in the path would end the database name and
    a `%` would be decoded;
    URL.create percent-encodes the path (a `$` too, so GX's `${VAR}` substitution in
    connection strings finds nothing to replace), and SQLAlchemy decodes it back exactly."""
    return URL.create(DRIVER, database=str(warehouse)).render_as_string(hide_password=False)


@contextmanager
def table_batch(warehouse: Path, table: str) -> Iterator[Batch]:
    """A GX batch of one whole warehouse table. The DuckDB file is open, read-only, only
    inside the `with` block: both SQLAlchemy engines GX made are disposed on the way out,
    so the caller can open the warehouse again (with any settings) right after. Inside
    `held_open` of the warehouse, GX's connections are to the held instance instead (see
    the module doc); GX only reads. FileNotFoundError for a missing file; RedressError
    for a path DuckDB cannot use (redress/sql.py `check_path`)."""
    warehouse = Path(warehouse)
    if not warehouse.is_file():
        # duckdb would silently create an empty database here.
        raise FileNotFoundError(f"no warehouse at {warehouse}")
    check_path(warehouse)
    persist_duckdb_connection()
    first = held_connection(warehouse)
    if first is None:
        # Validation never writes; and GX's DuckDB instance is a second one in this
        # process, so it gets the warehouse connection's memory cap, not DuckDB's 80%.
        kwargs = {"connect_args": {"read_only": True, "config": {"memory_limit": memory_limit()}}}
    else:
        first.close()
        kwargs = {"creator": lambda: _on_held_instance(warehouse)}
    datasource = gx.datasource.fluent.SQLDatasource(
        name="warehouse", connection_string=warehouse_url(warehouse.resolve()), kwargs=kwargs)
    try:
        asset = quiet_context().data_sources.add_sql(datasource=datasource).add_table_asset(
            name=table, table_name=table
        )
        yield asset.add_batch_definition_whole_table(name="whole_table").get_batch()
    finally:
        # GX keeps two engines: one for connection tests and reflection, one that runs
        # the metrics (holding the persisted connection). Both must let go of the file.
        datasource.get_execution_engine().close()
        datasource.get_engine().dispose()


def _on_held_instance(warehouse: Path) -> duckdb_engine.ConnectionWrapper:
    # duckdb-engine's own connect wraps the connection the same way.
    con = held_connection(warehouse)
    if con is None:  # validation only reads: the file cannot have grown past the bound
        raise RuntimeError(f"the warehouse's held instance was let go during a validation: {warehouse.name}")
    return duckdb_engine.ConnectionWrapper(con)
