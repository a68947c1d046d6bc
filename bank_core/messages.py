"""What goes into the service facade and what comes out.

``TxnRequest`` is what a client sends (amount as text, parsed strictly);
``TxnResult`` is the typed answer, stored with the transaction so that a
replay of the same idempotency key returns exactly the first result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict

from bank_core.contract import Kind
from bank_core import limits
from bank_core.errors import InvalidRequest, NotFound
from bank_core.limits import MAX_MEMO_LENGTH, MAX_REF_LENGTH
from bank_core.money import MoneyError, check_currency
from bank_core.slots import setters

DEFAULT_CHANNEL = "branch"
_CHANNEL_RE = re.compile(r"\A[a-z0-9_-]{1,64}\Z")
_REF_RE = re.compile(r"\A[\x21-\x7e]{1,200}\Z")  # printable ASCII, no spaces
_AMOUNT_SHAPE = re.compile(r"\A[0-9]+(\.[0-9]+)?\Z")


_UTC = timezone.utc


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; naive values (as SQLite returns them) are taken as UTC."""
    tz = moment.tzinfo
    if tz is _UTC:
        return moment
    if tz is None:
        return moment.replace(tzinfo=_UTC)
    return moment.astimezone(_UTC)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class TxnRequest:
    """A transaction request as a client sends it.

    ``source`` is the account debited (withdrawal, transfer), ``dest`` the one
    credited (deposit, transfer). ``currency`` may be omitted: it is then the
    accounts' currency. ``at`` may be omitted: it is then the time of
    processing (and is not part of the idempotency body).
    """

    institution: str
    ref: str
    kind: str
    amount: str
    source: str | None = None
    dest: str | None = None
    currency: str | None = None
    channel: str = DEFAULT_CHANNEL
    memo: str = ""
    at: datetime | None = None
    actor: str = "system"

    def check_shape(self) -> Kind:
        """Field-level validation that needs no database; returns the kind."""
        if not isinstance(self.ref, str) or not _REF_RE.match(self.ref):
            raise InvalidRequest(f"ref: {limits.shown(self.ref)} must be 1-{MAX_REF_LENGTH} printable characters without spaces")
        try:
            kind = _SENT_KINDS.get(self.kind)
        except TypeError:  # (not hashable: not a kind)
            kind = None
        if kind is None:  # (a reversal is made by `bank txn reverse`, never sent)
            raise InvalidRequest(f"type: {self.kind!r} is not one of deposit, withdrawal, transfer")
        if isinstance(self.amount, str) and len(self.amount) > limits.MAX_AMOUNT_TEXT_LENGTH:
            raise InvalidRequest(f"amount: {limits.shown(self.amount)} has more than "
                                 f"{limits.MAX_AMOUNT_TEXT_LENGTH} characters")
        if not isinstance(self.amount, str) or not _AMOUNT_SHAPE.match(self.amount):
            shown = self.amount if isinstance(self.amount, str) else f"{self.amount!r} ({type(self.amount).__name__})"
            raise InvalidRequest(f"amount: {shown!r} is not a plain positive decimal amount like \"10.50\"")
        needs = _NEEDS[kind]
        source, dest = self.source, self.dest
        if (not source) is needs[0] or (not dest) is needs[1] or not (
                not source or type(source) is str and _ID_MATCH(source)) or not (
                not dest or type(dest) is str and _ID_MATCH(dest)):  # (the common case: one test)
            for label, value, needed in (("from", source, needs[0]), ("to", dest, needs[1])):
                if needed and not value:
                    raise InvalidRequest(f"{label}: a {kind} needs a '{label}' account")
                if not needed and value:
                    raise InvalidRequest(f"{label}: a {kind} takes no '{label}' account")
                if value and not limits.is_id(value):
                    raise NotFound(f"{label}: account {limits.shown(value)} not found")
        if kind is Kind.TRANSFER and source == dest:
            raise InvalidRequest("to: a transfer needs two different accounts")
        if self.currency is not None:
            try:
                check_currency(self.currency)
            except MoneyError as exc:
                raise InvalidRequest(str(exc)) from None
        if not isinstance(self.channel, str) or not _CHANNEL_RE.match(self.channel):
            raise InvalidRequest(f"channel: {self.channel!r} must be 1-64 characters of a-z, 0-9, '_' or '-'")
        memo, actor = self.memo, self.actor
        if memo != "" or type(memo) is not str:  # (most rows carry no memo)
            limits.check_text(memo, "memo", MAX_MEMO_LENGTH)
        if actor is not _ACTOR_OK[0]:  # (a file's rows share one actor: checked once)
            limits.check_text(actor, "actor", limits.MAX_ACTOR_LENGTH, required=True)
            _ACTOR_OK[0] = actor
        at = self.at
        if at is not None:
            if not isinstance(at, datetime) or at.tzinfo is None:
                raise InvalidRequest(f"at: {at!r} must be a time with a timezone, e.g. 2026-11-22T10:00:00Z")
            if at.tzinfo is not timezone.utc or not limits.EARLIEST <= at < limits.LATEST:
                limits.check_time(at, "at")  # (in UTC and in range: nothing to check again)
        return kind


_SENT_KINDS = {kind.value: kind for kind in Kind if kind is not Kind.REVERSAL}
_ID_MATCH = limits._ID_RE.match  # (``limits.is_id`` without the call, for the common case)
_ACTOR_OK: list[object] = [None]  # the last actor ``check_shape`` passed (the very object: text is immutable)
(_R_INSTITUTION, _R_REF, _R_KIND, _R_AMOUNT, _R_SOURCE, _R_DEST, _R_CURRENCY, _R_CHANNEL, _R_MEMO, _R_AT,
 _R_ACTOR) = setters(TxnRequest, "institution", "ref", "kind", "amount", "source", "dest", "currency", "channel",
                     "memo", "at", "actor")
_new = object.__new__


def request_of(institution: str, ref: str, kind: str, amount: str, source: str | None, dest: str | None,
               currency: str | None, channel: str, memo: str, at: datetime | None, actor: str) -> TxnRequest:
    """``TxnRequest(...)`` with every field given, its slots set directly
    (a frozen dataclass's ``__init__`` sets each through
    ``object.__setattr__``): for a file's rows, checked by ``check_shape``
    like any other."""
    r = _new(TxnRequest)  # (field by field, no loop: one a row of a file)
    _R_INSTITUTION(r, institution)
    _R_REF(r, ref)
    _R_KIND(r, kind)
    _R_AMOUNT(r, amount)
    _R_SOURCE(r, source)
    _R_DEST(r, dest)
    _R_CURRENCY(r, currency)
    _R_CHANNEL(r, channel)
    _R_MEMO(r, memo)
    _R_AT(r, at)
    _R_ACTOR(r, actor)
    return r


# (needs a 'from' account, needs a 'to' account) per kind
_NEEDS = {Kind.DEPOSIT: (False, True), Kind.WITHDRAWAL: (True, False), Kind.TRANSFER: (True, True)}

TXN_ID_PREFIX = "txn_"
_TXN_ID_RE = re.compile(r"\Atxn_([1-9][0-9]{0,17})\Z")


def public_txn_id(number: int) -> str:
    """What people see of a transaction's time-ordered integer id."""
    return f"{TXN_ID_PREFIX}{number}"


def parse_txn_id(text: str) -> int | None:
    """The integer id in ``txn_<n>``, or None for anything else (such as an
    id a revision-0001 database gave, looked up by ``legacy_id``)."""
    match = _TXN_ID_RE.match(text) if isinstance(text, str) else None
    return int(match.group(1)) if match else None


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class FeeOut(_Out):
    driver: str
    rule: str
    amount: str
    currency: str
    memo: str = ""


class BalanceOut(_Out):
    account: str
    posted: str
    available: str
    held_out: str
    currency: str


class TxnResult(_Out):
    """The answer to a transaction request. Amounts are strings in major units."""

    txn_id: str
    institution: str
    ref: str
    kind: str
    status: str  # posted | held | rejected
    code: str | None  # the rule or fault that rejected or held it
    amount: str
    currency: str
    fee_total: str
    fees: list[FeeOut]
    reasons: list[dict[str, Any]]
    source: str | None
    dest: str | None
    channel: str
    memo: str
    at: str
    profile_version: int
    balances: list[BalanceOut]

    def to_json(self) -> str:
        return self.model_dump_json()
