"""benchmarks/profile_kinds.py: py-spy's raw samples of the main thread, each counted once
under the first kind of work its stack shows."""

from __future__ import annotations

import profile_kinds

MAIN = "thread (1): MainThread;<module> (redress:8);main (flows/cli.py:40)"


def test_each_main_thread_sample_counts_once_under_the_first_kind_its_stack_shows(tmp_path):
    run = tmp_path / "run.txt"
    run.write_text("\n".join([
        # a GX suite inside the ingest stage is a check, not ingest
        f"{MAIN};ingest_inbox (tasks/ingest.py:90);check (redress/checks/quality.py:20);"
        "validate_table (redress/checks/suites.py:95) 50",
        f"{MAIN};ingest_inbox (tasks/ingest.py:90);load_frame (redress/inbox/streaming.py:66) 100",
        f"{MAIN};remediation (flows/remediation.py:50);write_exports (redress/warehouse/exports.py:300) 25",
        f"{MAIN};run_flow (prefect/flow_engine.py:10) 10",  # nothing of ours: the rest
        "thread (2): notify-file;append (tasks/notify.py:137) 999",  # not the main thread
    ]) + "\n", encoding="utf-8")
    approve = tmp_path / "approve.txt"
    approve.write_text(f"{MAIN};notify (tasks/notify.py:180);assign_codes (x.py:1) 40\n", encoding="utf-8")
    seconds = profile_kinds.kind_seconds([run, approve], rate=50)
    assert {k: v for k, v in seconds.items() if v} == {
        "checks: the GX suites (every stage)": 1.0,
        "decisions: reading, normalising and loading the files": 2.0,
        "outputs: the analyst exports (run and approval)": 0.5,
        "outputs: notifications (who is told, reference codes, render, files, insert)": 0.8,
        profile_kinds.REST: 0.2,
    }
    assert list(seconds)[-1] == profile_kinds.REST and len(seconds) == len(profile_kinds.KINDS) + 1
