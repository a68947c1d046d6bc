"""The policy-server wire protocol, version 1 (``docs/policy-servers.md``).

One message is one line of JSON (UTF-8, written by orjson, which never puts
a newline inside a document) on a Unix socket pair between the kernel and
its policy server. Everything on the wire is data: ints, text, lists, null,
booleans. No pickle, no objects: a driver's values are rebuilt on the other
side with the same constructors the kernel uses in process, so a driver sees
exactly the ``PolicyContext`` values it would see inline, and the kernel
gets back exactly the answers an inline call would have given.

Integers are at most 64 bits (orjson refuses larger ones when writing, so
they never reach a reader, which would read them as floats): amounts are
bounded far below that (``MAX_AMOUNT_MINOR``). Times are ISO 8601 text in
UTC, dates ISO text.

Messages, kernel -> server then server -> kernel:

* ``{"op": "load", "protocol": 1, "institution", "timezone", "drivers":
  [[slot, name, params], ...]}`` -> ``{"protocol": 1, "ok": true, "pid",
  "drivers": [[slot, name, distribution, budget_ms, contract_version,
  reads], ...]}`` or ``{"ok": false, "error": {slot, name, cause,
  distribution, stage}}``.
* ``["e", [context, ...]]`` -> ``["a", [verdict, ...]]``: one answer per
  context, in order.

A context is ``[run, kind, amount_minor, currency, source, dest, channel,
memo, at, src, dst, usage, local_date, fees_minor]``: ``run`` is null (every
slot, fees included) or ``[skip_fees, slots, only]`` (``slots`` a string of
``f``, ``l``, ``a``; ``only`` null or the driver indexes to run);
``src``/``dst`` null or ``[id, currency, status, product, opened_at, posted,
held_out, held_in]``; ``usage`` 0 when no driver reads usage, else ``[day,
month, recent]`` where null means "not loaded" (a read the drivers did not
declare), a window is a flat list ``[kind, channel, amount, fee, count,
...]`` and ``recent`` a list of times.

A verdict is ``[status, code, answers, fault]``; an answer is ``[driver,
rule, message, ...]`` followed, for a fee driver, by its lines ``[[rule,
amount_minor, memo], ...]``, for a limit by ``passed, threshold,
observed``, for an approval by ``decision, threshold, observed``; ``driver``
is the index into the load message's list; ``fault`` is ``[driver, code,
message]`` or null. A message is text or ``[template, arg, ...]``; a value
(an argument, a threshold, an observed) is null, text, ``[n]`` (a count) or
``[minor, currency]`` (an amount).
"""

from __future__ import annotations

from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import orjson

from bank_core.contract import (
    UNDECLARED_RECENT,
    UNDECLARED_USAGE,
    AccountSnapshot,
    AccountStatus,
    ApprovalAnswer,
    Decision,
    FeeAnswer,
    FeeLine,
    Kind,
    LimitAnswer,
    Money,
    PolicyContext,
    Slot,
    Tally,
    Text,
    UsageCounters,
    _EMPTY,
)
from bank_core.decide import DriverFault, Verdict
from bank_core.fastmake import _make, _setters, account_snapshot, money, policy_context

PROTOCOL = 1
SLOT_LETTERS = {Slot.FEE: "f", Slot.LIMIT: "l", Slot.APPROVAL: "a"}
LETTER_SLOTS = {v: k for k, v in SLOT_LETTERS.items()}
ALL_SLOTS = (Slot.FEE, Slot.LIMIT, Slot.APPROVAL)

_KINDS = {k.value: k for k in Kind}
_STATUSES = {s.value: s for s in AccountStatus}
_DECISIONS = {d.value: d for d in Decision}
_fromiso = datetime.fromisoformat

dumps = orjson.dumps
loads = orjson.loads


# ----------------------------------------------------------------- contexts

def _account(a: AccountSnapshot | None) -> Any:
    if a is None:
        return None
    return [a.id, a.currency, a.status.value, a.product, a.opened_at.isoformat(),
            a.posted.amount_minor, a.held_out.amount_minor, a.held_in.amount_minor]


def _window(window: Any) -> Any:
    if window is UNDECLARED_USAGE:
        return None
    flat: list[Any] = []
    for (kind, channel), t in window.items():
        flat += (str(kind), channel, t.amount_minor, t.fee_minor, t.count)
    return flat


def encode_context(ctx: PolicyContext, run: Any = None) -> list[Any]:
    """``ctx`` as wire data; ``run`` as in the module doc (None: every slot)."""
    r, usage = ctx.request, ctx.usage
    if usage.day is UNDECLARED_USAGE and usage.recent_out_at is UNDECLARED_RECENT:
        wire_usage: Any = 0
    else:
        recent = usage.recent_out_at
        wire_usage = [_window(usage.day), _window(usage.month),
                      None if recent is UNDECLARED_RECENT else [t.isoformat() for t in recent]]
    return [run, r.kind.value, r.amount.amount_minor, r.amount.currency, r.source, r.dest, r.channel,
            r.memo, r.at.isoformat(), _account(ctx.source), _account(ctx.dest), wire_usage,
            ctx.local_date.isoformat(), ctx.fees.amount_minor]


def _snapshot(a: Any) -> AccountSnapshot | None:
    if a is None:
        return None
    return account_snapshot(a[0], a[1], _STATUSES[a[2]], a[3], _fromiso(a[4]), a[5], a[6], a[7])


def _read_window(flat: Any) -> Any:
    if flat is None:
        return UNDECLARED_USAGE
    if not flat:
        return _EMPTY
    return MappingProxyType({(_KINDS[flat[i]], flat[i + 1]): Tally(flat[i + 2], flat[i + 3], flat[i + 4])
                             for i in range(0, len(flat), 5)})


_NO_USAGE = UsageCounters(UNDECLARED_USAGE, UNDECLARED_USAGE, UNDECLARED_RECENT)  # type: ignore[arg-type]


def decode_context(w: list[Any], institution: str, timezone: str) -> PolicyContext:
    """The very ``PolicyContext`` the kernel encoded (same types, equal values)."""
    currency = w[3]
    usage = w[11]
    if usage == 0:
        counters = _NO_USAGE
    else:
        recent = usage[2]
        counters = UsageCounters(_read_window(usage[0]), _read_window(usage[1]),
                                 UNDECLARED_RECENT if recent is None else  # type: ignore[arg-type]
                                 tuple(_fromiso(t) for t in recent))
    return policy_context(institution, _KINDS[w[1]], money(w[2], currency), w[4], w[5], w[6], w[7],
                          _fromiso(w[8]), _snapshot(w[9]), _snapshot(w[10]), counters, timezone,
                          date.fromisoformat(w[12]), money(w[13], currency))


# ----------------------------------------------------------------- verdicts

def _value(value: Any) -> Any:
    if value is None or type(value) is str:
        return value
    if type(value) is int:
        return [value]
    if isinstance(value, Money):
        return [value.amount_minor, value.currency]
    return str(value)  # a bool or a StrEnum argument: as the record stores it


def _message(message: Any) -> Any:
    if type(message) is str:
        return message
    return [message.template, *[_value(a) for a in message.args]]


def encode_verdict(verdict: Verdict, index: dict[int, int]) -> list[Any]:
    """``verdict`` as wire data; ``index`` maps ``id(bound)`` to its driver index."""
    answers = []
    for bound, answer in verdict.answers:
        entry = [index[id(bound)], answer.rule, _message(answer.message)]
        kind = type(answer)
        if kind is FeeAnswer:
            entry.append([[line.rule, line.amount.amount_minor, line.memo] for line in answer.lines])
        else:
            entry += (answer.passed if kind is LimitAnswer else answer.decision.value,
                      _value(answer.threshold), _value(answer.observed))
        answers.append(entry)
    fault = verdict.fault
    return [verdict.status, verdict.code, answers,
            None if fault is None else [index[id(fault.bound)], fault.code, str(fault)]]


def _read_value(value: Any) -> Any:
    if value is None or type(value) is str:
        return value
    if len(value) == 1:
        return value[0]
    return money(value[0], value[1])


def _read_message(message: Any) -> Any:
    if type(message) is str:
        return message
    text = _new(Text)
    _T_TEMPLATE(text, message[0])
    _T_ARGS(text, tuple([a if a is None or type(a) is str else a[0] if len(a) == 1 else money(a[0], a[1])
                         for a in message[1:]]))
    return text


# The answers are rebuilt the way ``bank_core.fastmake`` builds the context:
# the very same frozen objects, slots set directly (their values come from
# the server's checked answers), at a third of the dataclass constructors' cost.
_new = object.__new__
_T_TEMPLATE, _T_ARGS = Text.__dict__["template"].__set__, Text.__dict__["args"].__set__
_FEE = _setters(FeeAnswer, ("rule", "lines", "message"))
_LINE = _setters(FeeLine, ("rule", "amount", "memo"))
_LIMIT = _setters(LimitAnswer, ("passed", "rule", "message", "threshold", "observed"))
_APPROVAL = _setters(ApprovalAnswer, ("decision", "rule", "message", "threshold", "observed"))


def decode_verdict(w: list[Any], bounds: list[Any], currency: str) -> Verdict:
    """A :class:`Verdict` whose answers are attributed to ``bounds[index]``
    (the kernel's view of the server's drivers)."""
    status, code, wire_answers, wire_fault = w
    verdict = Verdict(status, code)
    answers, fee_lines = verdict.answers, verdict.fee_lines
    fee, limit = Slot.FEE, Slot.LIMIT
    for entry in wire_answers:
        bound = bounds[entry[0]]
        slot = bound.slot
        message = entry[2]
        if type(message) is not str:
            message = _read_message(message)
        if slot is fee:
            lines = tuple([_make(FeeLine, _LINE, rule, money(minor, currency), memo)
                           for rule, minor, memo in entry[3]])
            answer: Any = _make(FeeAnswer, _FEE, entry[1], lines, message)
            for line in lines:
                fee_lines.append((bound, line))
        elif slot is limit:
            answer = _make(LimitAnswer, _LIMIT, entry[3], entry[1], message,
                           _read_value(entry[4]), _read_value(entry[5]))
        else:
            answer = _make(ApprovalAnswer, _APPROVAL, _DECISIONS[entry[3]], entry[1], message,
                           _read_value(entry[4]), _read_value(entry[5]))
        answers.append((bound, answer))
    if wire_fault is not None:  # as inline: a fault leaves no fee line standing
        verdict.fault = DriverFault(wire_fault[1], bounds[wire_fault[0]], wire_fault[2])
        verdict.fee_lines = []
    return verdict


def run_of(skip_fees: bool, slots: Any, only: list[int] | None = None) -> Any:
    """The ``run`` element of a context (None: the default, every slot)."""
    if not skip_fees and tuple(slots) == ALL_SLOTS and only is None:
        return None
    return [skip_fees, "".join(SLOT_LETTERS[s] for s in slots), only]


# ----------------------------------------------------- verdicts, recorded

_VERDICT_ANSWERS = Verdict.__dict__["answers"]  # the slot under WireVerdict.answers
_OUTCOME_LETTER = {"approve": "a", "reject": "r", "review": "v"}  # as bank_core.record stores a decision


class WireVerdict(Verdict):
    """A server's verdict without a fault, as ``txn process`` records it: its
    status, code and fee lines are decoded, its answers stay wire data until
    someone reads ``answers`` (then they are exactly what
    :func:`decode_verdict` gives). The decision record is written from the
    wire data directly (:meth:`encode_answers`, called by
    ``bank_core.record.encode_answers``), so a row's answers are never built
    as objects only to be taken apart again: the same record, ids and text."""

    __slots__ = ("wire", "bounds", "currency")

    @property  # type: ignore[override]
    def answers(self) -> list[tuple[Any, Any]]:
        if self.wire is not None:
            _VERDICT_ANSWERS.__set__(self, decode_verdict([self.status, self.code, self.wire, None],
                                                          self.bounds, self.currency).answers)
            self.wire = None
        return _VERDICT_ANSWERS.__get__(self)

    @answers.setter
    def answers(self, value: list[tuple[Any, Any]]) -> None:
        self.wire = None
        _VERDICT_ANSWERS.__set__(self, value)

    def encode_answers(self, currency: str, term: Any, driver: Any) -> tuple[list[Any], Any]:
        """What ``bank_core.record.encode_answers`` makes of the decoded
        verdict, made from the wire data (texts given ids in the same order)."""
        ids, bounds = term.ids, self.bounds
        fee, limit = Slot.FEE, Slot.LIMIT
        answers: list[Any] = []
        for w in self.wire:  # type: ignore[union-attr]
            bound = bounds[w[0]]
            rule = w[1]
            entry = [driver(bound), ids.get(rule) or term(rule), None, None, None, None]
            message = w[2]
            if type(message) is not str:
                template = message[0]
                encoded: list[Any] = [ids.get(template) or term(template)]
                for arg in message[1:]:
                    encoded.append(_recorded(arg, currency))
                message = encoded
            entry[5] = message
            slot = bound.slot
            if slot is fee:
                lines = w[3]
                if lines:
                    entry[2] = "f"
                    for line_rule, minor, memo in lines:
                        entry += (ids.get(line_rule) or term(line_rule), minor, ids.get(memo) or term(memo))
                else:
                    entry[2] = "n"
            else:
                entry[2] = ("p" if w[3] else "x") if slot is limit else _OUTCOME_LETTER[w[3]]
                entry[3], entry[4] = _recorded(w[4], currency), _recorded(w[5], currency)
            answers.append(entry)
        return answers, None


def _recorded(value: Any, currency: str) -> Any:
    """A wire value (null, text, ``[n]`` or ``[minor, currency]``) as the
    record stores it: money in the transaction's currency as bare minor
    units, anything else as it came (``bank_core.record._value``)."""
    if value is None or type(value) is str or len(value) == 1 or value[1] != currency:
        return value
    return value[0]


_WV_WIRE, _WV_BOUNDS, _WV_CURRENCY = (WireVerdict.__dict__[n].__set__ for n in ("wire", "bounds", "currency"))
_V_STATUS, _V_CODE, _V_FEE_LINES, _V_FAULT, _V_KERNEL = (Verdict.__dict__[n].__set__ for n in (
    "status", "code", "fee_lines", "fault", "kernel"))


def decode_verdict_for_record(w: list[Any], bounds: list[Any], currency: str) -> Verdict:
    """:func:`decode_verdict`, its answers left as wire data for the record
    (a :class:`WireVerdict`); a verdict with a fault is decoded whole."""
    if w[3] is not None:
        return decode_verdict(w, bounds, currency)
    verdict = _new(WireVerdict)
    _V_STATUS(verdict, w[0])
    _V_CODE(verdict, w[1])
    _V_FAULT(verdict, None)
    _V_KERNEL(verdict, None)
    fee_lines: list[Any] = []
    fee = Slot.FEE
    for entry in w[2]:
        bound = bounds[entry[0]]
        if bound.slot is fee:
            for rule, minor, memo in entry[3]:
                fee_lines.append((bound, _make(FeeLine, _LINE, rule, money(minor, currency), memo)))
    _V_FEE_LINES(verdict, fee_lines)
    _VERDICT_ANSWERS.__set__(verdict, None)
    _WV_WIRE(verdict, w[2])
    _WV_BOUNDS(verdict, bounds)
    _WV_CURRENCY(verdict, currency)
    return verdict
