"""The conformance kit for policy drivers: builders and checks (public API).

A policy package tests its drivers with this module and nothing else from the
kernel but :mod:`bank_core.contract`; it imports only the contract, the
standard library and pydantic (and, lazily, pytest for
:class:`DriverConformance` and ``time_machine`` to move the clock between
two calls), so it runs without a database.

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
:func:`read_profile`, :func:`assert_profile_params_are_defaults`,
:func:`assert_profile_lists_installed` and :func:`assert_no_float`.

The builders live in the private ``bank_core._builders``, the package
checks in ``bank_core._package_checks``; this module is the public face of
all of them.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Collection, Iterable, Mapping
from typing import Any, ClassVar

from bank_core._builders import (
    DEFAULT_AT,
    DEFAULT_INSTITUTION,
    DEFAULT_OPENED_AT,
    DEST_ID,
    EDGE_CURRENCIES,
    OPENED_DAYS_BEFORE,
    SOURCE_ID,
    UTC,
    day_end,
    day_start,
    edge_contexts,
    local_date,
    local_time,
    make_account,
    make_context,
    make_payer_context,
    make_request,
    make_usage,
    money,
    month_end,
    month_start,
    probe_contexts,
)
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
from bank_core.answers import ANSWER_TYPE_OF, BadData, checked_object
from bank_core.contract import MAX_AMOUNT_MINOR, NAMESPACES, Kind, PolicyContext, Slot
from bank_core.hints import did_you_mean

__all__ = [
    "UTC", "DEFAULT_AT", "DEFAULT_OPENED_AT", "DEFAULT_INSTITUTION", "SOURCE_ID", "DEST_ID",
    "money", "local_time", "local_date", "day_start", "day_end", "month_start", "month_end",
    "make_request", "make_account", "make_usage", "make_context", "make_payer_context",
    "edge_contexts", "probe_contexts", "EDGE_CURRENCIES", "OPENED_DAYS_BEFORE",
    "CHECKS", "Problem", "check_driver", "check_driver_class", "DriverConformance",
    "profile_conformance", "installed_entry_points", "assert_profile_lists_installed",
    "package_drivers", "assert_driver_shape", "assert_answers_keep_the_contract", "read_profile",
    "assert_profile_params_are_defaults", "assert_no_float", "read_checked",
]


# --------------------------------------------------------------------------
# Reading answers
# --------------------------------------------------------------------------

def read_checked(answer: Any, currency: str = "USD") -> Any:
    """A driver's answer as the kernel takes it. A data answer (contract
    version 3) must pass the kernel's own check (else ``AssertionError``
    with the kernel's words) and is read as the answer object it stands
    for, in ``currency`` (an int is ``Money(int, currency)``, ``count(n)``
    is ``n``); an answer object is returned as it is::

        answer = read_checked(SingleTransactionLimit(params).check(ctx))
        assert answer.passed is False and answer.threshold == money(1_000_000)
    """
    if type(answer) is not tuple:
        return answer
    answer_type = ANSWER_TYPE_OF.get(answer[0]) if answer and type(answer[0]) is str else None
    if answer_type is None:
        raise AssertionError(f"{answer!r} is no answer: make it with the contract's helpers (passes, fails, ...)")
    try:
        return checked_object(answer, answer_type, currency)
    except BadData as exc:
        raise AssertionError(f"the kernel refuses {answer!r} (driver_bad_answer): the driver {exc}") from None


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
