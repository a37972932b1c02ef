"""Where the folders redress ships with live: `expectations/` (one GX suite per table)
and `policies/` (the compensation policies). The top-level folders of the repository
are the source of truth (design card); the wheel carries copies of them inside the
package, under redress/_data/ (pyproject.toml, hatch force-include), so an installed
`redress` finds them wherever it runs from.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SHIPPED = ("expectations", "policies")


def shipped_dir(name: str) -> Path:
    """The folder `name` (one of SHIPPED): the installed package's copy when there is
    one, else the repository's own folder (an editable install, or the source tree)."""
    if name not in SHIPPED:
        raise ValueError(f"not a shipped folder: {name!r} (one of {', '.join(SHIPPED)})")
    installed = Path(str(files("redress").joinpath("_data", name)))
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / name
