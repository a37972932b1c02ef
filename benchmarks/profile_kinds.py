"""Where a run's time goes by kind of work: checks, outputs, the decisions themselves.

Reads py-spy's raw profiles of `redress run` and `redress approve` (py-spy is not one of
redress's dependencies; install it apart) and prints the seconds of the main thread
under each KINDS heading. A sample counts once, under the first heading in KINDS order
whose function appears anywhere in its stack: a GX suite run inside the ingest stage is a
check, not ingest. The log's table "Where the 10 M time goes, by kind of work"
(docs/scale-log.md, 2026-12-03) came from:

    py-spy record -r 50 --threads --idle -f raw -o run.txt -- \\
        .venv/bin/redress --data-dir DIR run --run-date 2025-12-01
    py-spy record -r 50 --threads --idle -f raw -o approve.txt -- \\
        .venv/bin/redress --data-dir DIR approve RUN_ID --by benchmark
    .venv/bin/python benchmarks/profile_kinds.py run.txt approve.txt

`--rate` must be the profiles' sampling rate (py-spy's `-r`).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

# (heading, functions: "name (file" as py-spy writes a frame), in the order they are tried.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("checks: the GX suites (every stage)", ("validate_table (redress/checks/suites.py",)),
    ("checks: the SQL input check (scope_rows_checked)",
     ("create_scope_rows_checked (", "require_narrow_disagreement (", "classification_counts (")),
    ("checks: the emission gates (staging the plan, the gate's tables, fingerprints)",
     ("stage_plan (", "check_plan (", "gate_fingerprint (", "stage_checked (")),
    ("outputs: the analyst exports (run and approval)", ("write_exports (redress/warehouse/exports.py",)),
    ("outputs: notifications (who is told, reference codes, render, files, insert)", ("notify (tasks/notify.py",)),
    ("outputs: batch folders, bank files, the ledger insert", ("release (redress/disbursement/release.py",)),
    ("outputs: reports", ("write_report (tasks/report.py", "refresh_report_page (")),
    ("decisions: reading, normalising and loading the files", ("ingest_inbox (tasks/ingest.py",)),
    ("decisions: classification (the scope copy, the rules, staging, commit)", ("validate_scope (tasks/validate.py",)),
    ("decisions: entitlements", ("compute_entitlements (tasks/entitle.py",)),
    ("decisions: the payment plan", ("disburse (tasks/disburse.py",)),
    ("Prefect's server start", ("temporary_server (",)),
)
REST = "the rest (Prefect around tasks, connections, imports, returns, claims)"


def kind_seconds(profiles: list[Path], rate: int) -> dict[str, float]:
    """Heading -> seconds, over the main thread's samples of every profile (py-spy raw:
    one `frame;frame;... count` line per distinct stack, `--threads` naming the thread
    first). A stack is the main thread's when one of its first frames is a `<module>`."""
    samples: Counter[str] = Counter({heading: 0 for heading, _ in KINDS} | {REST: 0})
    for profile in profiles:
        for line in profile.read_text(encoding="utf-8").splitlines():
            stack, _, count = line.rpartition(" ")
            if not any("<module>" in frame for frame in stack.split(";")[:4]):
                continue
            heading = next((h for h, functions in KINDS if any(f in stack for f in functions)), REST)
            samples[heading] += int(count)
    return {heading: n / rate for heading, n in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path, help="py-spy raw profiles (-f raw)")
    parser.add_argument("--rate", type=int, default=50, help="samples per second (py-spy -r)")
    args = parser.parse_args()
    seconds = kind_seconds(args.profiles, args.rate)
    print("| kind of work | seconds |\n|---|---|")
    for heading, value in seconds.items():
        print(f"| {heading} | {value:.1f} |")
    print(f"| total | {sum(seconds.values()):.1f} |")


if __name__ == "__main__":
    main()
