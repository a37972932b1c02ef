"""The sentences `redress explain` reads to an agent on the phone: why a person gets what
they get (SPEC "Eligibility and entitlement"), why it goes by its rail and what the person
must do next (SPEC "Payout rail", "Input: claims from customer service").

Pure functions of plain values (the customer and entitlement rows as dicts, the policy):
no warehouse, no files. Every reason code and every rail has its sentence here, keyed by
the code from redress/vocabulary.py; a test fails when a code has none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

import polars as pl

from redress.inbox.customers import ACCOUNT_DIGITS, BANK_CODE_DIGITS, bank_fields_valid
from redress.policy import Policy
from redress.rules.vouchers import voucher_parts
from redress.rules.plans import past_claim_deadline
from redress import vocabulary as v


def money(amount: int | None, currency: str) -> str:
    """50000 -> '50,000 KRW' (whole units: KRW has no minor unit)."""
    return f"{amount or 0:,} {currency}"


def when(value: datetime | date | None, tz: str) -> str:
    """A time in the policy's timezone, to the minute ('2025-06-24 00:00') when it falls
    on one, else to the second or the fraction it has ('2025-11-18 23:59:59',
    '23:59:59.5'); a date as is. Found by review: cut to the minute, an exposure at
    23:59:59.5 read as inside a window ending 23:59:59, which left it out."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        local = value.astimezone(ZoneInfo(tz))
        shown = local.strftime("%Y-%m-%d %H:%M")
        if local.second or local.microsecond:
            shown += local.strftime(":%S")
        if local.microsecond:
            shown += f".{local.microsecond:06d}".rstrip("0")
        return shown
    return value.isoformat()


def window(policy: Policy) -> str:
    return (f"the breach window, {when(policy.window_start, policy.timezone)} to "
            f"{when(policy.window_end, policy.timezone)} ({policy.timezone} time)")


def masked(account: str | None) -> str:
    """An account shown to its last 4 digits only (the standard for every output)."""
    return f"ending {account[-4:]}" if account else "-"


def bank_state(customer: dict) -> str:
    """Which of the three: valid details, none on file, or details that break the
    master's rule (SPEC "Input: customers snapshot"), naming the field that fails (bank
    code, account, or both) and what that field must be."""
    if customer["bank_valid"]:
        return f"valid bank details are on file (bank {customer['bank_code']}, account {masked(customer['bank_account'])})"
    if not (customer["bank_code"] or "").strip() and not (customer["bank_account"] or "").strip():
        return "no bank details are on file"
    # Each field by the master's own rule (redress/inbox/customers.py), so explain names
    # the field the pipeline refused, never a rule of its own.
    code_ok, account_ok = pl.DataFrame(
        {"bank_code": [customer["bank_code"]], "bank_account": [customer["bank_account"]]},
        schema={"bank_code": pl.String, "bank_account": pl.String}).select(*bank_fields_valid()).row(0)
    low, high = ACCOUNT_DIGITS
    code = ("" if code_ok else "the bank code is missing" if not (customer["bank_code"] or "").strip()
            else f"the bank code, given as {customer['bank_code']}, is not exactly {BANK_CODE_DIGITS} digits")
    account = ("" if account_ok else "the account is missing" if not (customer["bank_account"] or "").strip()
               else f"the account, {masked(customer['bank_account'])}, is not {low} to {high} digits")
    which = "bank code" if account_ok else "account" if code_ok else "bank code and account"
    return f"the bank details on file are not valid ({which}: " + "; ".join(x for x in (code, account) if x) + ")"


# ------------------------------------------------------------------ why this amount

def _eligible(c: dict, e: dict, p: Policy) -> str:
    text = (f"Amount: {money(e['amount'], p.currency)}, tier {e['tier']} for the exposed data the policy "
            f"counts ({e['categories'].replace(',', ', ')}).")
    if e["amount"] < e["base_amount"]:
        text += (f" The full amount for tier {e['tier']} is {money(e['base_amount'], p.currency)}; the fund of "
                 f"{money(p.total_cap, p.currency)} is shared pro rata among everyone eligible, so this is less.")
    return text


def _not_paid(why: str) -> Callable[[dict, dict, Policy], str]:
    return lambda c, e, p: f"Not paid: the amount is {money(0, p.currency)} because " + why.format(c=c, e=e, p=p, **{
        "window": window(p), "start": when(p.window_start, p.timezone),
        "closed": when(c["closed_at"], p.timezone), "statuses": ", ".join(p.statuses),
        "confidence": " or ".join(p.confidence), "minimum": money(p.minimum_amount, p.currency),
        "cap": money(p.total_cap, p.currency),
        "base": money(e["base_amount"], p.currency)})


REASON_WHY: dict[str, Callable[[dict, dict, Policy], str]] = {
    v.TEST_ACCOUNT: _not_paid("this is a test or internal account, which is never paid."),
    v.UNCONFIRMED_ONLY: _not_paid("every exposure of this person is only suspected; the policy counts exposures "
                                  "that are {confidence}. If forensics confirms one, the next run pays it."),
    v.OUTSIDE_WINDOW: _not_paid("none of the {confidence} exposures falls inside {window}; their dates are "
                                "listed under exposures below."),
    v.STATUS_NOT_ELIGIBLE: _not_paid("the account status is {c[status]}, and the policy pays accounts that are "
                                     "{statuses}."),
    v.CLOSED_BEFORE_BREACH: _not_paid("the account was closed on {closed}, before the breach began on {start} "
                                      "({p.timezone} time): it held no data during {window}."),
    # Found by review: pro rata was given as the reason with no fund cap, for a tier
    # amount below the minimum.
    v.BELOW_MINIMUM: lambda c, e, p: (
        _not_paid("the full amount for the data exposed, {base}, is below the minimum payment of {minimum}.")
        if e["base_amount"] < p.minimum_amount else
        _not_paid("the fund of {cap} is shared pro rata among everyone eligible, and this person's share of the "
                  "full {base} came out below the minimum payment of {minimum}.") if p.total_cap > 0 else
        _not_paid("the amount came out below the minimum payment of {minimum} (the full amount for the data exposed is "
                  "{base}).")
    )(c, e, p),
    v.ELIGIBLE: _eligible,
}


def reason_why(customer: dict, entitlement: dict, policy: Policy) -> str:
    """The entitlement's reason as sentences, with the numbers and dates behind it."""
    why = REASON_WHY.get(entitlement["reason"])
    text = v.ENTITLEMENT_REASONS.get(entitlement["reason"], entitlement["reason"])
    return why(customer, entitlement, policy) if why else f"{text} (code {entitlement['reason']})."


# ------------------------------------------------------------------ which exposures counted

# Why an exposure did not count toward the amount, keyed by the code of the rule that
# excluded it (redress/rules/entitlements.py, exposure_not_counted); a test fails when a
# code has none.
NOT_COUNTED = {
    v.TEST_ACCOUNT: "no: test account",
    v.UNCONFIRMED_ONLY: "no: suspected only",
    v.OUTSIDE_WINDOW: "no: outside the breach window",
    v.STATUS_NOT_ELIGIBLE: "no: account status not paid",
    v.CLOSED_BEFORE_BREACH: "no: account closed before the breach",
    v.BELOW_MINIMUM: "no: share below the minimum",
    v.UNKNOWN_CATEGORY: "no: not a category the policy pays for",
}


def counted(code: str | None) -> str:
    """The exposures table's "counted" cell: 'yes' (null code), else 'no: <why>'."""
    return "yes" if code is None else NOT_COUNTED.get(code, f"no: {code}")


# ------------------------------------------------------------------ why this rail

def _claim_steps(code: str | None, p: Policy) -> str:
    if past_claim_deadline(p.today(), p.claim_deadline):  # found by review: the agent was told to take a claim
        return (f"The claim deadline, {p.claim_deadline.isoformat()}, has passed: this money is unclaimed, never "
                "paid automatically, and a claim now would be refused (claim_after_deadline). Finance decides what "
                "becomes of it (the reconciliation lists it); do not take a claim.")
    deadline = (f"The claim must be verified by {p.claim_deadline.isoformat()}; after that the money is "
                "listed as unclaimed for finance to decide." if p.claim_deadline else "There is no claim deadline.")
    return (f"To claim, the person calls customer service at {p.official_phone} (the only number their message "
            f"names) and gives the reference code {code or '(none yet: they have not been notified)'}. Staff verify "
            "who they are, then record the claim (reference code, bank code, account, verified_at, verified_by) "
            "in inbox/claims; the next run pays it by bank transfer to that account. " + deadline)


def _claim(c: dict, e: dict, p: Policy, returned: int, code: str | None, claimed: bool = False) -> str:
    """Why the money is held, in the ledger's order: transfers returned `max_attempts`
    times since the latest claim (to the claimed account, when `claimed`) hold it
    whatever the master says; else a closed account without valid bank details."""
    if returned >= p.max_attempts:
        to = "to the account the person gave customer service with their claim " if claimed else "to this person "
        why = (f"Bank transfers {to}came back unpaid {returned} times (the policy stops after {p.max_attempts}), "
               "so the money is held" + (" again." if claimed else "."))
    elif c["status"] == v.CLOSED and not c["bank_valid"]:
        why = f"The account is closed and {bank_state(c)}, so there is nowhere to send the money: it is held."
    else:
        why = ("The money is held for the person to claim: money once held stays held until it is claimed, "
               "whatever the details on file say now.")
    return why + " " + _claim_steps(code, p)


def _bank(c: dict, e: dict, p: Policy, returned: int, code: str | None) -> str:
    who = "The account is closed" if c["status"] == v.CLOSED else "The customer chose bank transfer"
    return f"{who} and {bank_state(c)}, so it is paid by bank transfer into that account."


def _voucher(c: dict, e: dict, p: Policy, returned: int, code: str | None) -> str:
    """... and the split of what goes as vouchers: `e["vouchers"]`, the amounts of the
    voucher payments made and of what is still owed (case.py), when given; else the
    entitlement's amount (nothing paid yet)."""
    if c["payout_method"] == v.BANK_TRANSFER:
        why = f"The customer chose bank transfer, but {bank_state(c)}, so it is paid as vouchers instead."
    else:
        why = "The customer's payout method is vouchers (the default when none is chosen)."
    amounts = e.get("vouchers", [e["amount"]])
    return why + (" " + voucher_split(amounts, p) if amounts else "")


RAIL_WHY: dict[str, Callable[[dict, dict, Policy, int, str | None], str]] = {
    v.BANK_TRANSFER: _bank, v.VOUCHER: _voucher, v.CLAIM: _claim,
}


def rail_why(customer: dict, entitlement: dict, policy: Policy, returned: int, code: str | None,
             held: bool = False, claimed: dict | None = None) -> str:
    """How the money goes now and why, with what the person must do when it is held.
    `returned`: the times the person's money sent by transfer came back since their
    latest cancelled payment (a claim), all of them when none, as the ledger counts them
    (a first payment and a top-up returned together came back once:
    redress/rules/payments.py); `code`: their reference code; `held`: money of theirs
    is held on `claim` in the ledger now; `claimed`: their latest claim (its `bank`,
    masked `account`, `verified at`), None when they made none.

    The entitlement's rail is the master's (SPEC "Payout rail"); the ledger moves a person
    on from it (SPEC "Input: returns", "Input: claims"): a bank transfer returned
    `max_attempts` times is held on `claim`, and a claim pays by bank transfer to the
    account the person gave, whatever the master's rail (redress/rules/payments.py). So
    money held now is told as held, whatever the entitlement says; a claimant is told
    where their money goes; else the entitlement's rail."""
    if held:
        how = ("held on the claim rail, and the claim deadline has passed: unclaimed"
               if past_claim_deadline(policy.today(), policy.claim_deadline) else v.RAILS[v.CLAIM])
        return f"How it is paid: {how}. " + _claim(customer, entitlement, policy, returned, code, claimed is not None)
    if claimed is not None:
        return (f"How it is paid: by bank transfer into the account the person gave customer service (bank "
                f"{claimed['bank']}, account {claimed['account']}), not the details on file. " + _claimed(claimed, policy))
    rail = entitlement["rail"]
    head = f"How it is paid: {v.RAILS.get(rail, rail)}."
    why = RAIL_WHY.get(rail)
    return head + (" " + why(customer, entitlement, policy, returned, code) if why else "")


def _claimed(claim: dict, p: Policy) -> str:
    return (f"Their claim, verified {when(claim['verified at'], p.timezone)} ({p.timezone} time), cancelled what was held, "
            "so that what they are owed is paid by transfer to that account (the payments below say what was sent and "
            "when); nothing more is for them to do (a transfer to that account that comes back is sent again to it).")


def voucher_split(amounts: list[int], policy: Policy) -> str:
    """The vouchers voucher payments of `amounts` (minor units, at least one) are split
    into, each payment on its own by the rule that writes the batch files and the
    message (redress/rules/vouchers.py), the parts summed per product."""
    parts = voucher_parts(pl.DataFrame({"amount": amounts}, schema={"amount": pl.Int64}), policy.voucher_products)
    named = [f"{p.id.replace('_', ' ')} {money(parts[f'voucher_{p.id}'].sum(), policy.currency)}"
             for p in policy.voucher_products]
    total = money(sum(amounts), policy.currency)
    lead = (f"The {total} is split into vouchers: " if len(amounts) == 1 else
            f"The {total} of its {len(amounts)} voucher payments (paid, and still owed) is split, each on its own, "
            "into vouchers: ")
    return lead + ", ".join(named) + "."
