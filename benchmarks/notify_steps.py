"""Seconds per step of the notify stage (tasks/notify.py) on a copy of a warehouse.

    nice -n 19 .venv/bin/python benchmarks/notify_steps.py COPY/warehouse.duckdb \
        [--policy policies/coupang-2025-v1.toml] [--out DIR] [--keep-notifications]

COPY must be a copy, in a folder that is not a data folder: the script deletes every
`notifications` row (so everyone is new, as in a first run; --keep-notifications leaves
them, as in a rerun), gives the people it tells new reference codes (from
REDRESS_HMAC_KEY, else a fixed bench key: codes people were already sent stop matching)
and inserts them under run id RUN_ID, so the warehouse ends as after a first notify of
that run. It refuses a path that is not a file, a warehouse whose folder (or, through a
symbolic link, whose real folder) holds `inbox/`, `outbox/` or `.redress.lock` (a real
data folder), and a file with hard links, before opening it.

It runs the stage's own functions in the stage's order, without Prefect, and prints one
line per step: seconds, and the peak resident memory of the process so far. The outputs
(the notification file, its index, the warehouse rows) go to --out (default: the folder
`notify-steps` beside the warehouse, kept) and their SHA-256 are printed, so two versions
of the code can be compared byte for byte. Run `uptime` first: other work on the machine
skews every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from redress.policy import load_policy  # noqa: E402
from redress.warehouse import LOCK_FILE, connect, notifications  # noqa: E402
from redress.warehouse import reference_codes  # noqa: E402
from tasks import notify as stage  # noqa: E402

BENCH_KEY = "bench-key-not-a-secret-0123456789abcdef0123"
RUN_ID = "R20251201-999"
# What a data folder holds beside its warehouse (SPEC "Layout"; the run's lock).
DATA_FOLDER_SIGNS = ("inbox", "outbox", LOCK_FILE)


def _peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


@contextmanager
def step(name: str, figures: list):
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    figures.append((name, seconds))
    print(f"{name:<34} {seconds:8.2f} s   peak {_peak_mb():>6} MB", flush=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--policy", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep-notifications", action="store_true")
    args = parser.parse_args()
    if not args.warehouse.is_file():
        raise SystemExit(f"notify_steps: {args.warehouse} is not a file: give a copy of a warehouse.duckdb")
    # The folder of the path given and of the file it leads to (a symbolic link to a real
    # warehouse is the real warehouse); a hard link is another name of the same file.
    for folder in dict.fromkeys((args.warehouse.parent, args.warehouse.resolve().parent)):
        signs = [name for name in DATA_FOLDER_SIGNS if (folder / name).exists()]
        if signs:
            raise SystemExit(f"notify_steps: {folder} holds {', '.join(signs)}: a data folder, whose notifications "
                             "and reference codes this would replace; copy its warehouse.duckdb to another folder "
                             "and give that")
    if args.warehouse.stat().st_nlink > 1:
        raise SystemExit(f"notify_steps: {args.warehouse} has other names (hard links): give a copy of it")
    policy = load_policy(args.policy)
    key = os.environ.get("REDRESS_HMAC_KEY") or BENCH_KEY
    out = args.out or args.warehouse.parent / "notify-steps"
    (out / "index").mkdir(parents=True, exist_ok=True)
    rows = out / "notification_rows.parquet"
    final, index = out / "notifications.parquet", out / "index" / "notifications.parquet"
    figures: list = []
    run_id = RUN_ID
    total = time.perf_counter()
    with connect(args.warehouse) as con:
        if not args.keep_notifications:
            with step("(setup) delete notifications", []):
                con.execute("DELETE FROM notifications")
                con.execute("CHECKPOINT")
        with step("new_people (NEW_PEOPLE SQL, first codes)", figures):
            stage.new_people(con, key.encode("utf-8"))
        with step("settle_codes", figures):
            reference_codes.settle_codes(con, stage.PEOPLE, "SELECT reference_code FROM notifications",
                                         key.encode("utf-8"))
        with step("sorted, rendered, 3 files written", figures):
            stage.write_rendered(stage.people_in_order(con), policy, run_id, final=final, index=index, rows=rows)
        stage.drop_people(con)
    with connect(args.warehouse) as con:
        with step("tally", figures):
            tally = stage.tally(con, rows)
        with step("insert notifications", figures):
            con.execute("BEGIN")
            notifications.add(con, str(rows))
            con.execute("COMMIT")
    print(f"{'total':<34} {time.perf_counter() - total:8.2f} s   ({sum(n for *_, n in tally):,} people)")
    for path in (final, index, rows):
        print(f"sha256 {str(path.relative_to(out)):<28} {_sha(path)}")


if __name__ == "__main__":
    main()
