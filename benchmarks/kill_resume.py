"""Exactly once under kill -9, at scale: a run and its approval killed at random moments,
each given again, pay and tell exactly what one uninterrupted run and approval do.

    .venv/bin/python benchmarks/kill_resume.py [--customers 1000000] [--seed 7]
        [--kills 3] [--kill-seed 1] [--out DIR] [--keep]

The tests kill a run at every named step (tests/flows/test_crash_safety.py); this kills
the real commands with SIGKILL at moments nobody chose, on a case large enough for
DuckDB's and Polars's threads, spills and row groups to be in play. It:

1. generates a breach into `--out` as `benchmarks/run_benchmark.py` does (the same
   folder rules: a new or empty folder, or one the benchmark marked for the same
   `--customers` and `--seed`; default `bench/kill-<customers>`);
2. copies its inbox into `straight/` and `killed/` under it; both sides get the same
   settings (one throwaway HMAC key, so the same reference codes) and one Prefect home,
   whose database is created first;
3. `straight`: `redress run`, then `redress approve` of its plan, uninterrupted, timed;
4. `killed`: `redress run` started up to `--kills` times and each time killed with SIGKILL
   (the command's whole process group) at a moment drawn from its share of the straight
   run's seconds from 5% to 95% (`kill_moments`: the first kill early, the last late;
   seeded by `--kill-seed`), then given again to its end; the same for `redress approve`
   of the plan left waiting. A start after a kill has less left to do than a first one,
   so a later moment may fall after its end: it is said so, and the command is done
   (giving it again would be another command). An approval killed after it recorded
   its last step, while the process exits, is done too: given again it is refused as
   approved, which is said so. After each kill it
   waits for the command's temporary Prefect server to go (it dies with its parent) and
   counts any process still running with the benchmark's Prefect home;
5. compares the two folders and prints each figure for both sides: the ledger (every
   column but the ids, with its batch's value date), the entitlements, the
   notifications (every column but the run id), the decided plans (with whether each
   decision recorded its last step), the report pages showing the approval, the
   outbox's batch folders (each
   manifest verified against its files, as `recover-ledger` does), the payments of the
   verified folders and their manifests' rail, value date, count and sum, the
   notification files' rows, and no folder or file left half-written or unknown to the
   warehouse. Run ids, batch numbers and payment ids are left out: a rerun is a new
   run, and a superseded plan's batch numbers are never reused (README "Finance").
   Tables and files are compared by DuckDB fingerprints of their rows (count, sum and
   xor of row hashes), never pulled into Python.

With `--kills 0` the second side is a second uninterrupted run, and every file the two
wrote (outbox, reports, exports, quarantine) is also compared byte for byte: the files
that differ are listed by name, not counted in the exit status (those that carry the
clock: approval times, bank files' creation time, the workbooks' creation date, the
plan's expiry, and the folder's path in the plan's commands).

Exit 1 when a figure differs, a command fails, or a server outlives its command; the
folders are then kept. Otherwise, without `--keep`, the folder is removed at the end as
the benchmark removes its own.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import duckdb

from redress.errors import RedressError
from redress.outbox.files import TMP_PREFIX
from redress.outbox.recovery import batch_folders, notification_files, unknown_outbox, verified_manifest
from redress.warehouse.exports import ROW_FINGERPRINT
from run_benchmark import (ROOT, RUN_DATE, child_env, claim_folder, clean_up, last_line, prepare, prepare_prefect,
                           run_child, waiting_plan)

REDRESS = str(Path(sys.executable).with_name("redress"))
# A kill lands between these shares of the uninterrupted command's seconds.
KILL_WINDOW = (0.05, 0.95)
# How long a killed command's temporary server may take to follow its parent.
SERVER_GRACE_SECONDS = 15.0

# Each figure: (name, SQL over the attached warehouse `w`), compared as a multiset of rows
# by its fingerprint in DuckDB (row count, sum and xor of the rows' hashes: the same for
# the same rows in any order), never by pulling millions of rows into Python.
TABLE_FIGURES = (
    ("ledger (every column but the ids, and its batch's value date)",
     "SELECT l.* EXCLUDE (payment_id, batch_id, run_id, updated_run_id), b.value_date "
     "FROM w.ledger l JOIN w.batches b USING (batch_id)"),
    ("entitlements", "SELECT * EXCLUDE (run_id) FROM w.entitlements"),
    ("notifications (every column but the run id)", "SELECT * EXCLUDE (run_id) FROM w.notifications"),
    # a killed run's saved plan is superseded by its rerun: only the decided plans count
    ("plans decided (state, completed, payments, amount, batches)",
     "SELECT state, completed_at IS NOT NULL, payments, amount, batches FROM w.plans WHERE state <> 'superseded'"),
)
# What a run's report page says once its plan is approved (redress/reports/templates/report.html.j2).
APPROVED_PAGE = "Approval: <strong>approved</strong>"


def run_argv(data_dir: Path) -> list[str]:
    return [REDRESS, "--data-dir", str(data_dir), "run", "--run-date", RUN_DATE]


def approve_argv(data_dir: Path) -> list[str]:
    """`redress approve` of the plan waiting in `data_dir` (asked once, before any kill:
    an approval killed after its release committed leaves the plan approved, and is
    finished by giving the same command again)."""
    plan = waiting_plan(data_dir)
    if plan is None:
        raise RuntimeError(f"no plan waits for approval in {data_dir}")
    return [REDRESS, "--data-dir", str(data_dir), "approve", plan, "--by", "benchmark"]


def kill_moments(seconds: float, kills: int, rng: random.Random) -> list[float]:
    """`kills` moments in seconds, the k-th drawn uniformly from the k-th of `kills` equal
    parts of KILL_WINDOW of `seconds`: spread over the whole command, in order; none for
    no kill."""
    if kills <= 0:
        return []
    low, high = KILL_WINDOW
    width = (high - low) / kills
    return [(low + width * (k + rng.random())) * seconds for k in range(kills)]


def killed_after(argv: list[str], env: dict[str, str], seconds: float, log: Path) -> float | None:
    """Start argv in a session of its own and send its process group SIGKILL after
    `seconds`; returns the seconds it ran, or None when it exited by itself (RuntimeError
    when that exit failed). The command is killed too when waiting for it is interrupted.
    Prefect's temporary server has a process group of its own: it is not killed here but
    dies with its parent (the parent-death signal), which `servers_left` checks."""
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)
        start = time.perf_counter()
        try:
            code = proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
            if code == -signal.SIGKILL:
                return time.perf_counter() - start
            # it ended by itself just before the kill: its own exit counts
        finally:
            if proc.poll() is None:  # Ctrl-C or an error here: the command does not go on alone
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if code != 0:
        last = last_line(log.read_text()) or "no output"
        raise RuntimeError(f"{log.stem} failed ({code}) before its kill: {last}")
    return None


def processes_with(prefect_home: Path) -> list[int]:
    """Pids of the processes whose environment names this Prefect home (the killed
    commands' temporary servers, had one outlived its command)."""
    marker = f"PREFECT_HOME={prefect_home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:  # gone, or not ours to read
                continue
    return found


def servers_left(prefect_home: Path) -> int:
    deadline = time.monotonic() + SERVER_GRACE_SECONDS
    while (left := processes_with(prefect_home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return len(left)


def fingerprint(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> tuple[int, tuple]:
    """(rows, (rows, sum of row hashes, xor of row hashes)) of `query` (ROW_FINGERPRINT)."""
    (found,) = con.execute(f"SELECT {ROW_FINGERPRINT} FROM ({query}) AS _row", params or []).fetchall()
    return found[0], tuple(found)


def listed(items: list[tuple]) -> tuple[int, tuple]:
    """(rows, the rows sorted): for the few batch folders and leftovers."""
    return len(items), tuple(sorted(items))


def figures(data_dir: Path) -> dict[str, tuple[int, tuple]]:
    """Figure name -> (row count, what is compared): a fingerprint of a table's or a file
    set's rows, or the rows themselves for the few batch folders and leftovers."""
    found: dict[str, tuple[int, tuple]] = {}
    with duckdb.connect() as con:
        con.execute("ATTACH ? AS w (READ_ONLY)", [str(data_dir / "warehouse.duckdb")])
        for name, query in TABLE_FIGURES:
            found[name] = fingerprint(con, query)
        manifests, broken, verified = [], [], []
        for folder in batch_folders(data_dir):  # as recover-ledger finds them
            try:
                manifests.append(verified_manifest(folder))
                verified.append(folder)
            except RedressError as exc:
                broken.append((folder.name, str(exc)))
        found["batch folders (rail, value date, count, sum)"] = listed(
            [(m["rail"], m["value_date"], m["item_count"], m["control_sum"]) for m in manifests])
        found["batch folders failing their manifest"] = listed(broken)
        found["batch payments (without payment id)"] = fingerprint(con, """
            SELECT * EXCLUDE (payment_id) FROM read_parquet(?, union_by_name = true, hive_partitioning = false)
            """, [[str(f / "payments.parquet") for f in verified]]) if verified else (0, ())
        notes = notification_files(data_dir)
        found["notification files' rows"] = fingerprint(
            con, "SELECT * FROM read_parquet(?, hive_partitioning = false)",
            [[str(p) for p in notes]]) if notes else (0, ())
    found["report pages showing the approval"] = listed(
        [("approved",) for p in sorted((data_dir / "reports").glob("*/report.html"))
         if APPROVED_PAGE in p.read_text(encoding="utf-8")])
    outbox = data_dir / "outbox"
    left = [p.name for root in (outbox / "batches", outbox / "notifications") if root.is_dir()
            for p in root.iterdir() if p.name.startswith(TMP_PREFIX)]
    unknown = unknown_outbox(data_dir)
    found["half-written or unknown outbox entries"] = listed(
        [(name,) for name in left] + [(b,) for b in unknown.batches] + [(n,) for n in unknown.notifications])
    return found


# What the two sides write for people and programs: every file but the inbox, the
# warehouse and the lock.
WRITTEN = ("outbox", "reports", "exports", "quarantine")


def same_bytes(a: Path, b: Path) -> tuple[list[str], list[str]]:
    """([files with the same bytes], [files that differ or are on one side only]) under
    WRITTEN, by path relative to each folder, sorted. With no kill both sides ran the
    same commands, so only what carries the wall clock or the folder's path may differ."""
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for top in WRITTEN if (root / top).is_dir()
                for p in (root / top).rglob("*") if p.is_file()}

    names_a, names_b = files(a), files(b)
    both = sorted(names_a & names_b)
    same = [n for n in both if filecmp.cmp(a / n, b / n, shallow=False)]  # in chunks: files of GBs
    return same, sorted((names_a ^ names_b) | (set(both) - set(same)))


def differences(straight: dict[str, tuple[int, tuple]], killed: dict[str, tuple[int, tuple]]) -> list[str]:
    """One DIFFERS line per figure that is not the same on both sides."""
    return [f"DIFFERS {name}: {straight[name][0]:,} rows in the first copy, {killed.get(name, (0,))[0]:,} "
            "in the second" for name in straight if straight[name] != killed.get(name)] + \
           [f"DIFFERS {name}: only in the second copy" for name in killed if name not in straight]


def said(command: str, output: str) -> str:
    """An approval's last line (what it released and told), to print after its fate."""
    last = last_line(output)
    return f": {last}" if command == "approve" and last else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kills", type=int, default=3,
                        help="kills of each command before it runs to its end; 0: two uninterrupted runs, "
                             "whose files are then also compared byte for byte (listed; not in the exit status)")
    parser.add_argument("--kill-seed", type=int, default=1, help="seeds the moments of the kills")
    parser.add_argument("--out", type=Path, help="data folder (default bench/kill-<customers>)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder (reuse it with --out next time)")
    args = parser.parse_args()
    if args.kills < 0:
        parser.error("--kills must be 0 or more")
    sys.stdout.reconfigure(line_buffering=True)  # each line as it happens, also into a file
    out, made, was_empty = claim_folder(args.out or ROOT / "bench" / f"kill-{args.customers}", parser, "kill_resume")
    manifest = prepare(out, args.customers, args.seed)
    print(f"customers {manifest['customers']:,}; scope rows {sum(manifest['scope_rows'].values()):,}")
    prefect_home = Path(tempfile.mkdtemp(prefix="redress-kill-prefect-"))
    env = child_env(prefect_home)
    moments = random.Random(args.kill_seed)
    ok = True
    try:
        prepare_prefect(env, prefect_home / "prefect.log")
        sides = {}
        for side in ("straight", "killed"):
            sides[side] = out / side
            shutil.copytree(out / "inbox", sides[side] / "inbox")
        straight = sides["straight"]
        run_seconds = run_child(run_argv(straight), env, prefect_home / "straight-run.log",
                                name="redress run (uninterrupted)").seconds
        approve_seconds = run_child(approve_argv(straight), env, prefect_home / "straight-approve.log",
                                    name="redress approve (uninterrupted)").seconds
        print(f"uninterrupted: run {run_seconds:.1f} s, approve {approve_seconds:.1f} s")
        killed = sides["killed"]
        for command, seconds in (("run", run_seconds), ("approve", approve_seconds)):
            argv = run_argv(killed) if command == "run" else approve_argv(killed)
            for n, at in enumerate(kill_moments(seconds, args.kills, moments), start=1):
                log = prefect_home / f"killed-{command}-{n}.log"
                ran = killed_after(argv, env, at, log)
                if ran is None:  # done: giving it again would be another command
                    print(f"  {command} {n}: ran to its end (exit 0) before its kill at {at:.1f} s"
                          + said(command, log.read_text()))
                    break
                left = servers_left(prefect_home)
                print(f"  {command} {n}: killed -9 after {ran:.1f} s; Prefect servers left running: {left}")
                ok &= left == 0
            else:
                try:
                    last = run_child(argv, env, prefect_home / f"killed-{command}-end.log", name=f"redress {command}")
                except RuntimeError as exc:
                    if command != "approve" or "it is approved" not in str(exc):
                        raise
                    # Killed after the approval recorded its last step (plans.completed_at),
                    # while the process exits: it is done, and a repeat is refused.
                    print(f"  approve given again: refused, the approval had completed before its kill ({exc})")
                else:
                    print(f"  {command} given again: exit 0 in {last.seconds:.1f} s" + said(command, last.text))
        expected, after = figures(straight), figures(killed)
        print(f"  {'figure (rows)':<64}{'straight':>12}{'killed':>12}")
        for name, found in expected.items():
            print(f"  {name:<64}{found[0]:>12,}{after.get(name, (0,))[0]:>12,}")
        problems = differences(expected, after)
        print("\n".join(problems) if problems else "agreement: every figure equal")
        ok &= not problems
        if args.kills == 0:
            same, differ = same_bytes(straight, killed)
            kinds = Counter(Path(name).name for name in differ)  # a batch folder's files by name
            print(f"same bytes: {len(same):,} files; different: {len(differ):,}"
                  + "".join(f"\n  differs: {name} ({n:,} file{'s' * (n > 1)})" for name, n in sorted(kinds.items())))
    except (RuntimeError, OSError) as exc:
        print(f"kill_resume: {exc} (logs: {prefect_home}; folders kept: {out})", file=sys.stderr)
        return 1
    shutil.rmtree(prefect_home, ignore_errors=True)
    if not ok:  # the evidence stays
        print(f"folders kept for inspection: {out}")
    elif not args.keep:
        clean_up(out, made, was_empty)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
