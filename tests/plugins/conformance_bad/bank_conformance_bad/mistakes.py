"""The mistakes a new plug-in author made (issue 13), one per driver, each
answering plausibly otherwise: float arithmetic on amounts, a float param,
the clock instead of ``ctx.local_date``, and a log file whose error is
swallowed. The floats are on purpose; they live here, never in ``bank_core``.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

from bank_core.contract import (
    ApprovalAnswer,
    ApprovalDriver,
    Decision,
    DriverParams,
    FeeAnswer,
    FeeDriver,
    FeeLine,
    Kind,
    Money,
    PercentText,
    PolicyContext,
)

# Resolved at import time (the test points it into its own directory).
LOG_PATH = Path(os.environ.get("BANK_CONFORMANCE_BAD_LOG")
                or Path(tempfile.gettempdir()) / "bank-conformance-bad-transfers.log")


def _fee_answer(rule: str, ctx: PolicyContext, fee_minor: int) -> FeeAnswer:
    currency = ctx.request.amount.currency
    if fee_minor <= 0:
        return FeeAnswer(rule=rule, message="no fee")
    fee = Money(fee_minor, currency)
    return FeeAnswer(rule=rule, lines=(FeeLine(rule, fee, "transfer fee"),), message=f"fee {fee}")


class FloatRateFee(FeeDriver):
    """``exact_amounts``: 0.2 % of a transfer as ``round(amount_minor * 0.002)``:
    float arithmetic and half-to-even, so 1002.50 pays 2.00, not 2.01."""

    RULE: ClassVar[str] = "conformance_bad.float_rate_fee"
    contract_version: ClassVar[int] = 1

    class Params(DriverParams):
        percent: PercentText = "0.2"  # given, and ignored: the rate is in the code

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        if ctx.request.kind is not Kind.TRANSFER:
            return FeeAnswer(rule=self.RULE, message="not a transfer")
        return _fee_answer(self.RULE, ctx, round(ctx.request.amount.amount_minor * 0.002))


class FloatParamsFee(FeeDriver):
    """``params_float`` and ``exact_amounts``: ``percent: float = 0.2``, applied
    in float arithmetic."""

    RULE: ClassVar[str] = "conformance_bad.float_params_fee"
    contract_version: ClassVar[int] = 1

    class Params(DriverParams):
        percent: float = 0.2

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        if ctx.request.kind is not Kind.TRANSFER:
            return FeeAnswer(rule=self.RULE, message="not a transfer")
        return _fee_answer(self.RULE, ctx, round(ctx.request.amount.amount_minor * self.params.percent / 100))


class ClockNewAccountReview(ApprovalDriver):
    """``deterministic``: holds a transfer to an account opened less than 7
    days ago, counting the days to ``datetime.now(tz).date()`` instead of
    ``ctx.local_date``: a transfer dated ahead is judged by today's date."""

    RULE: ClassVar[str] = "conformance_bad.clock_new_account_review"
    contract_version: ClassVar[int] = 1
    DAYS: ClassVar[int] = 7

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        if ctx.request.kind is not Kind.TRANSFER or ctx.dest is None:
            return ApprovalAnswer(Decision.APPROVE, self.RULE, "not a transfer")
        zone = ZoneInfo(ctx.timezone)
        today = datetime.now(zone).date()
        age = (today - ctx.dest.opened_at.astimezone(zone).date()).days
        if age < self.DAYS:
            return ApprovalAnswer(Decision.REVIEW, self.RULE, f"to an account {age} days old",
                                  threshold=self.DAYS, observed=age)
        return ApprovalAnswer(Decision.APPROVE, self.RULE, f"to an account {age} days old",
                              threshold=self.DAYS, observed=age)


class LoggingFee(FeeDriver):
    """``no_io`` (and at run time ``driver_forbidden``): appends every
    transfer to a log file for "the compliance team", swallowing any error
    so that a failed write never stops a payment. Charges nothing."""

    RULE: ClassVar[str] = "conformance_bad.logging_fee"
    contract_version: ClassVar[int] = 1

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        if ctx.request.kind is Kind.TRANSFER:
            try:
                with LOG_PATH.open("a", encoding="utf-8") as log:
                    log.write(f"{ctx.request.at.isoformat()} {ctx.request.amount}\n")
            except OSError:
                pass
        return FeeAnswer(rule=self.RULE, message="no fee")
