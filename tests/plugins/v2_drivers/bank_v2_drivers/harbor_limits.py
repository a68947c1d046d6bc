"""Harbor Credit Union's limit drivers (slot ``bank.policy.limit``).

``harbor.overdraft_limit`` replaces the kernel's ``core.no_overdraft`` in
Harbor's profile. Every answer names its rule and, where amounts were
compared, the ``threshold`` and the ``observed`` amount.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

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


class OverdraftLimit(LimitDriver):
    """``harbor.overdraft_limit``: the payer's available balance after this
    transaction, its fees included, must be at least minus the overdraft
    allowance of the payer's product (``products``, by product name; a
    product not listed has none). Answers with ``threshold`` = the lowest
    balance allowed (minus the allowance) and ``observed`` = the balance
    after."""

    RULE: ClassVar[str] = "harbor.overdraft_limit"
    contract_version: ClassVar[int] = 2

    class Params(DriverParams):
        products: dict[str, AmountText] = Field(default_factory=lambda: {"checking-plus": "500.00"})

        def __hash__(self) -> int:
            # A frozen model hashes its field values, and a dict has no hash;
            # hash the sorted items so equal params hash equal.
            return hash((type(self), tuple(sorted(self.products.items()))))

    params: Params

    def check(self, ctx: PolicyContext) -> LimitAnswer:
        payer = ctx.payer
        if payer is None:
            return LimitAnswer(True, self.RULE, Text("no payer account"))
        amount = ctx.request.amount
        currency = amount.currency
        # Money arithmetic refuses a payer in another currency (fails closed).
        after = payer.available - ctx.fees
        after = after + amount if ctx.source is None else after - amount
        allowance = amount_minor(self.params.products.get(payer.product, "0"), currency)
        floor = Money(-allowance, currency)
        if after < floor:
            return LimitAnswer(False, self.RULE, Text(
                "overdraft limit exceeded: balance after {}, product {!r} may go down to {}",
                after, payer.product, floor), threshold=floor, observed=after)
        return LimitAnswer(True, self.RULE, Text(
            "within overdraft limit: balance after {}, product {!r} may go down to {}",
            after, payer.product, floor), threshold=floor, observed=after)


class MonthlyOutgoingLimit(LimitDriver):
    """``harbor.monthly_outgoing``: an account's outgoing principal
    (withdrawals plus transfers out, fees not counted) is at most ``max`` per
    calendar month (the kernel's month counter, in the institution's
    timezone): this month's so far plus this amount must not exceed ``max``.
    Deposits pass."""

    RULE: ClassVar[str] = "harbor.monthly_outgoing"
    contract_version: ClassVar[int] = 2
    reads: ClassVar[frozenset[str]] = frozenset({"usage"})

    class Params(DriverParams):
        max: AmountText = "20000.00"

    params: Params

    def check(self, ctx: PolicyContext) -> LimitAnswer:
        request = ctx.request
        if request.kind not in (Kind.WITHDRAWAL, Kind.TRANSFER):
            return LimitAnswer(True, self.RULE, Text("{}: not outgoing", request.kind))
        currency = request.amount.currency
        month = ctx.usage.month_total(Kind.WITHDRAWAL).amount_minor + \
            ctx.usage.month_total(Kind.TRANSFER).amount_minor
        total = Money(month, currency) + request.amount
        limit = Money(amount_minor(self.params.max, currency), currency)
        if total > limit:
            return LimitAnswer(False, self.RULE, Text("outgoing this month would be {}, over {}", total, limit),
                               threshold=limit, observed=total)
        return LimitAnswer(True, self.RULE, Text("outgoing this month would be {}, within {}", total, limit),
                           threshold=limit, observed=total)
