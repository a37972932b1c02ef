"""The charts of the run report (report.html, redress/reports/run_report.py): Altair
specifications built from plain rows of aggregates (counts and whole won, never a
person's data), rendered to static SVG by redress.reports.charts.svg.

Pure: rows in, a chart out. Data is inlined in the specification (`alt.Data(values=)`)
in the order given, and every axis order is explicit, so the same rows give the same
SVG bytes. A chart with no rows says so in words rather than drawing empty axes.
"""

from __future__ import annotations

import altair as alt

from redress.reports.charts import counts, won_axis
from redress.vocabulary import HANDLED, PASSED, STOPPED

WIDTH = 380
HEIGHT = 220  # of the treasury's vertical bars: Vega's default 300 made one bar a wall
# Room around each chart: the browser's sans-serif may be wider than the one vl-convert
# measured with, and a label must not be cut at the edge of the SVG.
PADDING = {"left": 30, "right": 40, "top": 5, "bottom": 5}
# The rule at the daily cash cap is drawn only when the cap is within this factor of the
# highest bar: the axis runs to the rule, and a cap 1,000 times the outflow left the bars
# invisible. Further off, the subtitle states the cap and the headroom instead.
CAP_IN_VIEW = 4
LABELS = alt.Axis(labelLimit=320)  # category labels in full, not cut at 180 px
LEGEND = alt.Legend(labelLimit=260)
STATE_COLOURS = {PASSED: "#176f2c", HANDLED: "#c7862b", STOPPED: "#b00020"}  # as data_quality.html's
# The parts of a stacked bar, in order: Okabe and Ito's colours for readers who do not
# tell red from green, each at least 3:1 against the white page (found by the
# accessibility review: tableau10's settled and returned looked alike under
# deuteranopia, and its yellow and teal were 1.6:1 and 2.3:1 against white).
PARTS_PALETTE = ["#0072b2", "#009e73", "#d55e00", "#882255", "#cc79a7", "#332288"]
FUNNEL_COLOURS = ["#2f6db5", "#c7862b"]  # towards payment, set aside: blue, orange
TREASURY_COLOURS = ["#767676", "#2f6db5"]  # earlier runs, this run: grey, blue


def _axis(unit: str, top: int) -> dict:
    """A money axis when `unit` is "won", else a count axis up to `top`."""
    return {"title": unit, "axis": won_axis(unit)} if unit == "won" else counts(unit, top)


def nothing(title: str, message: str) -> alt.Chart:
    """A chart that is only a sentence: what an empty section shows. Its text starts at
    the left edge, and the right padding leaves room for a browser font wider than the
    one vl-convert measured with (a centred title and sentence were cut at both ends)."""
    return alt.Chart(alt.Data(values=[{"message": message}]), title=title).mark_text(
        fontSize=13, align="left", x=0).encode(text="message:N").properties(
        width=WIDTH, height=40, padding=dict(PADDING, right=160))


def funnel(steps: list[dict]) -> alt.Chart:
    """Horizontal bars, one per step, in the order given. `steps`: label, count, side
    (True for where rows went instead: quarantine, review, non-members)."""
    title = "From scope rows to eligible people"
    if not any(s["count"] for s in steps):  # a run that stopped before reading any: words, not empty axes
        return nothing(title, "No scope row or exposure yet.")
    order = [s["label"] for s in steps]
    values = [{"step": s["label"], "count": s["count"], "path": "set aside" if s["side"] else "towards payment"}
              for s in steps]
    return alt.Chart(alt.Data(values=values), title=title).mark_bar().encode(
        y=alt.Y("step:N", sort=order, title=None, axis=LABELS),
        x=alt.X("count:Q", **counts("rows or people", max(s["count"] for s in steps))),
        color=alt.Color("path:N", sort=["towards payment", "set aside"], title=None, legend=LEGEND,
                        scale=alt.Scale(domain=["towards payment", "set aside"], range=FUNNEL_COLOURS)),
    ).properties(width=WIDTH, padding=PADDING)


def treasury(days: list[dict], cap: int | None, *, planned: bool = False,
             empty: str = "No bank transfer on any value date of this run.") -> alt.Chart:
    """Bank-transfer outflow (won) per value date, this run's on top of earlier runs'.
    `days`: value_date, this_run, earlier. The y axis is scaled to the bars; the daily
    cash cap (won, None without one) is a labelled rule when within CAP_IN_VIEW times the
    highest bar, else the subtitle states it and the busiest day's headroom. `planned`:
    this run's part is a plan awaiting approval, labelled so. `empty`: the sentence shown
    when there is no day."""
    title = "Bank-transfer outflow per value date"
    if not days:
        return nothing(title, empty)
    mine = "this run (planned)" if planned else "this run"
    values = [{"value_date": d["value_date"], "won": d[part], "part": label}
              for d in days for part, label in (("earlier", "earlier runs"), ("this_run", mine))]
    dates = [d["value_date"] for d in days]
    top = max(d["earlier"] + d["this_run"] for d in days)
    rule_shown = cap is not None and cap <= CAP_IN_VIEW * top
    subtitle = ([] if cap is None or rule_shown else
                [f"daily cash cap {cap:,} won, off this scale;", f"headroom on the busiest day {cap - top:,} won"])
    heading = alt.TitleParams(title, subtitle=subtitle)
    bars = alt.Chart(alt.Data(values=values)).mark_bar().encode(
        x=alt.X("value_date:O", sort=dates, title="value date", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("won:Q", stack="zero", axis=won_axis(y=True)),
        color=alt.Color("part:N", sort=["earlier runs", mine], title=None, legend=LEGEND,
                        scale=alt.Scale(domain=["earlier runs", mine], range=TREASURY_COLOURS)),
        order=alt.Order("part:N", sort="ascending"),
    )
    if not rule_shown:
        return bars.properties(width=WIDTH, height=HEIGHT, title=heading, padding=PADDING)
    rule = alt.Chart(alt.Data(values=[{"cap": cap}])).mark_rule(
        color="#b00020", strokeDash=[6, 3], size=2).encode(y="cap:Q")
    label = alt.Chart(alt.Data(values=[{"cap": cap, "label": f"daily cash cap {cap:,} won"}])).mark_text(
        align="left", dy=-7, x=4, color="#b00020").encode(y="cap:Q", text="label:N")
    return alt.layer(bars, rule, label, title=heading).properties(width=WIDTH, height=HEIGHT, padding=PADDING)


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
        x=alt.X("amount:Q", stack="zero", **_axis(unit, max(sum(r[f] for f, _ in parts) for r in rows))),
        color=alt.Color("part:N", sort=labels, title=None, legend=LEGEND, scale=alt.Scale(domain=labels, range=PARTS_PALETTE[:len(labels)])),
        order=alt.Order("order:Q"),
    ).transform_calculate(order=f"indexof({labels!r}, datum.part)").properties(width=WIDTH, padding=PADDING)


def suite_states(states: list[dict], *, gone: bool = False) -> alt.Chart:
    """Suite runs per state (vocabulary SUITE_STATES), in the order given, each in the
    colour data_quality.html gives it. `states`: state (code), words, runs; `gone`: the
    run's suite records were removed since (said, rather than that none ran)."""
    title = "Suite runs per state"
    if gone:
        return nothing(title, "This run's suite records are gone from its folder.")
    if not any(c["runs"] for c in states):
        return nothing(title, "No suite ran in this run.")
    words = [c["words"] for c in states]
    return alt.Chart(alt.Data(values=states), title=title).mark_bar().encode(
        y=alt.Y("words:N", sort=words, title=None, axis=LABELS),
        x=alt.X("runs:Q", **counts("suite runs", max(c["runs"] for c in states))),
        color=alt.Color("words:N", sort=words, legend=None,
                        scale=alt.Scale(domain=words, range=[STATE_COLOURS[c["state"]] for c in states])),
    ).properties(width=WIDTH, padding=PADDING)


def bars(title: str, rows: list[dict], category: str, value: str, unit: str, empty: str) -> alt.Chart:
    """Horizontal bars of `value` per `category`, in the order given; `unit` "won" gives a
    money axis, anything else a count axis (whole ticks). No row, or only zeros: `empty`."""
    if not any(r[value] for r in rows):  # all zero: an empty axis says less than a sentence
        return nothing(title, empty)
    values = [{"category": r[category], "value": r[value]} for r in rows]
    return alt.Chart(alt.Data(values=values), title=title).mark_bar(color="#2f6db5").encode(
        y=alt.Y("category:N", sort=[r[category] for r in rows], title=None, axis=LABELS),
        x=alt.X("value:Q", **_axis(unit, max(r[value] for r in rows))),
    ).properties(width=WIDTH, padding=PADDING)
