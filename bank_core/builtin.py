"""The kernel's built-in drivers, registered through the kernel's own entry
points (see pyproject.toml) and loaded like any other plug-in.

The default profile names exactly these: no fee, no overdraft, reject what
touches a frozen account, approve everything else.
"""

from __future__ import annotations

from bank_core.contract import (
    AccountStatus,
    ApprovalDriver,
    FeeDriver,
    LimitDriver,
    PolicyContext,
    approves,
    fails,
    no_fee,
    passes,
    rejects,
)

# Contract version 3: each answer is data (the contract's helpers make the
# tuples); the answers that never change are made once.
_NO_FEE = no_fee("core.no_fee", "no fee")
_NO_PAYER = passes("core.no_overdraft", None, None, "no payer account")
_NO_FROZEN = approves("core.frozen_reject", None, None, "no frozen account")
_AUTO = approves("core.auto_approve", None, None, "approved automatically")


class NoFee(FeeDriver):
    """Charges nothing."""

    contract_version = 3

    def fees(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        return _NO_FEE


class NoOverdraft(LimitDriver):
    """The payer's available balance must cover the amount plus fees.

    Deposits always pass (only fees could be charged, and they come out of the
    deposit itself, so they are checked too)."""

    contract_version = 3

    def check(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        payer = ctx.payer
        if payer is None:
            return _NO_PAYER
        debit = ctx.fees.amount_minor
        credit = 0
        if ctx.source is not None:
            debit += ctx.request.amount.amount_minor
        else:
            credit = ctx.request.amount.amount_minor
        available = payer.available.amount_minor  # (a property that makes a Money: read once)
        observed = available + credit  # (amounts in minor units of the request's currency)
        # A deposit that pays its own fees never lowers the balance, so it
        # passes even into an account that is already below zero (one
        # overdrawn under an earlier profile); refusing it would keep the
        # account overdrawn.
        if observed - debit < 0 and not (ctx.source is None and credit >= debit):
            return fails("core.no_overdraft", debit, observed, "available {} does not cover {}", observed, debit)
        return passes("core.no_overdraft", debit, observed, "available {} covers {}", observed, debit)


class FrozenReject(ApprovalDriver):
    """Rejects any transaction that touches a frozen account."""

    contract_version = 3

    def decide(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        for account in (ctx.source, ctx.dest):
            if account is not None and account.status == AccountStatus.FROZEN:
                return rejects("core.frozen_reject", None, None, "account {} is frozen", account.id)
        return _NO_FROZEN


class AutoApprove(ApprovalDriver):
    """Approves everything."""

    contract_version = 3

    def decide(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        return _AUTO
