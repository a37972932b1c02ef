"""report.html (redress/reports/run_report.py) from a hand-built ledger: the fund cap
against what is paid or held in all (finance review: overspent with no word on the page),
and the money held above the entitlement apart from the overpaid."""

from __future__ import annotations

from datetime import date

import pytest

from redress.reports import run_report
from redress.reports.facts import RunFacts
from redress.reports.report_facts import NOT_REQUIRED, Approval, Changes, People, ReportFacts
from redress.vocabulary import WAITING

WHY = ("Payments are never clawed back and the pro rata share applies to entitlements: when a revision lowers "
       "the share, people paid before keep what they got while the people added are paid too.")
PAID = ("Paid or held in all, the whole ledger (issued + settled, held claim money included: it is owed): "
        "167,731,490 KRW.")


def page(recon, cap: int, approval: Approval = Approval(NOT_REQUIRED, None, None, 0, 0)) -> str:
    more = ReportFacts(people=People(0, 0, 0, 0, 163_988_384), reasons=(), approval=approval,
                       changes=Changes(True, 0, 0, 0, ()))
    report = run_report.build(None, (), RunFacts(), more, recon, [], None, total_cap=cap)
    return run_report.report_html(report, run_id="R2", run_date=date(2025, 12, 2), policy_id="p", more=more)


def fund_lines(text: str) -> list[str]:
    return [line.split(">", 1)[1].removesuffix("</p>") for line in text.splitlines() if 'id="fund-cap-' in line]


@pytest.mark.parametrize("cap, lines", [
    (150_000_000, [("", "Fund cap (budget.total_cap): 150,000,000 KRW."), ("", PAID),
                   (' class="failed"', f"WARNING: 17,731,490 KRW over the fund cap. {WHY}")]),
    (170_000_000, [("", "Fund cap (budget.total_cap): 170,000,000 KRW."), ("", PAID),
                   ("", "Within the fund cap: 2,268,510 KRW of it left.")]),
    (0, []),
], ids=["over", "under", "no-cap"])
def test_the_page_states_the_fund_cap_and_warns_when_over_it(overspent_fund, cap, lines):
    _, recon = overspent_fund
    text = page(recon, cap)
    expected = [f'<p{cls} id="fund-cap-{n}">{line}</p>' for n, (cls, line) in enumerate(lines, 1)]
    assert [line for line in text.splitlines() if 'id="fund-cap-' in line] == expected
    assert ("fund cap" in text.lower()) == bool(lines)


def test_a_waiting_plan_is_counted_once_released(overspent_fund):
    _, recon = overspent_fund
    text = page(recon, 170_000_000, Approval(WAITING, None, None, 900, 45_000_000))
    assert fund_lines(text)[3:] == [
        "Paid or held in all, once the plan waiting for approval is released (issued + settled, held claim money "
        "included: it is owed): 212,731,490 KRW.", f"WARNING: 42,731,490 KRW over the fund cap. {WHY}"]


def test_held_above_the_entitlement_is_a_column_apart_from_overpaid(tmp_path):
    from redress.reports.reconciliation import reconciliation
    from redress.warehouse import connect

    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute("INSERT INTO batches VALUES ('C1', 'claim', 'KRW', '2025-12-01', 1, 1, 'p1', 'R1', "
                    "'2025-12-01 00:00:00+00', 'outbox/batches/C1', NULL)")
        con.execute("INSERT INTO entitlements VALUES ('A', 'p1', 'R1', 'BELOW_MINIMUM', 1, 'email', 'email', 0, 0, "
                    "'claim')")
        con.execute("INSERT INTO ledger VALUES ('P1', 'A', 900000, 'KRW', 'claim', 'C1', 'p1', 'R1', 1, 'issued', "
                    "NULL, 'R1')")
        recon = reconciliation(con, max_attempts=3)
    text = page(recon, 0)
    assert "<th>overpaid (paid out, no clawback)</th><th>held above entitlement</th></tr>" in text
    cells = '<td class="n">{:,}</td>'
    claim = "<tr><td>claim</td>" + "".join(cells.format(n) for n in (1, 0, 0, 0, 900_000, 0, 0, 0, 0, 900_000)) + "</tr>"
    assert claim in text
