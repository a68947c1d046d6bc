"""The checks behind :mod:`bank_core.testing` (private; import that module).

Each check has a stable name (``CHECKS``) and reports :class:`Problem` data.
A driver is called only through :func:`call`, which snapshots the context
before and after (mutation), and runs the call under the kernel's own I/O
guard (:mod:`bank_core.guard`, the one every real transaction meets), with
the clock frozen at a given instant and the random module seeded, so that two
calls whose clocks and seeds differ must still answer alike.

The float-money checks are in ``bank_core._conformance_floats``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pydantic

from bank_core import guard
from bank_core.answers import BadData, checked_object, version_problem
from bank_core.hints import CONTRACT_VERSION_HINT, pydantic_errors
from bank_core._conformance_floats import (
    exact_amount_problem,
    param_rates,
    params_float_problems,
)
from bank_core.contract import (
    ANSWER_TYPES,
    SLOT_BASES,
    SUPPORTED_CONTRACT_VERSIONS,
    Decision,
    Driver,
    DriverParams,
    FeeAnswer,
    FeeLine,
    Kind,
    LimitAnswer,
    Money,
    MoneyError,
    PolicyContext,
    Slot,
    Text,
)

CHECKS = (
    "entry_point",          # registered in the slot's namespace, imports, subclasses the slot's base
    "contract_version",     # declared on the driver's own class, inside SUPPORTED_CONTRACT_VERSIONS
    "budget",               # budget_ms is a positive int
    "params_model",         # Params is a DriverParams subclass
    "params_defaults",      # every Params field has a default
    "params_unknown_keys",  # Params refuses a key it does not know
    "params_float",         # no float in Params (type, default) or in the params under test
    "params",               # the params under test validate
    "construct",            # the driver can be built from its params
    "deterministic",        # same input twice, same answer, though the clock and the random seed moved
    "no_mutation",          # the context is unchanged after the call
    "edge_inputs",          # the slot's answer type, valid, for every edge input; no exception
    "exact_amounts",        # fees in exact integer arithmetic where float arithmetic would differ
    "rule_name",            # every answer and fee line names its rule
    "no_io",                # no file, socket or process operation
    "within_budget",        # each call returns within budget_ms (the better of two tries)
)
MAX_PROBLEMS_PER_CHECK = 5
SLOW_CALLS_BEFORE_STOP = 3  # a driver past its budget this often is not called any more
UNKNOWN_KEY = "conformance_unknown_key"
METHODS = {Slot.FEE: "fees", Slot.LIMIT: "check", Slot.APPROVAL: "decide"}
_CONTRACT_BASES = (*SLOT_BASES.values(), Driver, object)
CLOCK_SHIFT = timedelta(days=3, hours=5)  # between the two calls: days apart, another local date
FIRST_SEED, SECOND_SEED = 1, 2


@dataclass(frozen=True, slots=True)
class Problem:
    """One way a driver breaks the contract: the check's name and what happened."""

    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


@dataclass(frozen=True, slots=True)
class Subject:
    cls: type
    slot: Slot
    params: dict[str, Any]
    timezone: str
    currency: str
    params_by_currency: dict[str, dict[str, Any]]


# --------------------------------------------------------------------------
# Calling a driver
# --------------------------------------------------------------------------

def _snapshot(value: Any) -> Any:
    """A structure of plain values equal before and after iff nothing changed."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__qualname__,
                **{f.name: _snapshot(getattr(value, f.name)) for f in fields(value)}}
    if hasattr(value, "items"):
        return ("mapping", tuple(sorted(((repr(k), _snapshot(v)) for k, v in value.items()),
                                        key=lambda item: item[0])))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_snapshot(v) for v in value))
    return (type(value).__qualname__, repr(value))


def _first_change(before: Any, after: Any, path: str) -> str | None:
    if before == after:
        return None
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before:
            found = _first_change(before[key], after.get(key), f"{path}.{key}")
            if found:
                return found
    return path


@dataclass(slots=True)
class Call:
    label: str
    currency: str
    answer: Any = None
    error: BaseException | None = None
    io: tuple[str, ...] = ()
    changed: str | None = None
    elapsed_ns: int = 0
    bad_data: str | None = None  # what the kernel refuses in a data answer (then ``answer`` is the tuple)

    def outcome(self) -> tuple[Any, ...]:
        if self.error is not None:
            return ("raised", type(self.error).__name__, str(self.error))
        return ("answered", self.answer)

    def text(self) -> str:
        """The outcome as one line, to show two of them side by side."""
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {self.error}"
        return repr(self.answer)


@contextmanager
def _world(clock: datetime | None, seed: int | None) -> Iterator[None]:
    """The wall clock frozen at ``clock`` (``time.time``, ``datetime.now``,
    ``date.today``...; not the monotonic clocks the budget is timed with) and
    the ``random`` module seeded with ``seed``, for one call."""
    state = random.getstate() if seed is not None else None
    if seed is not None:
        random.seed(seed)
    try:
        if clock is None:
            yield
        else:
            import time_machine

            with time_machine.travel(clock, tick=False):
                yield
    finally:
        if state is not None:
            random.setstate(state)


def call(driver: Driver, slot: Slot, label: str, ctx: PolicyContext, *,
         clock: datetime | None = None, seed: int | None = None) -> Call:
    method = getattr(driver, METHODS[slot])
    record = Call(label, ctx.request.amount.currency)
    before = _snapshot(ctx)
    with _world(clock, seed), guard.guarded() as seen:
        started = time.perf_counter_ns()
        try:
            record.answer = method(ctx)
        except Exception as exc:  # noqa: BLE001 - a raising driver is a finding
            record.error = exc
        record.elapsed_ns = time.perf_counter_ns() - started
    if type(record.answer) is tuple:  # a data answer: judged by the kernel's own check, then read as the
        record.answer, record.bad_data = _read_data(driver, slot, record.answer, record.currency)  # object
    record.io = tuple(seen)
    record.changed = _first_change(before, _snapshot(ctx), "ctx")
    return record


def _read_data(driver: Driver, slot: Slot, answer: tuple[Any, ...], currency: str) -> tuple[Any, str | None]:
    problem = version_problem(getattr(type(driver), "contract_version", None), ANSWER_TYPES[slot])
    if problem is not None:
        return answer, problem
    try:
        return checked_object(answer, ANSWER_TYPES[slot], currency), None
    except BadData as exc:
        return answer, str(exc)


def side_by_side(first: str, then: str, context: int = 40, width: int = 110) -> str:
    """Two answers, one above the other, from a little before the first
    character where they differ, with a caret under it."""
    at = next((i for i, (a, b) in enumerate(zip(first, then)) if a != b), min(len(first), len(then)))
    start = max(0, at - context)

    def cut(text: str) -> str:
        return ("..." if start else "") + text[start:start + width] + ("..." if len(text) > start + width else "")

    caret = " " * ((3 if start else 0) + at - start) + "^"
    return (f"they differ at character {at + 1}:\n      first: {cut(first)}\n      then:  {cut(then)}\n"
            f"             {caret}")


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------

class _Report:
    """Problems grouped by (check, what happened), with the inputs it happened on."""

    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self._found: dict[tuple[str, str], list[str]] = {}

    def __call__(self, check: str, message: str, label: str | None = None) -> None:
        if check in self.wanted:
            labels = self._found.setdefault((check, message), [])
            if label is not None:
                labels.append(label)

    def problems(self) -> list[Problem]:
        result: list[Problem] = []
        for check in CHECKS:
            mine = [(message, labels) for (c, message), labels in self._found.items() if c == check]
            for message, labels in mine[:MAX_PROBLEMS_PER_CHECK]:
                if labels:
                    shown = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
                    message = f"{message} (on {shown})"
                result.append(Problem(check, message))
            if len(mine) > MAX_PROBLEMS_PER_CHECK:
                result.append(Problem(check, f"... and {len(mine) - MAX_PROBLEMS_PER_CHECK} other problems"))
        return result


def _check_shape(subject: Subject, report: _Report) -> type[DriverParams] | None:
    """Class-level checks; the Params model if the driver can be called."""
    cls, base = subject.cls, SLOT_BASES[subject.slot]
    if not isinstance(cls, type) or not issubclass(cls, base):
        report("entry_point", f"{cls!r} is not a subclass of bank_core.contract.{base.__name__}")
        return None
    if getattr(cls, "__abstractmethods__", None):
        report("entry_point", f"{cls.__name__} does not implement {sorted(cls.__abstractmethods__)}")
        return None
    low, high = SUPPORTED_CONTRACT_VERSIONS
    version = getattr(cls, "contract_version", None)
    if not any("contract_version" in vars(k) for k in cls.__mro__ if k not in _CONTRACT_BASES):
        report("contract_version", f"{cls.__name__} declares no contract version of its own (it is not "
                                   f"inherited from bank_core.contract): {CONTRACT_VERSION_HINT}")
    elif type(version) is not int or not low <= version <= high:
        report("contract_version", f"declares contract version {version!r}; this kernel supports {low}..{high}")
    budget = getattr(cls, "budget_ms", None)
    if type(budget) is not int or budget <= 0:
        report("budget", f"budget_ms {budget!r} must be a positive int")
    params_cls = getattr(cls, "Params", None)
    if not (isinstance(params_cls, type) and issubclass(params_cls, DriverParams)):
        report("params_model", "Params must be a subclass of bank_core.contract.DriverParams")
        return None
    required = [name for name, field in params_cls.model_fields.items() if field.is_required()]
    if required:
        report("params_defaults", f"Params fields without a default: {', '.join(required)} "
                                  "(a profile may omit any param)")
    else:
        try:
            params_cls()
        except pydantic.ValidationError as exc:
            report("params_defaults", f"Params() with the defaults does not validate: {_errors(exc)}")
    try:
        params_cls.model_validate({**subject.params, UNKNOWN_KEY: "1"})
        report("params_unknown_keys", f"Params accepted an unknown key {UNKNOWN_KEY!r}; "
                                      "keep DriverParams' model_config extra='forbid'")
    except pydantic.ValidationError:
        pass
    for message in params_float_problems(params_cls, subject.params):
        report("params_float", message)
    for currency, params in subject.params_by_currency.items():
        for message in params_float_problems(params_cls, params):
            report("params_float", f"for {currency}: {message}")
    return params_cls


def _errors(exc: pydantic.ValidationError, allowed: Any = ()) -> str:
    return pydantic_errors(exc.errors(), allowed)


def _instances(subject: Subject, params_cls: type[DriverParams], report: _Report) -> dict[str, Driver]:
    """One driver per currency (params may differ by currency); the subject's
    currency under the key ``""`` is the default."""
    drivers: dict[str, Driver] = {}
    wanted = {"": subject.params, **subject.params_by_currency}
    for currency, params in wanted.items():
        where = f" for {currency}" if currency else ""
        try:
            parsed = params_cls.model_validate(params)
        except pydantic.ValidationError as exc:
            report("params", f"params{where} {params!r} do not validate: {_errors(exc, params_cls.model_fields)}")
            continue
        try:
            drivers[currency] = subject.cls(parsed)
        except Exception as exc:  # noqa: BLE001
            report("construct", f"constructor{where} raised {type(exc).__name__}: {exc}")
    return drivers


def _answer_problems(slot: Slot, currency: str, answer: Any) -> tuple[list[str], list[str]]:
    """(edge problems, rule problems) of one answer, as the kernel judges it."""
    expected = ANSWER_TYPES[slot]
    if type(answer) is not expected:
        return [f"answered {type(answer).__name__}, not {expected.__name__}"], []
    edge: list[str] = []
    rules: list[str] = []
    if not isinstance(answer.rule, str) or not answer.rule:
        rules.append(f"answered rule={answer.rule!r}; every answer names its rule")
    if isinstance(answer.message, Text):
        try:
            answer.message.render()
        except (IndexError, KeyError, ValueError) as exc:
            edge.append(f"message template {answer.message.template!r} does not render: {exc}")
    elif not isinstance(answer.message, str):
        edge.append(f"message {answer.message!r} is neither text nor a Text")
    if isinstance(answer, FeeAnswer):
        if not isinstance(answer.lines, tuple):
            edge.append("lines must be a tuple of FeeLine")
        for line in answer.lines if isinstance(answer.lines, tuple) else ():
            if type(line) is not FeeLine or not isinstance(line.amount, Money):
                edge.append(f"invalid fee line {line!r}")
                continue
            if not isinstance(line.rule, str) or not line.rule:
                rules.append(f"a fee line has rule={line.rule!r}")
            if line.amount.currency != currency or line.amount.amount_minor <= 0:
                edge.append(f"fee {line.amount}: fees must be positive {currency}")
        return edge, rules
    if isinstance(answer, LimitAnswer) and type(answer.passed) is not bool:
        edge.append(f"passed={answer.passed!r} is not a bool")
    if not isinstance(answer, LimitAnswer) and not isinstance(answer.decision, Decision):
        edge.append(f"decision={answer.decision!r} is not a Decision")
    for name in ("threshold", "observed"):
        value = getattr(answer, name)
        if value is not None and type(value) is not int and not isinstance(value, Money):
            edge.append(f"{name}={value!r} is not Money, int or None")
    return edge, rules


def _raised(record: Call) -> str:
    exc = record.error
    text = f"raised {type(exc).__name__}: {exc}"
    if isinstance(exc, MoneyError) and exc.field == "param":
        cur = record.currency
        text += (f" (its params cannot be expressed in {cur}, so every {cur} request would fail closed "
                 f"with driver_raised; if a {cur} institution would use other params, pass "
                 f"params_by_currency={{'{cur}': {{...}}}})")
    return text


BEHAVIOUR = {"deterministic", "no_mutation", "edge_inputs", "exact_amounts", "rule_name", "no_io",
             "within_budget"}


def run_checks(subject: Subject, contexts: Callable[[], list[tuple[str, PolicyContext]]],
               wanted: set[str], amount_context: Callable[[Kind, int, str], PolicyContext] | None = None,
               ) -> list[Problem]:
    """Every problem of ``subject`` among the ``wanted`` checks. ``contexts``
    makes the edge inputs (fresh objects on each call); ``amount_context``
    makes a request of a kind, amount (minor units) and channel in the
    subject's currency, for the ``exact_amounts`` check."""
    report = _Report(wanted)
    params_cls = _check_shape(subject, report)
    if params_cls is None or not (wanted & (BEHAVIOUR | {"params", "construct"})):
        return report.problems()
    drivers = _instances(subject, params_cls, report)
    if "" not in drivers or not wanted & BEHAVIOUR:
        return report.problems()
    pairs, stopped = _run_twice(subject, drivers, contexts)
    _judge_budget(subject, pairs, stopped, report)
    _judge_determinism(subject, drivers, pairs, contexts, report)
    _judge_answers(subject, pairs, report)
    if "exact_amounts" in wanted and subject.slot is Slot.FEE and amount_context is not None and not stopped:
        _judge_exact_amounts(subject, drivers[""], amount_context, report)
    return report.problems()


def _budget_ns(subject: Subject) -> int | None:
    budget_ms = subject.cls.budget_ms
    return budget_ms * 1_000_000 if type(budget_ms) is int and budget_ms > 0 else None


def _run_twice(subject: Subject, drivers: dict[str, Driver],
               contexts: Callable[[], list[tuple[str, PolicyContext]]]) -> tuple[list[tuple[Call, Call]], bool]:
    """Each edge input twice, on equal fresh objects: first with the clock at
    the request's time and one random seed, then with the clock days later
    (another local date) and another seed."""
    budget_ns = _budget_ns(subject)

    def run(cases: list[tuple[str, PolicyContext]], first: bool) -> list[Call]:
        calls, slow = [], 0
        for label, ctx in cases:
            driver = drivers.get(ctx.request.amount.currency, drivers[""])
            clock = ctx.request.at if first else ctx.request.at + CLOCK_SHIFT
            calls.append(call(driver, subject.slot, label, ctx, clock=clock,
                              seed=FIRST_SEED if first else SECOND_SEED))
            slow += budget_ns is not None and calls[-1].elapsed_ns > budget_ns
            if first and slow >= SLOW_CALLS_BEFORE_STOP:
                break
        return calls

    cases = contexts()
    first = run(cases, first=True)
    second = run(contexts()[:len(first)], first=False)
    return list(zip(first, second)), len(first) < len(cases)


def _judge_budget(subject: Subject, pairs: list[tuple[Call, Call]], stopped: bool, report: _Report) -> None:
    budget_ns = _budget_ns(subject)
    for one, two in pairs:
        if budget_ns is not None and min(one.elapsed_ns, two.elapsed_ns) > budget_ns:
            report("within_budget", f"took {min(one.elapsed_ns, two.elapsed_ns) // 1_000_000} ms; "
                                    f"its budget_ms is {subject.cls.budget_ms}", one.label)
    if stopped:
        report("within_budget", f"stopped after {len(pairs)} inputs: too slow to check the rest")


def _judge_determinism(subject: Subject, drivers: dict[str, Driver], pairs: list[tuple[Call, Call]],
                       contexts: Callable[[], list[tuple[str, PolicyContext]]], report: _Report) -> None:
    differ = [(one, two) for one, two in pairs if one.outcome() != two.outcome()]
    if not differ:
        return
    one, two = differ[0]
    ctx = dict(contexts())[one.label]  # a fresh copy of the input, for two more calls
    message = (f"same input twice, different answers: {_cause(subject, drivers, one, ctx)}; "
               f"{side_by_side(one.text(), two.text())}\n   ")
    for one, _ in differ:
        report("deterministic", message, one.label)


def _cause(subject: Subject, drivers: dict[str, Driver], one: Call, ctx: PolicyContext) -> str:
    """Why two calls differed, found with two more calls on that input."""
    driver = drivers.get(ctx.request.amount.currency, drivers[""])
    at, later = ctx.request.at, ctx.request.at + CLOCK_SHIFT
    if call(driver, subject.slot, one.label, ctx, clock=at, seed=FIRST_SEED).outcome() != one.outcome():
        return ("it answered otherwise with the same clock and seed, so it keeps state between calls or "
                "draws from an unseeded source (a counter, os.urandom, uuid4, secrets): decide from ctx alone")
    if call(driver, subject.slot, one.label, ctx, clock=later, seed=FIRST_SEED).outcome() != one.outcome():
        zone = ZoneInfo(ctx.timezone)
        return (f"it reads the clock: only the clock moved between the calls, from {at.isoformat()} "
                f"({at.astimezone(zone).date()} in {ctx.timezone}) to {later.isoformat()} "
                f"({later.astimezone(zone).date()}); use ctx.request.at and ctx.local_date, never "
                "datetime.now(), date.today() or time.time()")
    return ("it draws random numbers: only the random seed changed between the calls; "
            "a driver's answer follows from its context alone")


def _judge_answers(subject: Subject, pairs: list[tuple[Call, Call]], report: _Report) -> None:
    for one, two in pairs:
        for what in dict.fromkeys(one.io + two.io):
            report("no_io", f"tried to {what}: refused, as in a real transaction (driver_forbidden); a driver "
                            "uses no files, sockets or processes: put what it would log in its answer's "
                            "message, which the audit log keeps", one.label)
        if one.changed:
            report("no_mutation", f"changed {one.changed}", one.label)
        if one.io:
            continue  # the refused operation explains any exception
        if one.error is not None:
            report("edge_inputs", _raised(one), one.label)
            continue
        if one.bad_data is not None:
            report("edge_inputs", one.bad_data, one.label)
            continue
        edge, rules = _answer_problems(subject.slot, one.currency, one.answer)
        for message in edge:
            report("edge_inputs", message, one.label)
        for message in rules:
            report("rule_name", message, one.label)


def _judge_exact_amounts(subject: Subject, driver: Driver,
                         amount_context: Callable[[Kind, int, str], PolicyContext], report: _Report) -> None:
    def ask(kind: Kind, amount_minor: int, channel: str) -> Any:
        ctx = amount_context(kind, amount_minor, channel)
        record = call(driver, subject.slot, "exact amounts", ctx, clock=ctx.request.at, seed=FIRST_SEED)
        return None if record.error is not None or record.io else record.answer

    found = exact_amount_problem(ask, subject.currency, param_rates(driver.params))
    if found:
        report("exact_amounts", found)
