"""Charts for the pages redress writes: Altair specifications rendered to static SVG.

A page must open offline and fetch nothing (issue 13, "Checks as a person would"), so a
chart is rendered here, once, by vl-convert (the Vega renderer compiled into a Python
wheel: no browser, no network) and embedded in the page as an `<svg>` element. Only
aggregates go into a chart: counts and KRW totals, never a person's data.
"""

from __future__ import annotations

import re
import resource

import altair as alt
import vl_convert

# Every chart in the house style: no Altair toolbar (that is a script), a plain font the
# reader's machine has, and room for a title.
# A title starts at the left edge: centred over a narrow chart, a long title ran past the
# SVG's left edge and was cut ("ank-transfer outflow...").
_CONFIG = {"font": "sans-serif", "view": {"stroke": None}, "title": {"anchor": "start"}}
_XML_DECLARATION = re.compile(r"^<\?xml[^>]*>\s*")


# Whole won abbreviated: "20,000,000,00040,000,000..." ran together on a narrow axis.
# Below a million in full with separators; then millions (M) and billions (bn), the
# units a finance reader says aloud (not SI's G).
_WON_LABEL = ("abs(datum.value) >= 1e9 ? format(datum.value / 1e9, ',~r') + ' bn' : "
              "abs(datum.value) >= 1e6 ? format(datum.value / 1e6, ',~r') + ' M' : format(datum.value, ',d')")
# A y axis's title horizontal above its labels: rotated beside them, it was drawn over
# them whenever the reader's font is wider than the one vl-convert measured with.
_Y_TITLE = {"titleAngle": 0, "titleAlign": "right", "titleBaseline": "bottom", "titleX": 0, "titleY": -6}


def won_axis(title: str | None = "won", *, y: bool = False, **more) -> alt.Axis:
    """An axis of whole won (KRW): at most five abbreviated labels ("2.5 bn", "300 M",
    "150,000"), overlapping ones dropped; on a y axis (`y=True`) the title sits
    horizontally above the labels. `more`: further alt.Axis settings."""
    return alt.Axis(title=title, format=",d", labelExpr=_WON_LABEL, tickCount=5, labelOverlap=True,
                    **(_Y_TITLE if y else {}), **more)


def count_ticks(top: int, most: int = 6) -> list[int]:
    """Whole-number tick values from 0 to the first tick at or above `top` (a count), at
    most `most` of them, a step of 1, 2 or 5 times a power of ten."""
    top, step = max(top, 1), 1
    while -(-top // step) + 1 > most:
        step = step * 2 if str(step)[0] in "15" else step * 5 // 2  # 1, 2, 5, 10, 20, 50, ...
    return [i * step for i in range(-(-top // step) + 1)]


def counts(title: str | None, top: int, *, y: bool = False) -> dict:
    """The title, axis and scale of a count channel (rows, people, suite runs) whose highest
    value is `top`: alt.X(field, **counts(...)). Whole-number ticks with separators, set
    explicitly (count_ticks): Vega's own split a count of 1 into fifths, drawn
    "0 0 0 0 0 1 1 1 1 1"."""
    ticks = count_ticks(top)
    return {"title": title, "axis": alt.Axis(title=title, format=",d", values=ticks, **(_Y_TITLE if y else {})),
            "scale": alt.Scale(domain=[0, ticks[-1]])}


def not_drawable() -> str | None:
    """Why no chart can be drawn in this process, or None. vl-convert's V8 reserves far
    more address space than it uses, and under a virtual-memory limit (`ulimit -v`, even
    40 GB) it aborts the whole process, which no Python code can catch: found by the
    platform review, every run and approval under one died in its report stage, after
    paying. So under such a limit no chart is drawn; the tables beside them hold the
    same figures."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return (f"Chart not drawn: this process runs under a virtual-memory limit (ulimit -v, {soft // 1024:,} KB), "
            "under which the chart renderer cannot start. The table beside it holds the same figures.")


def svg(chart: alt.TopLevelMixin) -> str:
    """The chart as one `<svg>` element (str), ready to embed in HTML; under a
    virtual-memory limit (`not_drawable`) a paragraph saying why it is not drawn. A
    chart that Altair's schema refuses raises its `SchemaValidationError` (a
    programming error)."""
    why = not_drawable()
    if why is not None:
        return f'<p class="no-chart">{why}</p>'
    spec = chart.to_dict()
    spec["config"] = {**_CONFIG, **spec.get("config", {})}
    return _XML_DECLARATION.sub("", vl_convert.vegalite_to_svg(spec))
