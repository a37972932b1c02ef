"""What a run checks before it writes anything (issue 9: nobody paid twice when the state is lost).

Run by the parent flow itself, under the folder lock and before `start_run`, so the
served deployments (flows/service.py), which call the flow directly, check exactly what
`redress run` checks. Each failure is one line (RedressError) and leaves the data
folder as it was: no warehouse row, no outbox file, not even a new warehouse file.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from redress.errors import RedressError
from redress.runtime.commands import redress_line
from redress.sql import check_path
from redress.settings import Settings, check_settings
from redress.warehouse import open_error
from redress.warehouse import path as warehouse_path
from redress.outbox.recovery import unknown_outbox


def check_warehouse_free(warehouse: Path) -> None:
    """Open the existing warehouse for writing and close it again: an analyst's
    connection (read-only or not) in another process, or a file that is not DuckDB's,
    is found now rather than half-way through disburse. A missing warehouse is fine
    (the first run creates it) and is not created here."""
    if not warehouse.exists():
        return
    check_path(warehouse)
    try:
        duckdb.connect(str(warehouse)).close()
    except duckdb.Error as exc:
        raise RedressError(open_error(warehouse, exc)) from None


def check_outbox_known(data_dir: Path, done: str = "nothing was run") -> None:
    """Refuse while the outbox holds batches or notifications the warehouse does not
    know: the warehouse was lost or replaced by an older copy, and a run now would pay
    and notify those people a second time; so would an approval of a plan the older
    copy still holds waiting (found by the recovery review: approved after a restore, it
    paid 39 people again). `done`: what the refusal left undone, for its line."""
    missing = unknown_outbox(data_dir)
    if missing:
        raise RedressError(
            f"the outbox holds {missing.describe()} that the warehouse does not know (warehouse lost or restored "
            f"from an older copy): {done}; rebuild the ledger with "
            f"`{redress_line(data_dir, 'recover-ledger')}` (plans made without those batches are superseded), "
            "then run again")


def check_before_run(data_dir: Path, settings: Settings) -> None:
    """Settings, warehouse, outbox: in that order, cheapest first. SPEC "The command line"
    (one-line errors), "Ledger: paying exactly once". A data folder whose path DuckDB
    cannot use (redress/sql.py) is refused first."""
    check_path(data_dir)
    check_settings(settings)
    check_warehouse_free(warehouse_path(data_dir))
    check_outbox_known(data_dir)
