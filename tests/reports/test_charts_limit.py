"""redress/reports/charts.py under a virtual-memory limit: vl-convert's V8 aborts the
whole process under any `ulimit -v` (found by the platform review: every run and
approval died in its report stage, after paying, with a C stack trace). No chart is
drawn then; the page says why, and the process lives."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

DRAW = """
import altair as alt, polars as pl
from redress.reports.charts import svg
chart = alt.Chart(pl.DataFrame({"a": [1, 2]}).to_pandas()).mark_bar().encode(x="a:Q")
drawn = svg(chart)
print(drawn[:4] if drawn.startswith("<svg") else drawn)
"""


@pytest.mark.parametrize("limit_gb", [None, 16])
def test_a_chart_under_a_memory_limit_is_a_sentence_and_the_process_lives(limit_gb):
    def limited():
        if limit_gb is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_gb << 30, limit_gb << 30))

    done = subprocess.run([sys.executable, "-c", DRAW], capture_output=True, text=True, preexec_fn=limited,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    if limit_gb is None:
        assert done.stdout.startswith("<svg")
    else:
        assert done.stdout.strip() == (
            f'<p class="no-chart">Chart not drawn: this process runs under a virtual-memory limit (ulimit -v, '
            f'{(limit_gb << 30) // 1024:,} KB), under which the chart renderer cannot start. The table beside it '
            'holds the same figures.</p>')
