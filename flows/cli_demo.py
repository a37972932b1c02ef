"""`redress demo` (SPEC "The command line"), kept beside flows/cli.py, which adds it to its
parser: a synthetic breach generated into a folder and run end to end, then the
commands to ask about one person, printed so they can be pasted as they are.

The folder: `--out` (default `demo`) must be empty or missing, or one an earlier
`redress demo` made: the demo leaves a marker file (MARKER) in every folder it makes and
replaces only such a folder, so `make demo` works a second time and a folder the demo
did not make (data, a home directory) is never deleted.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from redress.errors import RedressError

MARKER = ".redress-demo"
MARKER_TEXT = "made by `redress demo`: a later `redress demo` with this folder as --out replaces it whole\n"


def prepare_folder(out: Path, say: Callable[[str], None]) -> None:
    """Make `out` ready for a fresh demo: created when missing, emptied when an earlier
    demo made it (its MARKER is a regular file), refused otherwise (RedressError, one
    line). A symbolic link is never followed into: it is refused whole."""
    if out.is_symlink():
        raise RedressError(f"{out} is a symbolic link: the demo needs a folder of its own (pass another --out)")
    if out.exists() and not out.is_dir():
        raise RedressError(f"{out} is a file: the demo needs a folder (pass another --out)")
    if out.is_dir() and any(out.iterdir()):
        marker = out / MARKER
        if marker.is_symlink() or not marker.is_file():
            raise RedressError(f"{out} is not empty and was not made by `redress demo`: the demo replaces only "
                               f"its own folders (remove it or pass another --out)")
        say(f"replacing the demo made earlier in {out}")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(MARKER_TEXT)


def redress_command(argv0: str, executable: str, which: Callable[[str], str | None] = shutil.which) -> str:
    """How the user can start this same redress again, as shell text: `redress` when that
    name on PATH is this installation's script, else the script's path as it was typed
    (`.venv/bin/redress`), else the venv's script beside the Python running this, else
    `python -m flows.cli`. Quoted for a POSIX shell."""
    script = Path(argv0)
    if script.name != "redress" or not script.is_file():
        script = Path(executable).parent / "redress"
    if not script.is_file():
        return f"{shlex.quote(executable)} -m flows.cli"
    found = which("redress")
    if found and Path(found).resolve() == script.resolve():
        return "redress"
    return shlex.quote(str(script))


def next_commands(out: Path, customer: str, code: str, command: str) -> list[str]:
    """The printed lines that ask about one person, every value quoted for the shell."""
    folder = shlex.quote(str(out))
    return ["next, ask about one person by customer id or by the reference code in their message:",
            f"  {command} --data-dir {folder} explain {shlex.quote(customer)}",
            f"  {command} --data-dir {folder} explain --by YOUR_STAFF_ID {shlex.quote(code)}"]


def cmd_demo(args, settings, say, run_pipeline, print_outputs, run_date) -> int:
    """Generate, run (and approve, when the policy asks), then print the next commands."""
    from flows import cli_approval
    from redress.generate import generate
    from redress.runtime import progress
    from redress.settings import demo_settings
    from redress.warehouse import connect, path

    out = Path(args.out)
    prepare_folder(out, say)
    say(f"generating {args.customers:,} customers and their scope files in {out / 'inbox'}...")
    generate(out, args.customers, args.seed)
    settings = demo_settings(settings, out, say)  # values handed to the run, the environment untouched
    say("running the pipeline, a line per stage...")
    summary = run_pipeline(out, args.policy, run_date(args.run_date), settings)
    print_outputs(out, summary)
    if summary["disburse"]["awaiting_approval"]:  # the demo plays finance too, and says so
        say("\napproving the plan as finance would...")
        with progress.reporting(progress.reporter_for(sys.stdout)):
            done = cli_approval.approve(out, summary["run_id"], "redress demo", "the demo approves its own plan",
                                        settings)
        say(f"the demo approved its own plan (as finance would with `redress approve {done['run_id']} --by NAME`): "
            f"released {done['payments']:,} payments in {done['batches']:,} batches, "
            f"{done['notifications']:,} people notified")
    with connect(path(out), read_only=True) as con:
        (customer, code), = con.execute(
            "SELECT customer_id, reference_code FROM notifications WHERE customer_id IS NOT NULL "
            "ORDER BY customer_id LIMIT 1").fetchall()
    say("")
    for line in next_commands(out, customer, code, redress_command(sys.argv[0], sys.executable)):
        say(line)
    return 0
