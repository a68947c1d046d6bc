"""Builds driver inputs straight from the contract types, in USD minor units."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from bank_core.contract import (
    AccountSnapshot,
    AccountStatus,
    Kind,
    Money,
    PolicyContext,
    Request,
    Tally,
    UsageCounters,
)

USD = "USD"
TZ = "America/New_York"
AT = datetime(2024, 3, 15, 15, 0, tzinfo=timezone.utc)
OPENED = datetime(2023, 1, 2, 12, 0, tzinfo=timezone.utc)


def usd(minor: int) -> Money:
    return Money(minor, USD)


def account(id: str = "acc-1", available_minor: int = 10**9, *, product: str = "checking",
            status: AccountStatus = AccountStatus.OPEN, opened_at: datetime = OPENED) -> AccountSnapshot:
    return AccountSnapshot(id=id, currency=USD, status=status, product=product, opened_at=opened_at,
                           posted=usd(available_minor), held_out=usd(0), held_in=usd(0))


def make_ctx(kind: Kind, amount_minor: int, *, channel: str = "branch",
             payer: AccountSnapshot | None = None,
             day: Mapping[tuple[Kind, str], Tally] | None = None,
             month: Mapping[tuple[Kind, str], Tally] | None = None,
             recent_out_at: tuple[datetime, ...] = (), fees_minor: int = 0,
             at: datetime = AT) -> PolicyContext:
    """A context for one request; ``payer`` is the source (the dest for a deposit)."""
    payer = payer if payer is not None else account()
    other = account("acc-2")
    source = None if kind == Kind.DEPOSIT else payer
    dest = payer if kind == Kind.DEPOSIT else (other if kind == Kind.TRANSFER else None)
    request = Request(institution="northwind", kind=kind, amount=usd(amount_minor),
                      source=source.id if source else None, dest=dest.id if dest else None,
                      channel=channel, memo="", at=at)
    usage = UsageCounters(day=dict(day or {}), month=dict(month or {}), recent_out_at=recent_out_at)
    return PolicyContext(request=request, source=source, dest=dest, usage=usage, timezone=TZ,
                         local_date=at.astimezone(ZoneInfo(TZ)).date(), fees=usd(fees_minor))
