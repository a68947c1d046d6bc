"""Harbor Credit Union's fee driver (slot ``bank.policy.fee``).

Harbor charges one fee only: an overdraft fee. Amounts are integer minor
units of the request's currency; no float touches them.
"""

from __future__ import annotations

from typing import ClassVar

from bank_core.contract import (
    AmountText,
    DriverParams,
    FeeAnswer,
    FeeDriver,
    FeeLine,
    Money,
    PolicyContext,
    Text,
    amount_minor,
)


class OverdraftFee(FeeDriver):
    """``harbor.overdraft_fee``: each outgoing transaction (withdrawal or
    transfer) that takes the source's available balance below zero pays
    ``fee``. The balance after is the available balance minus the amount; the
    fee itself is not counted in deciding whether there is an overdraft. A
    deposit never takes a balance below zero, so it never pays this fee, even
    into an account that is still overdrawn afterwards."""

    RULE: ClassVar[str] = "harbor.overdraft_fee"
    contract_version: ClassVar[int] = 2

    class Params(DriverParams):
        fee: AmountText = "15.00"

    params: Params

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        payer = ctx.source
        if payer is None:
            return FeeAnswer(rule=self.RULE, message=Text("{}: nothing goes out, no overdraft fee",
                                                          ctx.request.kind))
        amount = ctx.request.amount
        # Money arithmetic refuses a payer in another currency (fails closed).
        after = payer.available - amount
        if after.amount_minor >= 0:
            return FeeAnswer(rule=self.RULE, message=Text("balance after {} is not overdrawn", after))
        fee = Money(amount_minor(self.params.fee, amount.currency), amount.currency)
        if fee.amount_minor == 0:
            return FeeAnswer(rule=self.RULE, message=Text("balance after {} is overdrawn; fee is zero", after))
        line = FeeLine(rule=self.RULE, amount=fee, memo="overdraft fee")
        return FeeAnswer(rule=self.RULE, lines=(line,),
                         message=Text("balance after {} is overdrawn: fee {}", after, fee))
