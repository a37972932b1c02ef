"""The fund cap: the policy's `budget.total_cap` against what the fund pays in all
(SPEC "The policy": "0: no cap; else the whole fund, shared pro rata when exceeded").

The SPEC's pro rata applies to entitlements, and payments are never clawed back (SPEC
"Ledger: paying exactly once, whatever the scope does"). So when a scope revision adds
people and the pro rata share falls, those paid before keep what they got while the new
people are paid their (smaller) share: the ledger can hold more than the cap. Nothing
is blocked (the SPEC pays what is owed); every report says so instead (finance review:
a run paid 17.7 M KRW over a 150 M fund with no word about the cap).

Paid in all is what the ledger holds as issued or settled, held claim money included
(it is owed: SPEC "Ledger"), plus, for a plan, what the plan would issue. One rule for
the run reports, plan.md and the what-if (redress/whatif/figures.py `paid_in_all`).
"""

from __future__ import annotations

from dataclasses import dataclass

from redress.vocabulary import LIVE_STATUSES, sql_list


def over_fund_cap(paid_krw: int, total_cap_krw: int) -> int:
    """How far `paid_krw` is over the fund cap (KRW); 0 within it or without a cap (0)."""
    return max(0, paid_krw - total_cap_krw) if total_cap_krw > 0 else 0


@dataclass(frozen=True)
class FundCap:
    """The fund cap and what is paid or held in all against it (KRW ints); `what` says
    which money that is (the whole ledger, or the ledger once a plan is released)."""
    cap_krw: int
    paid_krw: int
    what: str

    @property
    def over_krw(self) -> int:
        return over_fund_cap(self.paid_krw, self.cap_krw)

    def lines(self, with_cap: bool = True) -> list[str]:
        """The report lines: the cap (unless `with_cap` is False: a second figure under
        the same cap), what is paid or held in all, and a warning when over the cap (by
        how much and why), else what is left of it."""
        lines = [f"Fund cap (budget.total_cap): {self.cap_krw:,} KRW."] if with_cap else []
        lines.append(f"Paid or held in all, {self.what} (issued + settled, held claim money included: it is owed): "
                     f"{self.paid_krw:,} KRW.")
        if self.over_krw:
            lines.append(f"WARNING: {self.over_krw:,} KRW over the fund cap. Payments are never clawed back and "
                         "the pro rata share applies to entitlements: when a revision lowers the share, people "
                         "paid before keep what they got while the people added are paid too.")
        else:
            lines.append(f"Within the fund cap: {self.cap_krw - self.paid_krw:,} KRW of it left.")
        return lines


def fund_cap(paid_krw: int, total_cap_krw: int, what: str) -> FundCap | None:
    """The FundCap of `paid_krw` against the policy's total_cap; None without a cap (0):
    then no report says anything about it."""
    return FundCap(total_cap_krw, int(paid_krw), what) if total_cap_krw > 0 else None


# The ledger's issued and settled money (KRW), held claim money included, summed where
# it lies (the ledger may hold 33.7 M rows: never loaded into Python).
LIVE_LEDGER_SQL = f"SELECT coalesce(sum(amount), 0) FROM ledger WHERE status IN {sql_list(LIVE_STATUSES)}"
