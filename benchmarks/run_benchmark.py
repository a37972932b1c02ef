"""Generate a breach of a given size, run the pipeline once, print seconds and peak
memory per stage.

    .venv/bin/python benchmarks/run_benchmark.py --customers 1000000 [--out bench/1m] [--keep]

The stages are the parent flow's tasks, called in the same order inside a flow of the
benchmark's own, so that each one can be timed and its peak resident memory read
(Linux: /proc/self/clear_refs resets the high-water mark, VmHWM reads it).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.setdefault("REDRESS_HMAC_KEY", secrets.token_hex(32))
os.environ.setdefault("REDRESS_DEBTOR_NAME", "Benchmark Payer Corp.")
os.environ.setdefault("REDRESS_DEBTOR_ACCOUNT", "1002003004005")
os.environ.setdefault("REDRESS_DEBTOR_BANK_CODE", "020")


def reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(name: str, fn, *args, rows: list):
    reset_peak()
    start = time.perf_counter()
    result = fn(*args)
    rows.append((name, time.perf_counter() - start, peak_mb()))
    print(f"  {name:<22} {rows[-1][1]:9.1f} s {rows[-1][2]:10,.0f} MB", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    args = parser.parse_args()
    out = args.out or ROOT / "bench" / f"{args.customers}"
    if out.exists():
        shutil.rmtree(out)

    from prefect import flow

    from redress.generate import generate
    from redress.policy import DEFAULT_POLICY, load_policy
    from tasks.report import write_report
    from tasks.runs import data_dir_lock, finish_run, start_run
    from tasks.stage_disburse import disburse
    from tasks.stage_entitle import compute_entitlements
    from tasks.stage_ingest import ingest_inbox
    from tasks.stage_notify import notify
    from tasks.stage_validate import validate_scope

    rows: list = []
    print(f"redress benchmark: {args.customers:,} customers, {os.cpu_count()} cores")
    manifest = measure("generate", generate, out, args.customers, args.seed, rows=rows)
    scope_rows = sum(manifest.get("scope_rows", {}).values()) if isinstance(manifest.get("scope_rows"), dict) else None

    @flow(name="redress-benchmark")
    def bench_flow() -> dict:
        policy = load_policy(DEFAULT_POLICY)
        with data_dir_lock(out):
            ctx = start_run(out, policy, date(2025, 12, 1), {"benchmark": True})
            summary = {"run_id": ctx.run_id}
            summary["ingest"] = measure("ingest", ingest_inbox, ctx, rows=rows)
            summary["validate"] = measure("validate", validate_scope, ctx, rows=rows)
            summary["entitle"] = measure("entitle", compute_entitlements, ctx, rows=rows)
            summary["disburse"] = measure("disburse", disburse, ctx, rows=rows)
            summary["notify"] = measure("notify", notify, ctx, rows=rows)
            summary["report"] = measure("report", write_report, ctx, summary, rows=rows)
            finish_run(ctx, "succeeded", summary)
        return summary

    start = time.perf_counter()
    summary = bench_flow()
    total = time.perf_counter() - start
    stage_total = sum(s for name, s, _ in rows if name != "generate")
    print()
    print(f"customers          {args.customers:>14,}")
    if scope_rows:
        print(f"scope rows         {scope_rows:>14,}")
    d = summary["validate"]["destinations"]
    print(f"exposures          {d['exposure']:>14,}")
    print(f"payments           {summary['disburse']['payments']:>14,}  in {summary['disburse']['batches']:,} batches")
    print(f"notifications      {summary['notify']['notifications']:>14,}")
    print(f"pipeline seconds   {stage_total:>14.1f}  (flow incl. Prefect overhead: {total:.1f})")
    print(f"peak memory MB     {max(p for _, _, p in rows):>14,.0f}")
    if not args.keep:
        shutil.rmtree(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
