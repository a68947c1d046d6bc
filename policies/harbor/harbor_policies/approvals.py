"""Harbor Credit Union's approval drivers (slot ``bank.policy.approval``).

Frozen accounts are rejected by the kernel's ``core.frozen_reject``, listed in
the profile, not redone here. These drivers only approve or hold for review.

Contract version 3: the drivers answer with data (``approves``,
``reviews``): an ``int`` in an answer is an amount in minor units of the
request's currency, ``count(n)`` a count (of transactions, minutes, days).
Parameter amounts are converted once per currency and kept.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar

from pydantic import Field

from bank_core.contract import (
    AmountText,
    ApprovalDriver,
    DriverParams,
    Kind,
    MinorUnits,
    PolicyContext,
    UsageCounters,
    approves,
    count,
    reviews,
)

_MINUTES_PER_DAY = 24 * 60
_WITHDRAWAL = Kind.WITHDRAWAL  # (an enum member read from its class costs ~70 ns each time)
_OUTGOING = (Kind.WITHDRAWAL, Kind.TRANSFER)


class VelocityReview(ApprovalDriver):
    """``harbor.velocity_review``: the ``max_per_window``-th outgoing
    transaction (withdrawal or transfer) from one account within
    ``window_minutes`` is held for review, and so is every later one in that
    window. Earlier outgoing transactions counted are those the kernel lists
    in ``usage.recent_out_at`` with ``at - window < t <= at``. Answers with
    ``threshold`` = ``max_per_window`` and ``observed`` = this transaction's
    position in the window (earlier ones + 1). Deposits are approved."""

    RULE: ClassVar[str] = "harbor.velocity_review"
    contract_version: ClassVar[int] = 3
    reads: ClassVar[frozenset[str]] = frozenset({"recent"})

    class Params(DriverParams):
        # recent_out_at holds at most RECENT_OUT_LIMIT times, and only from the
        # last 24 hours: a larger count or a longer window could never trigger.
        max_per_window: Annotated[int, Field(strict=True, ge=1, le=UsageCounters.RECENT_OUT_LIMIT + 1)] = 6
        window_minutes: Annotated[int, Field(strict=True, ge=1, le=_MINUTES_PER_DAY)] = 60

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._window = timedelta(minutes=params.window_minutes)
        self._not_outgoing = {kind: approves(self.RULE, None, None, "{}: not outgoing", kind.value)
                              for kind in Kind if kind not in _OUTGOING}

    def decide(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        request = ctx.request
        kind = request.kind
        if kind not in _OUTGOING:
            return self._not_outgoing[kind]
        at = request.at
        start = at - self._window
        earlier = 0
        for t in ctx.usage.recent_out_at:
            if start < t <= at:
                earlier += 1
        position, most = earlier + 1, self.params.max_per_window
        window = self.params.window_minutes
        if position >= most:
            return reviews(self.RULE, count(most), count(position),
                           "outgoing transaction {} within {} minutes: {} or more is reviewed",
                           count(position), count(window), count(most))
        return approves(self.RULE, count(most), count(position),
                        "outgoing transaction {} within {} minutes: under {}",
                        count(position), count(window), count(most))


class NewAccountReview(ApprovalDriver):
    """``harbor.new_account_review``: a withdrawal of more than ``threshold``
    from an account opened less than ``days`` days (exact 24-hour periods)
    before the request is held for review. For an account that is not new
    the answer carries ``threshold`` = ``days`` and ``observed`` = its age in
    whole days; for a new one the amounts compared. Other kinds approve."""

    RULE: ClassVar[str] = "harbor.new_account_review"
    contract_version: ClassVar[int] = 3

    class Params(DriverParams):
        days: Annotated[int, Field(strict=True, ge=0)] = 7
        threshold: AmountText = "1000.00"

    params: Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._new = timedelta(days=params.days)  # younger than this is new
        self._threshold = MinorUnits(params.threshold)  # currency -> ``threshold`` in its minor units
        self._not_withdrawal = {kind: approves(self.RULE, None, None, "{}: not a withdrawal", kind.value)
                                for kind in Kind}

    def decide(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        request = ctx.request
        account = ctx.source
        if request.kind != _WITHDRAWAL or account is None:
            return self._not_withdrawal[request.kind]
        age = request.at - account.opened_at
        days = age.days
        if age >= self._new:
            return approves(self.RULE, count(self.params.days), count(days),
                            "account opened {} days ago: not new", count(days))
        amount = request.amount
        currency = amount.currency
        limit = self._threshold[currency]
        observed = amount.amount_minor
        if observed > limit:
            return reviews(self.RULE, limit, observed,
                           "account opened {} days ago, withdrawal of {} is over {}: review",
                           count(days), observed, limit)
        return approves(self.RULE, limit, observed,
                        "account opened {} days ago, withdrawal of {} is not over {}",
                        count(days), observed, limit)
