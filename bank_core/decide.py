"""Running a profile's drivers on one context: the kernel's own loop.

Drivers are called one by one (never through stevedore's ``map()``, which
swallows errors), each in its own ``try``, and every answer and every fault is
attributed to the driver that gave it. A driver that raises, answers with the
wrong type or an invalid answer, or overruns its ``budget_ms`` fails the
transaction closed with a stable code. A driver that never returns is cut off
by a watchdog: the evaluation runs on a daemon worker thread, and the caller
stops waiting after the sum of the budgets plus a grace period.
"""

from __future__ import annotations

import gc
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bank_core import guard  # issue 13: the runtime I/O guard
from bank_core.contract import (
    ApprovalAnswer,
    Decision,
    FeeAnswer,
    FeeLine,
    LimitAnswer,
    Money,
    PolicyContext,
    Slot,
)
from bank_core.registry import BoundDriver

MAX_FEE_LINES_PER_DRIVER = 8
HANG_GRACE_MS = 1_000

# Stable reason codes for faults, in precedence order.
DRIVER_RAISED = "driver_raised"
DRIVER_BAD_ANSWER = "driver_bad_answer"
DRIVER_TIMEOUT = "driver_timeout"
DRIVER_FORBIDDEN = guard.DRIVER_FORBIDDEN  # issue 13: tried a file, socket or process

Drivers = Mapping[Slot, Sequence[BoundDriver]]


def describe(value: Money | int | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, Money):
        return str(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Reason:
    """One driver's answer (or fault), as data."""

    slot: str
    driver: str
    distribution: str | None
    rule: str
    outcome: str  # fee | pass | fail | approve | reject | review | fault
    message: str
    threshold: str | None = None
    observed: str | None = None
    code: str | None = None
    elapsed_us: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"slot": self.slot, "driver": self.driver, "distribution": self.distribution,
                "rule": self.rule, "outcome": self.outcome, "message": self.message,
                "threshold": self.threshold, "observed": self.observed, "code": self.code}


@dataclass(slots=True)
class Verdict:
    status: str  # posted | held | rejected
    reasons: list[Reason]
    fee_lines: list[tuple[str, FeeLine]] = field(default_factory=list)
    code: str | None = None  # the rule or fault code that rejected or held

    @property
    def fee_minor(self) -> int:
        return sum(line.amount.amount_minor for _, line in self.fee_lines)


class DriverFault(Exception):
    def __init__(self, code: str, bound: BoundDriver, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.bound = bound


def _fault_reason(fault: DriverFault) -> Reason:
    bound = fault.bound
    return Reason(str(bound.slot), bound.name, bound.distribution, fault.code, "fault",
                  str(fault), code=fault.code)


class _GcClock:
    """Wall time spent in the garbage collector, so that a collection that
    happens to start inside a driver call is not charged to the driver (a
    full collection of a large heap takes longer than a 50 ms budget, and
    would otherwise reject a transaction by the luck of the allocator). While
    the collector runs it holds the GIL, so no driver runs either."""

    total_ns = 0
    _started_ns = 0

    @classmethod
    def callback(cls, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            cls._started_ns = time.perf_counter_ns()
        else:
            cls.total_ns += time.perf_counter_ns() - cls._started_ns


gc.callbacks.append(_GcClock.callback)


def _call(bound: BoundDriver, method: Callable[[PolicyContext], Any], ctx: PolicyContext,
          answer_type: type, progress: list[BoundDriver]) -> tuple[Any, int]:
    progress.append(bound)
    gc_before = _GcClock.total_ns
    started = time.perf_counter_ns()
    attempts = guard.enter()  # issue 13 (runtime I/O guard): begin
    try:
        answer = method(ctx)
    except Exception as exc:
        if attempts:
            raise DriverFault(DRIVER_FORBIDDEN, bound, guard.describe(bound.name, attempts)) from exc
        raise DriverFault(DRIVER_RAISED, bound, f"{bound.name} raised {type(exc).__name__}: {exc}") from exc
    finally:
        guard.leave(attempts)
    if attempts:  # the driver swallowed the refusal
        raise DriverFault(DRIVER_FORBIDDEN, bound, guard.describe(bound.name, attempts))
    # issue 13 (runtime I/O guard): end
    elapsed_us = (time.perf_counter_ns() - started - (_GcClock.total_ns - gc_before)) // 1000
    if elapsed_us > bound.budget_ms * 1000:
        raise DriverFault(DRIVER_TIMEOUT, bound,
                          f"{bound.name} took {elapsed_us // 1000} ms; its budget is {bound.budget_ms} ms")
    if type(answer) is not answer_type:
        raise DriverFault(DRIVER_BAD_ANSWER, bound,
                          f"{bound.name} answered {type(answer).__name__}, not {answer_type.__name__}")
    if not isinstance(answer.rule, str) or not answer.rule:
        raise DriverFault(DRIVER_BAD_ANSWER, bound, f"{bound.name} answered without a rule name")
    for value in (getattr(answer, "threshold", None), getattr(answer, "observed", None)):
        if value is not None and type(value) is not int and not isinstance(value, Money):
            raise DriverFault(DRIVER_BAD_ANSWER, bound,
                              f"{bound.name} gave a threshold/observed that is not Money or int")
    return answer, elapsed_us


def _check_fee_answer(bound: BoundDriver, answer: FeeAnswer, currency: str) -> None:
    if not isinstance(answer.lines, tuple) or len(answer.lines) > MAX_FEE_LINES_PER_DRIVER:
        raise DriverFault(DRIVER_BAD_ANSWER, bound,
                          f"{bound.name} must answer a tuple of at most {MAX_FEE_LINES_PER_DRIVER} fee lines")
    for line in answer.lines:
        if (type(line) is not FeeLine or not isinstance(line.amount, Money)
                or not isinstance(line.rule, str) or not line.rule):
            raise DriverFault(DRIVER_BAD_ANSWER, bound, f"{bound.name} answered an invalid fee line")
        if line.amount.currency != currency or line.amount.amount_minor <= 0:
            raise DriverFault(DRIVER_BAD_ANSWER, bound,
                              f"{bound.name} answered a fee of {line.amount}; fees must be positive {currency}")


def _evaluate(drivers: Drivers, ctx: PolicyContext, progress: list[BoundDriver],
              skip_fees: bool, slots: Sequence[Slot]) -> Verdict:
    reasons: list[Reason] = []
    fee_lines: list[tuple[str, FeeLine]] = []
    currency = ctx.request.amount.currency
    try:
        if Slot.FEE in slots and not skip_fees:
            for bound in drivers[Slot.FEE]:
                answer, us = _call(bound, bound.driver.fees, ctx, FeeAnswer, progress)  # type: ignore[attr-defined]
                _check_fee_answer(bound, answer, currency)
                for line in answer.lines:
                    fee_lines.append((bound.name, line))
                    reasons.append(Reason("fee", bound.name, bound.distribution, line.rule, "fee",
                                          answer.message or line.memo, observed=str(line.amount),
                                          elapsed_us=us))
                if not answer.lines:
                    reasons.append(Reason("fee", bound.name, bound.distribution, answer.rule,
                                          "none", answer.message, elapsed_us=us))
            total = sum(line.amount.amount_minor for _, line in fee_lines)
            ctx = _with_fees(ctx, Money(total, currency))
        failed: str | None = None
        if Slot.LIMIT in slots:
            for bound in drivers[Slot.LIMIT]:
                answer, us = _call(bound, bound.driver.check, ctx, LimitAnswer, progress)  # type: ignore[attr-defined]
                if type(answer.passed) is not bool:
                    raise DriverFault(DRIVER_BAD_ANSWER, bound, f"{bound.name} answered passed={answer.passed!r}")
                reasons.append(Reason("limit", bound.name, bound.distribution, answer.rule,
                                      "pass" if answer.passed else "fail", answer.message,
                                      describe(answer.threshold), describe(answer.observed),
                                      elapsed_us=us))
                if not answer.passed and failed is None:
                    failed = answer.rule
        if failed is not None:
            return Verdict("rejected", reasons, fee_lines, failed)
        if Slot.APPROVAL not in slots:
            return Verdict("posted", reasons, fee_lines)
        rejected_by: str | None = None
        review_by: str | None = None
        for bound in drivers[Slot.APPROVAL]:
            answer, us = _call(bound, bound.driver.decide, ctx, ApprovalAnswer, progress)  # type: ignore[attr-defined]
            if not isinstance(answer.decision, Decision):
                raise DriverFault(DRIVER_BAD_ANSWER, bound, f"{bound.name} answered decision={answer.decision!r}")
            reasons.append(Reason("approval", bound.name, bound.distribution, answer.rule,
                                  str(answer.decision), answer.message,
                                  describe(answer.threshold), describe(answer.observed),
                                  elapsed_us=us))
            if answer.decision is Decision.REJECT and rejected_by is None:
                rejected_by = answer.rule
            elif answer.decision is Decision.REVIEW and review_by is None:
                review_by = answer.rule
        if rejected_by is not None:
            return Verdict("rejected", reasons, fee_lines, rejected_by)
        if review_by is not None:
            return Verdict("held", reasons, fee_lines, review_by)
        return Verdict("posted", reasons, fee_lines)
    except DriverFault as fault:
        reasons.append(_fault_reason(fault))
        return Verdict("rejected", reasons, [], fault.code)


def _with_fees(ctx: PolicyContext, fees: Money) -> PolicyContext:
    return PolicyContext(ctx.request, ctx.source, ctx.dest, ctx.usage, ctx.timezone,
                         ctx.local_date, fees)


class _Hang(BaseException):
    """Raised by the alarm inside a driver that overran the row's deadline.
    A BaseException, so a driver's ``except Exception`` cannot swallow it."""


def _on_alarm(_signum: int, _frame: Any) -> None:
    raise _Hang()


class _Worker:
    """One daemon thread that runs evaluations; abandoned if one hangs."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[tuple[Callable[[], Any], list[Any], threading.Event]] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="bank-drivers", daemon=True).start()

    def _loop(self) -> None:
        while True:
            job, box, done = self.jobs.get()
            try:
                box.append((True, job()))
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                box.append((False, exc))
            done.set()


class Evaluator:
    """Runs drivers under a watchdog.

    In the main thread of a process (the CLI, a batch job) the watchdog is a
    real-time interval timer: it costs two system calls per transaction, and
    a driver that never returns is interrupted by SIGALRM. Elsewhere (a
    server's worker threads) the evaluation runs on a daemon worker thread
    and the caller stops waiting at the deadline; the stuck thread is
    abandoned.
    """

    def __init__(self) -> None:
        self._worker: _Worker | None = None
        self._lock = threading.Lock()
        self._alarm_ready = False

    def evaluate(self, drivers: Drivers, ctx: PolicyContext, *, skip_fees: bool = False,
                 slots: Sequence[Slot] = (Slot.FEE, Slot.LIMIT, Slot.APPROVAL)) -> Verdict:
        progress: list[BoundDriver] = []
        budget_ms = sum(b.budget_ms for s in slots for b in drivers[s]) + HANG_GRACE_MS
        if self._use_alarm():
            try:
                signal.setitimer(signal.ITIMER_REAL, budget_ms / 1000)
                try:
                    return _evaluate(drivers, ctx, progress, skip_fees, slots)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except _Hang:
                return _hung(progress, budget_ms)
        return self._evaluate_on_worker(drivers, ctx, progress, skip_fees, slots, budget_ms)

    def _use_alarm(self) -> bool:
        if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
            return False
        if not self._alarm_ready:
            current = signal.getsignal(signal.SIGALRM)
            if current not in (signal.SIG_DFL, signal.SIG_IGN, None, _on_alarm):
                return False  # someone else owns SIGALRM: don't take it
            signal.signal(signal.SIGALRM, _on_alarm)
            self._alarm_ready = True
        return True

    def _evaluate_on_worker(self, drivers: Drivers, ctx: PolicyContext, progress: list[BoundDriver],
                            skip_fees: bool, slots: Sequence[Slot], budget_ms: int) -> Verdict:
        box: list[Any] = []
        done = threading.Event()
        with self._lock:
            if self._worker is None:
                self._worker = _Worker()
            worker = self._worker
            worker.jobs.put((lambda: _evaluate(drivers, ctx, progress, skip_fees, slots), box, done))
            finished = done.wait(budget_ms / 1000)
            if not finished:
                self._worker = None  # abandon the stuck thread; the next call gets a new one
        if not finished:
            return _hung(progress, budget_ms)
        ok, value = box[0]
        if not ok:
            raise value
        return value


def _hung(progress: list[BoundDriver], budget_ms: int) -> Verdict:
    if not progress:
        raise RuntimeError("the watchdog fired before any driver ran")
    bound = progress[-1]
    fault = DriverFault(DRIVER_TIMEOUT, bound, f"{bound.name} did not return within {budget_ms} ms")
    return Verdict("rejected", [_fault_reason(fault)], [], DRIVER_TIMEOUT)
