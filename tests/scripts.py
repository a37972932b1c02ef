"""A stand-in `redress` console script, for tests of the commands redress prints
(redress/runtime/commands.py). `import scripts` works from every test tier."""

from __future__ import annotations

from pathlib import Path


def fake_script(folder: Path) -> Path:
    """An executable `folder/redress` that does nothing; `folder` is made."""
    folder.mkdir(parents=True)
    script = folder / "redress"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return script
