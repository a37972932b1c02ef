"""Small runs with the warehouse held open (redress.warehouse.held_open) against the same
runs opening it at every step, measured in one invocation, as a ratio.

    .venv/bin/python benchmarks/held_open.py [--customers 200] [--rounds 3] [--no-warm-up]

Each round generates a breach of --customers (seed 21) into two new folders and, in
this process, runs the real flow (`remediation`, approval off) twice on each: a full run
and a rerun with nothing new, one folder with the instance held (HOLD_MAX_BYTES as
shipped), the other never held (HOLD_MAX_BYTES = -1), alternating which goes first,
after one untimed pair that warms the imports and first calls (--no-warm-up: none).
Prints seconds per round and the totals, with held / opened. Uses the Prefect server of
PREFECT_API_URL if set, else a temporary test server (not timed). Every folder is
removed at the end. Run `uptime` first: other work on the machine skews every figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # approval_off: the shipped policy with approval off

SETTINGS = {"REDRESS_HMAC_KEY": "bench-key-not-a-secret-0123456789abcdef0123",
            "REDRESS_DEBTOR_NAME": "Benchmark Payer Corp.", "REDRESS_DEBTOR_ACCOUNT": "1002003004005",
            "REDRESS_DEBTOR_BANK_CODE": "020", "REDRESS_INBOX_QUIET_SECONDS": "0",
            "REDRESS_INBOX_WAIT_SECONDS": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def timed_pair(data: Path, bound: int) -> float:
    """Seconds of a full run and a rerun of `data` with HOLD_MAX_BYTES = bound."""
    import redress.warehouse
    from approval_off import DEFAULT_POLICY
    from flows.remediation import remediation

    shipped = redress.warehouse.HOLD_MAX_BYTES
    redress.warehouse.HOLD_MAX_BYTES = bound
    try:
        start = time.perf_counter()
        for day in (1, 2):
            remediation(data_dir=data, policy_path=DEFAULT_POLICY, run_date=date(2025, 12, day))
        return time.perf_counter() - start
    finally:
        redress.warehouse.HOLD_MAX_BYTES = shipped


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-warm-up", action="store_true", help="no untimed pair first")
    args = parser.parse_args(argv)
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
    import prefect.settings
    from prefect.testing.utilities import prefect_test_harness

    import redress.warehouse
    from redress.generate import generate

    server = nullcontext() if os.environ.get("PREFECT_API_URL") else prefect_test_harness(server_startup_timeout=180)
    root = Path(tempfile.mkdtemp(prefix="held-open-"))
    totals = {"held": 0.0, "opened": 0.0}
    try:
        with server, prefect.settings.temporary_settings(
                updates={prefect.settings.PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            if not args.no_warm_up:  # imports and first calls, not counted
                timed_pair(_generated(generate, root / "warm", args.customers), -1)
            for n in range(args.rounds):
                bounds = {"held": redress.warehouse.HOLD_MAX_BYTES, "opened": -1}
                order = list(bounds) if n % 2 == 0 else list(reversed(bounds))
                seconds = {}
                for kind in order:
                    seconds[kind] = timed_pair(_generated(generate, root / f"{kind}{n}", args.customers), bounds[kind])
                    totals[kind] += seconds[kind]
                print(f"round {n + 1}: held {seconds['held']:.2f} s, opened at every step {seconds['opened']:.2f} s",
                      flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = totals["held"] / totals["opened"]
    print(f"{args.rounds} rounds of a full run and a rerun, {args.customers:,} customers: "
          f"held {totals['held']:.2f} s, opened at every step {totals['opened']:.2f} s, held / opened {ratio:.2f}")
    return {**totals, "ratio": ratio}


def _generated(generate, data: Path, customers: int) -> Path:
    generate(data, customers, seed=21)
    return data


if __name__ == "__main__":
    main()
