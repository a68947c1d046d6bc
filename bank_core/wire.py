"""The policy-server wire protocol, version 2 (``docs/policy-servers.md``).

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

* ``{"op": "load", "protocol": 2, "institution", "timezone", "drivers":
  [[slot, name, params], ...], "texts": [text, ...]}`` -> ``{"protocol": 2,
  "ok": true, "pid", "drivers": [[slot, name, distribution, budget_ms,
  contract_version, reads], ...]}`` or ``{"protocol": 2, "ok": false,
  "error": {slot, name, cause, distribution, stage}}``. The handshake: a
  server refuses a kernel of another ``protocol`` (and exits
  ``EXIT_PROTOCOL``), a kernel a reply of another one, each naming both.
* ``["e", [context, ...]]`` -> ``["a", [verdict, ...], [text, ...]]``: one
  verdict per context, in order, and the texts first used in them.

The text table: a verdict names its texts (rules, message templates, fee
memos) by number. The server numbers a text the first time it writes it
and sends it once, with that message; the kernel appends them to its table
and hands the whole table to every server it (re)starts (``texts`` in the
load message), so numbers stay valid across restarts.

A context is ``[run, kind, amount_minor, currency, source, dest, channel,
memo, at, src, dst, usage, local_date, fees_minor]``: ``run`` is null (every
slot, fees included) or ``[skip_fees, slots, only]`` (``slots`` a string of
``f``, ``l``, ``a``; ``only`` null or the driver indexes to run);
``src``/``dst`` null or ``[id, currency, status, product, opened_at, posted,
held_out, held_in]``; ``usage`` 0 when no driver reads usage, else ``[day,
month, recent]`` where null means "not loaded" (a read the drivers did not
declare), a window is a flat list ``[kind, channel, amount, fee, count,
...]`` and ``recent`` a list of times.

A verdict is ``[status, code, answers, fault]`` and its answers are in the
decision record's own layout (``bank_core.record``), texts numbered: an
answer is ``[driver, rule, outcome, threshold, observed, message]``,
followed for a fee answer by its lines ``rule, amount_minor, memo, ...``;
``driver`` is the index into the load message's list; ``outcome`` one of
``f`` (fee lines), ``n`` (no fee), ``p``/``x`` (limit passed/failed),
``a``/``r``/``v`` (approve, reject, review). A message is text (a
version-1 driver's) or ``[template, value, ...]``; a value (an argument, a
threshold, an observed) is null, text, an int (an amount in the
transaction's currency, in minor units), ``[n]`` (a count) or ``[minor,
currency]`` (an amount in another currency). ``fault`` is ``[driver, code,
message]`` or null.
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
    LimitAnswer,
    Money,
    PolicyContext,
    Slot,
    Text,
    KINDS_BY_VALUE,
    UsageCounters,
    _EMPTY,
    _tally,
)
from bank_core.decide import DriverFault, Verdict
from bank_core.fastmake import account_snapshot, money, policy_context, usage_counters
from bank_core.record import data_entry

PROTOCOL = 2
SLOT_LETTERS = {Slot.FEE: "f", Slot.LIMIT: "l", Slot.APPROVAL: "a"}
LETTER_SLOTS = {v: k for k, v in SLOT_LETTERS.items()}
ALL_SLOTS = (Slot.FEE, Slot.LIMIT, Slot.APPROVAL)

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


# A server decodes every row's context: the frozen values are made as
# ``bank_core.fastmake`` makes them (slots set directly, from values the
# kernel checked), each setter called by name rather than in a loop; an
# account's opening time is parsed once per server.
_new = object.__new__
_OPENED: dict[str, datetime] = {}  # opened_at text -> its datetime (accounts share a few)
_DATES: dict[str, date] = {}


def _snapshot(a: Any) -> AccountSnapshot | None:
    if a is None:
        return None
    opened = _OPENED.get(a[4])
    if opened is None:
        if len(_OPENED) > 100_000:
            _OPENED.clear()
        opened = _OPENED[a[4]] = _fromiso(a[4])
    return account_snapshot(a[0], a[1], _STATUSES[a[2]], a[3], opened, a[5], a[6], a[7])


def _read_window(flat: Any) -> Any:
    if flat is None:
        return UNDECLARED_USAGE
    if not flat:
        return _EMPTY
    return MappingProxyType({(KINDS_BY_VALUE[flat[i]], flat[i + 1]): _tally(flat[i + 2], flat[i + 3], flat[i + 4])
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
        counters = usage_counters(_read_window(usage[0]), _read_window(usage[1]),
                                  UNDECLARED_RECENT if recent is None else tuple([_fromiso(t) for t in recent]))
    local_date = _DATES.get(w[12])
    if local_date is None:
        local_date = _DATES[w[12]] = date.fromisoformat(w[12])
        if len(_DATES) > 10_000:
            _DATES.clear()
    return policy_context(institution, KINDS_BY_VALUE[w[1]], money(w[2], currency), w[4], w[5], w[6], w[7],
                          _fromiso(w[8]), _snapshot(w[9]), _snapshot(w[10]), counters, timezone, local_date,
                          money(w[13], currency))


# ----------------------------------------------------------------- verdicts
#
# A verdict travels in the decision record's own form (``bank_core.record``:
# outcome letters, money in the transaction's currency as bare minor units),
# its texts (rules, templates, fee memos) as numbers into a table both ends
# keep: the kernel records it by swapping numbers for term ids, with no
# value to convert; the server writes a text once per connection.

class WireTexts:
    """The server's side of the text table: ``ids`` numbers every text
    written so far (seeded with the kernel's table at load), ``fresh`` holds
    the texts first written since the last message (sent with it)."""

    __slots__ = ("ids", "fresh")

    def __init__(self, known: list[str]) -> None:
        self.ids: dict[str, int] = {text: n for n, text in enumerate(known)}
        self.fresh: list[str] = []

    def number(self, text: str) -> int:
        """The number of a text not yet in ``ids``. Raises ``UnicodeError``
        for text that cannot go on the wire (the driver's bad answer)."""
        if type(text) is not str:
            text = str.__str__(text)  # a str subclass (an enum) as its plain text, as the record keeps it
            found = self.ids.get(text)
            if found is not None:
                return found
        text.encode()  # a lone surrogate raises here, before the text is numbered
        number = self.ids[text] = len(self.ids)
        self.fresh.append(text)
        return number

    def take(self) -> list[str]:
        fresh, self.fresh = self.fresh, []
        return fresh


_OUTCOME = {Decision.APPROVE: "a", Decision.REJECT: "r", Decision.REVIEW: "v"}  # bank_core.record's letters
_M = Money


def _value(value: Any, currency: str) -> Any:
    """A threshold, an observed or a template argument as the record keeps it
    (``bank_core.record._value``): an amount in ``currency`` as bare minor
    units, in another ``[minor, currency]``, a count ``[n]``, text as text."""
    kind = type(value)
    if kind is _M or isinstance(value, Money):
        return value.amount_minor if value.currency == currency else [value.amount_minor, value.currency]
    if kind is int:
        return [value]
    if value is None or kind is str:
        return value
    return str(value)  # a bool or a StrEnum argument: as the record stores it


def encode_verdict(verdict: Verdict, index: dict[int, int], currency: str, texts: WireTexts) -> list[Any]:
    """``verdict`` as wire data: ``[status, code, answers, fault]``, each
    answer ``[driver, rule, outcome, threshold, observed, message]`` then a
    fee answer's lines ``rule, amount_minor, memo`` (the record's layout,
    ``driver`` the index into the load message's list, texts numbered by
    ``texts``). ``index`` maps ``id(bound)`` to its driver index."""
    answers = []
    ids, number = texts.ids, texts.number
    for bound, answer in verdict.answers:
        if type(answer) is tuple:  # a checked data answer (contract version 3): already this layout
            answers.append(data_entry(index[id(bound)], answer, ids, number))  # (a count (n,) goes as [n])
            continue
        rule = answer.rule
        r = ids.get(rule)
        if r is None:
            r = number(rule)
        message = answer.message
        if type(message) is not str:
            template = message.template
            t = ids.get(template)
            if t is None:
                t = number(template)
            wire_message = [t]
            for arg in message.args:
                kind = type(arg)
                if kind is _M:
                    wire_message.append(arg.amount_minor if arg.currency == currency
                                        else [arg.amount_minor, arg.currency])
                elif kind is str:
                    wire_message.append(arg)
                else:
                    wire_message.append(_value(arg, currency))
            message = wire_message
        kind = type(answer)
        if kind is FeeAnswer:
            lines = answer.lines
            if lines:
                entry = [index[id(bound)], r, "f", None, None, message]
                for line in lines:
                    line_rule, memo = line.rule, line.memo
                    lr = ids.get(line_rule)
                    if lr is None:
                        lr = number(line_rule)
                    m = ids.get(memo)
                    if m is None:
                        m = number(memo)
                    entry += (lr, line.amount.amount_minor, m)
            else:
                entry = [index[id(bound)], r, "n", None, None, message]
        else:
            threshold, observed = answer.threshold, answer.observed
            if threshold is not None:
                threshold = threshold.amount_minor if type(threshold) is _M and threshold.currency == currency \
                    else _value(threshold, currency)
            if observed is not None:
                observed = observed.amount_minor if type(observed) is _M and observed.currency == currency \
                    else _value(observed, currency)
            entry = [index[id(bound)], r, ("p" if answer.passed else "x") if kind is LimitAnswer
                     else _OUTCOME[answer.decision], threshold, observed, message]
        answers.append(entry)
    fault = verdict.fault
    return [verdict.status, verdict.code, answers,
            None if fault is None else [index[id(fault.bound)], fault.code, str(fault)]]


def _read_value(value: Any, currency: str) -> Any:
    if value is None or type(value) is str:
        return value
    if type(value) is int:
        return money(value, currency)
    if len(value) == 1:
        return value[0]
    return money(value[0], value[1])


# The answers are rebuilt with the contract's own constructors, which set
# their slots directly (``bank_core.contract``, ``bank_core.slots``).
_DECISION_OF = {"a": Decision.APPROVE, "r": Decision.REJECT, "v": Decision.REVIEW}


def _read_message(message: Any, currency: str, texts: list[str]) -> Any:
    if type(message) is str:
        return message
    return Text(texts[message[0]], *[_read_value(a, currency) for a in message[1:]])


def _fee_lines(entry: list[Any], currency: str, texts: list[str]) -> tuple[Any, ...]:
    return tuple([FeeLine(texts[entry[i]], money(entry[i + 1], currency), texts[entry[i + 2]])
                  for i in range(6, len(entry), 3)])


def decode_verdict(w: list[Any], bounds: list[Any], currency: str, texts: list[str]) -> Verdict:
    """A :class:`Verdict` whose answers are attributed to ``bounds[index]``
    (the kernel's view of the server's drivers); ``texts``: the kernel's
    side of the text table."""
    status, code, wire_answers, wire_fault = w
    verdict = Verdict(status, code)
    answers, fee_lines = verdict.answers, verdict.fee_lines
    for entry in wire_answers:
        bound = bounds[entry[0]]
        rule, outcome = texts[entry[1]], entry[2]
        message = entry[5]
        if type(message) is not str:
            message = _read_message(message, currency, texts)
        if outcome == "f" or outcome == "n":
            lines = _fee_lines(entry, currency, texts)
            answer: Any = FeeAnswer(rule, lines, message)
            for line in lines:
                fee_lines.append((bound, line))
        elif outcome == "p" or outcome == "x":
            answer = LimitAnswer(outcome == "p", rule, message, _read_value(entry[3], currency),
                                 _read_value(entry[4], currency))
        else:
            answer = ApprovalAnswer(_DECISION_OF[outcome], rule, message, _read_value(entry[3], currency),
                                    _read_value(entry[4], currency))
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


class WireVerdict(Verdict):
    """A server's verdict without a fault, as ``txn process`` records it: its
    status, code and fee lines are decoded, its answers stay wire data until
    someone reads ``answers`` (then they are exactly what
    :func:`decode_verdict` gives). The decision record is written from the
    wire data directly (:meth:`encode_answers`, called by
    ``bank_core.record.encode_answers``): the wire already has the record's
    layout and values, so only text numbers become term ids (in the same
    order the decoded verdict would ask for them: the same record, byte for byte)."""

    __slots__ = ("wire", "bounds", "currency", "texts")

    @property  # type: ignore[override]
    def answers(self) -> list[tuple[Any, Any]]:
        if self.wire is not None:
            _VERDICT_ANSWERS.__set__(self, decode_verdict([self.status, self.code, self.wire, None],
                                                          self.bounds, self.currency, self.texts).answers)
            self.wire = None
        return _VERDICT_ANSWERS.__get__(self)

    @answers.setter
    def answers(self, value: list[tuple[Any, Any]]) -> None:
        self.wire = None
        _VERDICT_ANSWERS.__set__(self, value)

    def encode_answers(self, currency: str, term: Any, driver: Any) -> tuple[list[Any], Any]:
        """What ``bank_core.record.encode_answers`` makes of the decoded verdict."""
        ids, bounds, texts = term.ids, self.bounds, self.texts
        answers: list[Any] = []
        for w in self.wire:  # type: ignore[union-attr]
            rule = texts[w[1]]
            entry = [driver(bounds[w[0]]), ids.get(rule) or term(rule), w[2], w[3], w[4], w[5]]
            message = w[5]
            if type(message) is not str:
                template = texts[message[0]]
                entry[5] = [ids.get(template) or term(template), *message[1:]]
            for i in range(6, len(w), 3):
                line_rule, memo = texts[w[i]], texts[w[i + 2]]
                entry += (ids.get(line_rule) or term(line_rule), w[i + 1], ids.get(memo) or term(memo))
            answers.append(entry)
        return answers, None


_WV_WIRE, _WV_BOUNDS, _WV_CURRENCY, _WV_TEXTS = (WireVerdict.__dict__[n].__set__
                                                 for n in ("wire", "bounds", "currency", "texts"))
_V_STATUS, _V_CODE, _V_FEE_LINES, _V_FAULT, _V_KERNEL = (Verdict.__dict__[n].__set__ for n in (
    "status", "code", "fee_lines", "fault", "kernel"))


def decode_verdict_for_record(w: list[Any], bounds: list[Any], currency: str, texts: list[str]) -> Verdict:
    """:func:`decode_verdict`, its answers left as wire data for the record
    (a :class:`WireVerdict`); a verdict with a fault is decoded whole."""
    if w[3] is not None:
        return decode_verdict(w, bounds, currency, texts)
    verdict = _new(WireVerdict)
    _V_STATUS(verdict, w[0])
    _V_CODE(verdict, w[1])
    _V_FAULT(verdict, None)
    _V_KERNEL(verdict, None)
    fee_lines: list[Any] = []
    for entry in w[2]:
        if entry[2] == "f":
            bound = bounds[entry[0]]
            for i in range(6, len(entry), 3):
                fee_lines.append((bound, FeeLine(texts[entry[i]], money(entry[i + 1], currency),
                                                 texts[entry[i + 2]])))
    _V_FEE_LINES(verdict, fee_lines)
    _VERDICT_ANSWERS.__set__(verdict, None)
    _WV_WIRE(verdict, w[2])
    _WV_BOUNDS(verdict, bounds)
    _WV_CURRENCY(verdict, currency)
    _WV_TEXTS(verdict, texts)
    return verdict
