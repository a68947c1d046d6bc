"""Northwind Bank's approval drivers (slot ``bank.policy.approval``).

Frozen accounts are rejected by the kernel's ``core.frozen_reject``, listed in
the profile, not redone here.

Contract version 3: the drivers answer with data (``approves``,
``reviews``): an ``int`` in an answer is an amount in minor units of the
request's currency. Parameter amounts are converted once per currency and
kept.
"""

from __future__ import annotations

from typing import ClassVar

from bank_core.contract import (
    AmountText,
    ApprovalDriver,
    DriverParams,
    Kind,
    MinorUnits,
    PolicyContext,
    approves,
    reviews,
)

_TRANSFER = Kind.TRANSFER  # (an enum member read from its class costs ~70 ns each time)


class LargeTransferReview(ApprovalDriver):
    """``northwind.large_transfer_review``: a transfer of ``threshold`` or
    more is held for review by a second person; smaller transfers, deposits
    and withdrawals are approved."""

    RULE: ClassVar[str] = "northwind.large_transfer_review"
    contract_version: ClassVar[int] = 3

    class Params(DriverParams):
        threshold: AmountText = "5000.00"

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._threshold = MinorUnits(params.threshold)  # currency -> ``threshold`` in its minor units
        self._other_kinds = {kind: approves(self.RULE, None, None, "{}: not a transfer", kind.value)
                             for kind in Kind if kind != _TRANSFER}

    def decide(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        request = ctx.request
        if request.kind != _TRANSFER:
            return self._other_kinds[request.kind]
        amount = request.amount
        currency = amount.currency
        threshold = self._threshold[currency]
        observed = amount.amount_minor
        if observed >= threshold:
            return reviews(self.RULE, threshold, observed, "transfer of {} is at least {}: review",
                           observed, threshold)
        return approves(self.RULE, threshold, observed, "transfer of {} is under {}", observed, threshold)
