"""Data answers (contract version 3): the kernel's checks of them.

A version-3 driver may answer with a tuple made by the contract's helpers
(``passes``, ``fails``, ``approves``, ``reviews``, ``rejects``, ``charges``,
``no_fee``; see :mod:`bank_core.contract`). :func:`data_answer` checks one as
strictly as ``bank_core.decide`` checks an answer object and returns it in
the decision record's encoding. It imports only the contract, so the plug-in
kit (``bank_core.testing``) judges data answers with the kernel's own check.
"""

from __future__ import annotations

from typing import Any

from bank_core.contract import DATA_VERSION, MAX_AMOUNT_MINOR, ApprovalAnswer, FeeAnswer, LimitAnswer, Money, read_answer

MAX_FEE_LINES_PER_DRIVER = 8
_TEMPLATES_OK: set[tuple[str, int]] = set()


class BadData(ValueError):
    """What is wrong with a data answer (the message follows the driver's name)."""


_LETTERS = {FeeAnswer: ("f", "n"), LimitAnswer: ("p", "x"), ApprovalAnswer: ("a", "v", "r")}
_SLOT_NAMES = {FeeAnswer: "fee", LimitAnswer: "limit", ApprovalAnswer: "approval"}
_HELPERS = {FeeAnswer: "charges() or no_fee()", LimitAnswer: "passes() or fails()",
            ApprovalAnswer: "approves(), reviews() or rejects()"}
ANSWER_TYPE_OF = {letter: t for t, letters in _LETTERS.items() for letter in letters}
"""The answer type a data answer's outcome letter belongs to."""


def version_problem(version: object, answer_type: type) -> str | None:
    """Why a driver declaring contract ``version`` may not answer with data
    (the words follow its name), or None."""
    if isinstance(version, int) and version >= DATA_VERSION:
        return None
    return (f"answered a tuple; answering with data needs contract version {DATA_VERSION} "
            f"(it declares {version!r}), else answer {answer_type.__name__}")


def checked_object(answer: tuple[Any, ...], answer_type: type, currency: str) -> Any:
    """The answer object a data answer stands for, once the kernel's own
    check has passed it (raises :class:`BadData`): for the plug-in kit."""
    return read_answer(data_answer(answer, answer_type, currency), currency)


def data_answer(answer: tuple[Any, ...], answer_type: type, currency: str) -> tuple[Any, ...]:
    """A data answer (contract version 3) checked as strictly as an answer
    object, in the decision record's encoding: the same tuple when its values
    are ints, counts ``(n,)``, ``None`` and text already (the common case),
    else a copy with each ``Money`` as minor units (``[minor, currency]`` in
    another currency), a count given as ``[n]`` as ``(n,)`` and other text (a
    ``StrEnum``, a bool) as ``str``. Raises :class:`BadData`.
    ``answer_type``: the slot's answer type.

    An answer that passes is remembered by its outcome, rule, template and
    length in :data:`KNOWN` (when its outcome is a ``str`` itself), so that
    the kernel (``bank_core.decide._call_fast``) checks the next one of that
    shape by its values' types alone: ints, ``None`` and text."""
    n = len(answer)
    fee = answer_type is FeeAnswer
    head = 4 if fee else 5
    if n < head or type(answer[0]) is not str or answer[0] not in _LETTERS[answer_type]:
        raise BadData(f"answered {_short(answer)}, which is not a {_SLOT_NAMES[answer_type]} answer "
                      f"(make it with {_HELPERS[answer_type]})")
    rule = answer[1]
    if type(rule) is not str or not rule:
        raise BadData("answered without a rule name")
    template = answer[head - 1]
    if type(template) is not str:
        raise BadData(f"answered a message template {_short(template)} that is not text")
    plain = True
    for i in range(head, n):
        value = answer[i]
        kind = type(value)
        if kind is not int and kind is not str and not (kind is tuple and len(value) == 1 and type(value[0]) is int):
            plain = False
            break
    if fee:
        lines = answer[2]
        if type(lines) is not tuple or len(lines) > MAX_FEE_LINES_PER_DRIVER:
            raise BadData(f"must answer a tuple of at most {MAX_FEE_LINES_PER_DRIVER} fee lines")
        for line in lines:
            if (type(line) is not tuple or len(line) != 3 or type(line[0]) is not str or not line[0]
                    or type(line[2]) is not str):
                raise BadData(f"answered an invalid fee line {_short(line)} "
                              "(make it with fee_line(rule, amount_minor, memo))")
            if type(line[1]) is not int or not 0 < line[1] <= MAX_AMOUNT_MINOR:
                raise BadData(f"answered a fee of {_short(line[1])}; fees must be positive ints of minor units "
                              f"of {currency}")
        if (answer[0] == "f") is not bool(lines):
            raise BadData(f"answered outcome {answer[0]!r} with {len(lines)} fee lines")
        if not plain:
            answer = (*answer[:4], *[_arg(a, currency) for a in answer[4:]])
    else:
        threshold, observed = answer[2], answer[3]
        if not plain or not (threshold is None or type(threshold) is int or _is_count(threshold)) or not (
                observed is None or type(observed) is int or _is_count(observed)):
            answer = (answer[0], rule, _value(threshold, currency, "threshold"),
                      _value(observed, currency, "observed"), template, *[_arg(a, currency) for a in answer[5:]])
    key = (template, n - head)
    if key not in _TEMPLATES_OK:  # each distinct template is tried once, as for a Text
        try:
            template.format(*[""] * (n - head))
        except (IndexError, KeyError, ValueError, AttributeError) as exc:
            raise BadData(f"answered a template that does not render: {exc}") from None
        _TEMPLATES_OK.add(key)
    if type(answer[0]) is str:  # (a str, not a subclass: the kernel's lookup matches by value)
        if len(KNOWN) >= _KNOWN_MAX:  # rules or templates made per call: keep memory bounded
            KNOWN.clear()
        KNOWN.add((answer_type, answer[0], rule, template, n))
    return answer


NO_LINES = ()  # (the empty tuple: a fee answer without lines)
PLAIN = frozenset({int, str})  # the types of a known answer's message arguments that need no check
VALUE = frozenset({int, type(None)})  # and of its threshold and observed value
KNOWN: set[tuple[Any, ...]] = set()  # (answer type, outcome, rule, template, length) checked whole
_KNOWN_MAX = 4096


def _is_count(value: Any) -> bool:
    return type(value) is tuple and len(value) == 1 and type(value[0]) is int


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _value(value: Any, currency: str, what: str) -> Any:
    kind = type(value)
    if kind is int or value is None:
        return value
    if (kind is tuple or kind is list) and len(value) == 1 and type(value[0]) is int:
        return (value[0],)  # a count (a list made a tuple: nothing the driver keeps can change the record)
    if isinstance(value, Money):
        return value.amount_minor if value.currency == currency else [value.amount_minor, value.currency]
    raise BadData(f"gave {what}={_short(value)}, which is not an amount (an int of minor units or a Money), "
                  "a count(n) or None")


def _arg(value: Any, currency: str) -> Any:
    kind = type(value)
    if kind is int or kind is str:
        return value
    if kind is bool or isinstance(value, str):
        return str(value)  # a StrEnum as its value, as a Text's argument is stored
    if value is None:
        raise BadData("gave a message argument None; arguments are amounts, counts or text")
    return _value(value, currency, "a message argument")
