"""Northwind Bank's fee drivers (slot ``bank.policy.fee``).

Transfers pay a percentage fee between a floor and a cap; ATM withdrawals are
free up to a monthly allowance and then pay a flat fee. Deposits are free, so
no driver handles them. Every fee is in the request's currency, in integer
minor units; parameter amounts are converted with ``amount_minor`` and the
percentage with ``Rate`` (exact, half-up), so no float touches an amount.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from bank_core.contract import (
    AmountText,
    DriverParams,
    FeeAnswer,
    FeeDriver,
    FeeLine,
    Kind,
    Money,
    PercentText,
    PolicyContext,
    Rate,
    Text,
    amount_minor,
)


class TransferFee(FeeDriver):
    """``northwind.transfer_fee``: a transfer pays ``percent`` of its amount,
    rounded half-up to the minor unit, then raised to ``min`` or lowered to
    ``max``. ``kinds`` lists what pays it (transfers only, unless a profile
    says otherwise); other kinds pay nothing here."""

    RULE: ClassVar[str] = "northwind.transfer_fee"
    contract_version: ClassVar[int] = 2

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
        self.rate = Rate.parse_percent(params.percent)  # prepared once, not per call

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        request = ctx.request
        if request.kind not in self.params.kinds:
            return FeeAnswer(rule=self.RULE, message=Text("{}: no transfer fee", request.kind))
        currency = request.amount.currency
        raw = self.rate.of_half_up(request.amount.amount_minor)
        floor = amount_minor(self.params.min, currency)
        cap = amount_minor(self.params.max, currency)
        fee = min(max(raw, floor), cap)
        percent, raw_money = self.params.percent, Money(raw, currency)
        if raw < floor:
            how = Text("{}% of {} is {}, raised to the minimum {}", percent, request.amount, raw_money,
                       Money(floor, currency))
        elif raw > cap:
            how = Text("{}% of {} is {}, capped at the maximum {}", percent, request.amount, raw_money,
                       Money(cap, currency))
        else:
            how = Text("{}% of {} is {}", percent, request.amount, raw_money)
        if fee == 0:
            return FeeAnswer(rule=self.RULE, message=Text(how.template + ": no fee", *how.args))
        line = FeeLine(rule=self.RULE, amount=Money(fee, currency), memo="transfer fee")
        return FeeAnswer(rule=self.RULE, lines=(line,), message=how)


class AtmWithdrawalFee(FeeDriver):
    """``northwind.atm_withdrawal_fee``: withdrawals on ``channel`` are free
    for the first ``free_per_month`` in the calendar month (the kernel's month
    counter, in the institution's timezone), then each pays ``fee``. Other
    kinds and channels pay nothing here."""

    RULE: ClassVar[str] = "northwind.atm_withdrawal_fee"
    contract_version: ClassVar[int] = 2
    reads: ClassVar[frozenset[str]] = frozenset({"usage"})

    class Params(DriverParams):
        free_per_month: Annotated[int, Field(strict=True, ge=0)] = 4
        fee: AmountText = "2.00"
        channel: Annotated[str, Field(min_length=1)] = "atm"

    params: Params

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        request = ctx.request
        channel = self.params.channel
        if request.kind != Kind.WITHDRAWAL or request.channel != channel:
            return FeeAnswer(rule=self.RULE, message=Text("{} on {!r}: no {} fee", request.kind,
                                                          request.channel, channel))
        # Count of this month's earlier withdrawals on the channel, before this one.
        before = ctx.usage.month_total(Kind.WITHDRAWAL, channel).count
        free = self.params.free_per_month
        if before < free:
            return FeeAnswer(rule=self.RULE, message=Text("{} withdrawal {} of {} free this month",
                                                          channel, before + 1, free))
        currency = request.amount.currency
        fee = amount_minor(self.params.fee, currency)
        if fee == 0:
            return FeeAnswer(rule=self.RULE, message=Text("{} withdrawal {} this month, {} free: fee is zero",
                                                          channel, before + 1, free))
        line = FeeLine(rule=self.RULE, amount=Money(fee, currency), memo=f"{channel} withdrawal fee")
        return FeeAnswer(rule=self.RULE, lines=(line,),
                         message=Text("{} withdrawal {} this month, {} free: fee {}", channel,
                                      before + 1, free, Money(fee, currency)))
