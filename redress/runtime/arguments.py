"""argparse types and actions shared by the command line (flows/cli.py) and the
benchmark scripts."""

from __future__ import annotations

import argparse
from pathlib import Path

from redress.errors import RedressError


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


class Once(argparse.Action):
    """An option that decides who is paid, how much, from which folder or in whose name
    (--data-dir, --policy, --run-date, --by...), given at most once on its side of the
    command's name: a second, different value is refused (RedressError, the command's one
    line, exit 1) rather than silently winning, since a run on the wrong folder, policy
    or date pays the wrong people. The same value again is fine (`same` says which are
    the same: Path.resolve for files and folders). The before/after pair of --data-dir
    is two options (flows/cli.py parse) and is checked there."""

    def __init__(self, *args, what: str = "values", same=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.what = what
        self.same = same or (lambda value: value)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        given = vars(namespace).setdefault(GIVEN, {})
        if self.dest in given and self.same(given[self.dest]) != self.same(values):
            name = max(self.option_strings, key=len)
            raise RedressError(f"{name} given twice with different {self.what} ({given[self.dest]}, {values}): "
                               "give it once")
        given[self.dest] = values
        setattr(namespace, self.dest, values)


# Where Once keeps what each option was given as, on the namespace: parse takes it off.
GIVEN = "_given_once"


def same_path(value) -> object:
    """Once's `same` for files and folders: `ref` and `./ref/.` are one folder."""
    return Path(value).resolve()


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr, exit 2 (SPEC "The
    command line": a one-line reason), naming the command and where its usage is shown:
    `redress approve: the following arguments are required: --by (see redress approve
    --help)`. argparse's own printed the usage block before it (found by review)."""

    def error(self, message: str):
        from redress import escape

        self.exit(2, f"{self.prog}: {escape.terminal(message)} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an argument no parser knows is said by the command's own
        parser (`redress run: unrecognized arguments: --bogus (see redress run --help)`),
        not the top one, whose usage does not list the command's options (review)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            self.prog = f"{self.prog} {command}" if command else self.prog
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed
