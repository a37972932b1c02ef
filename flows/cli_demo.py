"""`redress demo` (SPEC "The command line"), kept beside flows/cli.py, which adds it to its
parser: a synthetic breach generated into a folder and run end to end, then the
commands to ask about one person, printed so they can be pasted as they are.

The folder: `--out` (default `demo`) must be empty or missing, or one an earlier
`redress demo` made: the demo leaves a marker file (MARKER) in every folder it makes and
replaces only such a folder, so `make demo` works a second time and a folder the demo
did not make (data, a home directory) is never deleted.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from redress.errors import RedressError
from redress.runtime.commands import STAFF_PLACEHOLDER, redress_command, redress_line

__all__ = ["prepare_folder", "redress_command", "next_commands", "cmd_demo"]  # redress_command: its old home

MARKER = ".redress-demo"
MARKER_TEXT = "made by `redress demo`: a later `redress demo` with this folder as --out replaces it whole\n"


def prepare_folder(out: Path, say: Callable[[str], None]) -> None:
    """Make `out` ready for a fresh demo: created when missing, emptied when an earlier
    demo made it (its MARKER is a regular file), refused otherwise (RedressError, one
    line, as is a folder that cannot be made). A symbolic link is never followed into: it
    is refused whole."""
    if out.is_symlink():
        raise RedressError(f"{out} is a symbolic link: the demo needs a folder of its own "
                           "(pass another --out or --data-dir)")
    if out.exists() and not out.is_dir():
        raise RedressError(f"{out} is a file: the demo needs a folder (pass another --out or --data-dir)")
    if out.is_dir() and any(out.iterdir()):
        marker = out / MARKER
        if marker.is_symlink() or not marker.is_file():
            raise RedressError(f"{out} is not empty and was not made by `redress demo`: the demo replaces only "
                               f"its own folders (remove it or pass another --out or --data-dir)")
        say(f"replacing the demo made earlier in {out}")
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text(MARKER_TEXT)
    except OSError as exc:  # /dev/null/x, a folder under /proc, no permission: said in one line
        raise RedressError(f"cannot make the demo folder {out}: {exc.strerror or type(exc).__name__} "
                           "(pass another --out or --data-dir)") from None


def next_commands(out: Path, customer: str, code: str, command: str) -> list[str]:
    """The printed lines that ask about one person, every value quoted for the shell
    (redress/runtime/commands.py: the folder absolute, so they paste from anywhere)."""
    return ["next, ask about one person by customer id or by the reference code in their message:",
            f"  {redress_line(out, 'explain', customer, command=command)}",
            f"  {redress_line(out, 'explain', '--by', STAFF_PLACEHOLDER, code, command=command)}"]


def cmd_demo(args, settings, say, run_pipeline, print_outputs, run_date, *, checked_policy,
             check_before_prefect) -> int:
    """Generate, run (and approve, when the policy asks), then print the next commands.
    The policy is checked before the folder is touched, and the rest of what a run
    checks before Prefect starts, before the demo's one server starts."""
    from flows import cli_approval
    from redress.checks.suites import import_great_expectations
    from redress.generate import generate
    from redress.policy import load_policy
    from redress.rules.plans import run_date_refusal
    from redress.runtime import progress
    from redress.runtime.prefect_server import configured_server_refusal, temporary_server
    from redress.settings import demo_settings
    from redress.warehouse import connect, path

    out = Path(args.out).absolute()  # DuckDB reads a leading `~` as the home folder (redress/sql.py)
    # A typo in --policy or --run-date never replaces an earlier demo: a date past
    # tomorrow is refused here (the folder is made afresh, so no earlier run counts).
    policy, day = checked_policy(args.policy), run_date(args.run_date, args.policy)
    rules = load_policy(policy)
    if (refused := run_date_refusal(day, None, rules.today(), rules.timezone)) is not None:
        raise RedressError(refused)
    # Found by the fix review: a configured server that was down was found only after the
    # earlier demo had been replaced.
    from prefect.settings import get_current_settings

    checked = bool(url := get_current_settings().api.url)
    if checked and (refused := configured_server_refusal(url)) is not None:
        raise RedressError(refused)
    prepare_folder(out, say)
    say(f"generating {args.customers:,} customers and their scope files in {out / 'inbox'}...")
    generate(out, args.customers, args.seed)
    settings = demo_settings(settings, out, say)  # values handed to the run, the environment untouched
    check_before_prefect(out, policy, settings)
    # One Prefect server for the run and its approval: without PREFECT_API_URL each would
    # start a temporary one of its own, seconds each (the two below then use this one).
    with progress.reporting(progress.reporter_for(sys.stdout)), \
            temporary_server(meanwhile=lambda: importlib.import_module("flows.remediation"),
                             while_waiting=import_great_expectations, checked=checked):
        say("running the pipeline, a line per stage...")
        summary = run_pipeline(out, policy, day, settings)
        print_outputs(out, summary)
        if summary["disburse"]["awaiting_approval"]:  # the demo plays finance too, and says so
            say("\napproving the plan as finance would...")
            done = cli_approval.approve(out, summary["run_id"], "redress demo", "the demo approves its own plan",
                                        settings)  # a line per stage, as `redress approve` prints
            approve = redress_line(out, "approve", done["run_id"], "--by", "NAME")
            say(f"the demo approved its own plan (as finance would with `{approve}`): "
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
