"""argparse types shared by the command line (flows/cli.py) and the benchmark scripts."""

from __future__ import annotations

import argparse


def at_least_one(text: str) -> int:
    """A whole number of at least 1 (a count of customers, rows, repeats); otherwise
    argparse.ArgumentTypeError, which argparse prints as its one-line usage error (exit 2)
    before the command does anything."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value
