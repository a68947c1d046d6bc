"""The checks behind :mod:`bank_core.testing` (private; import that module).

Each check has a stable name (``CHECKS``) and reports :class:`Problem` data.
A driver is called only through :func:`_call`, which snapshots the context
before and after (mutation), and runs the call under a guard that records and
refuses file, socket and process operations. The guard is a
``sys.addaudithook`` hook, installed once per process (hooks cannot be
removed) and active only while a context variable is set, so it costs the
rest of the process one variable read per audited event.
"""

from __future__ import annotations

import contextvars
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import pydantic

from bank_core.contract import (
    ANSWER_TYPES,
    SLOT_BASES,
    SUPPORTED_CONTRACT_VERSIONS,
    Decision,
    Driver,
    DriverParams,
    FeeAnswer,
    FeeLine,
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
    "params",               # the params under test validate
    "construct",            # the driver can be built from its params
    "deterministic",        # same input twice, same answer
    "no_mutation",          # the context is unchanged after the call
    "edge_inputs",          # the slot's answer type, valid, for every edge input; no exception
    "rule_name",            # every answer and fee line names its rule
    "no_io",                # no file, socket or process operation
    "within_budget",        # each call returns within budget_ms (the better of two tries)
)
MAX_PROBLEMS_PER_CHECK = 5
SLOW_CALLS_BEFORE_STOP = 3  # a driver past its budget this often is not called any more
UNKNOWN_KEY = "conformance_unknown_key"
METHODS = {Slot.FEE: "fees", Slot.LIMIT: "check", Slot.APPROVAL: "decide"}
_CONTRACT_BASES = (*SLOT_BASES.values(), Driver, object)
_EDGE_CURRENCIES = ("JPY", "BHD")


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
# The I/O guard
# --------------------------------------------------------------------------

_GUARD: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "bank_conformance_guard", default=None)
_INSTALL_LOCK = threading.Lock()
_installed = False
_read_only_prefixes: tuple[str, ...] = ()
_IMPORT_SUFFIXES = (".py", ".pyc")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_FORBIDDEN = {
    "socket.__new__": "create a socket", "socket.connect": "connect a socket",
    "socket.bind": "bind a socket", "socket.getaddrinfo": "resolve a host name",
    "socket.sendto": "send on a socket", "subprocess.Popen": "start a process",
    "os.system": "run a shell command", "os.exec": "exec a program", "os.posix_spawn": "spawn a process",
    "os.spawn": "spawn a process", "os.fork": "fork", "os.forkpty": "fork",
    "os.remove": "remove a file", "os.rename": "rename a file", "os.mkdir": "make a directory",
    "os.rmdir": "remove a directory", "os.truncate": "truncate a file", "sqlite3.connect": "open a database",
    "urllib.Request": "make an HTTP request",
}


def _forbidden(event: str, args: tuple[Any, ...]) -> str | None:
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (isinstance(flags, int) and flags & _WRITE_FLAGS)
        if not writes and isinstance(path, str) and (
                path.endswith(_IMPORT_SUFFIXES) or path.startswith(_read_only_prefixes)):
            return None  # an import, or the kernel's timezone data
        return f"open a file ({path!r}, mode {mode!r})"
    what = _FORBIDDEN.get(event)
    if what is None:
        return None
    if event in ("socket.connect", "socket.bind", "socket.sendto"):
        detail = args[1:2]
    elif event == "socket.getaddrinfo" or event == "socket.__new__":
        detail = args[:2] if event == "socket.getaddrinfo" else ()
    else:
        detail = args[:1]
    return f"{what} ({event}{' ' + ', '.join(map(repr, detail)) if detail else ''})"


def _audit(event: str, args: tuple[Any, ...]) -> None:
    seen = _GUARD.get()
    if seen is None:
        return
    what = _forbidden(event, args)
    if what is not None:
        seen.append(what)
        raise PermissionError(f"bank_core.testing: a policy driver may not {what}")


def _install_guard() -> None:
    global _installed, _read_only_prefixes
    with _INSTALL_LOCK:
        if _installed:
            return
        import zoneinfo

        prefixes = [os.path.join(p, "") for p in zoneinfo.TZPATH]
        spec = importlib.util.find_spec("tzdata")
        if spec is not None and spec.submodule_search_locations:
            prefixes += [os.path.join(p, "") for p in spec.submodule_search_locations]
        _read_only_prefixes = tuple(prefixes)
        sys.addaudithook(_audit)
        _installed = True


@contextmanager
def guarded() -> Iterator[list[str]]:
    """Record (and refuse) file, socket and process operations in this block."""
    _install_guard()
    seen: list[str] = []
    token = _GUARD.set(seen)
    try:
        yield seen
    finally:
        _GUARD.reset(token)


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

    def outcome(self) -> tuple[Any, ...]:
        if self.error is not None:
            return ("raised", type(self.error).__name__, str(self.error))
        return ("answered", self.answer)


def call(driver: Driver, slot: Slot, label: str, ctx: PolicyContext) -> Call:
    method = getattr(driver, METHODS[slot])
    record = Call(label, ctx.request.amount.currency)
    before = _snapshot(ctx)
    with guarded() as seen:
        started = time.perf_counter_ns()
        try:
            record.answer = method(ctx)
        except Exception as exc:  # noqa: BLE001 - a raising driver is a finding
            record.error = exc
        record.elapsed_ns = time.perf_counter_ns() - started
    record.io = tuple(seen)
    record.changed = _first_change(before, _snapshot(ctx), "ctx")
    return record


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
        report("contract_version", "contract_version must be set on the driver's own class "
                                   "(it is not inherited from bank_core.contract)")
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
    return params_cls


def _errors(exc: pydantic.ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors())


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
            report("params", f"params{where} {params!r} do not validate: {_errors(exc)}")
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


def run_checks(subject: Subject, contexts: Callable[[], list[tuple[str, PolicyContext]]],
               wanted: set[str]) -> list[Problem]:
    report = _Report(wanted)
    params_cls = _check_shape(subject, report)
    behaviour = {"deterministic", "no_mutation", "edge_inputs", "rule_name", "no_io", "within_budget"}
    if params_cls is None or not (wanted & (behaviour | {"params", "construct"})):
        return report.problems()
    drivers = _instances(subject, params_cls, report)
    if "" not in drivers or not wanted & behaviour:
        return report.problems()

    budget_ms = subject.cls.budget_ms
    budget_ns = budget_ms * 1_000_000 if type(budget_ms) is int and budget_ms > 0 else None

    def run(cases: list[tuple[str, PolicyContext]], stop_when_slow: bool) -> list[Call]:
        calls, slow = [], 0
        for label, ctx in cases:
            calls.append(call(drivers.get(ctx.request.amount.currency, drivers[""]), subject.slot, label, ctx))
            slow += budget_ns is not None and calls[-1].elapsed_ns > budget_ns
            if stop_when_slow and slow >= SLOW_CALLS_BEFORE_STOP:
                break
        return calls

    cases = contexts()
    first = run(cases, stop_when_slow=True)
    second = run(contexts()[:len(first)], stop_when_slow=False)  # equal inputs, fresh objects
    stopped = len(first) < len(cases)
    pairs = list(zip(first, second))
    for one, two in pairs:
        if budget_ns is not None and min(one.elapsed_ns, two.elapsed_ns) > budget_ns:
            report("within_budget", f"took {min(one.elapsed_ns, two.elapsed_ns) // 1_000_000} ms; "
                                    f"its budget_ms is {budget_ms}", one.label)
    if stopped:
        report("within_budget", f"stopped after {len(pairs)} inputs: too slow to check the rest")
    differ = [(one, two) for one, two in pairs if one.outcome() != two.outcome()]
    if differ:
        message = (f"same input twice, different answers, e.g. first {_short(differ[0][0].outcome())}, "
                   f"then {_short(differ[0][1].outcome())}")
        for one, _ in differ:
            report("deterministic", message, one.label)
    for one, two in pairs:
        for what in dict.fromkeys(one.io + two.io):
            report("no_io", f"tried to {what}", one.label)
        if one.changed:
            report("no_mutation", f"changed {one.changed}", one.label)
        if one.io:
            continue  # the refused operation explains any exception
        if one.error is not None:
            report("edge_inputs", _raised(one), one.label)
            continue
        edge, rules = _answer_problems(subject.slot, one.currency, one.answer)
        for message in edge:
            report("edge_inputs", message, one.label)
        for message in rules:
            report("rule_name", message, one.label)
    return report.problems()


def _short(outcome: tuple[Any, ...], limit: int = 160) -> str:
    text = " ".join(repr(part) if i else str(part) for i, part in enumerate(outcome))
    return text if len(text) <= limit else text[: limit - 3] + "..."
