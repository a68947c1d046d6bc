"""Northwind Bank's approval drivers (slot ``bank.policy.approval``).

Frozen accounts are rejected by the kernel's ``core.frozen_reject``, listed in
the profile, not redone here.
"""

from __future__ import annotations

from typing import ClassVar

from bank_core.contract import (
    AmountText,
    ApprovalAnswer,
    ApprovalDriver,
    Decision,
    DriverParams,
    Kind,
    Money,
    PolicyContext,
    Text,
    amount_minor,
)


class LargeTransferReview(ApprovalDriver):
    """``northwind.large_transfer_review``: a transfer of ``threshold`` or
    more is held for review by a second person; smaller transfers, deposits
    and withdrawals are approved."""

    RULE: ClassVar[str] = "northwind.large_transfer_review"
    contract_version: ClassVar[int] = 2

    class Params(DriverParams):
        threshold: AmountText = "5000.00"

    params: Params

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        request = ctx.request
        if request.kind != Kind.TRANSFER:
            return ApprovalAnswer(Decision.APPROVE, self.RULE, Text("{}: not a transfer", request.kind))
        amount = request.amount
        threshold = Money(amount_minor(self.params.threshold, amount.currency), amount.currency)
        if amount >= threshold:
            return ApprovalAnswer(Decision.REVIEW, self.RULE,
                                  Text("transfer of {} is at least {}: review", amount, threshold),
                                  threshold=threshold, observed=amount)
        return ApprovalAnswer(Decision.APPROVE, self.RULE, Text("transfer of {} is under {}", amount, threshold),
                              threshold=threshold, observed=amount)
