import re

import altair as alt
import polars as pl

from redress.reports.charts import svg


def test_a_chart_is_one_svg_element_that_fetches_nothing():
    frame = pl.DataFrame({"rail": ["bank_transfer", "voucher"], "amount_krw": [1_250_000, 40_000]})
    text = svg(alt.Chart(frame).mark_bar().encode(x="rail:N", y="amount_krw:Q"))
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>")
    # the only URLs are XML namespace names, which no renderer fetches
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert "bank_transfer" in text and "voucher" in text

