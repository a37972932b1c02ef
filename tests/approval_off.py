"""The shipped policy with `require_approval = false`, for tests about everything else.

The shipped policy asks for approval before release (SPEC "Approval before release"), so
a run with it stops with its plan. Tests that expect payments from one run use this copy
instead: the same file, byte for byte, but that one key. `import approval_off` works from
every test tier (pytest puts tests/ on the path for tests/conftest.py).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from redress.policy import DEFAULT_POLICY as SHIPPED

_ON = "require_approval = true"


def _written() -> Path:
    text = SHIPPED.read_text(encoding="utf-8")
    assert text.count(_ON) == 1, "the shipped policy no longer sets require_approval = true once"
    folder = Path(tempfile.mkdtemp(prefix="redress-policy-"))
    atexit.register(_remove, folder, os.getpid())
    path = folder / SHIPPED.name
    path.write_text(text.replace(_ON, "require_approval = false"), encoding="utf-8")
    return path


def _remove(folder: Path, owner: int) -> None:
    # Only by the process that wrote it: a command forked from a test process
    # (tests/forked.py) runs the parent's atexit handlers as it ends, while the parent's
    # next tests still read the file.
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


# The name the tests already use for the policy they run with.
DEFAULT_POLICY = _written()
