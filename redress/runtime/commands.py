"""The redress commands printed for the user to paste (issue 14, "Newcomers"): the
`redress` they can run, then every argument, each through shlex.quote, so a data folder
named `/tmp/a b'c` or `p 1` pastes into bash as it is, from any directory.

Every "next command" the command line, plan.md or a log line shows is built here.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
import shutil
import sys
from collections.abc import Callable
from pathlib import Path


def full_path(path: str | Path) -> Path:
    """`path` made absolute from where the command was typed; with a `..` in it, also
    resolved, since `/home/me/../x` pastes but reads as a riddle (symbolic links are
    only followed then: `..` after a link means the link target's parent)."""
    absolute = Path(path).absolute()
    return absolute.resolve() if ".." in absolute.parts else absolute


def redress_command(argv0: str, executable: str, which: Callable[[str], str | None] = shutil.which) -> str:
    """How the user can start this same redress again, as shell text: `redress` when that
    name on PATH is this installation's script, else the script's full path (typed as
    `.venv/bin/redress`, printed from the folder it was typed in: plan.md and finance's
    copy of the approve line are used from other folders), else the venv's script beside
    the Python running this, else `python -m flows.cli`. Quoted for a POSIX shell."""
    script = full_path(argv0)  # nothing in redress changes folder, so this is where it was typed
    if script.name != "redress" or not script.is_file():
        script = Path(executable).parent / "redress"  # sys.executable: a full path already
    if not script.is_file():
        return f"{shlex.quote(executable)} -m flows.cli"
    found = which("redress")
    if found and Path(found).resolve() == script.resolve():
        return "redress"
    return shlex.quote(str(script))


def redress_line(data_dir: Path, *args: str, command: str | None = None) -> str:
    """`<redress> --data-dir <data_dir> <args...>` as one line of shell text, every part
    quoted; `command` is redress_command's text (default: this process's). The folder is
    made absolute, so the line works from any directory."""
    command = command or redress_command(sys.argv[0], sys.executable)
    folder = full_path(data_dir)
    return " ".join([command, "--data-dir", shlex.quote(str(folder)), *(shlex.quote(a) for a in args)])


# Where the printed approve and reject lines (plan.md, `redress run`) leave the decider's
# name to be typed. Pasted as it is, it would be recorded as who released the money.
NAME_PLACEHOLDER = "YOUR_NAME"


def os_user() -> str:
    """The operating-system account of this process, as recorded beside a lookup or a
    decision: from the process's real uid, not getpass.getuser(), which trusts $USER and
    $LOGNAME, which anyone can set to escape a rate limit or forge a record."""
    import os
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


# The longest decider's name recorded (the served form's field allows the same).
MAX_DECIDER_CHARS = 100


def decider_name(by: str | None) -> str:
    """Who decides a plan, as recorded in `runs` and every manifest: spaces run together.
    RedressError (one line) when blank, a placeholder (is_placeholder_name), longer than
    MAX_DECIDER_CHARS, or holding an unprintable character (redress/rules/printable.py:
    a control, format or invisible one). Checked
    by the command line before a Prefect server starts, and by the decision itself (the
    Prefect UI's form comes there)."""
    from redress.errors import RedressError

    from redress.rules.printable import first_unprintable

    name = " ".join((by or "").split())
    if not name:
        raise RedressError("--by must name who decides")
    # Found by review: an escape sequence or a right-to-left override was recorded in
    # every manifest as who decided; a name no reader sees as written is no record.
    hidden = first_unprintable(name)
    if hidden is not None:
        raise RedressError(f"--by holds an unprintable character U+{ord(hidden):04X}: give the decider's name as "
                           "it should be read in every manifest")
    if len(name) > MAX_DECIDER_CHARS:
        raise RedressError(f"--by is {len(name)} characters: a decider's name is at most {MAX_DECIDER_CHARS}")
    if is_placeholder_name(name):
        raise RedressError(f"--by {name!r} is the placeholder of the printed command, not a name: give your own "
                           "name, which runs and every released batch's manifest record as who decided")
    return name


# The longest note recorded with a decision (the served form's field allows the same).
MAX_NOTE_CHARS = 2000


def decision_note(note: str | None) -> str | None:
    """Why a plan was decided, as recorded in `runs`, `plans` and every manifest; None
    when blank. RedressError (one line) when longer than MAX_NOTE_CHARS or holding an
    unprintable character other than a line break (found by the fix review: an escape
    sequence and a right-to-left override were recorded, and a 100,000-character note
    went into every manifest)."""
    from redress.errors import RedressError
    from redress.rules.printable import first_unprintable

    if note is None or not note.strip():
        return None
    # line breaks and tabs are a pasted note's own (found by the fix review: a tab was refused)
    hidden = first_unprintable(re.sub(r"[\r\n\t]", " ", note))  # a bare \r too: old Mac files (fix review)
    if hidden is not None:
        raise RedressError(f"--note holds an unprintable character U+{ord(hidden):04X}: write the note as it should "
                           "be read in every manifest")
    if len(note) > MAX_NOTE_CHARS:
        raise RedressError(f"--note is {len(note):,} characters: a decision's note is at most {MAX_NOTE_CHARS:,}")
    return note


def is_placeholder_name(name: str) -> bool:
    """True for a decider's name that is a placeholder, not a person: NAME_PLACEHOLDER,
    `name`, `your name`, `<Your Name>`, `your full name`, `$YOUR_NAME`: its words, in
    any case, full-width too (a Korean keyboard in full-width mode types ＹＯＵＲ＿ＮＡＭＥ),
    whatever marks are between them. Found by review: `--by YOUR_NAME` pasted from
    plan.md released a plan and was recorded in every manifest; then letters run
    together refused real names (`Nam E`, `Na Me`)."""
    words = re.findall(r"[a-z]+|[0-9]+", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(words) in _PLACEHOLDERS


# A placeholder's words, as is_placeholder_name reads them.
_PLACEHOLDERS = frozenset({"name", "your name", "yourname", "your name here", "your full name", "full name",
                           "fullname", "yourfullname",
                           # explain's --by, which the demo prints as STAFF_PLACEHOLDER
                           "your staff id", "staff id", "your id", "yourstaffid", "staffid", "staff"})
# Where the printed explain line leaves the staff id to be typed (flows/cli_demo.py).
STAFF_PLACEHOLDER = "YOUR_STAFF_ID"
