"""The decision record: one compact, canonical document per transaction.

It is the payload of the transaction's audit entry, so it is stored once and
hashed into the chain, and it is everything needed to answer a replay of the
same idempotency key or to explain the decision later. It holds data, not
prose: amounts as integers of minor units, outcomes as one letter, and rule
names, drivers, message templates and fee memos as ids of *terms* (each
distinct text is stored once, see ``bank_core.terms``). Text is made by
:func:`render` when somebody asks.

Layout (a JSON array; ``FORMAT`` is its first element)::

    [2, ref, kind, source, dest, amount_minor, currency, channel, memo,
     at_given, at, status, code, profile_version, balances, answers, fault]

``at_given`` is true when the request carried its own time (then ``at``
belongs to the idempotency body);
``balances`` is a flat list of (account, posted, held_out) triples of the
customer accounts after the decision; ``answers`` is one list per driver
answer, in call order: ``[driver, rule, outcome, threshold, observed,
message]`` and for fee answers the fee lines ``[rule, amount, memo, ...]``
after them; ``fault`` is ``[driver, code, message]`` (driver 0: the kernel)
or null.

Values (threshold, observed, template arguments): an amount in the
transaction's currency is an int; an amount in another currency is
``[minor, currency]``; a count is ``[n]``; null is null. A message is a
string (a version-1 driver's text) or ``[template, value, ...]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

from bank_core.contract import (
    FeeAnswer,
    LimitAnswer,
    Money,
    Text,
)
from bank_core.decide import Reason, Verdict
from bank_core.money import format_minor

FORMAT = 2
_OUTCOME = {"pass": "p", "fail": "x", "approve": "a", "reject": "r", "review": "v"}
_OUTCOME_NAME = {"p": "pass", "x": "fail", "a": "approve", "r": "reject", "v": "review",
                 "f": "fee", "n": "none"}
NOTABLE_OUTCOMES = frozenset("xrv")  # outcomes a results file lists (with faults)

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

Term = Callable[[str], int]


def dumps(record: list[Any]) -> str:
    """The canonical text of a record (what the audit chain hashes).

    orjson writes exactly what the standard encoder with these separators
    and ``ensure_ascii=False`` writes for a record's values (ints, text,
    lists, null, booleans; ``tests/test_record.py`` holds them to it); it
    refuses what it cannot write the same (an int past 64 bits, text that
    is not Unicode), and then the standard encoder writes it."""
    try:
        return orjson.dumps(record).decode()
    except (TypeError, orjson.JSONEncodeError):
        return _encoder(record)


def loads(payload: str | bytes) -> Any:
    """A stored record as data. The standard parser, not orjson: orjson reads
    an integer past 64 bits as a float, and no float may touch an amount
    (and on a record's short lists of small values it is no faster)."""
    return json.loads(payload)


def _value(value: Any, currency: str) -> Any:
    if value is None:
        return None
    if type(value) is int:
        return [value]
    if type(value) is Money or isinstance(value, Money):
        return value.amount_minor if value.currency == currency else [value.amount_minor, value.currency]
    return str(value)  # text (template arguments only; a StrEnum as its value)


def _message(message: str | Text, currency: str, term: Any) -> Any:
    if type(message) is str:
        return message
    template = message.template
    encoded: list[Any] = [term.ids.get(template) or term(template)]
    for arg in message.args:
        kind = type(arg)
        if kind is Money:
            encoded.append(arg.amount_minor if arg.currency == currency else [arg.amount_minor, arg.currency])
        elif kind is int:
            encoded.append([arg])
        else:
            encoded.append(_value(arg, currency))
    return encoded


def data_entry(driver: int, answer: tuple[Any, ...], ids: dict[str, int], new: Callable[[str], int]) -> list[Any]:
    """A checked data answer (contract version 3) as an answer entry: it is
    already this layout but for its texts, each given its id from ``ids``
    or, when not there, from ``new`` (in the order an answer object's are:
    rule, template, fee lines). The record and a policy server's wire
    (``bank_core.wire``) both write it so."""
    letter = answer[0]
    head = 4 if letter == "f" or letter == "n" else 5
    text = answer[1]
    rule = ids.get(text)
    if rule is None:
        rule = new(text)
    text = answer[head - 1]
    message: Any = ""
    if text or len(answer) > head:
        template = ids.get(text)
        message = [new(text) if template is None else template, *answer[head:]]
    if head == 5:
        return [driver, rule, letter, answer[2], answer[3], message]
    entry = [driver, rule, letter, None, None, message]
    for line_rule, amount, memo in answer[2]:
        found, said = ids.get(line_rule), ids.get(memo)
        entry += (new(line_rule) if found is None else found, amount, new(memo) if said is None else said)
    return entry


def encode_answers(verdict: Verdict, currency: str, term: Any,
                   driver: Callable[[Any], int]) -> tuple[list[Any], Any]:
    """(answers, fault) of a verdict, as the record stores them. ``term``
    gives the id of a text (``term.ids`` is its cache of committed ones),
    ``driver`` the id of a bound driver."""
    if type(verdict) is not Verdict and verdict.wire is not None:  # type: ignore[attr-defined]
        return verdict.encode_answers(currency, term, driver)  # type: ignore[attr-defined]  # bank_core.wire.WireVerdict
    answers: list[Any] = []
    ids = term.ids
    for bound, answer in verdict.answers:
        if type(answer) is tuple:  # a checked data answer: already in this encoding but for term ids
            answers.append(data_entry(ids.get(bound.term) or driver(bound), answer, ids, term))
            continue
        rule = answer.rule
        entry = [ids.get(bound.term) or driver(bound), ids.get(rule) or term(rule), None, None, None,
                 _message(answer.message, currency, term)]
        kind = type(answer)
        if kind is FeeAnswer:
            if answer.lines:
                entry[2] = "f"
                for line in answer.lines:
                    entry += (ids.get(line.rule) or term(line.rule), line.amount.amount_minor,
                              ids.get(line.memo) or term(line.memo))
            else:
                entry[2] = "n"
        else:
            entry[2] = ("p" if answer.passed else "x") if kind is LimitAnswer else _OUTCOME[answer.decision]
            threshold, observed = answer.threshold, answer.observed
            if threshold is not None:
                entry[3] = (threshold.amount_minor if type(threshold) is Money and threshold.currency == currency
                            else _value(threshold, currency))
            if observed is not None:
                entry[4] = (observed.amount_minor if type(observed) is Money and observed.currency == currency
                            else _value(observed, currency))
        answers.append(entry)
    fault: Any = None
    if verdict.fault is not None:
        fault = [driver(verdict.fault.bound), verdict.fault.code, str(verdict.fault)]
    elif verdict.kernel is not None:
        fault = [0, verdict.kernel[0], verdict.kernel[1]]
    return answers, fault


# ---------------------------------------------------------------- reading

def _show(value: Any, currency: str) -> str | None:
    if value is None:
        return None
    if type(value) is int:
        return f"{format_minor(value, currency)} {currency}"
    if len(value) == 1:
        return str(value[0])
    return f"{format_minor(value[0], value[1])} {value[1]}"


def _show_arg(value: Any, currency: str) -> str:
    return value if type(value) is str else _show(value, currency)  # type: ignore[return-value]


def _text(message: Any, currency: str, text: Callable[[int], str]) -> str:
    if type(message) is str:
        return message
    template = text(message[0])
    args = [_show_arg(a, currency) for a in message[1:]]
    try:
        return template.format(*args)
    except (IndexError, KeyError, ValueError):
        return f"{template} {args}"


def _driver(text: Callable[[int], str], d: int) -> tuple[str, str, str | None]:
    slot, name, dist = text(d).split("\x1f")
    return slot, name, dist or None


def body(r: list[Any]) -> tuple[Any, ...]:
    """A record's request: (kind, source, dest, amount_minor, currency,
    channel, memo, at if the request gave it), what makes two requests with
    one key the same request."""
    return (r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[10] if r[9] else None)


class Record:
    """A decoded record with accessors; ``text(id)`` resolves term ids."""

    __slots__ = ("r", "text")

    def __init__(self, record: list[Any], text: Callable[[int], str]) -> None:
        self.r = record
        self.text = text

    @classmethod
    def loads(cls, payload: str, text: Callable[[int], str]) -> Record:
        return cls(loads(payload), text)

    ref = property(lambda self: self.r[1])
    kind = property(lambda self: self.r[2])
    currency = property(lambda self: self.r[6])
    status = property(lambda self: self.r[11])
    code = property(lambda self: self.r[12])

    def body(self) -> tuple[Any, ...]:
        """What makes two requests with one key the same request."""
        return body(self.r)

    def fee_lines(self) -> list[tuple[str, str, int, str]]:
        """(driver, rule, amount_minor, memo) of every fee line answered."""
        found = []
        for a in self.r[15]:
            for i in range(6, len(a), 3):
                found.append((_driver(self.text, a[0])[1], self.text(a[i]), a[i + 1],
                              self.text(a[i + 2])))
        return found

    def fee_minor(self) -> int:
        return 0 if self.status == "rejected" else sum(f[2] for f in self.fee_lines())

    def reasons(self, notable_only: bool = False) -> list[Reason]:
        r, text, cur = self.r, self.text, self.r[6]
        found: list[Reason] = []
        for a in r[15]:
            outcome = a[2]
            if notable_only and outcome not in NOTABLE_OUTCOMES:
                continue
            slot, name, dist = _driver(text, a[0])
            message = _text(a[5], cur, text)
            if outcome == "f":
                for i in range(6, len(a), 3):
                    found.append(Reason(slot, name, dist, text(a[i]), "fee",
                                        message or text(a[i + 2]),
                                        observed=f"{format_minor(a[i + 1], cur)} {cur}"))
                continue
            found.append(Reason(slot, name, dist, text(a[1]), _OUTCOME_NAME[outcome], message,
                                _show(a[3], cur), _show(a[4], cur)))
        fault = r[16]
        if fault is not None:
            if fault[0] == 0:
                found.append(Reason("kernel", "kernel", None, fault[1], "reject", fault[2],
                                    code=fault[1]))
            else:
                slot, name, dist = _driver(text, fault[0])
                found.append(Reason(slot, name, dist, fault[1], "fault", fault[2], code=fault[1]))
        return found

    def result(self, txn_id: str, institution: str) -> dict[str, Any]:
        """The transaction's first result, as ``TxnResult`` fields."""
        r, cur = self.r, self.r[6]
        status = r[11]
        fees = [] if status == "rejected" else [
            {"driver": d, "rule": rule, "amount": format_minor(m, cur), "currency": cur, "memo": memo}
            for d, rule, m, memo in self.fee_lines()]
        fee_minor = 0 if status == "rejected" else sum(f[2] for f in self.fee_lines())
        b = r[14]
        balances = [{"account": b[i], "posted": format_minor(b[i + 1], cur),
                     "available": format_minor(b[i + 1] - b[i + 2], cur),
                     "held_out": format_minor(b[i + 2], cur), "currency": cur}
                    for i in range(0, len(b), 3)]
        return {
            "txn_id": txn_id, "institution": institution, "ref": r[1], "kind": r[2],
            "status": status, "code": r[12], "amount": format_minor(r[5], cur), "currency": cur,
            "fee_total": format_minor(fee_minor, cur), "fees": fees,
            "reasons": [x.to_dict() for x in self.reasons()], "source": r[3], "dest": r[4],
            "channel": r[7], "memo": r[8], "at": r[10], "profile_version": r[13],
            "balances": balances,
        }


def record_terms(record: list[Any]) -> list[int]:
    """Every term id a format-2 record mentions (to load their texts at once)."""
    found: list[int] = []
    for a in record[15]:
        found += (a[0], a[1])
        if type(a[5]) is list:
            found.append(a[5][0])
        for i in range(6, len(a), 3):
            found += (a[i], a[i + 2])
    if record[16] is not None and record[16][0]:
        found.append(record[16][0])
    return found
