"""The charts of the run report (report.html, redress/reports/run_report.py): Altair
specifications built from plain rows of aggregates (counts and whole won, never a
person's data), rendered to static SVG by redress.reports.charts.svg.

Pure: rows in, a chart out. Data is inlined in the specification (`alt.Data(values=)`)
in the order given, and every axis order is explicit, so the same rows give the same
SVG bytes. A chart with no rows says so in words rather than drawing empty axes.
"""

from __future__ import annotations

import altair as alt

WIDTH = 380
# Room around each chart: the browser's sans-serif may be wider than the one vl-convert
# measured with, and a label must not be cut at the edge of the SVG.
PADDING = {"left": 30, "right": 40, "top": 5, "bottom": 5}
WON = ",d"  # axis labels of whole won with thousands separators
LABELS = alt.Axis(labelLimit=320)  # category labels in full, not cut at 180 px
LEGEND = alt.Legend(labelLimit=260)


def nothing(title: str, message: str) -> alt.Chart:
    """A chart that is only a sentence: what an empty section shows."""
    return alt.Chart(alt.Data(values=[{"message": message}]), title=title).mark_text(
        fontSize=13, align="left").encode(text="message:N").properties(width=WIDTH, height=40, padding=PADDING)


def funnel(steps: list[dict]) -> alt.Chart:
    """Horizontal bars, one per step, in the order given. `steps`: label, count, side
    (True for where rows went instead: quarantine, review, non-members)."""
    order = [s["label"] for s in steps]
    values = [{"step": s["label"], "count": s["count"], "path": "set aside" if s["side"] else "towards payment"}
              for s in steps]
    return alt.Chart(alt.Data(values=values), title="From scope rows to eligible people").mark_bar().encode(
        y=alt.Y("step:N", sort=order, title=None, axis=LABELS),
        x=alt.X("count:Q", title="rows or people", axis=alt.Axis(format=WON)),
        color=alt.Color("path:N", sort=["towards payment", "set aside"], title=None, legend=LEGEND,
                        scale=alt.Scale(domain=["towards payment", "set aside"], range=["#2f6db5", "#c7862b"])),
    ).properties(width=WIDTH, padding=PADDING)


def treasury(days: list[dict], cap: int | None) -> alt.Chart:
    """Bank-transfer outflow (won) per value date, this run's on top of earlier runs',
    with a rule at the daily cash cap. `days`: value_date, this_run, earlier."""
    title = "Bank-transfer outflow per value date against the daily cash cap"
    if not days:
        return nothing(title, "No bank transfer on any value date of this run.")
    values = [{"value_date": d["value_date"], "won": d[part], "part": label}
              for d in days for part, label in (("earlier", "earlier runs"), ("this_run", "this run"))]
    dates = [d["value_date"] for d in days]
    bars = alt.Chart(alt.Data(values=values)).mark_bar().encode(
        x=alt.X("value_date:O", sort=dates, title="value date", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("won:Q", title="won", stack="zero", axis=alt.Axis(format=WON)),
        color=alt.Color("part:N", sort=["earlier runs", "this run"], title=None, legend=LEGEND,
                        scale=alt.Scale(domain=["earlier runs", "this run"], range=["#9bb7d9", "#2f6db5"])),
        order=alt.Order("part:N", sort="ascending"),
    )
    if cap is None:
        return bars.properties(width=WIDTH, title=title, padding=PADDING)
    rule = alt.Chart(alt.Data(values=[{"cap": cap, "label": f"daily cash cap {cap:,}"}])).mark_rule(
        color="#b00020", strokeDash=[6, 3], size=2).encode(y="cap:Q")
    label = alt.Chart(alt.Data(values=[{"cap": cap, "label": f"daily cash cap {cap:,} won"}])).mark_text(
        align="left", dy=-7, x=4, color="#b00020").encode(y="cap:Q", text="label:N")
    return alt.layer(bars, rule, label, title=title).properties(width=WIDTH, padding=PADDING)


def stacked(title: str, rows: list[dict], category: str, parts: list[tuple[str, str]], unit: str) -> alt.Chart:
    """Horizontal bars per `category` value (rows in the order given), stacked by
    `parts` (field, label): e.g. the ledger per rail by status."""
    values = [{"category": r[category], "amount": r[field], "part": label}
              for r in rows for field, label in parts if r[field]]
    if not values:
        return nothing(title, "Nothing to show yet.")
    labels = [label for _, label in parts]
    return alt.Chart(alt.Data(values=values), title=title).mark_bar().encode(
        y=alt.Y("category:N", sort=[r[category] for r in rows], title=None, axis=LABELS),
        x=alt.X("amount:Q", title=unit, stack="zero", axis=alt.Axis(format=WON)),
        color=alt.Color("part:N", sort=labels, title=None, legend=LEGEND, scale=alt.Scale(domain=labels, scheme="tableau10")),
        order=alt.Order("order:Q"),
    ).transform_calculate(order=f"indexof({labels!r}, datum.part)").properties(width=WIDTH, padding=PADDING)


def bars(title: str, rows: list[dict], category: str, value: str, unit: str, empty: str) -> alt.Chart:
    """Horizontal bars of `value` per `category`, in the order given."""
    if not rows:
        return nothing(title, empty)
    values = [{"category": r[category], "value": r[value]} for r in rows]
    return alt.Chart(alt.Data(values=values), title=title).mark_bar(color="#2f6db5").encode(
        y=alt.Y("category:N", sort=[r[category] for r in rows], title=None, axis=LABELS),
        x=alt.X("value:Q", title=unit, axis=alt.Axis(format=WON)),
    ).properties(width=WIDTH, padding=PADDING)
