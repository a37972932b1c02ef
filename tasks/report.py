"""The run summary: counts and totals only, never personal data. Written as Markdown to
reports/<run_id>/summary.md, printed by the CLI and published as a Prefect artifact."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from redress.context import RunContext
from redress.warehouse import connect
from tasks import outbox


def _table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |" for row in rows]
    return lines + [""]


def summary_markdown(ctx: RunContext, summary: dict) -> str:
    out = [f"# redress run {ctx.run_id}", "", f"Run date {ctx.run_date}, policy `{ctx.policy_path.name}`.", ""]
    files = summary.get("ingest", [])
    out += ["## Files read", ""]
    out += _table(["kind", "file", "status", "rows"], [[f["kind"], f["file_name"], f["status"], f["rows"] if f["rows"] is not None else ""] for f in files]) if files else ["No new files.", ""]
    v = summary.get("validate", {})
    d = v.get("destinations", {})
    out += ["## Scope rows (all accepted files)", ""]
    out += _table(["rows read", "exposures", "non-member", "review", "quarantine"],
                  [[d.get("rows_read", 0), d.get("exposure", 0), d.get("non_member", 0), d.get("review", 0), d.get("quarantine", 0)]])
    if v.get("quarantine_reasons"):
        out += ["### Quarantine by reason", ""]
        out += _table(["reason", "rows"], [[k, n] for k, n in sorted(v["quarantine_reasons"].items())])
    e = summary.get("entitle", {})
    out += ["## Entitlements by reason", ""]
    out += _table(["reason", "customers", "amount (KRW)"], [[k, x["customers"], x["amount"]] for k, x in sorted(e.items())])
    p = summary.get("disburse", {})
    out += ["## New payments by rail", ""]
    out += _table(["rail", "payments", "amount (KRW)"], [[k, x["payments"], x["amount"]] for k, x in sorted(p.get("per_rail", {}).items())])
    out += [f"{p.get('batches', 0):,} batches in `outbox/batches/`.", ""]
    if p.get("treasury"):
        out += ["## Treasury schedule (bank transfers)", ""]
        out += _table(["value date", "amount (KRW)", "daily cap (KRW)"], [[t["value_date"], t["amount"], t["daily_cash_cap"]] for t in p["treasury"]])
    over = p.get("overpayments", {})
    if over.get("customers"):
        out += ["## Overpayment exceptions (no clawback)", ""]
        out += _table(["customers", "overpaid (KRW)"], [[over["customers"], over["amount"]]])
    n = summary.get("notify", {})
    out += ["## Notifications", ""]
    out += _table(["channel", "people"], [[k, c] for k, c in sorted(n.get("per_channel", {}).items())])
    return "\n".join(out)


@task(name="report", cache_policy=NO_CACHE)
def write_report(ctx: RunContext, summary: dict) -> str:
    text = summary_markdown(ctx, summary)
    ctx.report_dir.mkdir(parents=True, exist_ok=True)
    (ctx.report_dir / "summary.md").write_text(text + "\n", encoding="utf-8")
    with connect(ctx.warehouse) as con:
        rows = con.sql("""
            SELECT kind, file_name, row_number, reason, detail, row_json FROM quarantine
            WHERE run_id = ? ORDER BY kind, file_name, row_number NULLS FIRST, reason""", params=[ctx.run_id]).pl()
    if rows.height:
        ctx.quarantine_dir.mkdir(parents=True, exist_ok=True)
        outbox.write_table(rows, ctx.quarantine_dir, "quarantine")
    create_markdown_artifact(key="run-summary", markdown=text, description=f"redress run {ctx.run_id}")
    return text
