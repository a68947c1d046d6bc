"""Northwind Bank's limit drivers (slot ``bank.policy.limit``).

A limit passes or fails; every answer names its rule and, where an amount was
compared, carries the ``threshold`` and the ``observed`` amount. Overdraft is
the kernel's ``core.no_overdraft``, listed in the profile, not redone here.

Contract version 3: the drivers answer with data (``passes``, ``fails``): an
``int`` in an answer is an amount in minor units of the request's currency.
Parameter amounts are converted once per currency and kept.
"""

from __future__ import annotations

from typing import ClassVar

from bank_core.contract import (
    AmountText,
    DriverParams,
    Kind,
    LimitDriver,
    MinorUnits,
    MoneyError,
    PolicyContext,
    fails,
    passes,
)

_WITHDRAWAL = Kind.WITHDRAWAL  # (an enum member read from its class costs ~70 ns each time)


class SingleTransactionLimit(LimitDriver):
    """``northwind.single_transaction``: one transaction's amount, of any
    kind, is at most ``max``; an amount equal to ``max`` passes."""

    RULE: ClassVar[str] = "northwind.single_transaction"
    contract_version: ClassVar[int] = 3

    class Params(DriverParams):
        max: AmountText = "10000.00"

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._max = MinorUnits(params.max)  # currency -> ``max`` in its minor units

    def check(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        amount = ctx.request.amount
        currency = amount.currency
        limit = self._max[currency]
        observed = amount.amount_minor
        if observed > limit:
            return fails(self.RULE, limit, observed, "{} is over the single-transaction limit {}",
                         observed, limit)
        return passes(self.RULE, limit, observed, "{} is within the single-transaction limit {}",
                      observed, limit)


class DailyWithdrawalLimit(LimitDriver):
    """``northwind.daily_withdrawal``: an account's withdrawals on all
    channels, principal plus fees, are at most ``max`` per calendar day
    (the kernel's day counter, in the institution's timezone). Today's
    withdrawals so far, plus this amount, plus this request's fees, must not
    exceed ``max``. Deposits and transfers pass."""

    RULE: ClassVar[str] = "northwind.daily_withdrawal"
    contract_version: ClassVar[int] = 3
    reads: ClassVar[frozenset[str]] = frozenset({"usage"})

    class Params(DriverParams):
        max: AmountText = "2500.00"

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._max = MinorUnits(params.max)  # currency -> ``max`` in its minor units
        self._other_kinds = {kind: passes(self.RULE, None, None, "{}: not a withdrawal", kind.value)
                             for kind in Kind if kind != _WITHDRAWAL}

    def check(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        request = ctx.request
        if request.kind != _WITHDRAWAL:
            return self._other_kinds[request.kind]
        amount = request.amount
        currency = amount.currency
        today = 0  # today's withdrawals on every channel, principal and fees
        for (kind, _channel), tally in ctx.usage.day.items():
            if kind == _WITHDRAWAL:
                today += tally.amount_minor + tally.fee_minor
        fees = ctx.fees
        if fees.currency != currency:  # (fails closed, as adding Money of two currencies does)
            raise MoneyError("currency", fees.currency, f"does not match {currency}")
        total = today + amount.amount_minor + fees.amount_minor
        limit = self._max[currency]
        if total > limit:
            return fails(self.RULE, limit, total, "withdrawals today with fees would be {}, over {}",
                         total, limit)
        return passes(self.RULE, limit, total, "withdrawals today with fees would be {}, within {}",
                      total, limit)
