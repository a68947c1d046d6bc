"""Approval drivers that misbehave on a transaction whose memo is "boom"."""

from __future__ import annotations

import ctypes
import itertools
import os
import re
import socket
import subprocess
import sys
import time
from typing import Any

from bank_core.contract import ApprovalAnswer, ApprovalDriver, Decision, DriverParams, PolicyContext

TRIGGER = "boom"


class _Approves(ApprovalDriver):
    contract_version = 2
    Params = DriverParams

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        if ctx.request.memo == TRIGGER:
            return self.misbehave(ctx)
        return ApprovalAnswer(Decision.APPROVE, type(self).__name__.lower(), "fine")

    def misbehave(self, ctx: PolicyContext) -> Any:
        raise NotImplementedError


class Raises(_Approves):
    def misbehave(self, ctx: PolicyContext) -> Any:
        raise RuntimeError("the rules table is corrupt")


class Garbage(_Approves):
    def misbehave(self, ctx: PolicyContext) -> Any:
        return {"decision": "approve"}


class CLoop(_Approves):
    """A loop inside C code: no signal handler ever runs (sum over a C iterator)."""

    def misbehave(self, ctx: PolicyContext) -> Any:
        return sum(itertools.repeat(1, 10**13))


class CatastrophicRegex(_Approves):
    """Exponential backtracking in the regular-expression engine."""

    def misbehave(self, ctx: PolicyContext) -> Any:
        return re.match(r"(a+)+$", "a" * 40 + "b")


class SysExit(_Approves):
    def misbehave(self, ctx: PolicyContext) -> Any:
        sys.exit(3)


class OsExit(_Approves):
    def misbehave(self, ctx: PolicyContext) -> Any:
        os._exit(3)


class Segfault(_Approves):
    def misbehave(self, ctx: PolicyContext) -> Any:
        return ctypes.string_at(0)


class HugeMemory(_Approves):
    def misbehave(self, ctx: PolicyContext) -> Any:
        hoard = bytearray(20 * 1024**3)
        return len(hoard)


class OpensFile(_Approves):
    def misbehave(self, ctx: PolicyContext) -> Any:
        with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "servfault-audit.log"), "a") as log:
            log.write("decided\n")
        return ApprovalAnswer(Decision.APPROVE, "opens_file")


class OpensSocket(_Approves):
    def misbehave(self, ctx: PolicyContext) -> Any:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.connect(("127.0.0.1", 9))
        return ApprovalAnswer(Decision.APPROVE, "opens_socket")


class StartsProcess(_Approves):
    def misbehave(self, ctx: PolicyContext) -> Any:
        subprocess.run(["true"], check=False)
        return ApprovalAnswer(Decision.APPROVE, "starts_process")


class AlwaysExits(_Approves):
    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        os._exit(9)


class SleepyParams(DriverParams):
    ms: int = 2


class Sleepy(ApprovalDriver):
    """Approves after sleeping (wall time, not processor time: within budget)."""

    contract_version = 2
    Params = SleepyParams

    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        time.sleep(self.params.ms / 1000)  # type: ignore[attr-defined]
        return ApprovalAnswer(Decision.APPROVE, "sleepy", "slept")
