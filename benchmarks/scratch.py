"""The folder a step benchmark writes its generated files into (csv_quotes.py,
jsonl_keys.py): the one `--out` names, kept for a look afterwards, or a new temporary one,
removed at the end, failure or not."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """`--out DIR`: the folder for the files, read by `files_folder`."""
    parser.add_argument("--out", type=Path, help="a folder for the files (default: a temporary one, removed)")


@contextmanager
def files_folder(out: Path | None, prefix: str) -> Iterator[Path]:
    """`out`, made if missing and left as it is at the end; with no `out`, a new folder in
    the system's temporary folder named from `prefix`, removed at the end."""
    folder = out or Path(tempfile.mkdtemp(prefix=prefix))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    finally:
        if out is None:
            shutil.rmtree(folder, ignore_errors=True)
