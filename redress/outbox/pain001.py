"""The bank file of a bank-transfer batch: SPEC "Disbursement batches".

An ISO 20022 pain.001.001.03 (CustomerCreditTransferInitiationV03) credit transfer with
one payment information block. Choices the SPEC leaves open, made here:

- MsgId and PmtInfId are the reference given (the release gives
  redress/rules/batches.py `bank_file_reference`: the payment-id prefix and a tag of the
  policy id) when it fits Max35Text, else the first 35 hex characters of its SHA-256
  (`msg_id`); the manifest names it as `bank_file_reference`.
- The creditor's name (`Cdtr/Nm`) is the customer_id: the bank pays an account, and a
  file carries only what its reader needs, so the customer's name is never in it.
- Amounts are whole won: KRW has no minor unit, so `InstdAmt` and `CtrlSum` carry no
  decimal point. Any other currency is refused until its minor unit is handled.
- No IBAN and no BIC: the creditor's bank is its clearing code under
  `CdtrAgt/FinInstnId/ClrSysMmbId/MmbId` and the account is under `CdtrAcct/Id/Othr/Id`
  (likewise for the debtor).

Each transaction block is rendered with Polars string expressions over the columns and
joined, so a 50,000-payment file takes a fraction of a second; the output is a pure
function of the inputs, byte for byte, in the order the payments are given.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime

import polars as pl

from redress.debtor import Debtor

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
WHOLE_UNIT_CURRENCIES = frozenset({"KRW"})
MAX_AMOUNT = 10**18  # ISO amounts and CtrlSum have at most 18 digits

# XML 1.0 cannot carry these at all, escaped or not. A carriage return can be carried,
# but only as a character reference (a parser turns a raw one into a newline). The
# pattern reads the same to Python's re and to Polars.
_FORBIDDEN = r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;"}

# Column -> (element it fills, maximum length the schema allows).
_TEXT_COLUMNS = {
    "payment_id": ("EndToEndId", 35),
    "customer_id": ("Cdtr/Nm", 140),
    "bank_code": ("CdtrAgt/FinInstnId/ClrSysMmbId/MmbId", 35),
    "bank_account": ("CdtrAcct/Id/Othr/Id", 34),
}


def msg_id(reference: str) -> str:
    """The reference if it fits Max35Text, else the first 35 hex characters of its SHA-256."""
    if 1 <= len(reference) <= 35:
        return reference
    return hashlib.sha256(reference.encode("utf-8")).hexdigest()[:35]


def _esc(text: str) -> str:
    for char, entity in _ESCAPES.items():
        text = text.replace(char, entity)
    return text


def _checked(value: str, field: str, max_len: int) -> str:
    if not 1 <= len(value) <= max_len:
        raise ValueError(f"pain.001 {field} must be 1 to {max_len} characters, got {value!r}")
    if re.search(_FORBIDDEN, value):
        raise ValueError(f"pain.001 {field} holds a control character XML cannot carry: {value!r}")
    return _esc(value)


def _check_payments(payments: pl.DataFrame) -> None:
    missing = {"amount", *_TEXT_COLUMNS} - set(payments.columns)
    if missing:
        raise ValueError(f"pain.001 payments lack columns: {sorted(missing)}")
    if payments.height == 0:
        raise ValueError("pain.001 needs at least one payment")
    if not payments.schema["amount"].is_integer():
        raise ValueError(f"pain.001 amount must be whole won (an integer column), got {payments.schema['amount']}")
    amount = pl.col("amount")
    problems = {
        f"{column} null, empty or over {n} characters ({element})":
            pl.col(column).cast(pl.String).str.len_chars().is_between(1, n).not_().fill_null(True)
        for column, (element, n) in _TEXT_COLUMNS.items()
    } | {
        f"{column} holds a control character XML cannot carry":
            pl.col(column).cast(pl.String).str.contains(_FORBIDDEN).fill_null(False)
        for column in _TEXT_COLUMNS
    } | {
        f"amount null, not above 0 or not below {MAX_AMOUNT}":
            (amount <= 0).fill_null(True) | (amount >= MAX_AMOUNT),
    }
    found = payments.select(expr.any().alias(text) for text, expr in problems.items()).row(0, named=True)
    failing = [text for text, hit in found.items() if hit]
    if failing:
        raise ValueError("pain.001 payments cannot make a schema-valid file: " + "; ".join(failing))


def _xml_text(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).str.replace_many(list(_ESCAPES), list(_ESCAPES.values()))


def pain001(
    reference: str,
    value_date: date,
    created_at: datetime,
    payments: pl.DataFrame,
    debtor: Debtor,
    *,
    currency: str = "KRW",
) -> bytes:
    """payments: payment_id, customer_id, amount (Int64, whole won), bank_code, bank_account
    (digits), in the order they are to appear. Returns the UTF-8 XML document.

    Raises ValueError when an input cannot make a schema-valid file (a text too long or
    empty, a control character, an amount not above zero, no payments, not KRW).
    """
    if currency not in WHOLE_UNIT_CURRENCIES:
        raise ValueError(
            f"pain.001 renders whole-unit amounts only ({sorted(WHOLE_UNIT_CURRENCIES)}), got {currency!r}"
        )
    _check_payments(payments)
    message = _checked(msg_id(reference), "MsgId", 35)
    name = _checked(debtor.name, "Dbtr/Nm", 140)
    account = _checked(debtor.account, "DbtrAcct/Id/Othr/Id", 34)
    bank = _checked(debtor.bank_code, "DbtrAgt/FinInstnId/ClrSysMmbId/MmbId", 35)

    count = payments.height
    total = int(payments["amount"].cast(pl.Int128).sum())
    if total >= MAX_AMOUNT:
        raise ValueError(f"pain.001 CtrlSum must stay below {MAX_AMOUNT}, got {total}")

    transactions = payments.select(
        pl.concat_str(
            pl.lit("\n    <CdtTrfTxInf>\n      <PmtId><EndToEndId>"), _xml_text("payment_id"),
            pl.lit(f"</EndToEndId></PmtId>\n      <Amt><InstdAmt Ccy=\"{currency}\">"),
            pl.col("amount").cast(pl.Int64).cast(pl.String),
            pl.lit("</InstdAmt></Amt>\n      <CdtrAgt><FinInstnId><ClrSysMmbId><MmbId>"), _xml_text("bank_code"),
            pl.lit("</MmbId></ClrSysMmbId></FinInstnId></CdtrAgt>\n      <Cdtr><Nm>"), _xml_text("customer_id"),
            pl.lit("</Nm></Cdtr>\n      <CdtrAcct><Id><Othr><Id>"), _xml_text("bank_account"),
            pl.lit("</Id></Othr></Id></CdtrAcct>\n    </CdtTrfTxInf>"),
        ).str.join("")
    ).item()

    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{NAMESPACE}">\n'
        "<CstmrCdtTrfInitn>\n"
        "  <GrpHdr>\n"
        f"    <MsgId>{message}</MsgId>\n"
        f"    <CreDtTm>{created_at.isoformat(timespec='seconds')}</CreDtTm>\n"
        f"    <NbOfTxs>{count}</NbOfTxs>\n"
        f"    <CtrlSum>{total}</CtrlSum>\n"
        f"    <InitgPty><Nm>{name}</Nm></InitgPty>\n"
        "  </GrpHdr>\n"
        "  <PmtInf>\n"
        f"    <PmtInfId>{message}</PmtInfId>\n"
        "    <PmtMtd>TRF</PmtMtd>\n"
        f"    <NbOfTxs>{count}</NbOfTxs>\n"
        f"    <CtrlSum>{total}</CtrlSum>\n"
        f"    <ReqdExctnDt>{value_date:%Y-%m-%d}</ReqdExctnDt>\n"
        f"    <Dbtr><Nm>{name}</Nm></Dbtr>\n"
        f"    <DbtrAcct><Id><Othr><Id>{account}</Id></Othr></Id></DbtrAcct>\n"
        f"    <DbtrAgt><FinInstnId><ClrSysMmbId><MmbId>{bank}</MmbId></ClrSysMmbId></FinInstnId></DbtrAgt>"
    )
    tail = "\n  </PmtInf>\n</CstmrCdtTrfInitn>\n</Document>\n"
    return (head + transactions + tail).encode("utf-8")
