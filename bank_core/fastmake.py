"""Constructors for the contract's frozen value types, for the kernel's hot path.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__`` (and ``Money`` re-validates its values); building the
five or six values a row hands its drivers that way costs more than the
drivers' own work. These make the very same objects (same class, equal,
same hash, still frozen to anyone who tries to assign) by setting the slots
directly, from values the kernel has already checked: an ``int`` of minor
units, a currency of an account that exists, times that are aware UTC.

Nothing outside the kernel needs them: a driver builds its values with the
ordinary constructors.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bank_core.contract import AccountSnapshot, AccountStatus, PolicyContext, Request, UsageCounters
from bank_core.money import Money, _checked

_new = object.__new__


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(cls, name).__set__ for name in names)


money = _checked  # ``Money(amount_minor, currency)`` for an int and a known currency


def _make(cls: type, setters: tuple[Any, ...], *values: Any) -> Any:
    obj = _new(cls)
    for put, value in zip(setters, values):
        put(obj, value)
    return obj


_SNAPSHOT = _setters(AccountSnapshot, ("id", "currency", "status", "product", "opened_at", "posted",
                                       "held_out", "held_in"))
_REQUEST = _setters(Request, ("institution", "kind", "amount", "source", "dest", "channel", "memo", "at"))
_CONTEXT = _setters(PolicyContext, ("request", "source", "dest", "usage", "timezone", "local_date", "fees"))


def account_snapshot(account_id: str, currency: str, status: AccountStatus, product: str,
                     opened_at: datetime, posted: int, held_out: int, held_in: int) -> AccountSnapshot:
    return _make(AccountSnapshot, _SNAPSHOT, account_id, currency, status, product, opened_at,
                 money(posted, currency), money(held_out, currency), money(held_in, currency))


def policy_context(institution: str, kind: Any, amount: Money, source: str | None,
                   dest: str | None, channel: str, memo: str, at: datetime,
                   src: AccountSnapshot | None, dst: AccountSnapshot | None,
                   usage: UsageCounters, timezone: str, local_date: date, fees: Money) -> PolicyContext:
    request = _make(Request, _REQUEST, institution, kind, amount, source, dest, channel, memo, at)
    return with_fees(request, src, dst, usage, timezone, local_date, fees)


def with_fees(request: Request, src: AccountSnapshot | None, dst: AccountSnapshot | None,
              usage: UsageCounters, timezone: str, local_date: date, fees: Money) -> PolicyContext:
    return _make(PolicyContext, _CONTEXT, request, src, dst, usage, timezone, local_date, fees)
