"""Running a profile's drivers on one context: the kernel's own loop.

Drivers are called one by one (never through stevedore's ``map()``, which
swallows errors), each in its own ``try`` and under the runtime guard
(``bank_core.guard``: no file, socket or process), and every answer and every
fault is attributed to the driver that gave it. A driver that raises, answers
with the wrong type or an invalid answer, tries a forbidden operation or
overruns its ``budget_ms`` fails the transaction closed with a stable code.

Decide in data: the verdict keeps the drivers' answers as they came (rule,
outcome, threshold, observed, message or message template); nothing is turned
into text here. :meth:`Verdict.reasons` renders them when someone asks.

Budgets are processor time, not wall time, so a busy or preempted machine
never changes a decision: a row's drivers are run under one pair of
wall-clock reads (no system call), and only when that time exceeds the
smallest budget among them (a thread's processor time never exceeds the wall
time it spans, so no other row can have overrun) is the row run again with
each driver timed on its own thread-CPU clock (drivers are pure, so the
second run answers the same) to find which one overran: the decision rests
on processor time alone. (The thread-CPU clock is a system call: with a
write-ahead writer busy on the other core, ``bank_core.ahead``, each read
cost ~17 us on the 2-core bench machine, 3.3 s of a 100k-row file at two
reads a row.) Garbage-collection pauses are subtracted either way.

A driver that never returns (a sleep, a lock, a loop) is cut off by a
watchdog: in the main thread a watchdog thread sees that no row finished for
the row's budgets plus a grace period of wall time and interrupts the main
thread with SIGALRM (no system call per row); elsewhere (a server's worker
threads) the evaluation runs on a daemon worker thread that the caller stops
waiting for.
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
from bank_core.answers import (
    KNOWN,
    MAX_FEE_LINES_PER_DRIVER,
    NO_LINES,
    PLAIN,
    VALUE,
    BadData,
    data_answer,
    version_problem,
)
from bank_core.contract import (
    DATA_VERSION,
    ApprovalAnswer,
    Decision,
    FeeAnswer,
    FeeLine,
    LimitAnswer,
    Money,
    PolicyContext,
    Slot,
    Text,
    read_answer,
)
from bank_core.fastmake import money, with_fees
from bank_core.registry import BoundDriver

HANG_GRACE_MS = 1_000
WATCHDOG_TICK_S = 0.25

# Stable reason codes for faults, in precedence order.
DRIVER_RAISED = "driver_raised"
DRIVER_BAD_ANSWER = "driver_bad_answer"
DRIVER_TIMEOUT = "driver_timeout"
DRIVER_FORBIDDEN = guard.DRIVER_FORBIDDEN  # issue 13: tried a file, socket or process
DRIVER_CRASHED = "driver_crashed"  # issue 9: exited (sys.exit inline; any exit, a signal or
# the memory limit in a policy server)

Drivers = Mapping[Slot, Sequence[BoundDriver]]
_ALL_SLOTS = (Slot.FEE, Slot.LIMIT, Slot.APPROVAL)
_thread_ns = time.thread_time_ns
_wall_ns = time.perf_counter_ns
_get_ident = threading.get_ident


def describe(value: Money | int | None) -> str | None:
    return None if value is None else str(value)


def message_text(message: str | Text) -> str:
    return message if isinstance(message, str) else message.render()


@dataclass(frozen=True, slots=True)
class Reason:
    """One driver's answer (or fault), rendered for people."""

    slot: str
    driver: str
    distribution: str | None
    rule: str
    outcome: str  # fee | none | pass | fail | approve | reject | review | fault
    message: str
    threshold: str | None = None
    observed: str | None = None
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"slot": self.slot, "driver": self.driver, "distribution": self.distribution,
                "rule": self.rule, "outcome": self.outcome, "message": self.message,
                "threshold": self.threshold, "observed": self.observed, "code": self.code}


class DriverFault(Exception):
    def __init__(self, code: str, bound: BoundDriver, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.bound = bound


@dataclass(slots=True)
class Verdict:
    """The decision as data: every answer in call order, the fee lines that
    stand, and the fault or kernel rule that ended it, if any."""

    status: str  # posted | held | rejected
    code: str | None = None  # the rule or fault code that rejected or held
    answers: list[tuple[BoundDriver, Any]] = field(default_factory=list)
    fee_lines: list[tuple[BoundDriver, FeeLine]] = field(default_factory=list)
    fault: DriverFault | None = None
    kernel: tuple[str, str] | None = None  # (rule, message) of a kernel refusal
    currency: str | None = None  # the request's: a data answer's ints are amounts in it

    @property
    def fee_minor(self) -> int:
        lines = self.fee_lines
        if not lines:
            return 0
        if len(lines) == 1:
            return lines[0][1].amount.amount_minor
        return sum(line.amount.amount_minor for _, line in lines)

    def reasons(self) -> list[Reason]:
        """Every answer as a :class:`Reason` (this is where text is made)."""
        found: list[Reason] = []
        for bound, answer in self.answers:
            if type(answer) is tuple:  # a data answer (contract version 3)
                answer = read_answer(answer, self.currency)  # type: ignore[arg-type]
            found.extend(answer_reasons(str(bound.slot), bound.name, bound.distribution, answer))
        if self.fault is not None:
            b = self.fault.bound
            found.append(Reason(str(b.slot), b.name, b.distribution, self.fault.code, "fault",
                                str(self.fault), code=self.fault.code))
        if self.kernel is not None:
            rule, message = self.kernel
            found.append(Reason("kernel", "kernel", None, rule, "reject", message, code=rule))
        return found


def answer_reasons(slot: str, driver: str, dist: str | None, answer: Any) -> list[Reason]:
    if isinstance(answer, FeeAnswer):
        message = message_text(answer.message)
        if not answer.lines:
            return [Reason(slot, driver, dist, answer.rule, "none", message)]
        return [Reason(slot, driver, dist, line.rule, "fee", message or line.memo,
                       observed=str(line.amount)) for line in answer.lines]
    if isinstance(answer, LimitAnswer):
        outcome = "pass" if answer.passed else "fail"
    else:
        outcome = str(answer.decision)
    return [Reason(slot, driver, dist, answer.rule, outcome, message_text(answer.message),
                   describe(answer.threshold), describe(answer.observed))]


class _GcClock:
    """Time spent in the garbage collector, so that a collection that
    happens to start inside a driver call is not charged to the driver (a
    full collection of a large heap takes longer than a 50 ms budget, and
    would otherwise reject a transaction by the luck of the allocator)."""

    total_ns = 0
    _started_ns = 0

    @classmethod
    def callback(cls, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            cls._started_ns = time.perf_counter_ns()
        else:
            cls.total_ns += time.perf_counter_ns() - cls._started_ns


gc.callbacks.append(_GcClock.callback)

_TEMPLATES_OK: set[tuple[str, int]] = set()


def _check_message(bound: BoundDriver, message: Any) -> None:
    if type(message) is str:
        return
    if type(message) is not Text or type(message.template) is not str:
        raise DriverFault(DRIVER_BAD_ANSWER, bound,
                          f"{bound.name} answered a message that is neither text nor a Text")
    key = (message.template, len(message.args))
    if key not in _TEMPLATES_OK:  # each distinct template is tried once; values are
        # stored as amounts, counts or their text, whatever their type
        try:
            message.render()
        except (IndexError, KeyError, ValueError) as exc:
            raise DriverFault(DRIVER_BAD_ANSWER, bound,
                              f"{bound.name} answered a template that does not render: {exc}") from None
        _TEMPLATES_OK.add(key)


def _check(bound: BoundDriver, answer: Any, answer_type: type, ctx: PolicyContext) -> Any:
    if type(answer) is not answer_type:
        if type(answer) is tuple:
            return _check_data(bound, answer, answer_type, ctx)
        raise DriverFault(DRIVER_BAD_ANSWER, bound,
                          f"{bound.name} answered {type(answer).__name__}, not {answer_type.__name__}")
    rule = answer.rule
    if type(rule) is not str or not rule:
        raise DriverFault(DRIVER_BAD_ANSWER, bound, f"{bound.name} answered without a rule name")
    message = answer.message
    if type(message) is not str:
        _check_message(bound, message)
    if answer_type is not FeeAnswer:
        threshold, observed = answer.threshold, answer.observed
        if (threshold is not None and type(threshold) is not int and not isinstance(threshold, Money)) or (
                observed is not None and type(observed) is not int and not isinstance(observed, Money)):
            raise DriverFault(DRIVER_BAD_ANSWER, bound,
                              f"{bound.name} gave a threshold/observed that is not Money or int")
    return answer


def _call(bound: BoundDriver, method: Callable[[PolicyContext], Any], ctx: PolicyContext,
          answer_type: type, progress: list[BoundDriver],
          attempts: guard.Attempts | None = None) -> Any:
    """One driver call timed on its own: the checked answer (a ``DriverFault``
    past its budget of processor time).
    ``attempts`` is the row's guard, already entered (None: guard this call)."""
    own = attempts is None
    if own:
        attempts = guard.enter()
    try:
        progress.append(bound)
        gc_before = _GcClock.total_ns
        started = _thread_ns()
        answer = _run(bound, method, ctx, attempts)  # type: ignore[arg-type]
        elapsed_us = max(0, _thread_ns() - started - (_GcClock.total_ns - gc_before)) // 1000
    finally:
        if own:
            guard.leave(attempts)  # type: ignore[arg-type]
    if elapsed_us > bound.budget_ms * 1000:
        raise DriverFault(DRIVER_TIMEOUT, bound,
                          f"{bound.name} used {elapsed_us // 1000} ms of processor time; "
                          f"its budget is {bound.budget_ms} ms")
    return _check(bound, answer, answer_type, ctx)


def _call_fast(bound: BoundDriver, method: Callable[[PolicyContext], Any], ctx: PolicyContext,
               answer_type: type, progress: list[BoundDriver], attempts: guard.Attempts) -> Any:
    """:func:`_call` without a clock of its own (see :func:`_timed`), with
    :func:`_run`'s work and a data answer's check inline: it runs for every
    driver of every row, and on this interpreter a Python call costs about
    what checking a data answer does."""
    progress.append(bound)
    try:
        answer = method(ctx)
    except SystemExit as exc:  # sys.exit() in a driver must not end the kernel (issue 9)
        raise _exited(bound, exc) from None
    except Exception as exc:
        raise _raised(bound, exc, attempts) from exc
    if attempts:  # the driver swallowed the refusal
        raise DriverFault(DRIVER_FORBIDDEN, bound, guard.describe(bound.name, attempts))
    if type(answer) is tuple and bound.driver.contract_version >= DATA_VERSION:
        n = len(answer)
        try:  # a shape ``data_answer`` has passed whole before: only the values' types are left to check
            if answer_type is FeeAnswer:  # (only "no fee" without lines: a fee's lines are checked each time)
                if answer[2] is NO_LINES and answer[0] == "n" and (answer_type, "n", answer[1], answer[3], n) in KNOWN:
                    for value in answer[4:]:
                        if type(value) not in PLAIN:
                            break
                    else:
                        return answer
            elif (answer_type, answer[0], answer[1], answer[4], n) in KNOWN and type(answer[2]) in VALUE \
                    and type(answer[3]) in VALUE:
                for value in answer[5:]:
                    if type(value) not in PLAIN:
                        break
                else:
                    return answer
        except (IndexError, TypeError):  # too short, or something unhashable: the whole check says what
            pass
        return _check_data(bound, answer, answer_type, ctx)
    return _check(bound, answer, answer_type, ctx)  # (an object; a tuple of an older driver: refused there)


def _check_data(bound: BoundDriver, answer: tuple[Any, ...], answer_type: type, ctx: PolicyContext) -> Any:
    problem = version_problem(bound.driver.contract_version, answer_type)
    if problem is not None:
        raise DriverFault(DRIVER_BAD_ANSWER, bound, f"{bound.name} {problem}")
    try:
        return data_answer(answer, answer_type, ctx.request.amount.currency)
    except BadData as exc:
        raise DriverFault(DRIVER_BAD_ANSWER, bound, f"{bound.name} {exc}") from None


def _run(bound: BoundDriver, method: Callable[[PolicyContext], Any], ctx: PolicyContext,
         attempts: guard.Attempts) -> Any:
    """Call the driver inside the row's runtime guard (no file, socket or
    process). The guard is entered once per row: a fault ends the row, so
    whatever ``attempts`` holds was tried by the driver just called."""
    try:
        answer = method(ctx)
    except SystemExit as exc:  # sys.exit() in a driver must not end the kernel (issue 9)
        raise _exited(bound, exc) from None
    except Exception as exc:
        raise _raised(bound, exc, attempts) from exc
    if attempts:  # the driver swallowed the refusal
        raise DriverFault(DRIVER_FORBIDDEN, bound, guard.describe(bound.name, attempts))
    return answer


def _exited(bound: BoundDriver, exc: SystemExit) -> DriverFault:
    return DriverFault(DRIVER_CRASHED, bound, f"{bound.name} tried to exit (SystemExit {exc.code!r}); "
                       "a policy driver may not end the process")


def _raised(bound: BoundDriver, exc: Exception, attempts: guard.Attempts) -> DriverFault:
    if attempts:  # it raised because the guard refused what it tried
        return DriverFault(DRIVER_FORBIDDEN, bound, guard.describe(bound.name, attempts))
    return DriverFault(DRIVER_RAISED, bound, f"{bound.name} raised {type(exc).__name__}: {exc}")


def _check_fee_answer(bound: BoundDriver, answer: FeeAnswer, currency: str) -> None:
    if type(answer.lines) is not tuple or len(answer.lines) > MAX_FEE_LINES_PER_DRIVER:
        raise DriverFault(DRIVER_BAD_ANSWER, bound,
                          f"{bound.name} must answer a tuple of at most {MAX_FEE_LINES_PER_DRIVER} fee lines")
    for line in answer.lines:
        if (type(line) is not FeeLine or not isinstance(line.amount, Money)
                or type(line.rule) is not str or not line.rule or type(line.memo) is not str):
            raise DriverFault(DRIVER_BAD_ANSWER, bound, f"{bound.name} answered an invalid fee line")
        if line.amount.currency != currency or line.amount.amount_minor <= 0:
            raise DriverFault(DRIVER_BAD_ANSWER, bound,
                              f"{bound.name} answered a fee of {line.amount}; fees must be positive {currency}")


def _evaluate(drivers: Drivers, ctx: PolicyContext, progress: list[BoundDriver],
              skip_fees: bool, slots: Sequence[Slot], call: Any, attempts: guard.Attempts) -> Verdict:
    verdict = Verdict("posted")
    answers = verdict.answers
    try:
        if not skip_fees and Slot.FEE in slots:
            verdict.currency = currency = ctx.request.amount.currency
            fee_lines = verdict.fee_lines
            for bound in drivers[Slot.FEE]:
                answer = call(bound, bound.driver.fees, ctx, FeeAnswer, progress, attempts)  # type: ignore[attr-defined]
                if type(answer) is tuple:  # data (checked): (outcome, rule, lines, template, *args)
                    answers.append((bound, answer))
                    for rule, amount, memo in answer[2]:
                        fee_lines.append((bound, FeeLine(rule, money(amount, currency), memo)))
                    continue
                _check_fee_answer(bound, answer, currency)
                answers.append((bound, answer))
                for line in answer.lines:
                    fee_lines.append((bound, line))
            if fee_lines:
                ctx = _with_fees(ctx, money(verdict.fee_minor, currency))
        if Slot.LIMIT in slots:
            for bound in drivers[Slot.LIMIT]:
                answer = call(bound, bound.driver.check, ctx, LimitAnswer, progress, attempts)  # type: ignore[attr-defined]
                if type(answer) is tuple:  # data (checked): (outcome, rule, ...)
                    if verdict.currency is None:  # (what its ints are amounts in)
                        verdict.currency = ctx.request.amount.currency
                    answers.append((bound, answer))
                    if answer[0] == "x" and verdict.code is None:
                        verdict.code = answer[1]
                    continue
                if type(answer.passed) is not bool:
                    raise DriverFault(DRIVER_BAD_ANSWER, bound, f"{bound.name} answered passed={answer.passed!r}")
                answers.append((bound, answer))
                if not answer.passed and verdict.code is None:
                    verdict.code = answer.rule
            if verdict.code is not None:
                verdict.status = "rejected"
                return verdict
        if Slot.APPROVAL not in slots:
            return verdict
        review_by: str | None = None
        for bound in drivers[Slot.APPROVAL]:
            answer = call(bound, bound.driver.decide, ctx, ApprovalAnswer, progress, attempts)  # type: ignore[attr-defined]
            if type(answer) is tuple:  # data (checked): (outcome, rule, ...)
                if verdict.currency is None:  # (what its ints are amounts in)
                    verdict.currency = ctx.request.amount.currency
                answers.append((bound, answer))
                letter = answer[0]
                if letter == "r" and verdict.code is None:
                    verdict.code = answer[1]
                elif letter == "v" and review_by is None:
                    review_by = answer[1]
                continue
            decision = answer.decision
            if type(decision) is not Decision:
                raise DriverFault(DRIVER_BAD_ANSWER, bound, f"{bound.name} answered decision={decision!r}")
            answers.append((bound, answer))
            if decision is Decision.REJECT and verdict.code is None:
                verdict.code = answer.rule
            elif decision is Decision.REVIEW and review_by is None:
                review_by = answer.rule
        if verdict.code is not None:
            verdict.status = "rejected"
        elif review_by is not None:
            verdict.status, verdict.code = "held", review_by
        return verdict
    except DriverFault as fault:
        verdict.status, verdict.code, verdict.fault = "rejected", fault.code, fault
        verdict.fee_lines = []
        return verdict


def _with_fees(ctx: PolicyContext, fees: Money) -> PolicyContext:
    return with_fees(ctx.request, ctx.source, ctx.dest, ctx.usage, ctx.timezone, ctx.local_date, fees)


def _timed(drivers: Drivers, ctx: PolicyContext, progress: list[BoundDriver], skip_fees: bool,
           slots: Sequence[Slot], smallest_ms: int, dog: _Watchdog | None = None) -> Verdict:
    """Run once under the wall clock; re-run with every driver timed on its
    processor clock only if the row as a whole took more than the smallest
    budget involved (see the module docstring). The
    re-run is the kernel's own doing, so the hang watchdog (if any) starts
    its wall clock afresh for it: on a loaded machine two runs of a slow
    driver must not add up to a hang."""
    attempts = guard.enter()
    try:
        gc_before = _GcClock.total_ns
        started = _wall_ns()
        verdict = _evaluate(drivers, ctx, progress, skip_fees, slots, _call_fast, attempts)
        spent_ns = _wall_ns() - started - (_GcClock.total_ns - gc_before)  # >= the processor time spent
        if spent_ns > smallest_ms * 1_000_000:  # (the smallest budget among the drivers in ``slots``)
            progress.clear()
            attempts.clear()
            if dog is not None:
                dog.rows += 1  # a new row to the watchdog: a full limit for the re-run
            verdict = _evaluate(drivers, ctx, progress, skip_fees, slots, _call, attempts)
    finally:
        guard.leave(attempts)
    return verdict


_BUDGETS: dict[tuple[int, tuple[Slot, ...]], tuple[Drivers, int, int]] = {}


def _budgets(drivers: Drivers, slots: Sequence[Slot]) -> tuple[int, int]:
    """(smallest, total) budget in ms of the drivers in ``slots``, computed
    once per bound profile (the mapping is kept, so its id is not reused).
    The last answer is kept by identity: a file's rows all ask for the same
    profile, and ``id()`` is an audited event (the runtime guard's hook runs
    for each)."""
    last = _LAST_BUDGETS[0]
    if last[0] is drivers and last[1] is slots:
        return last[2]
    key = (id(drivers), tuple(slots))
    found = _BUDGETS.get(key)
    if found is None or found[0] is not drivers:
        budgets = [b.budget_ms for s in slots for b in drivers[s]]
        found = _BUDGETS[key] = (drivers, min(budgets, default=0), sum(budgets))
        if len(_BUDGETS) > 256:  # profiles re-bound over a long-lived process
            _BUDGETS.clear()
            _BUDGETS[key] = found
    answer = (found[1], found[2])
    _LAST_BUDGETS[0] = (drivers, slots, answer)
    return answer


_LAST_BUDGETS: list[tuple[Any, Any, tuple[int, int]]] = [(None, None, (0, 0))]


class _Hang(BaseException):
    """Raised by the watchdog's signal inside a driver that does not return.
    A BaseException, so a driver's ``except Exception`` cannot swallow it."""


WATCHDOG_THREAD = "bank-watchdog"
DRIVER_THREAD = "bank-drivers"  # (a thread of ``_Worker``)


class _Watchdog:
    """A thread that interrupts the main thread when a row's drivers have
    not returned for the row's budgets plus the grace period (wall time).

    The main thread only bumps a counter per row and flips ``in_drivers``;
    the watchdog reads them every ``WATCHDOG_TICK_S``."""

    def __init__(self) -> None:
        self.rows = 0
        self.kill_row = -1
        self.in_drivers = False
        self.limit_s = 0.0
        self.main_ident = threading.main_thread().ident
        signal.signal(signal.SIGALRM, self._on_alarm)
        threading.Thread(target=self._loop, name=WATCHDOG_THREAD, daemon=True).start()

    def _on_alarm(self, _signum: int, _frame: Any) -> None:
        if self.in_drivers and self.rows == self.kill_row:  # still the row it meant
            raise _Hang()

    def _loop(self) -> None:
        seen, since = -1, time.monotonic()
        while True:
            time.sleep(WATCHDOG_TICK_S)
            now = time.monotonic()
            if self.rows != seen or not self.in_drivers:
                seen, since = self.rows, now
            elif now - since > self.limit_s:
                self.kill_row = seen
                signal.pthread_kill(self.main_ident, signal.SIGALRM)  # type: ignore[arg-type]
                since = now  # once per limit, until the row moves on


class _Worker:
    """One daemon thread that runs evaluations; abandoned if one hangs."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[tuple[Callable[[], Any], list[Any], threading.Event]] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name=DRIVER_THREAD, daemon=True).start()

    def _loop(self) -> None:
        while True:
            job, box, done = self.jobs.get()
            try:
                box.append((True, job()))
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                box.append((False, exc))
            done.set()


class Evaluator:
    """Runs drivers under CPU budgets and a hang watchdog (see module doc)."""

    def __init__(self) -> None:
        self._worker: _Worker | None = None
        self._lock = threading.Lock()
        self._watchdog: _Watchdog | None = None
        self._watchdog_refused = False

    def evaluate(self, drivers: Drivers, ctx: PolicyContext, *, skip_fees: bool = False,
                 slots: Sequence[Slot] = _ALL_SLOTS) -> Verdict:
        progress: list[BoundDriver] = []
        smallest_ms, total_ms = _budgets(drivers, slots)
        budget_ms = total_ms + HANG_GRACE_MS
        dog = self._main_watchdog()
        if dog is None:
            return self._evaluate_on_worker(drivers, ctx, progress, skip_fees, slots, smallest_ms, budget_ms)
        dog.limit_s = budget_ms / 1000
        dog.rows += 1
        dog.in_drivers = True
        try:
            return _timed(drivers, ctx, progress, skip_fees, slots, smallest_ms, dog)
        except _Hang:
            return _hung(progress, budget_ms)
        finally:
            dog.in_drivers = False

    def _main_watchdog(self) -> _Watchdog | None:
        dog = self._watchdog
        if dog is not None:  # (every row after the first: one comparison)
            return dog if _get_ident() == dog.main_ident else None
        if (self._watchdog_refused or not hasattr(signal, "pthread_kill")
                or threading.current_thread() is not threading.main_thread()):
            return None
        current = signal.getsignal(signal.SIGALRM)
        if current not in (signal.SIG_DFL, signal.SIG_IGN, None):
            self._watchdog_refused = True  # someone else owns SIGALRM: don't take it
            return None
        self._watchdog = _Watchdog()
        return self._watchdog

    def _evaluate_on_worker(self, drivers: Drivers, ctx: PolicyContext, progress: list[BoundDriver],
                            skip_fees: bool, slots: Sequence[Slot], smallest_ms: int, budget_ms: int) -> Verdict:
        box: list[Any] = []
        done = threading.Event()
        with self._lock:
            if self._worker is None:
                self._worker = _Worker()
            worker = self._worker
            worker.jobs.put((lambda: _timed(drivers, ctx, progress, skip_fees, slots, smallest_ms), box, done))
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
    return Verdict("rejected", DRIVER_TIMEOUT, fault=fault)
