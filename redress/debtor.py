"""The paying company's account, as bank files name it (SPEC "Disbursement batches"): a
value type of its own, so settings can build it from the environment without importing
the bank-file writer (redress/outbox/pain001.py), which takes it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Debtor:
    """The payer of every bank transfer; checked when built (redress/settings.py `debtor`)."""

    name: str  # the paying company, e.g. "Coupang Corp."
    account: str  # its account number (digits)
    bank_code: str  # its bank's 3-digit clearing code
