"""The command line (SPEC "The command line"): the top layer, since `run`, `demo` and
`serve` start the flows; nothing below flows/ imports it.

Expected errors print one line on stderr and exit 1; nothing else does. Prefect's own
console logging is turned down unless --verbose: its logs still reach the Prefect API
(and UI), and the command prints the run summary itself.

The options every command takes (--data-dir, --verbose) are accepted before or after the
command's name. --data-dir given twice with two different folders, in one place or both,
is refused (one line): a run against the wrong folder pays the wrong people, so nothing
guesses which one was meant. So are two different --out, --policy, --run-date, --by or
--note (redress/runtime/arguments.py Once); a repeated --customers, --seed or --daily-at
still takes the last, as argparse does: a synthetic folder's size or a schedule's hour
pays no one.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import warnings
from datetime import date
from pathlib import Path

# Before Prefect is first imported: on a terminal, `import prefect` shows a notice and
# sends usage events unless DO_NOT_TRACK is set (prefect/_internal/analytics, 3.9). A
# finance pipeline's command sends nothing anywhere; the user may still opt in.
os.environ.setdefault("DO_NOT_TRACK", "1")

from flows import cli_approval, cli_demo, cli_whatif  # noqa: E402 - after the line above
from redress import escape
from redress.errors import RedressError
from redress.inbox import require_inbox
from redress.runtime import interrupts
from redress.runtime.arguments import GIVEN, OneLineParser, Once, at_least_one, same_path


def _print(text: object = "", *, file=None) -> None:
    """print, with every control, bidi or zero-width character (from a file or folder
    name, an error text) shown as a visible escape: nothing printed can move the
    cursor, recolour the terminal or reorder a line (redress/escape.py)."""
    print(escape.terminal_lines(text), file=file or sys.stdout)


def _quiet_prefect(verbose: bool) -> None:
    """redress's defaults for Prefect, set in the environment (a user's own values win)
    before Prefect reads its settings, which it does when first imported. If something
    imported Prefect already (a program embedding redress, the tests' forking parent,
    tests/forked.py), its settings are read again, or these defaults would not count."""
    # Prefect warns, in four lines on stderr, when it cannot make its home folder; the
    # temporary server's check says it in one, with what to do (prefect_server.py)
    warnings.filterwarnings("ignore", message="Failed to create the Prefect home directory")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not verbose:
        # Prefect's log sender writes each failure to reach its server on stderr, through
        # the stdlib's switch for errors in logging (found by the platform review: a full
        # PREFECT_HOME put 60 lines of them above the command's one line)
        logging.raiseExceptions = False
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "CRITICAL")
    if "prefect.context" in sys.modules:
        import prefect.context

        prefect.context.refresh_global_settings_context()


def _run_date(text: str | None, policy_file: Path | None) -> date:
    """--run-date, else today where the policy pays (Policy.today; the shipped policy's
    when `policy_file` is None). Given, it must be YYYY-MM-DD: an empty one (a script's
    unset variable) is refused, not taken for today (found by review)."""
    if text is None:
        from redress.policy import load_policy

        return load_policy(checked_policy(policy_file)).today()
    from redress.policy.tables import calendar_date

    try:
        return calendar_date(text)
    except ValueError:
        raise RedressError(f"--run-date must be YYYY-MM-DD, got {text!r}") from None


def checked_policy(policy_path: Path | None) -> Path:
    """The policy file (the shipped one when None), resolved, once it loads: a bad one
    is refused (RedressError, one line) before any data is touched or Prefect starts."""
    from redress.policy import DEFAULT_POLICY, load_policy

    policy_file = Path(policy_path or DEFAULT_POLICY).resolve()
    load_policy(policy_file)
    return policy_file


def check_before_prefect(data_dir: Path, policy_path: Path | None, settings, run_date: date | None = None) -> Path:
    """What a run checks before Prefect starts (seconds, when a temporary server is
    started): the policy (checked_policy, which returns it), the data folder and its
    inbox, the settings, that no other run holds the folder, and that a run under the
    policy may be dated `run_date` there (none: not checked; redress/warehouse/runs.py
    refuse_run_start). RedressError, one line, for the first that fails."""
    from redress.policy import load_policy
    from redress.settings import check_settings
    from redress.warehouse.runs import check_run_start, refuse_if_busy

    policy_file = checked_policy(policy_path)
    if data_dir.exists() and not data_dir.is_dir():
        raise RedressError(f"data folder {escape.terminal(str(data_dir))} is not a folder: give the folder that holds "
                           "inbox/customers and inbox/scope")
    if not data_dir.is_dir():
        raise RedressError(f"data folder {escape.terminal(str(data_dir))} does not exist (create it with "
                           "inbox/customers and inbox/scope)")
    require_inbox(data_dir)
    check_settings(settings)  # the flow checks again (served runs call it directly)
    refuse_if_busy(data_dir)  # the flow then takes the lock for the run
    if run_date is not None:
        check_run_start(data_dir, load_policy(policy_file), run_date)  # the flow checks again, under the lock
    return policy_file


def run_pipeline(data_dir: Path, policy_path: Path | None, run_date: date, settings, *, dated: bool = True) -> dict:
    """Check what can be checked before Prefect starts (check_before_prefect), then run
    the parent flow with these settings (the ones main built, or the demo's): handed
    over in-process (redress.settings.given), never as a flow parameter. `dated` False
    (no --run-date): `run_date` is today's, for the checks; the flow reads today again
    as the run starts (remediation), which may be past midnight by then."""
    from redress.settings import given

    policy_file = check_before_prefect(data_dir, policy_path, settings, run_date)
    from redress.checks.suites import import_great_expectations
    from redress.runtime.prefect_server import temporary_server

    from redress.runtime import progress

    # A line per stage on stdout (a bar on a terminal), before the summary: stderr keeps
    # to the one-line reason of a failure (SPEC "The command line"). The flow's modules,
    # and Great Expectations for the run's first suite, are imported while the server starts.
    with progress.reporting(progress.reporter_for(sys.stdout)), \
            temporary_server(meanwhile=lambda: importlib.import_module("flows.remediation"),
                             while_waiting=import_great_expectations), given(settings):
        from flows.remediation import remediation

        return remediation(data_dir=data_dir.resolve(), policy_path=policy_file, run_date=run_date if dated else None)


def _print_outputs(data_dir: Path, summary: dict) -> None:
    run_id = summary["run_id"]
    _print(summary.get("report", ""))
    _print()
    _print(f"warehouse:      {data_dir / 'warehouse.duckdb'}")
    notifications = data_dir / "outbox" / "notifications" / f"{run_id}.parquet"
    for name, path in (("batches:", data_dir / "outbox" / "batches"), ("notifications:", notifications)):
        if path.exists():  # a run waiting for approval has written neither yet
            _print(f"{name:<16}{path}{'/' if path.is_dir() else ''}")
    report = data_dir / "reports" / run_id
    _print(f"report:         {report / 'summary.md'}")
    if (report / "report.html").is_file():
        from redress.reports.charts import not_drawable

        drawn = "charts" if not_drawable() is None else "tables; no charts under a virtual-memory limit"
        _print(f"report page:    {report / 'report.html'}   ({drawn}; opens offline)")
    _print(f"data quality:   {report / 'data_quality.html'}")
    _print(f"reconciliation: {report / 'reconciliation.md'}")
    review = data_dir / "quarantine" / run_id / "review.csv"
    if review.is_file():  # rows held for a person to decide: forensics' list
        _print(f"review list:    {review}")
    _print(f"quarantine:     {data_dir / 'quarantine'}/")
    for line in cli_approval.plan_lines(data_dir, summary):  # a plan waiting for approval
        _print(line)


def cmd_run(args, settings) -> int:
    summary = run_pipeline(settings.data_dir, args.policy, _run_date(args.run_date, args.policy), settings,
                           dated=args.run_date is not None)
    _print_outputs(settings.data_dir, summary)
    return 0


def cmd_generate(args, settings) -> int:
    from redress.generate import generate
    from redress.warehouse import FILE_NAME, LOCK_FILE

    # What a data folder in use holds: synthetic files put in its inbox would be read as evidence.
    live_folder_signs = (FILE_NAME, LOCK_FILE, "outbox")
    out = Path(args.out).absolute()  # printed as written to: `--data-dir=~/x` is ./~/x, not the home folder
    live = [name for name in live_folder_signs if (out / name).exists()]
    if live:
        raise RedressError(f"{out} holds {', '.join(live)}: a data folder in use; generate writes synthetic "
                           "people into an inbox, so give it a new folder")
    manifest = generate(out, args.customers, args.seed)
    _print(f"wrote a synthetic breach of {args.customers:,} customers into {out / 'inbox'}")
    _print(f"planted defects: {out / 'generated.json'}")
    return 0 if manifest else 1


def cmd_demo(args, settings) -> int:
    return cli_demo.cmd_demo(args, settings, _print, run_pipeline, _print_outputs, _run_date,
                             checked_policy=checked_policy, check_before_prefect=check_before_prefect)


def cmd_explain(args, settings) -> int:
    from redress.customer_service.explain import explain

    _print(explain(settings.data_dir, args.who, args.by))
    return 0


def cmd_recover_ledger(args, settings) -> int:
    """Rebuild what the warehouse lost from the outbox (redress/outbox/recovery.py)."""
    from redress.outbox.recovery import recover_ledger
    from redress.warehouse.runs import data_dir_lock
    from redress.runtime.start_checks import check_warehouse_free

    data_dir = settings.data_dir.resolve()
    if not (data_dir / "outbox").is_dir():
        raise RedressError(f"data folder {data_dir} has no outbox/ folder: nothing to recover from")
    with data_dir_lock(data_dir):
        check_warehouse_free(data_dir / "warehouse.duckdb")  # held by an analyst, or not DuckDB's
        done = recover_ledger(data_dir)
    approved, superseded = done.pop("approved_plans", []), done.pop("superseded_plans", [])
    if not any(done.values()):
        _print("the warehouse already knows every batch and notification in the outbox: nothing to restore")
    else:
        plans = "".join([f"; plan {', '.join(approved)} approved, as its batches' manifests say" if approved else "",
                         f"; plan {', '.join(superseded)} superseded (made without those batches: run again to plan "
                         "afresh)" if superseded else ""])
        _print(f"restored {done['batches']} batches, {done['payments']} payments ({done['amount']} in minor units), "
              f"{done['notifications']} notifications and {done['runs']} runs from {data_dir / 'outbox'}{plans}")
    return 0


def cmd_verify(args, settings) -> int:
    """The released batches against the warehouse and their manifests (redress/outbox/audit.py):
    one line per problem and exit code 1, or one line saying all match."""
    from redress.errors import WarehouseInUse
    from redress.outbox.audit import verify
    from redress.runtime.stage_counts import counted
    from redress.warehouse import connect

    data_dir = settings.data_dir.resolve()
    warehouse = data_dir / "warehouse.duckdb"
    if not warehouse.is_file():
        raise RedressError(f"data folder {data_dir} has no warehouse.duckdb: nothing was released there")
    try:
        with connect(warehouse, read_only=True) as con:
            found = verify(con, data_dir, args.batch_ids)
    except WarehouseInUse:
        raise RedressError(f"another process (a redress run, or an analyst's connection) is using the warehouse "
                           f"{warehouse}: verify again when it ends") from None
    for problem in found["problems"]:
        _print(escape.terminal(problem))
    checked = (f"{counted(found['batches'], 'batch')}, {counted(found['payments'], 'payment')}, "
               f"{found['amount']:,} in minor units")
    if found["problems"]:
        _print(f"{counted(len(found['problems']), 'problem')} in {checked}")
        return 1
    _print(f"{checked}: every batch folder matches its manifest (each file's SHA-256, the payments' count and sum) "
           "and the warehouse, and the ledger matches its batches, payment by payment")
    return 0


def _daily_at(text: str):
    from datetime import time as dt_time

    try:
        hour, minute = (int(part) for part in text.split(":"))
        return dt_time(hour, minute)
    except ValueError:
        raise RedressError(f"--daily-at must be HH:MM (24-hour), got {text!r}") from None


def cmd_serve(args, settings) -> int:
    """Check everything a run will need before registering anything, then serve."""
    from flows.service import serve, served_elsewhere, server_error
    from redress.policy import DEFAULT_POLICY, load_policy

    problem = server_error() or served_elsewhere()
    if problem:
        raise RedressError(problem)
    daily_at = _daily_at(args.daily_at)
    policy_file = Path(args.policy or DEFAULT_POLICY).resolve()
    load_policy(policy_file)
    data_dir = settings.data_dir.resolve()
    require_inbox(data_dir)
    from redress.settings import check_settings

    check_settings(settings)  # every run needs them; refused before anything is registered
    from redress.warehouse.runs import check_policy_id

    check_policy_id(data_dir, load_policy(policy_file))  # every run would be refused
    if not (settings.debtor_name and settings.debtor_account and settings.debtor_bank_code):
        # found by review: the approval of a plan with bank transfers runs in this process,
        # and failed there, the form used up, the plan left waiting
        _print("warning: REDRESS_DEBTOR_NAME, REDRESS_DEBTOR_ACCOUNT and REDRESS_DEBTOR_BANK_CODE are not all set: a "
               "run or approval that pays by bank transfer will fail in this process until they are", file=sys.stderr)
    _print(f"serving {data_dir} with {policy_file.name}: inbox checked every minute, "
          f"daily run at {daily_at:%H:%M} {load_policy(policy_file).timezone}; Ctrl-C stops")
    serve(data_dir, policy_file, daily_at)
    return 0


_DATA_DIR_HELP = "the data folder (default $REDRESS_DATA_DIR or ./data)"
_VERBOSE_HELP = "show Prefect's logs on the console"


def _after_command(data_dir_help: str = _DATA_DIR_HELP) -> argparse.ArgumentParser:
    """The common options as a subcommand takes them, under their own names (SUPPRESS:
    absent unless given), so that main can tell them from the ones before the command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", dest="data_dir_after", metavar="DATA_DIR", type=Path, action=Once,
                        what="folders", same=same_path, default=argparse.SUPPRESS, help=data_dir_help)
    common.add_argument("--verbose", dest="verbose_after", action="store_true", default=argparse.SUPPRESS,
                        help=_VERBOSE_HELP)
    return common


# What a run is about, given at most once each (Once): two different values are refused.
FOLDER_ONCE = {"action": Once, "what": "folders", "same": same_path}
POLICY_ONCE = {"action": Once, "what": "policy files", "same": same_path}
DATE_ONCE = {"action": Once, "what": "dates"}


# What `redress --help` says first (found by the platform review: the module docstring's
# first line, cut mid-sentence, was shown).
DESCRIPTION = ("redress: the forensics of a data breach into compensation paid exactly once. Commands take "
               "--data-dir and --verbose before or after their name; see README.md.")


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="redress", description=DESCRIPTION)
    p.add_argument("--data-dir", type=Path, action=Once, what="folders", same=same_path, help=_DATA_DIR_HELP)
    p.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    sub = p.add_subparsers(dest="command", required=True)
    common = [_after_command()]
    # demo and generate make a new folder: --data-dir names it, as --out does
    making = [_after_command("the folder to make, as --out (not $REDRESS_DATA_DIR)")]

    run = sub.add_parser("run", parents=common, help="the whole pipeline once, over what is in the inbox")
    run.add_argument("--policy", type=Path, help="policy TOML (default policies/coupang-2025-v1.toml)", **POLICY_ONCE)
    run.add_argument("--run-date", help="YYYY-MM-DD (default today in the policy's timezone)", **DATE_ONCE)
    run.set_defaults(func=cmd_run, changes_state=True)

    gen = sub.add_parser("generate", parents=making, help="write a synthetic customers snapshot and scope files")
    gen.add_argument("--customers", type=at_least_one, default=10_000)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--out", help="the folder to write (required unless --data-dir names it)", **FOLDER_ONCE)
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", parents=making, help="a realistic synthetic breach, run end to end")
    demo.add_argument("--out", help="the demo's folder (default: --data-dir if given, else ./demo)", **FOLDER_ONCE)
    demo.add_argument("--customers", type=at_least_one, default=20_000)
    demo.add_argument("--seed", type=int, default=2025)
    demo.add_argument("--policy", type=Path, **POLICY_ONCE)
    demo.add_argument("--run-date", default="2025-12-01", **DATE_ONCE)
    demo.set_defaults(func=cmd_demo, changes_state=True)

    exp = sub.add_parser("explain", parents=common, help="everything about one person")
    exp.add_argument("who", help="a customer id, an 8-letter reference code, an email, a phone "
                                 "(any usual form: 010-1234-5678, +82 10 1234 5678, 01012345678) or a payment id "
                                 "(20251201-B0001-000001)")
    exp.add_argument("--by", metavar="STAFF_ID", help="who is asking; required for a reference code (recorded)",
                     action=Once, what="names")
    exp.set_defaults(func=cmd_explain)

    cli_whatif.add_parser(sub, common, lambda a, s: cli_whatif.cmd_whatif(a, s, _print, _run_date))

    cli_approval.add_parsers(sub, common, {
        "approve": lambda a, s: cli_approval.cmd_approve(a, s, _print),
        "reject": lambda a, s: cli_approval.cmd_reject(a, s, _print)})

    rec = sub.add_parser("recover-ledger", parents=common,
                         help="rebuild batches, ledger and notifications from the outbox "
                              "after the warehouse was lost or restored from an old copy")
    rec.set_defaults(func=cmd_recover_ledger, changes_state=True)

    ver = sub.add_parser("verify", parents=common,
                         help="check the released batch folders against their manifests and the warehouse, "
                              "and the ledger against its batches; nothing written")
    ver.add_argument("batch_ids", nargs="*", metavar="BATCH_ID", help="only these batches (default: all)")
    ver.set_defaults(func=cmd_verify)

    serve = sub.add_parser("serve", parents=common,
                           help="the deployments: inbox watch, daily disbursement, remediation by hand")
    serve.add_argument("--policy", type=Path, help="policy TOML (default policies/coupang-2025-v1.toml)",
                       **POLICY_ONCE)
    serve.add_argument("--daily-at", default="09:00", help="HH:MM of the daily run, in the policy's timezone (default 09:00)")
    serve.set_defaults(func=cmd_serve)
    return p


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line as a namespace whose `data_dir` (Path or None) and `verbose`
    (bool) merge the common options given before and after the command's name.
    Raises RedressError when --data-dir names two different folders, before and after
    the command or twice on one side, or another Once option is given two values, or an
    argument is not UTF-8 (found by review: `explain`, `--by` and `--note` so given gave
    tracebacks)."""
    for given in sys.argv[1:] if argv is None else argv:
        if not escape.is_utf8(given):  # bytes of another encoding: no warehouse query, log or Prefect parameter holds them
            raise RedressError(f"the argument {escape.not_utf8(given)} is not UTF-8 (each byte outside ASCII shown "
                               "as \\xNN): give it in UTF-8, the terminal's encoding set to UTF-8")
    args = parser().parse_args(argv)
    vars(args).pop(GIVEN, None)
    after = vars(args).pop("data_dir_after", None)
    if after is not None:
        if args.data_dir is not None and args.data_dir.resolve() != after.resolve():
            raise RedressError(
                f"--data-dir given twice with different folders ({args.data_dir} before {args.command}, "
                f"{after} after it): give it once")
        args.data_dir = after
    args.verbose = args.verbose or vars(args).pop("verbose_after", False)
    if args.command in OUT_COMMANDS:
        args.out = _one_folder(args.command, args.out, args.data_dir)
    return args


# Commands that make a new data folder, named by --out; --data-dir (which every command
# accepts, SPEC "The command line") names the same folder. demo's default is ./demo.
OUT_COMMANDS = {"demo": "demo", "generate": None}


def _one_folder(command: str, out: str | None, data_dir: Path | None) -> str:
    """The folder `redress demo` / `generate` writes: --out, else --data-dir, else the
    command's default. RedressError when --out and --data-dir name two different folders,
    or generate is given neither (nothing guesses which folder was meant)."""
    if out is not None and data_dir is not None and Path(out).resolve() != data_dir.resolve():
        raise RedressError(f"{command} was given two different folders (--out {out}, --data-dir {data_dir}): "
                           "give one")
    chosen = out if out is not None else (str(data_dir) if data_dir is not None else OUT_COMMANDS[command])
    if chosen is None:
        raise RedressError(f"{command} needs the folder to write: give --out DIR (or --data-dir DIR)")
    return chosen


# Set in the environment of the command run again in UTF-8 mode, so that it is run again once.
UTF8_REEXEC = "_REDRESS_UTF8_RERUN"  # not REDRESS_: settings refuse an unknown one


def _in_utf8_mode() -> None:
    """Run the command again, the same bytes as arguments, in Python's UTF-8 mode when
    the locale gives file names another encoding (ko_KR.EUC-KR, tr_TR.ISO-8859-9, or
    POSIX without coercion: ASCII). Polars and DuckDB take paths as UTF-8, whatever the
    locale: found by the platform review, a UTF-8 file name `범위_추가.csv` was retried for
    7 minutes as a file gone and ended in a traceback, called "not UTF-8" under EUC-KR,
    and `explain` failed printing the Korean message. Returns when already so."""
    if sys.flags.utf8_mode or sys.getfilesystemencoding().replace("-", "").lower() == "utf8":
        return
    if os.environ.get(UTF8_REEXEC):  # once only: `-X utf8=0` or `-E` given keep UTF-8 mode off (fix review: a loop)
        return
    os.environ[UTF8_REEXEC] = "1"
    os.environ["PYTHONUTF8"] = "1"
    # os.fsencode gives back each argument's bytes as the locale decoded them
    os.execv(sys.executable, [os.fsencode(part) for part in sys.orig_argv])


def main(argv: list[str] | None = None) -> int:
    """The `redress` command: its exit code; 141, quietly, when stdout's reader left."""
    from redress.runtime.pipes import quiet_when_stdout_closes, streams_that_exist

    if argv is None:  # the process's own arguments: a caller in-process keeps its interpreter
        _in_utf8_mode()
    streams_that_exist()

    return quiet_when_stdout_closes(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    from redress.runtime.machine_errors import machine_error

    try:
        args = parse(argv)
    except Exception as exc:  # two folders, or one that cannot be resolved (a loop of links)
        line = machine_error(exc)
        if line is None:
            raise
        _print(f"redress: {escape.terminal(line)}", file=sys.stderr)
        return 1
    _quiet_prefect(args.verbose)
    if args.func is not cmd_serve:  # serve's Ctrl-C is Prefect's: asyncio.run's handler pauses the schedules
        interrupts.watch()  # a Ctrl-C that DuckDB turns into an error is still told as one
    try:
        from redress.runtime.permissions import umask_for
        from redress.settings import load_settings

        settings = load_settings(data_dir=args.data_dir)
        os.umask(umask_for(settings.share_group))  # whatever a command writes is not world-readable
        from redress.runtime.pipes import stdout_may_close

        with stdout_may_close() if getattr(args, "changes_state", False) else contextlib.nullcontext():
            return args.func(args, settings)
    except BrokenPipeError:  # stdout closed by its reader: main's to handle, not a failure to report
        raise
    except Exception as exc:  # expected failures, of the data or of the machine, are one line
        if interrupts.pressed():  # DuckDB's "Query interrupted", or what a press led to
            return _interrupted()
        line = machine_error(exc)
        if line is None:
            raise
        _print(f"redress: {escape.terminal(line)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _interrupted()


def _interrupted() -> int:
    """The command's one line for Ctrl-C, and its exit code (128 + SIGINT)."""
    _print("redress: interrupted", file=sys.stderr)
    # Only Python's shutdown is left (the run's Prefect server is stopped, and dies with
    # the command anyway). A further Ctrl-C ends the command by the signal at once:
    # raised as KeyboardInterrupt inside a finalizer, Python would drop it and print a
    # note after the line above (seen on a loaded machine).
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return 130


if __name__ == "__main__":
    sys.exit(main())
