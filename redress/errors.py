"""Expected errors: the CLI prints their message as one line and exits non-zero.

Failures of the machine rather than of the data are expected too: they are put in one
line by redress/runtime/machine_errors.py (which knows DuckDB and the warehouse, so that
this module, imported by the pure rules through the policy, imports neither).
"""

from __future__ import annotations


class RedressError(Exception):
    """An error the user can act on (bad policy, missing folder, locked warehouse...)."""


class WarehouseInUse(RedressError):
    """The warehouse is held by another process (a run, an analyst's connection)."""


class RunPolicyUnreadable(RedressError):
    """The policy file an earlier run read is gone, unreadable or changed since
    (redress.context.RunContext.policy): what only that run's file can do waits until it
    is put back as the run read it."""
