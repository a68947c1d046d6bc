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
from bank_core.money import Money

_new = object.__new__


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(cls, name).__set__ for name in names)


_M_AMOUNT, _M_CURRENCY = _setters(Money, ("amount_minor", "currency"))


def money(amount_minor: int, currency: str) -> Money:
    """``Money(amount_minor, currency)`` for an int and a known currency."""
    m = _new(Money)
    _M_AMOUNT(m, amount_minor)
    _M_CURRENCY(m, currency)
    return m


_S = _setters(AccountSnapshot, ("id", "currency", "status", "product", "opened_at", "posted",
                                "held_out", "held_in"))


def account_snapshot(account_id: str, currency: str, status: AccountStatus, product: str,
                     opened_at: datetime, posted: int, held_out: int, held_in: int) -> AccountSnapshot:
    s = _new(AccountSnapshot)
    _S[0](s, account_id)
    _S[1](s, currency)
    _S[2](s, status)
    _S[3](s, product)
    _S[4](s, opened_at)
    _S[5](s, money(posted, currency))
    _S[6](s, money(held_out, currency))
    _S[7](s, money(held_in, currency))
    return s


_R = _setters(Request, ("institution", "kind", "amount", "source", "dest", "channel", "memo", "at"))
_C = _setters(PolicyContext, ("request", "source", "dest", "usage", "timezone", "local_date", "fees"))


def policy_context(institution: str, kind: Any, amount: Money, source: str | None,
                   dest: str | None, channel: str, memo: str, at: datetime,
                   src: AccountSnapshot | None, dst: AccountSnapshot | None,
                   usage: UsageCounters, timezone: str, local_date: date, fees: Money) -> PolicyContext:
    r = _new(Request)
    _R[0](r, institution)
    _R[1](r, kind)
    _R[2](r, amount)
    _R[3](r, source)
    _R[4](r, dest)
    _R[5](r, channel)
    _R[6](r, memo)
    _R[7](r, at)
    return with_fees(r, src, dst, usage, timezone, local_date, fees)


def with_fees(request: Request, src: AccountSnapshot | None, dst: AccountSnapshot | None,
              usage: UsageCounters, timezone: str, local_date: date, fees: Money) -> PolicyContext:
    c = _new(PolicyContext)
    _C[0](c, request)
    _C[1](c, src)
    _C[2](c, dst)
    _C[3](c, usage)
    _C[4](c, timezone)
    _C[5](c, local_date)
    _C[6](c, fees)
    return c
