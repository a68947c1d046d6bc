"""Drivers that answer with data (contract version 3): one that gives every
kind of value the contract allows, and bad data answers the kernel must refuse
as it refuses bad answer objects (``driver_bad_answer``)."""

from __future__ import annotations

from typing import Literal

from bank_core.contract import (
    ApprovalDriver,
    DriverParams,
    FeeDriver,
    LimitDriver,
    Money,
    PolicyContext,
    approves,
    charges,
    count,
    fee_line,
    passes,
)


class DataValues(ApprovalDriver):
    """Approves, with a count as its threshold, an amount in another currency
    as its observed value, and a message of an int amount, a Money, a count,
    a StrEnum and text: every value a data answer may carry."""

    contract_version = 3

    def decide(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        amount = ctx.request.amount
        return approves("testkit.data_values", count(3), Money(1234, "EUR"),
                        "{} of {} ({}, {} times, {}) by {}", amount.amount_minor, amount, Money(5, "JPY"),
                        count(2), ctx.request.kind, "text")


class BadDataFee(FeeDriver):
    """A fee data answer the kernel must refuse."""

    contract_version = 3

    class Params(DriverParams):
        mode: Literal["negative", "line_shape", "too_many", "outcome"] = "negative"

    def fees(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        mode = self.params.mode  # type: ignore[attr-defined]
        if mode == "negative":
            return charges("testkit.bad_data_fee", (fee_line("testkit.bad_data_fee", -100),))
        if mode == "line_shape":
            return charges("testkit.bad_data_fee", (("testkit.bad_data_fee", Money(100, "USD"), ""),))
        if mode == "too_many":
            return charges("testkit.bad_data_fee", tuple(fee_line("testkit.bad_data_fee", 1) for _ in range(9)))
        return ("f", "testkit.bad_data_fee", (), "")  # says "fee" with no lines


class BadDataLimit(LimitDriver):
    """A limit data answer the kernel must refuse."""

    contract_version = 3

    class Params(DriverParams):
        mode: Literal["letter", "value", "template", "no_rule", "short"] = "letter"

    def check(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        mode = self.params.mode  # type: ignore[attr-defined]
        if mode == "letter":
            return ("a", "testkit.bad_data_limit", None, None, "")  # an approval's outcome
        if mode == "value":
            return passes("testkit.bad_data_limit", "ten", None)
        if mode == "template":
            return passes("testkit.bad_data_limit", None, None, "{missing}", 1)
        if mode == "no_rule":
            return passes("", None, None)
        return ("p", "testkit.bad_data_limit")


class DataFromVersion2(LimitDriver):
    """A version-2 driver that answers with data: a bad answer (data needs
    version 3, whose ints mean amounts where version 2's mean counts)."""

    contract_version = 2

    def check(self, ctx: PolicyContext) -> tuple:  # type: ignore[override]
        return passes("testkit.data_from_v2", None, None)
