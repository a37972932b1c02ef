"""benchmarks/reference_code_letters.py: it compares two derivations that give the same
codes, and says so; one that differs stops it (the figures would compare unequal work)."""

from __future__ import annotations

import sys

import reference_code_letters as bench


def test_the_letters_benchmark_prints_both_timings_and_their_ratio(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["reference_code_letters.py", "--people", "3000", "--repeat", "1"])
    assert bench.main() == 0
    out = capsys.readouterr().out
    assert "letters of 3,000 codes, best of 1 (every code equal in windows 0-3)" in out
    assert "earlier / shipped" in out


def test_a_derivation_giving_other_codes_stops_the_benchmark(monkeypatch, capsys):
    # A derivation taking each byte mod 23: most codes differ, as a broken one would.
    monkeypatch.setattr(bench, "earlier_code_sql", lambda window: bench._code_sql(window).replace("% 24", "% 23"))
    monkeypatch.setattr(sys, "argv", ["reference_code_letters.py", "--people", "3000", "--repeat", "1"])
    assert bench.main() == 1
    assert "window 0:" in capsys.readouterr().err
