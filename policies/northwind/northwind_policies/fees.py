"""Northwind Bank's fee drivers (slot ``bank.policy.fee``).

Transfers pay a percentage fee between a floor and a cap; ATM withdrawals are
free up to a monthly allowance and then pay a flat fee. Deposits are free, so
no driver handles them. Every fee is in the request's currency, in integer
minor units; parameter amounts are converted with ``amount_minor`` and the
percentage with ``Rate`` (exact, half-up), so no float touches an amount.

Contract version 3: the drivers answer with data (``charges``, ``no_fee``):
an ``int`` in an answer is an amount in minor units of the request's
currency, ``count(n)`` a count. Parameter amounts are converted once per
currency and kept.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from bank_core.contract import (
    AmountText,
    DriverParams,
    FeeDriver,
    Kind,
    PercentText,
    PolicyContext,
    Rate,
    amount_minor,
    charges,
    count,
    fee_line,
    no_fee,
)

_WITHDRAWAL = Kind.WITHDRAWAL  # (an enum member read from its class costs ~70 ns each time)
_KIND_TEXT = {kind: kind.value for kind in Kind}  # (``kind.value`` costs ~100 ns)

# TransferFee's messages: the percent, the amount, the raw fee, then the
# floor or the cap; each with ": no fee" appended when the fee is zero.
_RAISED = "{}% of {} is {}, raised to the minimum {}"
_CAPPED = "{}% of {} is {}, capped at the maximum {}"
_PLAIN = "{}% of {} is {}"
_RAISED_NO_FEE, _CAPPED_NO_FEE, _PLAIN_NO_FEE = (t + ": no fee" for t in (_RAISED, _CAPPED, _PLAIN))


class TransferFee(FeeDriver):
    """``northwind.transfer_fee``: a transfer pays ``percent`` of its amount,
    rounded half-up to the minor unit, then raised to ``min`` or lowered to
    ``max``. ``kinds`` lists what pays it (transfers only, unless a profile
    says otherwise); other kinds pay nothing here."""

    RULE: ClassVar[str] = "northwind.transfer_fee"
    contract_version: ClassVar[int] = 3

    class Params(DriverParams):
        percent: PercentText = "0.5"
        min: AmountText = "0.25"
        max: AmountText = "25.00"
        kinds: tuple[Kind, ...] = (Kind.TRANSFER,)

        @model_validator(mode="after")
        def _floor_not_above_cap(self) -> TransferFee.Params:
            # Exact decimal comparison of the texts (Fraction parses decimal
            # text exactly); the currency is not known until a request comes.
            if Fraction(self.min) > Fraction(self.max):
                raise ValueError(f"min {self.min} is above max {self.max}")
            return self

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        # Prepared once, not per call: the rate, the answers to kinds that
        # pay nothing, and (per currency, on its first request) the floor
        # and the cap in minor units.
        self.rate = Rate.parse_percent(params.percent)
        self._kinds = params.kinds
        self._free = {kind: no_fee(self.RULE, "{}: no transfer fee", _KIND_TEXT[kind])
                      for kind in Kind if kind not in params.kinds}
        self._bounds: dict[str, tuple[int, int]] = {}

    def fees(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        request = ctx.request
        kind = request.kind
        if kind not in self._kinds:
            return self._free[kind]
        amount = request.amount
        principal = amount.amount_minor
        raw = self.rate.of_half_up(principal)
        currency = amount.currency
        bounds = self._bounds.get(currency)
        if bounds is None:
            bounds = self._bounds[currency] = (amount_minor(self.params.min, currency),
                                               amount_minor(self.params.max, currency))
        floor, cap = bounds
        percent = self.params.percent
        # The fee is min(max(raw, floor), cap); the message says which applied.
        if raw < floor:
            charged = floor if floor <= cap else cap
            if charged == 0:
                return no_fee(self.RULE, _RAISED_NO_FEE, percent, principal, raw, floor)
            return charges(self.RULE, (fee_line(self.RULE, charged, "transfer fee"),), _RAISED, percent, principal,
                           raw, floor)
        if raw > cap:
            if cap == 0:
                return no_fee(self.RULE, _CAPPED_NO_FEE, percent, principal, raw, cap)
            return charges(self.RULE, (fee_line(self.RULE, cap, "transfer fee"),), _CAPPED, percent, principal,
                           raw, cap)
        if raw == 0:
            return no_fee(self.RULE, _PLAIN_NO_FEE, percent, principal, raw)
        return charges(self.RULE, (fee_line(self.RULE, raw, "transfer fee"),), _PLAIN, percent, principal, raw)


class AtmWithdrawalFee(FeeDriver):
    """``northwind.atm_withdrawal_fee``: withdrawals on ``channel`` are free
    for the first ``free_per_month`` in the calendar month (the kernel's month
    counter, in the institution's timezone), then each pays ``fee``. Other
    kinds and channels pay nothing here."""

    RULE: ClassVar[str] = "northwind.atm_withdrawal_fee"
    contract_version: ClassVar[int] = 3
    reads: ClassVar[frozenset[str]] = frozenset({"usage"})

    class Params(DriverParams):
        free_per_month: Annotated[int, Field(strict=True, ge=0)] = 4
        fee: AmountText = "2.00"
        channel: Annotated[str, Field(min_length=1)] = "atm"

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._memo = f"{params.channel} withdrawal fee"
        self._lines: dict[str, tuple[int, tuple]] = {}  # currency -> (fee in minor units, its fee lines)

    def fees(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        request = ctx.request
        channel = self.params.channel
        if request.kind != _WITHDRAWAL or request.channel != channel:
            return no_fee(self.RULE, "{} on {!r}: no {} fee", _KIND_TEXT[request.kind], request.channel, channel)
        # Count of this month's earlier withdrawals on the channel, before this one
        # (the month counter's one entry for the kind and channel, if any).
        tally = ctx.usage.month.get((_WITHDRAWAL, channel))
        before = 0 if tally is None else tally.count
        free = self.params.free_per_month
        if before < free:
            return no_fee(self.RULE, "{} withdrawal {} of {} free this month", channel, count(before + 1),
                          count(free))
        currency = request.amount.currency
        prepared = self._lines.get(currency)
        if prepared is None:
            minor = amount_minor(self.params.fee, currency)
            prepared = self._lines[currency] = (minor, (fee_line(self.RULE, minor, self._memo),) if minor else ())
        minor, lines = prepared
        if minor == 0:
            return no_fee(self.RULE, "{} withdrawal {} this month, {} free: fee is zero", channel,
                          count(before + 1), count(free))
        return charges(self.RULE, lines, "{} withdrawal {} this month, {} free: fee {}", channel,
                       count(before + 1), count(free), minor)
