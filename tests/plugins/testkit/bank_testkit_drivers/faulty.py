"""Drivers that break the plug-in contract on purpose, one fault each."""

from __future__ import annotations

import time
from typing import Literal

from bank_core.contract import (
    ApprovalAnswer,
    ApprovalDriver,
    Decision,
    DriverParams,
    FeeAnswer,
    FeeDriver,
    FeeLine,
    LimitDriver,
    Money,
    PolicyContext,
)


class RaisingFee(FeeDriver):
    """Raises instead of answering: always, or with ``only_memo`` set only
    for requests carrying that memo (so one row of a batch can fault)."""

    contract_version = 1

    class Params(DriverParams):
        only_memo: str | None = None

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        only = self.params.only_memo  # type: ignore[attr-defined]
        if only is None or ctx.request.memo == only:
            raise RuntimeError("testkit.raises raised on purpose")
        return FeeAnswer(rule="testkit.raises", message="did not raise this time")


class BadFee(FeeDriver):
    """Answers a fee line the kernel must refuse: in another currency than the
    request, or negative (built with Money, which allows negative amounts)."""

    contract_version = 1

    class Params(DriverParams):
        mode: Literal["currency", "negative"] = "currency"

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        currency = ctx.request.amount.currency
        if self.params.mode == "currency":  # type: ignore[attr-defined]
            other = "EUR" if currency != "EUR" else "USD"
            amount = Money(100, other)
        else:
            amount = Money(-100, currency)
        return FeeAnswer(rule="testkit.bad_fee", lines=(FeeLine("testkit.bad_fee", amount),))


class GarbageLimit(LimitDriver):
    """Returns a string instead of a LimitAnswer."""

    contract_version = 1

    def check(self, ctx: PolicyContext):  # type: ignore[override]
        return "looks fine to me"


class SlowApproval(ApprovalDriver):
    """Answers correctly, but after ten times its budget of processor time
    (a budget counts the driver's own CPU time, not the wall clock)."""

    contract_version = 1
    budget_ms = 20

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        until = time.thread_time_ns() + 200_000_000
        while time.thread_time_ns() < until:
            pass
        return ApprovalAnswer(Decision.APPROVE, "testkit.slow", "approved, eventually")


class PreemptedApproval(ApprovalDriver):
    """Cheap, but its call takes 150 ms of wall time past a 20 ms budget, as
    on a machine too busy to run it: must still be decided like on an idle
    one (only a driver that does not return within its budget plus the grace
    period is cut off)."""

    contract_version = 1
    budget_ms = 20

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        time.sleep(0.15)
        return ApprovalAnswer(Decision.APPROVE, "testkit.preempted", "approved after a wait")


class HangingApproval(ApprovalDriver):
    """Does not come back for 30 s: only the kernel's watchdog can stop the
    wait (the test must finish in about a second)."""

    contract_version = 1
    budget_ms = 10

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        time.sleep(30)
        return ApprovalAnswer(Decision.APPROVE, "testkit.hangs", "approved, far too late")


class WrongContractApproval(ApprovalDriver):
    """Claims a contract version this kernel does not support."""

    contract_version = 99

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        return ApprovalAnswer(Decision.APPROVE, "testkit.wrong_contract", "never called")


class NoRuleApproval(ApprovalDriver):
    """Answers without naming the rule that decided."""

    contract_version = 1

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        return ApprovalAnswer(Decision.APPROVE, "", "no rule named")
