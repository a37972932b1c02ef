"""The benchmark's what-if candidates (benchmarks/run_benchmark.py --whatif) are valid
policies that differ as they say: a fund cap, and tiers by sensitivity."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import run_benchmark  # noqa: E402
from redress.policy import load_policy  # noqa: E402


def test_the_three_candidates_load_and_differ(tmp_path):
    shipped, capped, tiered = (load_policy(p) for p in run_benchmark.whatif_policies(tmp_path, 20_000))
    assert [p.id for p in (shipped, capped, tiered)] == ["coupang-2025-v1", "benchmark-capped-v1", "benchmark-tiered-v1"]
    assert (shipped.total_cap, capped.total_cap, tiered.total_cap) == (0, 400_000_000, 0)
    assert tiered.tiers == {1: 30000, 2: 60000, 3: 90000} and tiered.categories["entrance_code"] == 3
