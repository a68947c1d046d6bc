"""Well-behaved drivers the tests need: a flat fee and a review threshold."""

from __future__ import annotations

from bank_core.contract import (
    AmountText,
    ApprovalAnswer,
    ApprovalDriver,
    Decision,
    DriverParams,
    FeeAnswer,
    FeeDriver,
    FeeLine,
    Kind,
    Money,
    PolicyContext,
    amount_minor,
)


class FlatFee(FeeDriver):
    """A flat fee on every withdrawal and transfer (deposits are free)."""

    contract_version = 1

    class Params(DriverParams):
        amount: AmountText = "1.00"

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        if ctx.request.kind is Kind.DEPOSIT:
            return FeeAnswer(rule="testkit.flat_fee", message="deposits are free")
        currency = ctx.request.amount.currency
        minor = amount_minor(self.params.amount, currency)  # type: ignore[attr-defined]
        if minor == 0:
            return FeeAnswer(rule="testkit.flat_fee", message="fee is zero")
        line = FeeLine(rule="testkit.flat_fee", amount=Money(minor, currency), memo="flat fee")
        return FeeAnswer(rule="testkit.flat_fee", lines=(line,))


class ReviewAbove(ApprovalDriver):
    """REVIEW (hold for a second person) when the amount is at least
    ``threshold``; APPROVE otherwise."""

    contract_version = 1

    class Params(DriverParams):
        threshold: AmountText = "500.00"
        kinds: tuple[str, ...] = ("deposit", "withdrawal", "transfer")

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        amount = ctx.request.amount
        threshold = Money(amount_minor(self.params.threshold, amount.currency),  # type: ignore[attr-defined]
                          amount.currency)
        if str(ctx.request.kind) in self.params.kinds and amount >= threshold:  # type: ignore[attr-defined]
            return ApprovalAnswer(Decision.REVIEW, "testkit.review_above",
                                  f"{amount} is at least {threshold}",
                                  threshold=threshold, observed=amount)
        return ApprovalAnswer(Decision.APPROVE, "testkit.review_above",
                              f"{amount} is below {threshold}", threshold=threshold, observed=amount)
