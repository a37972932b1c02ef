"""Reading the inbox: files into the warehouse, by content."""

from pathlib import Path

from redress.errors import RedressError


def require_inbox(data_dir: Path) -> None:
    """Refuse a data folder without inbox/ (SPEC "The data folder"): the one-line
    RedressError every entry point (`redress run`, `redress serve`, the served flows)
    gives, before anything is written."""
    if not (Path(data_dir) / "inbox").is_dir():
        raise RedressError(f"data folder {data_dir} has no inbox/ folder (create inbox/customers and inbox/scope)")
