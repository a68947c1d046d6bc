"""Harbor Credit Union's limit drivers (slot ``bank.policy.limit``).

``harbor.overdraft_limit`` replaces the kernel's ``core.no_overdraft`` in
Harbor's profile. Every answer names its rule and, where amounts were
compared, the ``threshold`` and the ``observed`` amount.

Contract version 3: the drivers answer with data (``passes``, ``fails``): an
``int`` in an answer is an amount in minor units of the request's currency.
Parameter amounts are converted once per currency and kept.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from bank_core.contract import (
    AmountText,
    DriverParams,
    Kind,
    LimitDriver,
    MinorUnits,
    MoneyError,
    PolicyContext,
    amount_minor,
    fails,
    passes,
)

_OUTGOING = (Kind.WITHDRAWAL, Kind.TRANSFER)
_NO_PAYER = passes("harbor.overdraft_limit", None, None, "no payer account")


class OverdraftLimit(LimitDriver):
    """``harbor.overdraft_limit``: the payer's available balance after this
    transaction, its fees included, must be at least minus the overdraft
    allowance of the payer's product (``products``, by product name; a
    product not listed has none). Answers with ``threshold`` = the lowest
    balance allowed (minus the allowance) and ``observed`` = the balance
    after."""

    RULE: ClassVar[str] = "harbor.overdraft_limit"
    contract_version: ClassVar[int] = 3

    class Params(DriverParams):
        products: dict[str, AmountText] = Field(default_factory=lambda: {"checking-plus": "500.00"})

        def __hash__(self) -> int:
            # A frozen model hashes its field values, and a dict has no hash;
            # hash the sorted items so equal params hash equal.
            return hash((type(self), tuple(sorted(self.products.items()))))

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        # currency -> product -> the lowest balance allowed, in minor units
        # (each converted when a payer of that product first comes)
        self._floors: dict[str, dict[str, int]] = {}

    def check(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        payer = ctx.payer
        if payer is None:
            return _NO_PAYER
        amount = ctx.request.amount
        currency = amount.currency
        fees = ctx.fees
        available = payer.available  # (a property that makes a Money: read once)
        held = available.currency
        if fees.currency != held or currency != held:  # refuse a payer in another currency (fails closed)
            other = fees.currency if fees.currency != held else currency
            raise MoneyError("currency", other, f"does not match {held}")
        after = available.amount_minor - fees.amount_minor
        after = after + amount.amount_minor if ctx.source is None else after - amount.amount_minor
        product = payer.product
        floors = self._floors.get(currency)
        if floors is None:
            floors = self._floors[currency] = {}
        floor = floors.get(product)
        if floor is None:
            floor = floors[product] = -amount_minor(self.params.products.get(product, "0"), currency)
        if after < floor:
            return fails(self.RULE, floor, after,
                         "overdraft limit exceeded: balance after {}, product {!r} may go down to {}",
                         after, product, floor)
        return passes(self.RULE, floor, after,
                      "within overdraft limit: balance after {}, product {!r} may go down to {}",
                      after, product, floor)


class MonthlyOutgoingLimit(LimitDriver):
    """``harbor.monthly_outgoing``: an account's outgoing principal
    (withdrawals plus transfers out, fees not counted) is at most ``max`` per
    calendar month (the kernel's month counter, in the institution's
    timezone): this month's so far plus this amount must not exceed ``max``.
    Deposits pass."""

    RULE: ClassVar[str] = "harbor.monthly_outgoing"
    contract_version: ClassVar[int] = 3
    reads: ClassVar[frozenset[str]] = frozenset({"usage"})

    class Params(DriverParams):
        max: AmountText = "20000.00"

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._max = MinorUnits(params.max)  # currency -> ``max`` in its minor units
        self._not_outgoing = {kind: passes(self.RULE, None, None, "{}: not outgoing", kind.value)
                              for kind in Kind if kind not in _OUTGOING}

    def check(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        request = ctx.request
        kind = request.kind
        if kind not in _OUTGOING:
            return self._not_outgoing[kind]
        amount = request.amount
        currency = amount.currency
        month = 0  # this month's withdrawals and transfers (every channel), in one pass
        for (k, _channel), tally in ctx.usage.month.items():
            if k in _OUTGOING:
                month += tally.amount_minor
        total = month + amount.amount_minor
        limit = self._max[currency]
        if total > limit:
            return fails(self.RULE, limit, total, "outgoing this month would be {}, over {}", total, limit)
        return passes(self.RULE, limit, total, "outgoing this month would be {}, within {}", total, limit)
