"""The conformance kit for policy drivers: builders and checks (public API).

A policy package tests its drivers with this module and nothing else from the
kernel but :mod:`bank_core.contract`; it imports only the contract, the
standard library and pydantic (and pytest, lazily, for
:class:`DriverConformance`), so it runs without a database.

Builders make the frozen inputs a driver receives, with sensible defaults::

    ctx = make_context("withdrawal", "40.00", channel="atm",
                       usage=make_usage(month={("withdrawal", "atm"): (8_000, 0, 4)}))

Amounts are text in major units (``"40.00"``, parsed exactly) or an ``int``
of minor units; a float is refused. Times are timezone-aware; build a local
wall-clock time with :func:`local_time` and the edges of a day or a month in
an institution's timezone with :func:`day_start`, :func:`day_end`,
:func:`month_start` and :func:`month_end`.

Behaviour tests of one rule usually turn around the account that pays:
:func:`make_payer_context` builds a context from it, usage windows and fees.

Conformance: :func:`check_driver` (one call, returns :class:`Problem` data)
or :class:`DriverConformance` (a pytest base class, one test per check);
:func:`profile_conformance` makes one such class per driver a bank profile
lists. The checks themselves live in the private ``bank_core._conformance``;
the guide (``docs/writing-policies.md``) lists what each one demands.

A policy distribution's own package tests can share the generic checks of a
whole package: :func:`package_drivers` (what its ``pyproject.toml``
registers), :func:`assert_driver_shape`, :func:`assert_answers_keep_the_contract`,
:func:`read_profile`, :func:`assert_profile_params_are_defaults` and
:func:`assert_no_float`.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.metadata
import os
import tomllib
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from bank_core._conformance import (
    CHECKS,
    Problem,
    Subject,
    run_checks,
)
from bank_core._package_checks import (
    assert_answers_keep_the_contract,
    assert_driver_shape,
    assert_no_float,
    assert_profile_params_are_defaults,
    package_drivers,
    read_profile,
)
from bank_core.hints import did_you_mean
from bank_core.contract import (
    ANSWER_TYPES,
    MAX_AMOUNT_MINOR,
    NAMESPACES,
    SLOT_BASES,
    SUPPORTED_CONTRACT_VERSIONS,
    AccountSnapshot,
    AccountStatus,
    Decision,
    Kind,
    Money,
    PolicyContext,
    Request,
    Slot,
    Tally,
    UsageCounters,
    amount_minor,
)

__all__ = [
    "UTC", "DEFAULT_AT", "DEFAULT_OPENED_AT", "DEFAULT_INSTITUTION", "SOURCE_ID", "DEST_ID",
    "money", "local_time", "local_date", "day_start", "day_end", "month_start", "month_end",
    "make_request", "make_account", "make_usage", "make_context", "make_payer_context",
    "edge_contexts", "probe_contexts", "CHECKS", "Problem", "check_driver", "check_driver_class",
    "DriverConformance", "profile_conformance", "installed_entry_points", "assert_profile_lists_installed",
    "package_drivers",
    "assert_driver_shape", "assert_answers_keep_the_contract", "read_profile",
    "assert_profile_params_are_defaults", "assert_no_float",
]

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
    needs = {Kind.DEPOSIT: (False, True), Kind.WITHDRAWAL: (True, False), Kind.TRANSFER: (True, True)}
    if needs[kind] != (source is not None, dest is not None) or (source is not None and source == dest):
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
    if kind is Kind.TRANSFER:
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


# --------------------------------------------------------------------------
# Conformance
# --------------------------------------------------------------------------

def _load_entry_point(name: str, slot: Slot) -> tuple[Any, list[Problem]]:
    namespace = NAMESPACES[slot]
    found = importlib.metadata.entry_points(group=namespace, name=name)
    if not found:
        nearest = did_you_mean(name, (ep.name for ep in importlib.metadata.entry_points(group=namespace)))
        return None, [Problem("entry_point", f"no entry point {name!r} in namespace {namespace!r} "
                                             f"(is the package installed? pip install -e 'NAME[test]'){nearest}")]
    if len(found) > 1:
        owners = sorted(f"{ep.dist.name if ep.dist else '?'}: {ep.value}" for ep in found)
        return None, [Problem("entry_point", f"{name!r} is registered {len(found)} times in "
                                             f"{namespace!r}: {', '.join(owners)}")]
    (entry_point,) = found
    try:
        return entry_point.load(), []
    except Exception as exc:  # noqa: BLE001 - any import error is the finding
        return None, [Problem("entry_point", f"{name!r} ({entry_point.value}) failed to import: "
                                             f"{type(exc).__name__}: {exc}")]


def check_driver_class(cls: type, slot: Slot | str, params: Mapping[str, Any] | None = None, *,
                       timezone: str = "UTC", currency: str = "USD",
                       currencies: Iterable[str] | None = None,
                       params_by_currency: Mapping[str, Mapping[str, Any]] | None = None,
                       checks: Collection[str] | None = None) -> list[Problem]:
    """Every conformance problem of a driver class (not via an entry point).

    ``params`` are the profile's params for the driver (default: none, so
    the Params defaults); ``timezone`` and ``currency`` the institution's.
    ``currencies`` are the other currencies its accounts may be in (a
    profile's ``currencies``); by default JPY and BHD, so that a driver whose
    params cannot be expressed in a currency without or with three decimals
    is reported. If the institution would use different params in one of
    them, give them in ``params_by_currency`` (e.g. ``{"JPY": {"fee": "300"}}``)."""
    subject = Subject(cls, Slot(slot), dict(params or {}), timezone, currency,
                      {k: dict(v) for k, v in (params_by_currency or {}).items()})
    others = None if currencies is None else tuple(currencies)

    def amount_context(kind: Kind, amount_minor: int, channel: str) -> PolicyContext:
        request = make_request(kind, amount_minor, currency, DEFAULT_AT, channel)
        accounts = {side: make_account(side_id, currency=currency, balance=MAX_AMOUNT_MINOR)
                    for side, side_id in (("source", request.source), ("dest", request.dest)) if side_id}
        return make_context(request=request, timezone=timezone, **accounts)

    return run_checks(subject, lambda: edge_contexts(timezone=timezone, currency=currency, slot=slot,
                                                     currencies=others),
                      set(checks) if checks is not None else set(CHECKS), amount_context)


def check_driver(entry_point_name: str, slot: Slot | str, params: Mapping[str, Any] | None = None,
                 **options: Any) -> list[Problem]:
    """Every conformance problem of the driver registered as
    ``entry_point_name`` in ``slot``'s namespace; an empty list means it
    conforms. ``options`` are those of :func:`check_driver_class`."""
    cls, problems = _load_entry_point(entry_point_name, Slot(slot))
    if cls is None:
        return problems
    return check_driver_class(cls, slot, params, **options)


class DriverConformance:
    """A pytest base class: one test per conformance check.

    Subclass it in a ``Test...`` class and set ``slot`` and ``entry_point``
    (and ``params``, ``timezone``, ``currency``, ``params_by_currency`` as
    for :func:`check_driver_class`)::

        class TestTransferFee(DriverConformance):
            slot = Slot.FEE
            entry_point = "acme.transfer_fee"
            params = {"fee": "1.00"}

    The checks run once per class; each test reports its own problems.
    """

    slot: ClassVar[Slot | str | None] = None
    entry_point: ClassVar[str | None] = None
    params: ClassVar[Mapping[str, Any] | None] = None
    timezone: ClassVar[str] = "UTC"
    currency: ClassVar[str] = "USD"
    currencies: ClassVar[tuple[str, ...] | None] = None
    params_by_currency: ClassVar[Mapping[str, Mapping[str, Any]] | None] = None

    _results: ClassVar[dict[type, list[Problem]]] = {}

    def _problems(self) -> list[Problem]:
        cls = type(self)
        if cls.entry_point is None or cls.slot is None:
            import pytest

            pytest.skip("set slot and entry_point on the DriverConformance subclass")
        if cls not in DriverConformance._results:
            DriverConformance._results[cls] = check_driver(
                cls.entry_point, cls.slot, cls.params, timezone=cls.timezone, currency=cls.currency,
                currencies=cls.currencies, params_by_currency=cls.params_by_currency)
        return DriverConformance._results[cls]

    def _expect_none(self, *checks: str) -> None:
        problems = self._problems()
        loaded = not any(p.check == "entry_point" for p in problems)
        if not loaded and "entry_point" not in checks:
            raise AssertionError(f"{self.entry_point}: not checked, the driver did not load")
        mine = [str(p) for p in problems if p.check in checks]
        if mine:
            raise AssertionError(f"{self.entry_point}:\n  " + "\n  ".join(mine))

    def test_reachable_through_entry_point(self) -> None:
        self._expect_none("entry_point")

    def test_declares_supported_contract_version(self) -> None:
        self._expect_none("contract_version", "budget")

    def test_params_model_with_defaults(self) -> None:
        self._expect_none("params_model", "params_defaults", "params", "construct")

    def test_params_reject_unknown_keys(self) -> None:
        self._expect_none("params_unknown_keys")

    def test_params_are_not_floats(self) -> None:
        self._expect_none("params_float")

    def test_deterministic(self) -> None:
        self._expect_none("deterministic")

    def test_does_not_mutate_inputs(self) -> None:
        self._expect_none("no_mutation")

    def test_answers_edge_inputs(self) -> None:
        self._expect_none("edge_inputs")

    def test_exact_amount_arithmetic(self) -> None:
        self._expect_none("exact_amounts")

    def test_names_its_rule(self) -> None:
        self._expect_none("rule_name")

    def test_opens_no_files_or_sockets(self) -> None:
        self._expect_none("no_io")

    def test_within_budget(self) -> None:
        self._expect_none("within_budget")


def _driver_class_name(slot: Slot, entry_point_name: str) -> str:
    """The name of the class ``entry_point_name`` registers (``acme.fees:TransferFee``
    gives ``TransferFee``), or, when it is not installed once, one made of the
    name after its prefix (``acme.transfer_fee`` gives ``TransferFee``)."""
    found = importlib.metadata.entry_points(group=NAMESPACES[slot], name=entry_point_name)
    if len(found) == 1:
        (entry_point,) = found
        attr = entry_point.value.partition(":")[2].split(".")[-1].strip()
        if attr.isidentifier():
            return attr
    return "".join(part.title() for part in entry_point_name.partition(".")[2].split("_"))


def profile_conformance(profile: Mapping[str, Any], prefix: str, *,
                        params_by_currency: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
                        ) -> dict[str, type[DriverConformance]]:
    """A :class:`DriverConformance` class for each driver ``profile`` (a bank
    profile document, see :func:`read_profile`) lists whose entry-point name
    starts with ``prefix``: your package's drivers, not the kernel's
    ``core.*``. Each gets the params the profile gives it, the profile's
    timezone, and exactly the currencies it declares (``currency`` and any
    ``currencies``): a USD-only institution's drivers are not fed JPY.
    ``params_by_currency`` maps one of those currencies to the params of
    each driver in it (``{"EUR": {"acme.transfer_fee": {...}}}``); params
    for a currency the profile does not declare are not used.

    The classes are named ``Test`` and the name of the driver class (as
    registered: ``TestTransferFee``), keyed by that name; put them in your
    test module for pytest to collect::

        globals().update(profile_conformance(PROFILE, "acme."))
    """
    classes: dict[str, type[DriverConformance]] = {}
    others = tuple(dict.fromkeys(c for c in profile.get("currencies", ()) if c != profile["currency"]))
    for slot in Slot:
        for entry in profile.get(str(slot), ()):
            name = entry["driver"]
            if not name.startswith(prefix):
                continue
            by_currency = {currency: dict(params[name])
                           for currency, params in (params_by_currency or {}).items()
                           if name in params and currency in others}
            title = "Test" + _driver_class_name(slot, name)
            classes[title] = type(title, (DriverConformance,), {
                "__doc__": f"The conformance checks of {name}, with the profile's params.",
                "slot": slot, "entry_point": name, "params": dict(entry.get("params", {})),
                "timezone": profile["timezone"], "currency": profile["currency"], "currencies": others,
                "params_by_currency": by_currency})
    return classes


def assert_profile_lists_installed(profile: Mapping[str, Any], prefix: str) -> None:
    """Assert that every driver installed under ``prefix`` is in ``profile``
    and every driver of ``profile`` under ``prefix`` is installed."""
    listed = {entry["driver"] for slot in Slot for entry in profile.get(str(slot), ())
              if entry["driver"].startswith(prefix)}
    installed = installed_entry_points(prefix)
    assert not installed - listed, (
        f"installed but not in the profile, so never checked or used: {sorted(installed - listed)}; "
        "add each under its slot in profile.toml")
    assert not listed - installed, (
        f"in the profile but not installed: {sorted(listed - installed)}; add its entry point to "
        "pyproject.toml and run pip install -e 'NAME[test]' again")


def installed_entry_points(prefix: str) -> set[str]:
    """The names of the drivers installed in any slot's namespace whose
    entry-point name starts with ``prefix``."""
    return {entry_point.name for namespace in NAMESPACES.values()
            for entry_point in importlib.metadata.entry_points(group=namespace)
            if entry_point.name.startswith(prefix)}
