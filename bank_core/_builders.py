"""The conformance kit's builders (private; import them from
:mod:`bank_core.testing`): the frozen inputs a driver receives, built as
the kernel builds them, and the labelled edge inputs and standard probe the
checks use."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from bank_core.contract import (
    MAX_AMOUNT_MINOR,
    AccountSnapshot,
    AccountStatus,
    Kind,
    Money,
    PolicyContext,
    Request,
    Slot,
    Tally,
    UsageCounters,
    amount_minor,
)

DEFAULT_AT = datetime(2024, 3, 15, 15, 0, tzinfo=UTC)
DEFAULT_OPENED_AT = datetime(2023, 1, 2, 12, 0, tzinfo=UTC)
DEFAULT_INSTITUTION = "testbank"
SOURCE_ID = "acc-source"
DEST_ID = "acc-dest"
_ONE_MICROSECOND = timedelta(microseconds=1)
EDGE_CURRENCIES = ("JPY", "BHD")  # the other currencies of edge_contexts by default
# Account ages of the edge inputs: with the kit's clock moved 3 days between
# two calls, a rule "opened less than N days ago" that reads the clock instead
# of ctx.local_date answers differently for one of these ages, for N of 2-16,
# 21-23, 30, 45-48, 60, 90, 180 or 365 days.
OPENED_DAYS_BEFORE = (1, 3, 6, 9, 13, 20, 29, 45, 59, 89, 179, 364)
_DEFAULT: Any = object()


# --------------------------------------------------------------------------
# Amounts and times
# --------------------------------------------------------------------------

def _minor(amount: str | int, currency: str) -> int:
    """``amount`` in minor units: text in major units (a leading ``-`` is
    allowed, for balances) or an int that already is minor units."""
    if type(amount) is int:
        return amount
    if not isinstance(amount, str):
        raise TypeError(f"amount {amount!r}: give text like \"10.50\" or an int of minor units, "
                        f"not {type(amount).__name__}")
    if amount.startswith("-"):
        return -amount_minor(amount[1:], currency)
    return amount_minor(amount, currency)


def money(amount: str | int, currency: str = "USD") -> Money:
    """``money("10.50")`` is 1050 minor units of USD; ``money(1050)`` too."""
    return Money(_minor(amount, currency), currency)


def local_time(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
               microsecond: int = 0, *, tz: str = "UTC") -> datetime:
    """The instant of a wall-clock time in ``tz``, in UTC (as ``Request.at``)."""
    return datetime(year, month, day, hour, minute, second, microsecond,
                    tzinfo=ZoneInfo(tz)).astimezone(UTC)


def local_date(at: datetime, tz: str = "UTC") -> date:
    """The calendar date of ``at`` in ``tz`` (what the kernel puts in ``ctx.local_date``)."""
    return at.astimezone(ZoneInfo(tz)).date()


def day_start(day: date, tz: str = "UTC") -> datetime:
    """The first instant of ``day`` in ``tz``, in UTC."""
    return local_time(day.year, day.month, day.day, tz=tz)


def day_end(day: date, tz: str = "UTC") -> datetime:
    """The last microsecond of ``day`` in ``tz``, in UTC."""
    return day_start(day + timedelta(days=1), tz) - _ONE_MICROSECOND


def month_start(year: int, month: int, tz: str = "UTC") -> datetime:
    """The first instant of the month in ``tz``, in UTC."""
    return local_time(year, month, 1, tz=tz)


def month_end(year: int, month: int, tz: str = "UTC") -> datetime:
    """The last microsecond of the month in ``tz``, in UTC."""
    following = date(year + month // 12, month % 12 + 1, 1)
    return day_start(following, tz) - _ONE_MICROSECOND


# --------------------------------------------------------------------------
# What a driver receives
# --------------------------------------------------------------------------

def make_request(kind: Kind | str = Kind.TRANSFER, amount: str | int = "10.00", currency: str = "USD",
                 at: datetime | None = None, channel: str = "branch", *,
                 source: str | None = _DEFAULT, dest: str | None = _DEFAULT,
                 institution: str = DEFAULT_INSTITUTION, memo: str = "") -> Request:
    """A request; ``source`` and ``dest`` default to what ``kind`` needs
    (no source for a deposit, no dest for a withdrawal)."""
    kind = Kind(kind)
    if source is _DEFAULT:
        source = None if kind is Kind.DEPOSIT else SOURCE_ID
    if dest is _DEFAULT:
        dest = None if kind is Kind.WITHDRAWAL else DEST_ID
    needs = {Kind.DEPOSIT: (False, True), Kind.WITHDRAWAL: (True, False), Kind.TRANSFER: (True, True),
             Kind.REVERSAL: (True, True)}  # a reversal of a transfer; of a deposit or withdrawal, one side
    sides = (source is not None, dest is not None)
    shaped = any(sides) if kind is Kind.REVERSAL else needs[kind] == sides
    if not shaped or (source is not None and source == dest):
        raise ValueError(f"a {kind} has {'a' if needs[kind][0] else 'no'} source and "
                         f"{'a' if needs[kind][1] else 'no'} dest account, and they differ; "
                         f"got source={source!r}, dest={dest!r}")
    at = DEFAULT_AT if at is None else at
    if at.tzinfo is None:
        raise ValueError("at: give a timezone-aware time (see local_time)")
    return Request(institution, kind, money(amount, currency), source, dest, channel, memo,
                   at.astimezone(UTC))


def make_account(id: str = SOURCE_ID, *, currency: str = "USD", balance: str | int = "1000.00",
                 held_out: str | int = 0, held_in: str | int = 0,
                 status: AccountStatus | str = AccountStatus.OPEN, product: str = "standard",
                 opened_at: datetime = DEFAULT_OPENED_AT) -> AccountSnapshot:
    """An account snapshot; ``balance`` is the posted balance (may be
    negative, "-50.00"), ``available`` is ``balance - held_out``."""
    return AccountSnapshot(id, currency, AccountStatus(status), product, opened_at.astimezone(UTC),
                           money(balance, currency), money(held_out, currency),
                           money(held_in, currency))


Window = Mapping[tuple[Kind | str, str], Tally | tuple[int, int, int]]


def _window(window: Window | None) -> Mapping[tuple[Kind, str], Tally]:
    items = {}
    for (kind, channel), tally in (window or {}).items():
        items[(Kind(kind), channel)] = tally if isinstance(tally, Tally) else Tally(*tally)
    return MappingProxyType(items)


def make_usage(day: Window | None = None, month: Window | None = None,
               recent_out_at: tuple[datetime, ...] = ()) -> UsageCounters:
    """Usage counters, read-only like the kernel's. Keys are ``(kind,
    channel)``; values a :class:`Tally` or ``(amount_minor, fee_minor, count)``."""
    return UsageCounters(_window(day), _window(month), tuple(sorted(recent_out_at)))


def make_context(kind: Kind | str = Kind.TRANSFER, amount: str | int = "10.00", currency: str = "USD",
                 *, at: datetime | None = None, channel: str = "branch", timezone: str = "UTC",
                 source: AccountSnapshot | None = None, dest: AccountSnapshot | None = None,
                 usage: UsageCounters | None = None, fees: str | int = 0,
                 request: Request | None = None) -> PolicyContext:
    """A whole context. Accounts default to open ``standard`` accounts with
    1000.00 (in ``currency``) on the sides ``kind`` needs; pass ``request``
    to use your own (then ``kind``, ``amount``, ``currency``, ``at`` and
    ``channel`` are taken from it)."""
    if request is None:
        request = make_request(kind, amount, currency, at, channel,
                               source=source.id if source else _DEFAULT,
                               dest=dest.id if dest else _DEFAULT)
    currency = request.amount.currency
    if request.source is not None and source is None:
        source = make_account(request.source, currency=currency)
    if request.dest is not None and dest is None:
        dest = make_account(request.dest, currency=currency)
    for side, account, wanted in (("source", source, request.source), ("dest", dest, request.dest)):
        if (account.id if account else None) != wanted:
            raise ValueError(f"{side}: the request names {wanted!r}, the account is "
                             f"{account.id if account else None!r}")
        if account is not None and account.currency != currency:
            raise ValueError(f"{side}: account in {account.currency}, request in {currency}; "
                             "the kernel only decides requests in the accounts' currency")
    usage = make_usage() if usage is None else usage
    if request.source is None and (usage.day or usage.month or usage.recent_out_at):
        raise ValueError("usage: a deposit has no source account, so the kernel gives it empty usage")
    return PolicyContext(request, source, dest, usage, timezone, local_date(request.at, timezone),
                         money(fees, currency))


def make_payer_context(kind: Kind | str = Kind.TRANSFER, amount: str | int = "10.00",
                       currency: str = "USD", *, payer: AccountSnapshot | None = None,
                       counterparty: AccountSnapshot | None = None, at: datetime | None = None,
                       channel: str = "branch", timezone: str = "UTC",
                       institution: str = DEFAULT_INSTITUTION, day: Window | None = None,
                       month: Window | None = None, recent_out_at: tuple[datetime, ...] = (),
                       fees: str | int = 0) -> PolicyContext:
    """A context built around the account that pays (``PolicyContext.payer``),
    for a driver's behaviour tests.

    ``payer`` is the source of a withdrawal or a transfer and the dest of a
    deposit (default: :func:`make_account`); ``counterparty`` is a
    transfer's dest (default: ``make_account(DEST_ID)``). ``day``, ``month``
    and ``recent_out_at`` are the usage, as for :func:`make_usage`.

    Unlike :func:`make_context`, a deposit keeps the usage it is given: the
    kernel never gives a deposit any, but a test may show that a driver
    ignores outgoing counters when it decides a deposit."""
    kind = Kind(kind)
    payer = make_account(currency=currency) if payer is None else payer
    source = None if kind is Kind.DEPOSIT else payer
    dest = payer if kind is Kind.DEPOSIT else None
    if kind in (Kind.TRANSFER, Kind.REVERSAL):
        dest = make_account(DEST_ID, currency=currency) if counterparty is None else counterparty
    request = make_request(kind, amount, currency, at, channel, institution=institution,
                           source=source.id if source else None, dest=dest.id if dest else None)
    ctx = make_context(request=request, source=source, dest=dest, timezone=timezone, fees=fees)
    return dataclasses.replace(ctx, usage=make_usage(day, month, recent_out_at))


# --------------------------------------------------------------------------
# Edge inputs and the standard probe
# --------------------------------------------------------------------------

def _busy_usage(at: datetime, currency: str) -> UsageCounters:
    big = amount_minor("100000", currency)
    window = {(kind, ch): (big, amount_minor("10", currency), 40)
              for kind in (Kind.WITHDRAWAL, Kind.TRANSFER) for ch in ("atm", "branch", "online")}
    recent = tuple(at - timedelta(minutes=20 * i) for i in range(UsageCounters.RECENT_OUT_LIMIT, 0, -1))
    return make_usage(window, window, recent)


def edge_contexts(*, timezone: str = "UTC", currency: str = "USD",
                  slot: Slot | str | None = None,
                  currencies: Iterable[str] | None = None) -> list[tuple[str, PolicyContext]]:
    """Labelled contexts every driver must answer with its slot's answer type.

    For each kind: a typical request, the ``atm`` channel, zero and negative
    balances, the smallest and the largest amount (``MAX_AMOUNT_MINOR``), a
    frozen account, a brand-new account (opened at the request's time), busy
    usage counters, fees already set (not for the fee slot: fee drivers
    always see zero), the first and last instant of a day, a month (a leap
    February) and a year in ``timezone``; accounts opened 1 to 364 days
    before the request; and the same kinds in each of ``currencies`` other
    than ``currency`` (default: JPY, no decimals, and BHD, three decimals; a
    profile's own list in :func:`profile_conformance`). Only inputs the
    kernel can produce: a deposit has empty usage, a closed account never
    reaches a driver."""
    cases: list[tuple[str, PolicyContext]] = []
    with_fees = slot is None or Slot(slot) is not Slot.FEE

    def add(kind: Kind, label: str, *, cur: str = currency, amount: str | int = "10",
            at: datetime = DEFAULT_AT, balance: str | int = "1000", status: str = "open",
            opened_at: datetime = DEFAULT_OPENED_AT, busy: bool = False, channel: str = "branch",
            fees: str | int = 0, held_out: str | int = 0) -> None:
        request = make_request(kind, amount, cur, at, channel)
        accounts = {side: make_account(side_id, currency=cur, balance=balance, status=status,
                                       opened_at=opened_at, held_out=held_out)
                    for side, side_id in (("source", request.source), ("dest", request.dest))
                    if side_id is not None}
        usage = _busy_usage(at, cur) if busy and request.source is not None else make_usage()
        cases.append((f"{kind} {cur} {label}", make_context(
            request=request, timezone=timezone, usage=usage, fees=fees, **accounts)))

    for kind in Kind:
        add(kind, "typical")
        add(kind, "atm channel", channel="atm")
        add(kind, "zero balance", balance=0)
        add(kind, "overdrawn, with holds", balance="-50", held_out="20")
        add(kind, "smallest amount", amount=1)
        add(kind, "maximum amount", amount=MAX_AMOUNT_MINOR, balance=MAX_AMOUNT_MINOR)
        add(kind, "maximum amount, zero balance", amount=MAX_AMOUNT_MINOR, balance=0)
        add(kind, "frozen account", status="frozen")
        add(kind, "brand-new account", opened_at=DEFAULT_AT)
        add(kind, "busy usage", busy=True)
        if with_fees:
            add(kind, "fees already set", fees="3", busy=True)
        for label, at in _boundaries(timezone):
            add(kind, label, at=at, busy=label.startswith("last"))
        for days in OPENED_DAYS_BEFORE:
            add(kind, f"accounts opened {days} days before", opened_at=DEFAULT_AT - timedelta(days=days))
        for other in (EDGE_CURRENCIES if currencies is None else currencies):
            if other != currency:
                add(kind, "typical", cur=other)
                add(kind, "maximum amount", cur=other, amount=MAX_AMOUNT_MINOR, balance=MAX_AMOUNT_MINOR)
                add(kind, "zero balance", cur=other, balance=0)
                add(kind, "busy usage", cur=other, busy=True)
                if with_fees:
                    add(kind, "fees already set", cur=other, fees="3", busy=True)
    return cases


def _boundaries(tz: str) -> list[tuple[str, datetime]]:
    day = DEFAULT_AT.date()
    return [
        ("first instant of the day", day_start(day, tz)),
        ("last instant of the day", day_end(day, tz)),
        ("first instant of the month", month_start(2024, 3, tz)),
        ("last instant of a leap February", month_end(2024, 2, tz)),
        ("first instant of the year", month_start(2025, 1, tz)),
        ("last instant of the year", month_end(2024, 12, tz)),
    ]


def probe_contexts(*, currency: str = "USD", timezone: str = "UTC") -> list[tuple[str, PolicyContext]]:
    """The standard probe ``bank plugins check`` runs: one ordinary request
    of each kind, 10 major units, in the institution's currency and zone."""
    return [(str(kind), make_context(kind, "10", currency, timezone=timezone)) for kind in Kind]
