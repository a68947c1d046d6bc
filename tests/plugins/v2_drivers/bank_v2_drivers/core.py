"""The kernel's built-in drivers, registered through the kernel's own entry
points (see pyproject.toml) and loaded like any other plug-in.

The default profile names exactly these: no fee, no overdraft, reject what
touches a frozen account, approve everything else.
"""

from __future__ import annotations

from bank_core.contract import (
    AccountStatus,
    ApprovalAnswer,
    ApprovalDriver,
    Decision,
    FeeAnswer,
    FeeDriver,
    LimitAnswer,
    LimitDriver,
    Money,
    PolicyContext,
    Text,
)


_NO_FEE = Text("no fee")
_NO_PAYER = Text("no payer account")
_NO_FROZEN = Text("no frozen account")
_AUTO = Text("approved automatically")


class NoFee(FeeDriver):
    """Charges nothing."""

    contract_version = 2

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        return FeeAnswer(rule="core.no_fee", message=_NO_FEE)


class NoOverdraft(LimitDriver):
    """The payer's available balance must cover the amount plus fees.

    Deposits always pass (only fees could be charged, and they come out of the
    deposit itself, so they are checked too)."""

    contract_version = 2

    def check(self, ctx: PolicyContext) -> LimitAnswer:
        payer = ctx.payer
        if payer is None:
            return LimitAnswer(True, "core.no_overdraft", _NO_PAYER)
        debit = ctx.fees.amount_minor
        credit = 0
        if ctx.source is not None:
            debit += ctx.request.amount.amount_minor
        else:
            credit = ctx.request.amount.amount_minor
        available = payer.available.amount_minor  # (a property that makes a Money: read once)
        after = available + credit - debit
        observed = Money(available + credit, payer.currency)
        needed = Money(debit, payer.currency)
        # A deposit that pays its own fees never lowers the balance, so it
        # passes even into an account that is already below zero (one
        # overdrawn under an earlier profile); refusing it would keep the
        # account overdrawn.
        if after < 0 and not (ctx.source is None and credit >= debit):
            return LimitAnswer(False, "core.no_overdraft",
                               Text("available {} does not cover {}", observed, needed),
                               threshold=needed, observed=observed)
        return LimitAnswer(True, "core.no_overdraft", Text("available {} covers {}", observed, needed),
                           threshold=needed, observed=observed)


class FrozenReject(ApprovalDriver):
    """Rejects any transaction that touches a frozen account."""

    contract_version = 2

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        for account in (ctx.source, ctx.dest):
            if account is not None and account.status == AccountStatus.FROZEN:
                return ApprovalAnswer(Decision.REJECT, "core.frozen_reject",
                                      Text("account {} is frozen", account.id))
        return ApprovalAnswer(Decision.APPROVE, "core.frozen_reject", _NO_FROZEN)


class AutoApprove(ApprovalDriver):
    """Approves everything."""

    contract_version = 2

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        return ApprovalAnswer(Decision.APPROVE, "core.auto_approve", _AUTO)
