"""Charts for the pages redress writes: Altair specifications rendered to static SVG.

A page must open offline and fetch nothing (issue 13, "Checks as a person would"), so a
chart is rendered here, once, by vl-convert (the Vega renderer compiled into a Python
wheel: no browser, no network) and embedded in the page as an `<svg>` element. Only
aggregates go into a chart: counts and KRW totals, never a person's data.
"""

from __future__ import annotations

import re

import altair as alt
import vl_convert

# Every chart in the house style: no Altair toolbar (that is a script), a plain font the
# reader's machine has, and room for a title.
_CONFIG = {"font": "sans-serif", "view": {"stroke": None}}
_XML_DECLARATION = re.compile(r"^<\?xml[^>]*>\s*")


def svg(chart: alt.TopLevelMixin) -> str:
    """The chart as one `<svg>` element (str), ready to embed in HTML. A chart that
    Altair's schema refuses raises its `SchemaValidationError` (a programming error)."""
    spec = chart.to_dict()
    spec["config"] = {**_CONFIG, **spec.get("config", {})}
    return _XML_DECLARATION.sub("", vl_convert.vegalite_to_svg(spec))
