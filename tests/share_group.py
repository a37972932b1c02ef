"""A group for the tests of REDRESS_SHARE_GROUP (tests/flows/test_privacy.py,
tests/warehouse/test_exports.py)."""

from __future__ import annotations

import grp
import os


def other_group() -> grp.struct_group:
    """A group not the process's own, so that the test sees the set-group-id folders at
    work (root may use any; others one of their supplementary groups, else their own)."""
    if os.geteuid() == 0:
        candidates = [g.gr_gid for g in grp.getgrall()]
    else:
        candidates = os.getgroups()
    return grp.getgrgid(min((g for g in candidates if g != os.getgid()), default=os.getgid()))
