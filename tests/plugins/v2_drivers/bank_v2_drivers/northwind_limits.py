"""Northwind Bank's limit drivers (slot ``bank.policy.limit``).

A limit passes or fails; every answer names its rule and, where an amount was
compared, carries the ``threshold`` and the ``observed`` amount. Overdraft is
the kernel's ``core.no_overdraft``, listed in the profile, not redone here.
"""

from __future__ import annotations

from typing import ClassVar

from bank_core.contract import (
    AmountText,
    DriverParams,
    Kind,
    LimitAnswer,
    LimitDriver,
    Money,
    PolicyContext,
    Text,
    amount_minor,
)


class SingleTransactionLimit(LimitDriver):
    """``northwind.single_transaction``: one transaction's amount, of any
    kind, is at most ``max``; an amount equal to ``max`` passes."""

    RULE: ClassVar[str] = "northwind.single_transaction"
    contract_version: ClassVar[int] = 2

    class Params(DriverParams):
        max: AmountText = "10000.00"

    params: Params

    def check(self, ctx: PolicyContext) -> LimitAnswer:
        amount = ctx.request.amount
        limit = Money(amount_minor(self.params.max, amount.currency), amount.currency)
        if amount > limit:
            return LimitAnswer(False, self.RULE, Text("{} is over the single-transaction limit {}",
                                                      amount, limit), threshold=limit, observed=amount)
        return LimitAnswer(True, self.RULE, Text("{} is within the single-transaction limit {}",
                                                 amount, limit), threshold=limit, observed=amount)


class DailyWithdrawalLimit(LimitDriver):
    """``northwind.daily_withdrawal``: an account's withdrawals on all
    channels, principal plus fees, are at most ``max`` per calendar day
    (the kernel's day counter, in the institution's timezone). Today's
    withdrawals so far, plus this amount, plus this request's fees, must not
    exceed ``max``. Deposits and transfers pass."""

    RULE: ClassVar[str] = "northwind.daily_withdrawal"
    contract_version: ClassVar[int] = 2
    reads: ClassVar[frozenset[str]] = frozenset({"usage"})

    class Params(DriverParams):
        max: AmountText = "2500.00"

    params: Params

    def check(self, ctx: PolicyContext) -> LimitAnswer:
        request = ctx.request
        if request.kind != Kind.WITHDRAWAL:
            return LimitAnswer(True, self.RULE, Text("{}: not a withdrawal", request.kind))
        currency = request.amount.currency
        today = ctx.usage.day_total(Kind.WITHDRAWAL)
        total = Money(today.amount_minor + today.fee_minor, currency) + request.amount + ctx.fees
        limit = Money(amount_minor(self.params.max, currency), currency)
        if total > limit:
            return LimitAnswer(False, self.RULE,
                               Text("withdrawals today with fees would be {}, over {}", total, limit),
                               threshold=limit, observed=total)
        return LimitAnswer(True, self.RULE,
                           Text("withdrawals today with fees would be {}, within {}", total, limit),
                           threshold=limit, observed=total)
