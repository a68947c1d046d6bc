"""One contract fault per driver; each docstring names the kit check that
must catch it. Apart from their fault they answer correctly."""

from __future__ import annotations

import itertools
import random
import socket
import tempfile
from pathlib import Path
from typing import ClassVar

from pydantic import ConfigDict

from bank_core.contract import (
    AccountStatus,
    AmountText,
    ApprovalAnswer,
    ApprovalDriver,
    Decision,
    DriverParams,
    FeeAnswer,
    FeeDriver,
    LimitAnswer,
    LimitDriver,
    Money,
    PolicyContext,
)

# Resolved at import time: tempfile probes the directory by writing to it.
LOG_PATH = Path(tempfile.gettempdir()) / "bank-conformance-bad.log"


class CounterFee(FeeDriver):
    """``deterministic``: keeps a call counter and puts it in the answer."""

    contract_version = 1
    _calls: ClassVar[itertools.count[int]] = itertools.count(1)

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        return FeeAnswer(rule="conformance_bad.counter_fee", message=f"call number {next(self._calls)}")


class RandomReview(ApprovalDriver):
    """``deterministic``: answers with a random number in its message."""

    contract_version = 1

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        return ApprovalAnswer(Decision.APPROVE, "conformance_bad.random_review",
                              f"lucky number {random.getrandbits(64)}")


class MutatesRequestLimit(LimitDriver):
    """``no_mutation``: writes into the frozen request with object.__setattr__."""

    contract_version = 1

    def check(self, ctx: PolicyContext) -> LimitAnswer:
        object.__setattr__(ctx.request, "memo", "seen by conformance_bad")
        return LimitAnswer(True, "conformance_bad.mutates_request", "passed (and left a mark)")


class MutatesSnapshotApproval(ApprovalDriver):
    """``no_mutation``: writes into the payer's frozen account snapshot."""

    contract_version = 1

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        payer = ctx.payer
        if payer is not None:
            object.__setattr__(payer, "posted", Money(0, payer.currency))
            object.__setattr__(payer, "status", AccountStatus.FROZEN)
        return ApprovalAnswer(Decision.APPROVE, "conformance_bad.mutates_snapshot", "approved")


class OpensFileFee(FeeDriver):
    """``no_io``: appends every request to a log file."""

    contract_version = 1

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        with LOG_PATH.open("a", encoding="utf-8") as log:
            log.write(f"{ctx.request.kind} {ctx.request.amount}\n")
        return FeeAnswer(rule="conformance_bad.opens_file", message="logged")


class OpensSocketApproval(ApprovalDriver):
    """``no_io``: asks a (local) service, and swallows the error if it fails.
    Swallowing does not hide it: the kit records the attempt itself."""

    contract_version = 1

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        try:
            with socket.create_connection(("127.0.0.1", 9), timeout=0.05):
                pass
        except OSError:
            pass
        return ApprovalAnswer(Decision.APPROVE, "conformance_bad.opens_socket", "approved")


class LooseParamsLimit(LimitDriver):
    """``params_unknown_keys``: Params that accept keys they do not know, so
    a typo in a profile ("mx" for "max") would be silently ignored."""

    contract_version = 1

    class Params(DriverParams):
        model_config = ConfigDict(extra="allow", frozen=True)

        max: AmountText = "100.00"

    def check(self, ctx: PolicyContext) -> LimitAnswer:
        return LimitAnswer(True, "conformance_bad.loose_params", "passed")


class RequiredParamLimit(LimitDriver):
    """``params_defaults``: a param without a default, so a profile that
    omits it cannot be applied."""

    contract_version = 1

    class Params(DriverParams):
        max: AmountText

    def check(self, ctx: PolicyContext) -> LimitAnswer:
        return LimitAnswer(True, "conformance_bad.required_param", "passed")


class NoRuleApproval(ApprovalDriver):
    """``rule_name``: answers without naming the rule that decided."""

    contract_version = 1

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        return ApprovalAnswer(Decision.APPROVE, "", "approved by nobody in particular")


class WrongContractFee(FeeDriver):
    """``contract_version``: claims a contract version this kernel does not support."""

    contract_version = 99

    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        return FeeAnswer(rule="conformance_bad.wrong_contract", message="no fee")


class FragileLimit(LimitDriver):
    """``edge_inputs``: divides by the payer's available balance, so a zero
    balance raises ZeroDivisionError."""

    contract_version = 1

    def check(self, ctx: PolicyContext) -> LimitAnswer:
        payer = ctx.payer
        if payer is None:
            return LimitAnswer(True, "conformance_bad.fragile", "no payer")
        times = ctx.request.amount.amount_minor // payer.available.amount_minor
        return LimitAnswer(True, "conformance_bad.fragile", f"amount is {times} times the balance")
