"""Harbor Credit Union's approval drivers (slot ``bank.policy.approval``).

Frozen accounts are rejected by the kernel's ``core.frozen_reject``, listed in
the profile, not redone here. These drivers only approve or hold for review.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar

from pydantic import Field

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
    UsageCounters,
    amount_minor,
)

_MINUTES_PER_DAY = 24 * 60


class VelocityReview(ApprovalDriver):
    """``harbor.velocity_review``: the ``max_per_window``-th outgoing
    transaction (withdrawal or transfer) from one account within
    ``window_minutes`` is held for review, and so is every later one in that
    window. Earlier outgoing transactions counted are those the kernel lists
    in ``usage.recent_out_at`` with ``at - window < t <= at``. Answers with
    ``threshold`` = ``max_per_window`` and ``observed`` = this transaction's
    position in the window (earlier ones + 1). Deposits are approved."""

    RULE: ClassVar[str] = "harbor.velocity_review"
    contract_version: ClassVar[int] = 2
    reads: ClassVar[frozenset[str]] = frozenset({"recent"})

    class Params(DriverParams):
        # recent_out_at holds at most RECENT_OUT_LIMIT times, and only from the
        # last 24 hours: a larger count or a longer window could never trigger.
        max_per_window: Annotated[int, Field(strict=True, ge=1, le=UsageCounters.RECENT_OUT_LIMIT + 1)] = 6
        window_minutes: Annotated[int, Field(strict=True, ge=1, le=_MINUTES_PER_DAY)] = 60

    params: Params

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        request = ctx.request
        if request.kind not in (Kind.WITHDRAWAL, Kind.TRANSFER):
            return ApprovalAnswer(Decision.APPROVE, self.RULE, Text("{}: not outgoing", request.kind))
        start = request.at - timedelta(minutes=self.params.window_minutes)
        earlier = sum(1 for t in ctx.usage.recent_out_at if start < t <= request.at)
        position, most = earlier + 1, self.params.max_per_window
        window = self.params.window_minutes
        if position >= most:
            return ApprovalAnswer(Decision.REVIEW, self.RULE, Text(
                "outgoing transaction {} within {} minutes: {} or more is reviewed", position, window,
                most), threshold=most, observed=position)
        return ApprovalAnswer(Decision.APPROVE, self.RULE, Text(
            "outgoing transaction {} within {} minutes: under {}", position, window, most),
            threshold=most, observed=position)


class NewAccountReview(ApprovalDriver):
    """``harbor.new_account_review``: a withdrawal of more than ``threshold``
    from an account opened less than ``days`` days (exact 24-hour periods)
    before the request is held for review. For an account that is not new
    the answer carries ``threshold`` = ``days`` and ``observed`` = its age in
    whole days; for a new one the amounts compared. Other kinds approve."""

    RULE: ClassVar[str] = "harbor.new_account_review"
    contract_version: ClassVar[int] = 2

    class Params(DriverParams):
        days: Annotated[int, Field(strict=True, ge=0)] = 7
        threshold: AmountText = "1000.00"

    params: Params

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        request = ctx.request
        account = ctx.source
        if request.kind != Kind.WITHDRAWAL or account is None:
            return ApprovalAnswer(Decision.APPROVE, self.RULE, Text("{}: not a withdrawal", request.kind))
        age = request.at - account.opened_at
        if age >= timedelta(days=self.params.days):
            return ApprovalAnswer(Decision.APPROVE, self.RULE,
                                  Text("account opened {} days ago: not new", age.days),
                                  threshold=self.params.days, observed=age.days)
        amount = request.amount
        limit = Money(amount_minor(self.params.threshold, amount.currency), amount.currency)
        if amount > limit:
            return ApprovalAnswer(Decision.REVIEW, self.RULE, Text(
                "account opened {} days ago, withdrawal of {} is over {}: review", age.days, amount,
                limit), threshold=limit, observed=amount)
        return ApprovalAnswer(Decision.APPROVE, self.RULE, Text(
            "account opened {} days ago, withdrawal of {} is not over {}", age.days, amount, limit),
            threshold=limit, observed=amount)
