"""Harbor Credit Union's fee driver (slot ``bank.policy.fee``).

Harbor charges one fee only: an overdraft fee. Amounts are integer minor
units of the request's currency; no float touches them.

Contract version 3: the driver answers with data (``charges``, ``no_fee``):
an ``int`` in an answer is an amount in minor units of the request's
currency. The fee is converted once per currency and kept.
"""

from __future__ import annotations

from typing import ClassVar

from bank_core.contract import (
    AmountText,
    DriverParams,
    FeeDriver,
    Kind,
    MoneyError,
    PolicyContext,
    amount_minor,
    charges,
    fee_line,
    no_fee,
)


class OverdraftFee(FeeDriver):
    """``harbor.overdraft_fee``: each outgoing transaction (withdrawal or
    transfer) that takes the source's available balance below zero pays
    ``fee``. The balance after is the available balance minus the amount; the
    fee itself is not counted in deciding whether there is an overdraft. A
    deposit never takes a balance below zero, so it never pays this fee, even
    into an account that is still overdrawn afterwards."""

    RULE: ClassVar[str] = "harbor.overdraft_fee"
    contract_version: ClassVar[int] = 3

    class Params(DriverParams):
        fee: AmountText = "15.00"

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._nothing_out = {kind: no_fee(self.RULE, "{}: nothing goes out, no overdraft fee", kind.value)
                             for kind in Kind}
        self._lines: dict[str, tuple[int, tuple]] = {}  # currency -> (fee in minor units, its fee lines)

    def fees(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        payer = ctx.source
        if payer is None:
            return self._nothing_out[ctx.request.kind]
        amount = ctx.request.amount
        currency = amount.currency
        available = payer.available  # (a property that makes a Money: read once)
        if available.currency != currency:  # refuse a payer in another currency (fails closed)
            raise MoneyError("currency", currency, f"does not match {available.currency}")
        after = available.amount_minor - amount.amount_minor
        if after >= 0:
            return no_fee(self.RULE, "balance after {} is not overdrawn", after)
        prepared = self._lines.get(currency)
        if prepared is None:
            minor = amount_minor(self.params.fee, currency)
            prepared = self._lines[currency] = (minor, (fee_line(self.RULE, minor, "overdraft fee"),) if minor else ())
        minor, lines = prepared
        if minor == 0:
            return no_fee(self.RULE, "balance after {} is overdrawn; fee is zero", after)
        return charges(self.RULE, lines, "balance after {} is overdrawn: fee {}", after, minor)
