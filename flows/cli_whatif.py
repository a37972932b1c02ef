"""The command line's `whatif` (SPEC "The command line"; issue 13 section 1), kept beside
flows/cli.py, which adds it to its parser.

    redress whatif POLICY [POLICY ...] [--run-date YYYY-MM-DD]

Cost and coverage of each candidate policy over the current warehouse, side by side,
with nothing paid or written to the warehouse or the outbox (redress/whatif/). No
Prefect flow: nothing is scheduled, paid or recovered, so a server would only cost time.
Expected errors (a policy that does not parse, no warehouse yet, a run going on in the
folder or a last run that did not finish, a warehouse held by another process) are one
line on stderr and exit status 1, like every expected error of flows/cli.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from redress.runtime.arguments import Once


def cmd_whatif(args, settings, say, run_date) -> int:
    """`say` prints a line made safe for the terminal; `run_date(text, policy_file)`
    parses --run-date (today where the policy pays when it is not given)."""
    from redress.whatif.evaluate import load_policies, whatif
    from redress.whatif.output import table_text, write

    policies = load_policies(args.policies)  # every file refused before any data is read
    data_dir = settings.data_dir.resolve()
    # no --run-date: today where the first candidate pays
    result = whatif(data_dir, policies, run_date(args.run_date, policies[0].path))
    if sys.stdout.isatty():  # rich's colours are escapes of ours; table_text escaped every cell
        print(table_text(result, terminal=True))
    else:
        say(table_text(result, terminal=False))
    folder = write(data_dir / "reports", result)
    say(f"\nwhat-if page:   {folder / 'whatif.html'}")
    say(f"its figures:    {folder / 'whatif.json'}")
    return 0


def add_parser(sub, common, cmd) -> None:
    """The whatif subcommand, running `cmd(args, settings)`."""
    p = sub.add_parser("whatif", parents=common,
                       help="cost and coverage of candidate policies over the current evidence, nothing paid")
    p.add_argument("policies", nargs="+", type=Path, metavar="POLICY", help="policy TOML files, one column each")
    p.add_argument("--run-date", help="YYYY-MM-DD a switch would be paid on (default today in the first policy's timezone)", action=Once,
                   what="dates")
    p.set_defaults(func=cmd)
