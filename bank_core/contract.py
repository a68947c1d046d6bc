"""The plug-in contract: the only module of the kernel a policy driver imports.

A policy package implements one or more of three slots, each an abstract base
class below, and registers each driver as an entry point in that slot's
stevedore namespace (``bank.policy.fee``, ``bank.policy.limit``,
``bank.policy.approval``).

When the kernel calls a driver
------------------------------
For every transaction request the kernel builds one read-only
:class:`PolicyContext` and calls, in the order the bank profile lists them:

1. every fee driver's :meth:`FeeDriver.fees` (their lines are summed);
2. every limit driver's :meth:`LimitDriver.check` with ``ctx.fees`` set to the
   fee total, so limits see the full debit (all must pass);
3. every approval driver's :meth:`ApprovalDriver.decide` (any reject rejects,
   else any review holds the funds for a second person, else it posts).

A rejected transaction charges no fee. Fees are computed before limits only so
that a limit such as "no overdraft" or "at most 2,500.00 a day, fees included"
can see them; drivers never see each other's answers otherwise.

What a driver may do
--------------------
A driver is a pure function of its context and its parameters: same input,
same answer. It must not open files or sockets, read the clock (use
``ctx.request.at``), keep state between calls, or mutate its inputs (they are
frozen). It answers with data: the answer types below, each naming the rule
that produced it so a decision can be explained afterwards.

What an exception means
-----------------------
If a driver raises, returns anything but its slot's answer type, returns an
invalid answer (a fee in another currency, a negative fee, an empty rule
name), or takes longer than its ``budget_ms``, the kernel fails the
transaction closed: it is rejected with a stable reason code
(``driver_raised``, ``driver_bad_answer``, ``driver_timeout``), the fault is
written to the audit log naming the driver and its distribution, and the next
transaction is processed normally.

Contract version 2: decide in data, explain on demand
------------------------------------------------------
Version 2 adds two things a driver may use, and one promise it must keep:

* ``message`` may be a :class:`Text` (a template and its values) instead of a
  finished string. The kernel stores the template once and the values as
  integers, and renders the sentence only when a person asks (``bank txn
  explain``, a results file's reasons). Formatting money for every
  transaction is most of what a driver costs; a template costs nothing.
* ``reads``: the context data the driver looks at beyond the request and the
  account snapshots, as a frozenset of :data:`READS` names (``"usage"`` for
  the day and month counters, ``"recent"`` for ``usage.recent_out_at``). The
  kernel loads only what some driver of the profile reads; a version-2 driver
  that touches data it did not declare gets :class:`UndeclaredRead` (a fault
  of that driver, never a silent zero).
* Prepare in ``__init__``: the kernel builds a driver once per distinct params
  and reuses it, so parse percentages and amounts there, not per call.

A version-1 driver keeps working unchanged: it is treated as reading
everything, and its string messages are stored as they are.

Contract version 3: answers as data
-----------------------------------
Version 3 adds one thing a driver may use: it may answer with data, a tuple
made by :func:`passes`, :func:`fails`, :func:`approves`, :func:`reviews`,
:func:`rejects`, :func:`charges` or :func:`no_fee`, instead of an answer
object. The tuple is already what the decision record stores, so the kernel
checks it and keeps it as it is: no ``Money``, ``Text`` or answer object is
made for a row (about 2 us per driver per row of ``bank txn process``).
In a data answer every value (``threshold``, ``observed``, a message's
arguments, a fee's amount) is one of: an ``int``, an amount in minor units
**of the request's currency**; :func:`count` of an int, a count; a
:class:`Money`, an amount in any currency; a ``str``, text (arguments only).
The kernel checks a data answer as strictly as an object (same fault codes,
``driver_bad_answer``); answer objects stay valid answers of a version-3
driver. A data answer from a version-1 or -2 driver is a bad answer.

Version policy
--------------
``CONTRACT_VERSION`` is an integer. It is bumped when a change could break an
existing driver: a field removed or renamed in a type a driver receives, a
changed meaning of a field, a new abstract method, or a changed answer type;
and when drivers may answer in a form an older kernel would refuse (version
3: data answers), so that such a driver is refused by an older kernel when a
profile is applied, not by every transaction. Adding an optional field with
a default to a type a driver receives, or a new helper, does not bump it. The kernel accepts drivers declaring any version in
``SUPPORTED_CONTRACT_VERSIONS`` (inclusive range) and refuses others when a
profile is applied and by ``bank plugins check``.
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from bank_core.money import (
    MAX_AMOUNT_MINOR,
    Money,
    MoneyError,
    Rate,
    format_minor,
    parse_minor,
)
from bank_core.money import _checked as _money_of
from bank_core.slots import setters

__all__ = [
    "CONTRACT_VERSION", "SUPPORTED_CONTRACT_VERSIONS", "Slot", "NAMESPACES",
    "Kind", "AccountStatus", "Decision", "Money", "MoneyError", "Rate",
    "MAX_AMOUNT_MINOR", "format_minor", "Request", "AccountSnapshot", "Tally",
    "UsageCounters", "PolicyContext", "FeeLine", "FeeAnswer", "LimitAnswer",
    "ApprovalAnswer", "DriverParams", "AmountText", "PercentText",
    "amount_minor", "MinorUnits", "Driver", "FeeDriver", "LimitDriver", "ApprovalDriver",
    "SLOT_BASES", "ANSWER_TYPES", "Text", "READS", "UndeclaredRead",
    "passes", "fails", "approves", "reviews", "rejects", "charges", "no_fee", "fee_line", "count",
    "DATA_VERSION", "read_answer",
]

CONTRACT_VERSION = 3
SUPPORTED_CONTRACT_VERSIONS = (1, 3)  # (lowest, highest), inclusive
DATA_VERSION = 3  # the first version whose drivers may answer with data

READS: frozenset[str] = frozenset({"usage", "recent"})
"""What a version-2 driver may declare in ``reads``: ``usage`` (the day and
month counters) and ``recent`` (``usage.recent_out_at``)."""


class Slot(enum.StrEnum):
    FEE = "fee"
    LIMIT = "limit"
    APPROVAL = "approval"


NAMESPACES: Mapping[Slot, str] = MappingProxyType({
    Slot.FEE: "bank.policy.fee",
    Slot.LIMIT: "bank.policy.limit",
    Slot.APPROVAL: "bank.policy.approval",
})


class Kind(enum.StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER = "transfer"
    # The opposite of a posted transaction (``bank txn reverse``), decided by
    # the limit and approval slots like any other (never charged a fee):
    # ``source`` is the account the reversal debits, ``dest`` the one it credits.
    REVERSAL = "reversal"


REQUEST_KINDS = (Kind.DEPOSIT, Kind.WITHDRAWAL, Kind.TRANSFER)  # what a client may send
KINDS_BY_VALUE = {kind.value: kind for kind in Kind}  # a stored or wire kind -> its Kind, without Kind()


class AccountStatus(enum.StrEnum):
    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REVIEW = "review"


class Text:
    """A message as a template and its values, rendered when a person reads it.

    ``Text("{} is over the single-transaction limit {}", amount, limit)``:
    the template uses ``str.format`` placeholders (``{}`` or ``{0}``); each
    value is a :class:`Money` (shown as ``10.00 USD``), an ``int`` or a
    ``str``. The template should be a constant of the driver: the kernel
    stores each distinct template once.
    """

    __slots__ = ("template", "args")
    template: str
    args: tuple[Money | int | str, ...]

    def __init__(self, template: str, *args: Money | int | str) -> None:
        _TEXT_TEMPLATE(self, template)  # (the slots set directly: ``__setattr__`` refuses)
        _TEXT_ARGS(self, args)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Text is immutable")

    def render(self) -> str:
        return self.template.format(*[str(a) for a in self.args])

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Text({self.template!r}, {', '.join(repr(a) for a in self.args)})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Text) and self.template == other.template
                and self.args == other.args)

    def __hash__(self) -> int:
        return hash((self.template, self.args))


_TEXT_TEMPLATE, _TEXT_ARGS = setters(Text, "template", "args")


class UndeclaredRead(AttributeError):
    """A version-2 driver read context data it did not declare in ``reads``."""


class _Undeclared:
    """Stands in for context data that no driver of the profile declared in
    ``reads``: any use of it raises :class:`UndeclaredRead`."""

    __slots__ = ("_what",)

    def __init__(self, what: str) -> None:
        object.__setattr__(self, "_what", what)

    def _refuse(self, *_args: object) -> object:
        what = object.__getattribute__(self, "_what")
        raise UndeclaredRead(f"context data {what!r} was not loaded: declare "
                             f"reads = frozenset({{{what!r}}}) on the driver class")

    def __getattr__(self, name: str) -> object:
        return self._refuse()

    __iter__ = __len__ = __getitem__ = __contains__ = __bool__ = _refuse

    def __repr__(self) -> str:
        return f"<not loaded: {object.__getattribute__(self, '_what')}>"


UNDECLARED_USAGE = _Undeclared("usage")
UNDECLARED_RECENT = _Undeclared("recent")


# --------------------------------------------------------------------------
# What a driver receives (all frozen)
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Request:
    """The transaction being decided.

    ``source`` is the account money leaves (None for a deposit), ``dest`` the
    account it enters (None for a withdrawal). ``at`` is the transaction's
    time, timezone-aware in UTC; use it instead of the clock.
    """

    institution: str
    kind: Kind
    amount: Money
    source: str | None
    dest: str | None
    channel: str
    memo: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """A customer account as it stands before this transaction.

    ``posted`` is the posted balance (credits minus debits); ``held_out`` the
    funds reserved by held outgoing transactions; ``held_in`` incoming funds
    not yet posted. ``available = posted - held_out``.
    """

    id: str
    currency: str
    status: AccountStatus
    product: str
    opened_at: datetime
    posted: Money
    held_out: Money
    held_in: Money

    @property
    def available(self) -> Money:
        posted, held_out = self.posted, self.held_out
        if type(posted) is Money and type(held_out) is Money and posted.currency == held_out.currency:
            return _money_of(posted.amount_minor - held_out.amount_minor, posted.currency)  # (checked values)
        return posted - held_out  # (raises, naming the currencies)


@dataclass(frozen=True, slots=True)
class Tally:
    """Outgoing usage in one window: principal, fees and count."""

    amount_minor: int = 0
    fee_minor: int = 0
    count: int = 0

    def __add__(self, other: Tally) -> Tally:
        return _tally(self.amount_minor + other.amount_minor,
                      self.fee_minor + other.fee_minor, self.count + other.count)


_TALLY_SET = setters(Tally, "amount_minor", "fee_minor", "count")


def _tally(amount_minor: int, fee_minor: int, count: int) -> Tally:
    """``Tally(...)`` with its slots set directly (a frozen dataclass's own
    ``__init__`` sets each through ``object.__setattr__``)."""
    t = object.__new__(Tally)
    _TALLY_SET[0](t, amount_minor)
    _TALLY_SET[1](t, fee_minor)
    _TALLY_SET[2](t, count)
    return t


_EMPTY: Mapping[tuple[Kind, str], Tally] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class UsageCounters:
    """The source account's outgoing usage before this transaction.

    ``day`` and ``month`` are keyed by ``(kind, channel)`` and cover the
    calendar day and month of ``request.at`` in the institution's timezone.
    Posted and held transactions count; rejected and released ones do not.
    Amounts are minor units of the source account's currency. For a deposit
    (no source account) every window is empty.
    ``recent_out_at`` holds the times of the most recent outgoing
    transactions in the 24 hours up to ``request.at`` (at most
    ``RECENT_OUT_LIMIT``), oldest first.
    """

    RECENT_OUT_LIMIT: ClassVar[int] = 50

    day: Mapping[tuple[Kind, str], Tally] = field(default_factory=lambda: _EMPTY)
    month: Mapping[tuple[Kind, str], Tally] = field(default_factory=lambda: _EMPTY)
    recent_out_at: tuple[datetime, ...] = ()

    @staticmethod
    def _total(window: Mapping[tuple[Kind, str], Tally], kind: Kind | None,
               channel: str | None) -> Tally:
        amount = fee = count = 0
        for (k, ch), tally in window.items():
            if (kind is None or k == kind) and (channel is None or ch == channel):
                amount += tally.amount_minor
                fee += tally.fee_minor
                count += tally.count
        return _tally(amount, fee, count)

    def day_total(self, kind: Kind | None = None, channel: str | None = None) -> Tally:
        return self._total(self.day, kind, channel)

    def month_total(self, kind: Kind | None = None, channel: str | None = None) -> Tally:
        return self._total(self.month, kind, channel)


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """Everything a driver may look at. ``fees`` is zero while fee drivers run
    and the sum of all fee lines when limit and approval drivers run."""

    request: Request
    source: AccountSnapshot | None
    dest: AccountSnapshot | None
    usage: UsageCounters
    timezone: str
    local_date: date
    fees: Money

    @property
    def payer(self) -> AccountSnapshot | None:
        """The account that pays fees: the source, or for a deposit the dest."""
        return self.source if self.source is not None else self.dest


# --------------------------------------------------------------------------
# What a driver answers
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FeeLine:
    """One fee, debited from the payer and credited to fee income."""

    rule: str
    amount: Money
    memo: str = ""


@dataclass(frozen=True, slots=True)
class FeeAnswer:
    """A fee driver's answer: zero or more lines, and the rule that decided.
    ``message`` is a string or (version 2) a :class:`Text`."""

    rule: str
    lines: tuple[FeeLine, ...] = ()
    message: str | Text = ""


@dataclass(frozen=True, slots=True)
class LimitAnswer:
    """A limit verdict. ``threshold`` and ``observed`` say what was compared
    (an amount or a count) so the decision can be explained."""

    passed: bool
    rule: str
    message: str | Text = ""
    threshold: Money | int | None = None
    observed: Money | int | None = None


@dataclass(frozen=True, slots=True)
class ApprovalAnswer:
    decision: Decision
    rule: str
    message: str | Text = ""
    threshold: Money | int | None = None
    observed: Money | int | None = None


# --------------------------------------------------------------------------
# Version 3: answers as data
# --------------------------------------------------------------------------
# Each helper returns a plain tuple in the decision record's own layout:
#   limits and approvals: (outcome, rule, threshold, observed, template, *args)
#   fees:                 (outcome, rule, lines, template, *args), each line
#                         (rule, amount_minor, memo)
# outcome is one letter: p(ass) x (fail) a(pprove) v (review) r(eject)
# f(ee) n(o fee). An int value is an amount in minor units of the request's
# currency; count(n), a 1-tuple, is a count; a Money is an amount in any currency; a str
# is text (message arguments only). ``template`` uses ``str.format``
# placeholders, like :class:`Text`; "" with no arguments is no message.

def passes(rule: str, threshold: object, observed: object, template: str = "", *args: object) -> tuple:
    """A limit passed: ``return passes(RULE, limit_minor, amount_minor, "{} is within {}", amount_minor, limit_minor)``."""
    return ("p", rule, threshold, observed, template, *args)


def fails(rule: str, threshold: object, observed: object, template: str = "", *args: object) -> tuple:
    """A limit failed (the transaction is rejected with ``rule`` as its code)."""
    return ("x", rule, threshold, observed, template, *args)


def approves(rule: str, threshold: object, observed: object, template: str = "", *args: object) -> tuple:
    """An approval driver approves."""
    return ("a", rule, threshold, observed, template, *args)


def reviews(rule: str, threshold: object, observed: object, template: str = "", *args: object) -> tuple:
    """An approval driver holds the funds for a second person's review."""
    return ("v", rule, threshold, observed, template, *args)


def rejects(rule: str, threshold: object, observed: object, template: str = "", *args: object) -> tuple:
    """An approval driver rejects."""
    return ("r", rule, threshold, observed, template, *args)


def fee_line(rule: str, amount_minor: int, memo: str = "") -> tuple[str, int, str]:
    """One fee line of :func:`charges`: a positive amount in minor units of
    the request's currency, debited from the payer and credited to fee income."""
    return (rule, amount_minor, memo)


def charges(rule: str, lines: tuple[tuple[str, int, str], ...], template: str = "", *args: object) -> tuple:
    """A fee driver's answer with the lines it charges (made by :func:`fee_line`;
    at most 8); no lines is the same as :func:`no_fee`."""
    return ("f" if lines else "n", rule, lines, template, *args)


def no_fee(rule: str, template: str = "", *args: object) -> tuple:
    """A fee driver charges nothing."""
    return ("n", rule, (), template, *args)


def count(n: int) -> tuple[int]:
    """A count (not an amount) as a data answer's value: ``count(3)``
    (stored as the record stores a count, ``[3]``)."""
    return (n,)


def read_answer(answer: object, currency: str) -> object:
    """The answer object a data answer stands for, in ``currency`` (the
    request's); an answer object is returned as it is. For reading answers
    in tests and tools: ``read_answer(driver.check(ctx), "USD").passed``.
    Values: an int is ``Money(int, currency)``, ``count(n)`` is ``n``, a
    ``[minor, currency]`` pair (as the kernel stores another currency) a
    ``Money``; a message with neither template nor arguments is ``""``."""
    if type(answer) is not tuple:
        return answer
    letter = answer[0]
    head = 4 if letter in ("f", "n") else 5
    template, args = answer[head - 1], answer[head:]
    message: str | Text = Text(template, *[_read_value(a, currency) for a in args]) if template or args else ""
    if head == 4:
        return FeeAnswer(answer[1], tuple(FeeLine(r, Money(a, currency), m) for r, a, m in answer[2]), message)
    threshold, observed = _read_value(answer[2], currency), _read_value(answer[3], currency)
    if letter in ("p", "x"):
        return LimitAnswer(letter == "p", answer[1], message, threshold, observed)
    return ApprovalAnswer(_DECISIONS[letter], answer[1], message, threshold, observed)


_DECISIONS = {"a": Decision.APPROVE, "v": Decision.REVIEW, "r": Decision.REJECT}


def _read_value(value: object, currency: str) -> object:
    if type(value) is int:
        return Money(value, currency)
    if type(value) is list or type(value) is tuple:  # a count, (n,) or [n]; another currency's [minor, cur]
        return value[0] if len(value) == 1 else Money(value[0], value[1])
    return value


# A driver builds an answer or two per row: each answer's ``__init__`` sets
# its slots directly (the same fields, order and defaults as the dataclass's
# own, which sets each through ``object.__setattr__`` at about twice the cost;
# ``bank_core.slots``).
_FL = setters(FeeLine, "rule", "amount", "memo")
_FA = setters(FeeAnswer, "rule", "lines", "message")
_LA = setters(LimitAnswer, "passed", "rule", "message", "threshold", "observed")
_AA = setters(ApprovalAnswer, "decision", "rule", "message", "threshold", "observed")


def _fee_line(self: FeeLine, rule: str, amount: Money, memo: str = "") -> None:
    _FL[0](self, rule)
    _FL[1](self, amount)
    _FL[2](self, memo)


def _fee_answer(self: FeeAnswer, rule: str, lines: tuple[FeeLine, ...] = (), message: str | Text = "") -> None:
    _FA[0](self, rule)
    _FA[1](self, lines)
    _FA[2](self, message)


def _limit_answer(self: LimitAnswer, passed: bool, rule: str, message: str | Text = "",
                  threshold: Money | int | None = None, observed: Money | int | None = None) -> None:
    _LA[0](self, passed)
    _LA[1](self, rule)
    _LA[2](self, message)
    _LA[3](self, threshold)
    _LA[4](self, observed)


def _approval_answer(self: ApprovalAnswer, decision: Decision, rule: str, message: str | Text = "",
                     threshold: Money | int | None = None, observed: Money | int | None = None) -> None:
    _AA[0](self, decision)
    _AA[1](self, rule)
    _AA[2](self, message)
    _AA[3](self, threshold)
    _AA[4](self, observed)


for _cls, _init in ((FeeLine, _fee_line), (FeeAnswer, _fee_answer), (LimitAnswer, _limit_answer),
                    (ApprovalAnswer, _approval_answer)):
    _init.__qualname__ = f"{_cls.__name__}.__init__"
    _cls.__init__ = _init  # type: ignore[assignment,method-assign]
del _cls, _init


# --------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------

_AMOUNT_TEXT = re.compile(r"\A[0-9]+(\.[0-9]{1,3})?\Z")


def _check_amount_text(value: str) -> str:
    if not _AMOUNT_TEXT.match(value):
        raise ValueError(f"{value!r} is not a plain decimal amount like \"2500.00\"")
    return value


def _check_percent_text(value: str) -> str:
    Rate.parse_percent(value)
    return value


AmountText = Annotated[str, AfterValidator(_check_amount_text)]
"""An amount in major units as text ("2500.00"); convert with :func:`amount_minor`."""

PercentText = Annotated[str, AfterValidator(_check_percent_text)]
"""A percentage as text ("0.5" means 0.5%); convert with ``Rate.parse_percent``."""


@lru_cache(maxsize=4096)
def amount_minor(text: str, currency: str) -> int:
    """A parameter amount in minor units of ``currency`` (cached, exact)."""
    return parse_minor(text, currency, field="param", allow_zero=True)


class MinorUnits(dict[str, int]):
    """A parameter amount in minor units of each currency, converted by
    :func:`amount_minor` the first time a currency is asked for:
    ``self._max = MinorUnits(params.max)`` once, ``self._max[currency]``
    per call (one dictionary lookup, the conversion never repeated)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def __missing__(self, currency: str) -> int:
        minor = self[currency] = amount_minor(self.text, currency)
        return minor


class DriverParams(BaseModel):
    """Base of every driver's ``Params``: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# --------------------------------------------------------------------------
# The three slots
# --------------------------------------------------------------------------

class Driver(ABC):
    """Common shape of a driver.

    ``contract_version``: the contract version the driver implements; every
    driver class must set it itself (it is not inherited from this base, so
    a kernel upgrade can never silently claim an old driver is current).
    ``Params``: a :class:`DriverParams` subclass; every field needs a default
    so a profile may omit it. ``budget_ms``: the processor time one call may
    take (the driver's own CPU time, so a busy machine never changes a
    decision; a call that does not return is cut off after ``budget_ms`` plus
    a grace period of wall time). ``reads`` (version 2): the context data the
    driver reads, see :data:`READS`; version-1 drivers read everything.
    The kernel instantiates a driver once per distinct params and reuses it.
    """

    contract_version: ClassVar[int]
    Params: ClassVar[type[DriverParams]] = DriverParams
    budget_ms: ClassVar[int] = 50
    reads: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, params: DriverParams) -> None:
        self.params = params


class FeeDriver(Driver):
    slot: ClassVar[Slot] = Slot.FEE

    @abstractmethod
    def fees(self, ctx: PolicyContext) -> FeeAnswer:
        """Called first, once per transaction. Return the fees to charge (in
        the request's currency, each positive) or no lines."""


class LimitDriver(Driver):
    slot: ClassVar[Slot] = Slot.LIMIT

    @abstractmethod
    def check(self, ctx: PolicyContext) -> LimitAnswer:
        """Called after fees, with ``ctx.fees`` set. Return ``passed=False``
        to reject the transaction; every limit driver must pass."""


class ApprovalDriver(Driver):
    slot: ClassVar[Slot] = Slot.APPROVAL

    @abstractmethod
    def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
        """Called after all limits passed. Any REJECT rejects; else any REVIEW
        holds the funds until a second person approves or rejects."""


SLOT_BASES: Mapping[Slot, type[Driver]] = MappingProxyType({
    Slot.FEE: FeeDriver, Slot.LIMIT: LimitDriver, Slot.APPROVAL: ApprovalDriver,
})

ANSWER_TYPES: Mapping[Slot, type] = MappingProxyType({
    Slot.FEE: FeeAnswer, Slot.LIMIT: LimitAnswer, Slot.APPROVAL: ApprovalAnswer,
})
