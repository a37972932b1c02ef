"""What `redress whatif` shows: the terminal table (rich on a terminal, plain text
otherwise) and reports/whatif-<UTC timestamp>/ with whatif.html (self-contained: charts
as inline SVG from redress.reports.charts, no script, nothing fetched) and whatif.json
(the same figures, KRW as integers). Only aggregates: no person's data.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import altair as alt
from markupsafe import Markup

from redress import escape
from redress.reports.charts import counts, svg, won_axis
from redress.reports.rendering import html_environment
from redress.vocabulary import ENTITLEMENT_REASONS

# Who gains, is unchanged or loses against the policy in force: blue, grey, vermillion
# (found by the accessibility review: its green and red looked alike under deuteranopia).
CHANGE_COLOURS = ["#0072b2", "#767676", "#d55e00"]

def _krw(amount: int) -> str:
    return f"{amount:,} KRW"


def _people(n: int) -> str:
    return f"{n:,}"


def _with_amount(total: dict) -> str:
    return f"{total['customers']:,} / {_krw(total['amount_krw'])}"


def label(n: int, figs: dict) -> str:
    """A policy's column name: its position (the same file may be given twice) and id."""
    return f"{n + 1}. {figs['policy_id']}"


def rows(result: dict) -> list[tuple[str, list[str]]]:
    """(figure, one cell per policy) in display order: the table the terminal and the
    page both show."""
    ps = result["policies"]

    def row(name, cell):
        return name, [cell(f) for f in ps]

    out = [
        row("policy file", lambda f: f["policy_file"]),
        row("exposed customers", lambda f: _people(f["exposed_customers"])),
        row("exposures from rows the last run quarantined", lambda f: _people(f["exposures_from_quarantine"])),
        row("eligible people", lambda f: _people(f["eligible"]["customers"])),
        row("total cost", lambda f: _krw(f["eligible"]["amount_krw"])),
    ]
    out += [row(f"reason {r}: people", lambda f, r=r: _people(f["by_reason"][r]["customers"]))
            for r in ENTITLEMENT_REASONS]
    tiers = sorted({t for f in ps for t in f["by_tier"]}, key=int)
    out += [row(f"tier {t}: eligible / cost", lambda f, t=t: _with_amount(f["by_tier"][t]) if t in f["by_tier"] else "-")
            for t in tiers]
    out += [row(f"rail {r}: eligible / cost", lambda f, r=r: _with_amount(f["by_rail"][r]))
            for r in ps[0]["by_rail"]]
    out += [
        row("below the minimum", lambda f: _people(f["below_minimum"])),
        row("pro-rata factor", lambda f: f"{f['pro_rata']['factor']:.6f}" if f["pro_rata"]["binds"] else "none (cap not reached)"),
        row("bank transfers to issue now", lambda f: _with_amount(
            {"customers": f["bank_transfers"]["payments"], "amount_krw": f["bank_transfers"]["amount_krw"]})),
        row("value days needed", lambda f: _people(f["bank_transfers"]["value_days"])),
        row("last value date", lambda f: f["bank_transfers"]["last_value_date"] or "-"),
        row("vs in force: gain", lambda f: _people(f["versus_in_force"]["gain"])),
        row("vs in force: lose", lambda f: _people(f["versus_in_force"]["lose"])),
        row("vs in force: unchanged", lambda f: _people(f["versus_in_force"]["unchanged"])),
        row("top-up cost of switching", lambda f: _with_amount(f["versus_in_force"]["top_up"])),
    ]
    out += [row(f"  of which {r}", lambda f, r=r: _with_amount(f["top_up_by_rail"][r]))
            for r in ps[0]["top_up_by_rail"]]
    out += [
        row("already paid or held on claim (live ledger)", lambda f: _with_amount(f["paid_in_all"]["already_paid"])),
        row("paid in all after switching (already paid or held + top-up)", lambda f: _krw(f["paid_in_all"]["after_switching_krw"])),
        row("fund cap", _cap_cell),
    ]
    return out


def _cap_cell(figs: dict) -> str:
    paid = figs["paid_in_all"]
    if not paid["fund_cap_krw"]:
        return "none"
    if paid["exceeds_fund_cap_krw"]:
        return f"{_krw(paid['fund_cap_krw'])}: EXCEEDED by {_krw(paid['exceeds_fund_cap_krw'])}"
    return f"{_krw(paid['fund_cap_krw'])}: within"


def warnings(result: dict) -> list[str]:
    """One line per policy whose payments in all would exceed its fund cap: a cap cuts
    the entitlements, but what is already paid stays paid (SPEC "Ledger: paying exactly
    once, whatever the scope does"), so the cap alone does not bound the cost. And one
    per policy keeping the policy.id of one that paid here under other rules: `redress
    run` refuses it as it is (SPEC "The policy": its id names one set of amounts)."""
    lines = []
    for n, f in enumerate(result["policies"]):
        if f["paid_in_all"]["exceeds_fund_cap_krw"]:
            lines.append(f"warning: {label(n, f)}: paid in all after switching exceeds the fund cap by "
                         f"{_krw(f['paid_in_all']['exceeds_fund_cap_krw'])}: payments are never clawed back")
        if f.get("policy_id_paid_by_run"):
            lines.append(f"warning: {label(n, f)}: run {f['policy_id_paid_by_run']} paid under policy.id "
                         f"{f['policy_id']!r} with other rules, so `redress run` refuses this file as it is: "
                         "give it a new policy.id")
    return lines


def table_text(result: dict, *, terminal: bool, width: int | None = None) -> str:
    """The comparison, policies as columns: a rich table on a terminal, else plain
    aligned text. Every value from a file passes escape.terminal (redress/escape.py).
    width: the terminal table's columns; None is the terminal's own (rich's Console
    reads it, or COLUMNS), rich wrapping the cells to fit."""
    heads = ["figure"] + [escape.terminal(label(n, f)) for n, f in enumerate(result["policies"])]
    body = [[name] + [escape.terminal(c) for c in cells] for name, cells in rows(result)]
    if terminal:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=_title(result))
        for n, head in enumerate(heads):
            table.add_column(Text(head), justify="left" if n == 0 else "right")
        for line in body:
            table.add_row(*(Text(c) for c in line))
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=True, width=width)
        console.print(table)
        for line in warnings(result):
            console.print(Text(escape.terminal(line), style="bold red"))
        return buffer.getvalue().rstrip("\n")
    widths = [max(len(line[i]) for line in [heads] + body) for i in range(len(heads))]
    lines = [_title(result)]
    for line in [heads] + body:
        lines.append("  ".join([line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:])]))
    return "\n".join(lines + [escape.terminal(line) for line in warnings(result)])


def _title(result: dict) -> str:
    return f"redress whatif over run {result['as_of_run']} (the last finished run): nothing paid"


def _charts(result: dict) -> dict[str, Markup]:
    ps = [(label(n, f), f) for n, f in enumerate(result["policies"])]
    order = [name for name, _ in ps]
    cost = [{"policy": name, "rail": r, "KRW": t["amount_krw"]} for name, f in ps for r, t in f["by_rail"].items()]
    reasons = [{"policy": name, "reason": r, "people": t["customers"]} for name, f in ps for r, t in f["by_reason"].items()]
    moves = [{"policy": name, "change": k, "people": f["versus_in_force"][k]}
             for name, f in ps for k in ("gain", "lose", "unchanged")]
    policy_x = alt.X("policy:N", sort=order, title=None, axis=alt.Axis(labelAngle=-30, labelLimit=220))
    legend = alt.Legend(labelLimit=260)
    return {
        "cost": Markup(svg(alt.Chart(alt.Data(values=cost)).mark_bar().encode(
            x=policy_x, y=alt.Y("sum(KRW):Q", axis=won_axis("total cost (KRW)", y=True)), color=alt.Color("rail:N", title="rail", legend=legend),
        ).properties(title="Cost per policy, by rail", width=max(160, 110 * len(ps)), height=240))),
        "reasons": Markup(svg(alt.Chart(alt.Data(values=reasons)).mark_bar().encode(
            y=alt.Y("reason:N", sort=list(ENTITLEMENT_REASONS), title=None),
            x=alt.X("people:Q", **counts("people", max((r["people"] for r in reasons), default=0))), yOffset=alt.YOffset("policy:N", sort=order),
            color=alt.Color("policy:N", sort=order, title="policy", legend=legend),
        ).properties(title="People per reason", width=420, height=60 * len(ENTITLEMENT_REASONS)))),
        "changes": Markup(svg(alt.Chart(alt.Data(values=moves)).mark_bar().encode(
            x=policy_x, y=alt.Y("people:Q", **counts("people", max(sum(f["versus_in_force"][k] for k in (
                "gain", "lose", "unchanged")) for _, f in ps), y=True)),
            color=alt.Color("change:N", title="vs in force", legend=legend, scale=alt.Scale(
                domain=["gain", "unchanged", "lose"], range=CHANGE_COLOURS)),
        ).properties(title="Who gains, loses or is unchanged", width=max(160, 110 * len(ps)), height=240))),
    }


def page(result: dict) -> str:
    """whatif.html: the table and the three charts, self-contained."""
    return html_environment().get_template("whatif.html.j2").render(
        result=result, heads=[label(n, f) for n, f in enumerate(result["policies"])], rows=rows(result),
        warnings=warnings(result), charts=_charts(result))


_TMP = re.compile(r"\.tmp-whatif-\d{8}T\d{6}Z-(\d+)")  # .tmp-<stamp>-<pid of the writer>


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as someone else's
        pass
    return True


def sweep(reports_dir: Path) -> list[Path]:
    """Remove the temporary folders of what-ifs that were killed while writing their page
    (their writer's process is gone); a what-if still writing keeps its own. Returns
    what was removed."""
    gone = []
    for folder in sorted(reports_dir.glob(".tmp-whatif-*")):
        found = _TMP.fullmatch(folder.name)
        if found and folder.is_dir() and not _alive(int(found.group(1))):
            shutil.rmtree(folder)
            gone.append(folder)
    return gone


def write(reports_dir: Path, result: dict, now: datetime | None = None) -> Path:
    """reports_dir/whatif-<UTC timestamp>/ holding whatif.html and whatif.json, written
    under a temporary name and renamed so it appears whole; a second what-if in the same
    second gets a `-2` suffix. What a killed what-if left half-written is swept first.
    Returns the folder."""
    stamp = f"whatif-{(now or datetime.now(timezone.utc)):%Y%m%dT%H%M%SZ}"
    reports_dir.mkdir(parents=True, exist_ok=True)
    sweep(reports_dir)
    html = page(result)  # before the folder exists: the slow part leaves nothing behind
    tmp = reports_dir / f".tmp-{stamp}-{os.getpid()}"
    tmp.mkdir()
    (tmp / "whatif.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp / "whatif.html").write_text(html, encoding="utf-8")
    n = 1
    while True:
        target = reports_dir / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            tmp.rename(target)  # fails when the name is taken, never merges into it
            return target
        except OSError:
            if not target.exists():
                raise
            n += 1
