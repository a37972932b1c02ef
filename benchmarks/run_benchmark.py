"""Benchmark redress against a plain DuckDB SQL reference of the same decisions, on the same files.

    .venv/bin/python benchmarks/run_benchmark.py --customers 1000000 [--seed 7] [--out DIR] [--keep]
                                                 [--policy FILE] [--revision] [--whatif]

1. Generates a breach (`redress generate`) into DIR, new or empty, and marks it as the
   benchmark's (.redress-benchmark); or reuses a DIR so marked, generated for the same
   --customers and --seed, removing its outputs from an earlier benchmark first. Any other
   DIR (a demo's, a data folder, a file, a symbolic link) is refused in one line with
   nothing touched. Without --keep, what this run made is removed at the end: a new DIR
   (and the parent folders it created), the contents of a DIR that was empty, or a
   marked DIR reused.
2. Creates Prefect's database in the benchmark's own PREFECT_HOME (`prepare_prefect`:
   a user's first `redress run` on a machine does it once, about 10 s; every later run
   finds it), timed and printed apart, not counted in either side's total.
   Runs the reference (benchmarks/reference.py + reference.sql) in a child process.
3. Runs the real flow in another child process: `redress run --data-dir DIR`.
   Per-stage seconds are the flow's task runs as Prefect recorded them (read through the
   Prefect client afterwards, from a private PREFECT_HOME); nothing is re-wrapped.
4. Prints per stage seconds and peak resident memory (the run's peak within the stage,
   read from the kernel interval by interval while it runs: benchmarks/peaks.py; the
   approval's the largest of its process's readings), each side's total wall seconds (process start to
   exit, what a user waits for), peak resident memory (the child's, with the children it
   waited for, as wait4's ru_maxrss gave it) and CPU
   seconds (user + system, from the same wait4: the process's threads and the children
   it waited for, Prefect's server included), and the ratio redress / reference, with
   the CPU ratio and the floor of the wall ratio (`table`); then checks that the reference's customers and won
   per entitlement reason, payments and won per rail and scope rows per destination
   equal redress's warehouse (`entitlements`, `ledger`, outcome tables): exit 1 if not.
5. With --revision: adds one scope file with 1% more rows (about half exposures of
   customers no file named by id before, half new categories of customers already
   named; SQL over the snapshot, seeded), runs the reference and `redress run` again
   on the same folder, prints the revision's seconds and revision / full run, and
   checks the figures again (payments compared as won per rail over the whole ledger:
   a top-up is a second payment to the same customer).
6. With --whatif: times `redress whatif` over the folder after the run(s) for three
   policies (the shipped one and two variants written to a temporary folder: a fund cap
   that binds, and tiers by sensitivity) and prints its seconds and peak memory.

Both children see the same machine; run `uptime` first: other work beside it skews both.
Child environment: REDRESS_INBOX_QUIET_SECONDS=0 (the files were just written whole),
a throwaway REDRESS_HMAC_KEY and payer unless set.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import reference as ref  # noqa: E402  (benchmarks/reference.py: imports nothing of redress)
from peaks import Peaks, PeakWatch, gap_peak, reset_own_peak, stage_peaks  # noqa: E402  (benchmarks/peaks.py)

RUN_DATE = "2025-12-01"
REVISION_FILE = "scope_99_benchmark_revision.parquet"
# What a reused folder keeps; every other entry is an output of an earlier benchmark and
# goes (exports/ included: left in place, its files matched the new warehouse's and were
# not written again, so a second benchmark on a folder did not pay for its exports).
# A folder the benchmark generated holds this file: only such a folder is ever emptied
# for reuse or removed at the end (`redress demo` and `redress generate` also write an
# inbox and generated.json, and a person's folder may hold anything else).
MARKER = ".redress-benchmark"
KEPT = ("inbox", "generated.json", MARKER)


def child_env(prefect_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               REDRESS_INBOX_QUIET_SECONDS="0", REDRESS_INBOX_WAIT_SECONDS="0")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    env.setdefault("REDRESS_HMAC_KEY", secrets.token_hex(32))
    env.setdefault("REDRESS_DEBTOR_NAME", "Benchmark Payer Corp.")
    env.setdefault("REDRESS_DEBTOR_ACCOUNT", "1002003004005")
    env.setdefault("REDRESS_DEBTOR_BANK_CODE", "020")
    return env


class Child(NamedTuple):
    seconds: float  # wall, start to exit
    peak_mb: float  # the child's peak resident memory (its own, with the children it waited for at exit)
    cpu_seconds: float  # user + system: its threads and the children it waited for
    text: str  # stdout and stderr
    peaks: Peaks  # its peak interval by interval (benchmarks/peaks.py), for stage_peaks


def last_line(text: str) -> str:
    """A command's last line of output, "" for none."""
    return (text.strip().splitlines() or [""])[-1]


def run_child(argv: list[str], env: dict[str, str], log: Path, name: str | None = None) -> Child:
    """Run argv to completion; its Child figures. Raises RuntimeError with the log's
    last line when it fails. Peak and CPU are the child's own (wait4's rusage), so one
    child's use never shows as another's; the peak is also read interval by interval
    while it runs (`PeakWatch`), stopped before the child is reaped."""
    start, started = time.perf_counter(), time.time()
    with log.open("w") as out:
        reset_own_peak()  # the child's image before its exec is ours (benchmarks/peaks.py)
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        waits = hasattr(os, "waitid")  # not on every system: then the stages' peaks are n/a
        watch = PeakWatch(proc.pid, started, active=waits)
        try:
            if waits:
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: its pid stays its own
        finally:
            watch.stop()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    seconds = time.perf_counter() - start
    peaks = watch.peaks(usage.ru_maxrss / 1024)
    text = log.read_text()
    if proc.returncode != 0:
        last = last_line(text) or "no output"
        raise RuntimeError(f"{name or (Path(argv[1]).name if len(argv) > 1 else argv[0])} failed "
                           f"({proc.returncode}): {last}")
    return Child(seconds, peaks.total_mb, usage.ru_utime + usage.ru_stime, text, peaks)


# The temporary server of a command, started and stopped once: with no database in
# PREFECT_HOME yet, the server creates it and applies its migrations as it starts.
PREPARE_PREFECT = ("from redress.runtime.prefect_server import launch, stop, wait_healthy\n"
                   "child, url = launch()\nwait_healthy(child, url, 120)\nstop(child)")


def prepare_prefect(env: dict[str, str], log: Path) -> float:
    """Start and stop a command's temporary Prefect server once with `env`'s PREFECT_HOME,
    so that its database exists before anything is timed, as on a machine where redress
    ran before; returns the seconds it took (at 10 M, the run's server answered after
    14.3 s on a new PREFECT_HOME and after 4.1 s once its database existed)."""
    return run_child([sys.executable, "-c", PREPARE_PREFECT], env, log, name="Prefect's first start").seconds


def run_reference(data_dir: Path, policy: Path, env: dict[str, str], log: Path) -> dict:
    child = run_child([sys.executable, str(BENCH / "reference.py"), str(data_dir), "--policy", str(policy)], env, log)
    result = json.loads(child.text.strip().splitlines()[-1])
    return {"seconds": child.seconds, "peak_mb": child.peak_mb, "cpu_seconds": child.cpu_seconds,
            "sql_seconds": result["seconds"], "figures": result["figures"]}


def run_redress(data_dir: Path, policy: Path, env: dict[str, str], log: Path) -> dict:
    """`redress run`, then `redress approve` of its plan when the policy asks for
    approval: seconds, peak and CPU of both together; `stages`, each (name, seconds,
    peak MB or None): the flow's task runs with the run's peak within each (stage_peaks),
    the flow run's time outside them (OUTSIDE_TASKS, gap_peak), then "approve", the
    largest of its process's readings; the flow run's seconds and peak. The run's total
    peak also counts what lies outside its flow run: its imports, Prefect's server (a
    child: wait4 counts it at exit) and the image before its exec."""
    redress = Path(sys.executable).with_name("redress")
    argv = [str(redress), "--data-dir", str(data_dir), "run", "--policy", str(policy), "--run-date", RUN_DATE]
    run = run_child(argv, env, log)
    flow = stage_seconds(Path(env["PREFECT_HOME"]))
    spans = [(start, end) for _, _, start, end in flow["stages"]]
    gaps = outside_tasks(flow["flow_span"], spans)
    *peaks, flow_peak = stage_peaks(run.peaks, [*spans, flow["flow_span"]])
    result = {"seconds": run.seconds, "peak_mb": run.peak_mb, "cpu_seconds": run.cpu_seconds,
              "flow_seconds": flow["flow_seconds"], "flow_peak_mb": flow_peak,
              "stages": [*((name, seconds, peak) for (name, seconds, _, _), peak in zip(flow["stages"], peaks)),
                         (OUTSIDE_TASKS, sum(end - start for start, end in gaps), gap_peak(run.peaks, gaps))]}
    waiting = waiting_plan(data_dir)
    if waiting:  # the policy asks for approval (SPEC "Approval before release"): finance's step is timed too
        argv = [str(redress), "--data-dir", str(data_dir), "approve", waiting, "--by", "benchmark"]
        more = run_child(argv, env, log.with_name(log.stem + "-approve.log"))
        # its readings, as for a stage of the run: not wait4's exit figure (its server, the image before exec)
        approve_peak, = stage_peaks(more.peaks, [(float("-inf"), float("inf"))])
        result.update(seconds=run.seconds + more.seconds, peak_mb=max(run.peak_mb, more.peak_mb),
                      cpu_seconds=run.cpu_seconds + more.cpu_seconds,
                      stages=[*result["stages"], ("approve", more.seconds, approve_peak)])
    return result


# The flow run's time outside its task runs, after them in the table: the analyst
# exports (written by the flow once the stages succeed: flows/remediation.py), opening
# and recording the run, and Prefect's work between tasks.
OUTSIDE_TASKS = "flow outside tasks"


def outside_tasks(flow_span: tuple[float, float], spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of `flow_span` (start, end) that no span of `spans` covers, in order."""
    gaps, at = [], flow_span[0]
    for start, end in sorted(spans):
        if start > at:
            gaps.append((at, min(start, flow_span[1])))
        at = max(at, end)
    if at < flow_span[1]:
        gaps.append((at, flow_span[1]))
    return [(start, end) for start, end in gaps if end > start]


def waiting_plan(data_dir: Path) -> str | None:
    """The run id of the plan waiting for approval after a run, if there is one."""
    import duckdb

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute("SELECT run_id FROM plans WHERE state = 'waiting' ORDER BY run_id DESC LIMIT 1").fetchall()
    return found[0][0] if found else None


def stage_seconds(prefect_home: Path) -> dict:
    """The newest flow run's seconds and span (start, end), and its task runs' (stage
    name, seconds, start, end), in start order, read from the Prefect database the child
    wrote (PREFECT_HOME); start and end in epoch seconds, as time.time."""
    os.environ["PREFECT_HOME"] = str(prefect_home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
    tasks = sorted((t for t in tasks if t.start_time), key=lambda t: t.start_time)
    stages = [(t.name.rsplit("-", 1)[0], (t.end_time - t.start_time).total_seconds(), t.start_time.timestamp(),
               t.end_time.timestamp()) for t in tasks]
    return {"flow_seconds": (flow_run.end_time - flow_run.start_time).total_seconds(), "stages": stages,
            "flow_span": (flow_run.start_time.timestamp(), flow_run.end_time.timestamp())}


def redress_figures(data_dir: Path) -> list[list]:
    """The same figures as the reference's, read from redress's warehouse (read-only)."""
    import duckdb

    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute("""
            SELECT 'reason', reason, count(*), sum(amount)::BIGINT FROM entitlements GROUP BY reason
            UNION ALL
            SELECT 'rail', rail, count(*), sum(amount)::BIGINT FROM ledger
            WHERE status IN ('issued', 'settled') GROUP BY rail
            UNION ALL SELECT 'destination', 'exposure', count(*), NULL FROM scope_exposures
            UNION ALL SELECT 'destination', 'non_member', count(*), NULL FROM non_member_exposures
            UNION ALL SELECT 'destination', 'review:' || reason, count(*), NULL FROM review GROUP BY reason
            UNION ALL SELECT 'destination', 'quarantine:' || reason, count(*), NULL FROM quarantine
                      WHERE kind = 'scope' AND row_number IS NOT NULL GROUP BY reason
            ORDER BY 1, 2""").fetchall()
    finally:
        con.close()
    return [[m, k, int(n), None if a is None else int(a)] for m, k, n, a in rows if n]


def differences(reference: list[list], redress: list[list], *, payments_by_amount_only: bool = False) -> list[str]:
    """Lines naming every figure on which the two disagree (empty: they agree). After a
    revision a customer may hold two payments (first + top-up): compare won per rail only."""
    def keyed(figures):
        return {(m, k): (None if payments_by_amount_only and m == "rail" else n, a) for m, k, n, a in figures}

    ours, theirs = keyed(reference), keyed(redress)
    return [f"{m} {k}: reference {ours.get((m, k))}, redress {theirs.get((m, k))}"
            for m, k in sorted(set(ours) | set(theirs)) if ours.get((m, k)) != theirs.get((m, k))]


def write_revision(data_dir: Path, seed: int, policy: Path) -> int:
    """Add inbox/scope/REVISION_FILE: 1% as many rows as the readable scope files hold,
    about half for customers no scope file named by id (new people, first payments),
    half a category for customers already named (new exposures of known people).
    Timestamps inside the breach window; seeded, ordered, so the same seed gives the
    same bytes. Returns its row count."""
    import duckdb

    con = duckdb.connect()
    try:
        snapshot = ref.read_order(data_dir / "inbox" / "customers", (".parquet", ".csv"))[-1]
        ref.open_file(con, snapshot).create_view("customers_file")
        ref.scope_views(con, data_dir / "inbox" / "scope")
        ref.set_policy(con, policy)
        con.execute("SET VARIABLE seed = ?", [seed])
        target = str(data_dir / "inbox" / "scope" / REVISION_FILE)
        con.execute("""
            COPY (
              WITH named AS (SELECT DISTINCT trim(customer_id) AS customer_id FROM scope_file_rows),
              size AS (SELECT (count(*) + 99) // 100 AS rows FROM scope_file_rows),
              people AS (
                SELECT c.customer_id, n.customer_id IS NOT NULL AS known,
                       (hash(c.customer_id, getvariable('seed')) % 2147483647)::BIGINT AS h
                FROM customers_file c LEFT JOIN named n USING (customer_id)),
              picked AS (
                SELECT *, row_number() OVER (PARTITION BY known ORDER BY h, customer_id) AS k FROM people)
              SELECT customer_id, NULL::VARCHAR AS email, NULL::VARCHAR AS phone,
                     getvariable('category_tiers')[1 + h % len(getvariable('category_tiers'))].data_category
                       AS data_category,
                     strftime((getvariable('window_start') + to_seconds(h % (epoch(getvariable('window_end'))
                              - epoch(getvariable('window_start')))::BIGINT + 1)) AT TIME ZONE 'UTC',
                              '%Y-%m-%dT%H:%M:%S') || 'Z' AS accessed_at,
                     'confirmed' AS confidence, 'benchmark_revision' AS source
              FROM picked, size
              WHERE k <= CASE WHEN known THEN size.rows - least(size.rows // 2, (SELECT count(*) FROM people
                                                                              WHERE NOT known))
                              ELSE size.rows // 2 END
              ORDER BY customer_id
            ) TO ? (FORMAT parquet)""", [target])
        return con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = false)", [target]).fetchall()[0][0]
    finally:
        con.close()


SHIPPED = ROOT / "policies" / "coupang-2025-v1.toml"


def whatif_policies(folder: Path, customers: int) -> list[Path]:
    """The shipped policy and two variants of it: a fund of 20,000 KRW per customer
    (binds: most are owed 50,000), and tiers by sensitivity (30,000 / 60,000 / 90,000)."""
    text = SHIPPED.read_text(encoding="utf-8")
    variants = {
        "capped": [("total_cap = 0", f"total_cap = {customers * 20_000}")],
        "tiered": [("shipping_address = 1", "shipping_address = 2"), ("order_history = 1", "order_history = 2"),
                   ("entrance_code = 1", "entrance_code = 3"), ("1 = 50000", "1 = 30000\n2 = 60000\n3 = 90000")],
    }
    paths = [SHIPPED]
    for name, changes in variants.items():
        variant = text.replace('id = "coupang-2025-v1"', f'id = "benchmark-{name}-v1"')
        for old, new in changes:
            if variant.count(old) != 1:
                raise SystemExit(f"benchmark: the shipped policy no longer holds {old!r} once")
            variant = variant.replace(old, new)
        paths.append(folder / f"{name}.toml")
        paths[-1].write_text(variant, encoding="utf-8")
    return paths


def run_whatif(data_dir: Path, customers: int, env: dict[str, str], folder: Path) -> None:
    redress = Path(sys.executable).with_name("redress")
    policies = [str(p) for p in whatif_policies(folder, customers)]
    argv = [str(redress), "--data-dir", str(data_dir), "whatif", *policies, "--run-date", RUN_DATE]
    child = run_child(argv, env, folder / "whatif.log")
    print(f"whatif of {len(policies)} policies")
    print(f"  {'redress whatif total':<24}{child.seconds:>10.1f} s   peak {child.peak_mb:>8,.0f} MB"
          f"   CPU {child.cpu_seconds:,.1f} s")


def prepare(out: Path, customers: int, seed: int) -> dict:
    """A data folder holding only a generated inbox: reused when the benchmark generated
    `out` (MARKER) for the same customers and seed (everything but KEPT, and the revision
    file, removed), else generated into a new or empty `out`. SystemExit, one line, with
    nothing deleted: `out` holds files the benchmark did not make, or was generated for
    another size or seed."""
    if out.exists() and not out.is_dir():
        raise SystemExit(f"benchmark: {out} is not a folder: choose another --out")
    if (out / MARKER).is_file():
        try:
            manifest = json.loads((out / "generated.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise SystemExit(f"benchmark: {out / 'generated.json'} is missing or not JSON: choose another --out")
        if not (isinstance(manifest, dict) and isinstance(manifest.get("scope_rows"), dict)
                and isinstance(manifest.get("customers"), int) and isinstance(manifest.get("seed"), int)):
            raise SystemExit(f"benchmark: {out / 'generated.json'} is not a manifest the benchmark wrote: "
                             "choose another --out")
        if (manifest["customers"], manifest["seed"]) != (customers, seed):
            raise SystemExit(f"benchmark: {out} was generated for {manifest['customers']} customers and seed "
                             f"{manifest['seed']}, not {customers} and {seed}: choose another --out, or give "
                             "its --customers and --seed")
        _empty(out, keep=KEPT)
        (out / "inbox" / "scope" / REVISION_FILE).unlink(missing_ok=True)
        print(f"reusing {out} ({manifest['customers']:,} customers, seed {manifest['seed']})")
        return manifest
    from redress.generate import generate

    if out.exists() and any(out.iterdir()):
        # never delete a folder the benchmark did not make
        raise SystemExit(f"benchmark: {out} holds files the benchmark did not generate (no {MARKER}): "
                         f"choose another --out (a folder an earlier version generated: `touch {MARKER}` in "
                         "it adopts it)")
    start = time.perf_counter()
    manifest = generate(out, customers, seed)
    (out / MARKER).write_text("generated by benchmarks/run_benchmark.py; emptied for reuse and removed "
                              "without --keep\n", encoding="utf-8")
    print(f"generated {customers:,} customers in {time.perf_counter() - start:.1f} s")
    return manifest


def table(name: str, ref_run: dict | None, run: dict, cores: int | None = None) -> str:
    """The stage table of one redress run, with the reference's total and the ratio
    unless the reference was not run (ref_run None, --no-reference). Each total also
    gives its CPU seconds and the cores they kept busy on average (CPU / wall). With the
    reference: the CPU ratio (how much more work redress does), and the floor of the wall
    ratio that keeping every one of the machine's `cores` busy would reach with that same
    work, redress's CPU seconds / (cores x the reference's wall seconds): below it only
    less work goes, not better scheduling."""
    cores = cores or os.cpu_count() or 1

    def total(label: str, figures: dict) -> str:
        return (f"  {label:<24}{figures['seconds']:>10.1f} s   peak {figures['peak_mb']:>8,.0f} MB"
                f"   CPU {figures['cpu_seconds']:>9,.1f} s ({figures['cpu_seconds'] / figures['seconds']:.2f} cores busy)")

    lines = [f"{name}", f"  {'stage':<24}{'seconds':>10}{'peak MB':>10}"]
    def row(stage: str, seconds: float, peak: float | None) -> str:
        return f"  {stage:<24}{seconds:>10.1f}{'n/a' if peak is None else f'{peak:,.0f}':>10}"

    lines += [row(*stage) for stage in run["stages"]]
    lines += [row("flow run (Prefect)", run["flow_seconds"], run.get("flow_peak_mb")), total("redress total", run)]
    if ref_run is None:
        return "\n".join([*lines, "  reference not run (--no-reference): no ratio, no comparison"])
    lines += [
        total("reference total", ref_run) + f"   (SQL {ref_run['sql_seconds']:.1f} s)",
        f"  {'ratio redress/reference':<24}{run['seconds'] / ref_run['seconds']:>10.2f}"
        f"   (flow run / reference: {run['flow_seconds'] / ref_run['seconds']:.2f})",
        f"  {'CPU ratio':<24}{run['cpu_seconds'] / ref_run['cpu_seconds']:>10.2f}"
        f"   (floor of the ratio with all {cores} cores busy: {run['cpu_seconds'] / (cores * ref_run['seconds']):.2f})",
    ]
    return "\n".join(lines)


def compare(ref_run: dict, data_dir: Path, **kw) -> bool:
    diff = differences(ref_run["figures"], redress_figures(data_dir), **kw)
    print("  agreement: " + ("every figure equal" if not diff else f"{len(diff)} figure(s) differ"))
    print_figures(ref_run["figures"])
    for line in diff:
        print(f"    DIFFERS {line}")
    return not diff


def print_figures(figures: list[list]) -> None:
    """Per reason and per rail: customers or payments, and won (no destinations)."""
    for (m, k), (n, a) in sorted({(m, k): (n, a) for m, k, n, a in figures}.items()):
        if m != "destination":
            print(f"    {m:<7} {k:<22} {n:>12,}" + (f" {a:>18,} won" if a is not None else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="data folder (default bench/<customers>)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder (reuse it with --out next time)")
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "coupang-2025-v1.toml")
    parser.add_argument("--revision", action="store_true", help="then a 1%% revision on the same folder")
    parser.add_argument("--whatif", action="store_true", help="then time `redress whatif` of three policies")
    parser.add_argument("--no-reference", action="store_true",
                        help="redress alone, with its own figures: for a case whose reference does not fit the "
                             "machine (at 150M it spills more than this disk holds)")
    args = parser.parse_args()
    if args.revision and args.no_reference:
        parser.error("--revision is measured against the reference: not with --no-reference")
    out, made, was_empty = claim_folder(args.out or ROOT / "bench" / f"{args.customers}", parser, "benchmark")
    policy = args.policy.resolve()

    print(f"redress benchmark: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    manifest = prepare(out, args.customers, args.seed)
    rows = sum(manifest.get("scope_rows", {}).values())
    print(f"customers {manifest['customers']:,}; scope rows {rows:,} in {len(manifest['scope_rows'])} files"
          " (+ a duplicate and a corrupt file)")
    prefect_home = Path(tempfile.mkdtemp(prefix="redress-bench-prefect-"))
    env = child_env(prefect_home)
    ok = True
    try:
        print(f"Prefect's database created in the benchmark's PREFECT_HOME in "
              f"{prepare_prefect(env, prefect_home / 'prefect.log'):.1f} s (once per machine; not counted)")
        ref_run = None if args.no_reference else run_reference(out, policy, env, prefect_home / "reference.log")
        run = run_redress(out, policy, env, prefect_home / "redress.log")
        print(table("full run", ref_run, run))
        if ref_run is None:
            print_figures(redress_figures(out))
        else:
            ok &= compare(ref_run, out)
        if args.revision:
            added = write_revision(out, args.seed, policy)
            print(f"revision: {REVISION_FILE} with {added:,} rows; load average {os.getloadavg()[0]:.2f}")
            ref_rev = run_reference(out, policy, env, prefect_home / "reference-revision.log")
            rev = run_redress(out, policy, env, prefect_home / "redress-revision.log")
            print(table("revision (1%)", ref_rev, rev))
            print(f"  {'revision / full run':<24}{rev['seconds'] / run['seconds']:>10.2f}")
            ok &= compare(ref_rev, out, payments_by_amount_only=True)
        if args.whatif:
            run_whatif(out, manifest["customers"], env, prefect_home)
    except RuntimeError as exc:
        print(f"benchmark: {exc} (log: {prefect_home})", file=sys.stderr)
        return 1
    shutil.rmtree(prefect_home, ignore_errors=True)
    if not args.keep:
        clean_up(out, made, was_empty)
    return 0 if ok else 1


def claim_folder(given: Path, parser: argparse.ArgumentParser, prog: str) -> tuple[Path, Path | None, bool]:
    """(the folder, resolved; `made`, the outermost folder of it that does not exist yet,
    which a run without --keep removes; whether it exists and is empty). A symbolic link
    or a loop of them is refused in one line (`prog: ...`, exit 1)."""
    if given.is_symlink():
        parser.exit(1, f"{prog}: {given} is a symbolic link: give the folder itself\n")
    try:
        out = given.resolve()
    except RuntimeError:  # a loop of symbolic links above it (pathlib, Python 3.11)
        parser.exit(1, f"{prog}: {given} cannot be resolved (a loop of symbolic links)\n")
    made = _first_missing(out)
    return out, made, made is None and out.is_dir() and not any(out.iterdir())


def clean_up(out: Path, made: Path | None, was_empty: bool) -> None:
    """Remove what a run without --keep made: `made`, the outermost folder it created (it
    and what is under it), else empty `out` again when the user gave it empty, else
    remove `out`, the benchmark's own marked folder, reused."""
    if made is not None:
        shutil.rmtree(made)
    elif was_empty:  # a folder the user made: emptied again, kept
        _empty(out)
    else:  # its own marked folder, reused
        shutil.rmtree(out)


def _empty(folder: Path, keep: tuple[str, ...] = ()) -> None:
    """Remove every entry of `folder` but those named in `keep` (a link is removed, not followed)."""
    for path in sorted(folder.iterdir()):
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of `path` (itself included) that does not exist yet, or None."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            return missing
        missing = folder
    return missing


if __name__ == "__main__":
    sys.exit(main())
