"""The registry: finds, loads and validates policy drivers through stevedore.

Three steps, each with its own error naming the slot, the entry point, the
distribution and the cause (after flake8's finder and oslo's
DriverLoadFailure): *find* (the name is registered in the slot's namespace),
*load* (importing it works), *validate* (it subclasses the slot's base class,
declares a supported contract version, has a strict ``Params`` model, and the
profile's params pass that model).

Only the names a profile lists are loaded, with
``NamedExtensionManager(name_order=True)`` and callbacks that raise; duplicate
names are an error (``error_on_conflict``). Classes are loaded once per
process; instances are cached per (slot, name, params).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic
from stevedore import extension, named

from bank_core.contract import (
    NAMESPACES,
    READS,
    SLOT_BASES,
    SUPPORTED_CONTRACT_VERSIONS,
    Driver,
    DriverParams,
    Slot,
)
from bank_core.hints import CONTRACT_VERSION_HINT, did_you_mean, pydantic_errors

MAX_DRIVERS_PER_SLOT = 16
_BASES = (*SLOT_BASES.values(), Driver, object)


class DriverLoadError(Exception):
    """A driver could not be found, loaded or validated."""

    def __init__(self, slot: Slot | str, name: str, cause: str,
                 distribution: str | None = None, stage: str = "load") -> None:
        self.slot = str(slot)
        self.name = name
        self.cause = cause
        self.distribution = distribution
        self.stage = stage
        where = f" from {distribution}" if distribution else ""
        super().__init__(f"{self.slot} driver {name!r}{where}: {cause}")


def _distribution(entry_point: Any) -> Any:
    """The distribution that registered ``entry_point``.

    Stevedore rebuilds entry points from its cache without ``.dist``, so look
    the entry point up in ``importlib.metadata`` by group, name and value."""
    dist = getattr(entry_point, "dist", None)
    if dist is not None:
        return dist
    group, name, value = (getattr(entry_point, a, None) for a in ("group", "name", "value"))
    if group is None:
        return None
    found = _driver_distributions().get((group, name, value))
    if found is not None:
        return found
    for candidate in importlib.metadata.entry_points(group=group, name=name):  # installed since
        if candidate.value == value and candidate.dist is not None:
            return candidate.dist
    return None


@functools.cache
def _driver_distributions() -> dict[tuple[str, str, str], Any]:
    """Every driver entry point's distribution, from one reading of the
    installed distributions' metadata (one per driver was most of the time
    a single command spent binding its profile)."""
    groups = set(NAMESPACES.values())
    return {(ep.group, ep.name, ep.value): dist for dist in importlib.metadata.distributions()
            for ep in dist.entry_points if ep.group in groups}


def _dist_label(entry_point: Any) -> str | None:
    dist = _distribution(entry_point)
    if dist is None:
        return None
    label = _LABELS.get(dist)
    if label is None:  # (``dist.name`` and ``dist.version`` each parse the METADATA file: read it once)
        metadata = dist.metadata
        label = _LABELS[dist] = f"{metadata['Name']} {metadata['Version']}"
    return label


_LABELS: dict[Any, str] = {}  # distribution -> "name version"


def _raise_load_failure(manager: Any, entry_point: Any, exc: BaseException) -> None:
    slot = next((s for s, ns in NAMESPACES.items() if ns == manager.namespace), manager.namespace)
    raise DriverLoadError(slot, entry_point.name, f"failed to import: {type(exc).__name__}: {exc}",
                          _dist_label(entry_point), stage="load") from exc


def _nearest_installed(slot: Slot, name: str) -> str:
    """``; did you mean `northwind.transfer_fee`?`` among the slot's installed
    drivers, or where ``name`` is installed in another slot."""
    elsewhere = [s for s, ns in NAMESPACES.items()
                 if s is not slot and importlib.metadata.entry_points(group=ns, name=name)]
    if elsewhere:
        return f"; `{name}` is a {elsewhere[0]} driver: list it under [[{elsewhere[0]}]]"
    return did_you_mean(name, (ep.name for ep in importlib.metadata.entry_points(group=NAMESPACES[slot])))


@dataclass(frozen=True, slots=True)
class LoadedDriver:
    """A driver class found and loaded, with where it came from."""

    slot: Slot
    name: str
    cls: type[Driver]
    distribution: str | None  # "name version"

    def validate_class(self) -> None:
        cls = self.cls
        base = SLOT_BASES[self.slot]
        if not isinstance(cls, type) or not issubclass(cls, base):
            raise DriverLoadError(self.slot, self.name,
                                  f"{cls!r} is not a subclass of bank_core.contract.{base.__name__}",
                                  self.distribution, stage="validate")
        low, high = SUPPORTED_CONTRACT_VERSIONS
        version = getattr(cls, "contract_version", None)
        if not any("contract_version" in vars(k) for k in cls.__mro__ if k not in _BASES):
            version = None  # must be declared by the driver, not inherited
        if version is None:
            raise DriverLoadError(self.slot, self.name, f"declares no contract version; {CONTRACT_VERSION_HINT}",
                                  self.distribution, stage="contract")
        if type(version) is not int or not low <= version <= high:
            raise DriverLoadError(self.slot, self.name,
                                  f"declares contract version {version!r}; this kernel supports "
                                  f"{low}..{high}", self.distribution, stage="contract")
        params = getattr(cls, "Params", None)
        if not (isinstance(params, type) and issubclass(params, DriverParams)):
            raise DriverLoadError(self.slot, self.name,
                                  "Params must subclass bank_core.contract.DriverParams",
                                  self.distribution, stage="validate")
        if params.model_config.get("extra") != "forbid":
            raise DriverLoadError(self.slot, self.name, "Params must forbid unknown keys",
                                  self.distribution, stage="validate")
        reads = getattr(cls, "reads", frozenset())
        if version >= 2 and (not isinstance(reads, frozenset) or not reads <= READS):
            raise DriverLoadError(self.slot, self.name,
                                  f"reads {reads!r} must be a frozenset of {', '.join(sorted(READS))}",
                                  self.distribution, stage="validate")
        budget = getattr(cls, "budget_ms", None)
        if type(budget) is not int or budget <= 0:
            raise DriverLoadError(self.slot, self.name, f"budget_ms {budget!r} must be a positive int",
                                  self.distribution, stage="validate")

    def parse_params(self, params: dict[str, Any]) -> DriverParams:
        try:
            return self.cls.Params.model_validate(params)
        except pydantic.ValidationError as exc:
            problems = pydantic_errors(exc.errors(), self.cls.Params.model_fields)
            raise DriverLoadError(self.slot, self.name, f"bad params: {problems}",
                                  self.distribution, stage="params") from exc


def driver_term(slot: str, name: str, distribution: str | None) -> str:
    """The text that names a driver in decision records (``bank_core.terms``)."""
    return f"{slot}\x1f{name}\x1f{distribution or ''}"


@dataclass(frozen=True, slots=True)
class BoundDriver:
    """A driver instance with its params, ready to be called by the kernel.
    ``term``: its :func:`driver_term`, made once (a decision record names
    its driver per answer; ``id()`` is no cheap key here: it is an audited
    event, and the runtime guard's audit hook sees every one)."""

    slot: Slot
    name: str
    distribution: str | None
    driver: Driver
    budget_ms: int
    term: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "term", driver_term(str(self.slot), self.name, self.distribution))


class Registry:
    """Loads drivers once per process and hands out bound instances."""

    def __init__(self) -> None:
        self._classes: dict[tuple[Slot, str], LoadedDriver] = {}
        self._bound: dict[tuple[Slot, str, str], BoundDriver] = {}
        self._lock = threading.Lock()

    def load(self, slot: Slot, names: Sequence[str]) -> list[LoadedDriver]:
        """Find, load and validate ``names`` in ``slot``, in order."""
        if len(names) > MAX_DRIVERS_PER_SLOT:
            raise DriverLoadError(slot, ",".join(names),
                                  f"more than {MAX_DRIVERS_PER_SLOT} drivers in one slot")
        with self._lock:
            missing = [n for n in dict.fromkeys(names) if (slot, n) not in self._classes]
            if missing:
                for loaded in self._discover(slot, missing):
                    self._classes[(slot, loaded.name)] = loaded
        result = [self._classes[(slot, n)] for n in names]
        for loaded in result:
            loaded.validate_class()
        return result

    @staticmethod
    def _discover(slot: Slot, names: list[str]) -> Iterable[LoadedDriver]:
        def on_missing(missing_names: Iterable[str]) -> None:
            missing_list = sorted(missing_names)
            raise DriverLoadError(slot, ", ".join(missing_list),
                                  f"no such entry point in namespace {NAMESPACES[slot]!r} "
                                  f"(is its policy package installed?){_nearest_installed(slot, missing_list[0])}",
                                  stage="find")

        manager = named.NamedExtensionManager(
            NAMESPACES[slot], names=names, invoke_on_load=False, name_order=True,
            on_load_failure_callback=_raise_load_failure,
            on_missing_entrypoints_callback=on_missing,
            conflict_resolver=extension.error_on_conflict,
        )
        for ext in manager.extensions:
            yield LoadedDriver(slot, ext.name, ext.plugin, _dist_label(ext.entry_point))

    def bind(self, slot: Slot, name: str, params: dict[str, Any]) -> BoundDriver:
        key = (slot, name, json.dumps(params, sort_keys=True, default=str))
        bound = self._bound.get(key)
        if bound is None:
            (loaded,) = self.load(slot, [name])
            parsed = loaded.parse_params(params)
            try:
                instance = loaded.cls(parsed)
            except Exception as exc:  # a constructor that raises is a load failure
                raise DriverLoadError(slot, name, f"constructor raised {type(exc).__name__}: {exc}",
                                      loaded.distribution, stage="load") from exc
            bound = BoundDriver(slot, name, loaded.distribution, instance, loaded.cls.budget_ms)
            self._bound[key] = bound
        return bound


def list_installed() -> list[dict[str, Any]]:
    """Every driver installed in the three namespaces and whether it loads.

    ``stage`` says where a driver that does not load failed: ``load`` (its
    import raised), ``contract`` (an unsupported contract version) or
    ``validate`` (not a proper driver class); None when it loads."""
    rows: list[dict[str, Any]] = []
    for slot, namespace in NAMESPACES.items():
        failures: dict[str, str] = {}

        def on_failure(manager: Any, entry_point: Any, exc: BaseException) -> None:
            failures[entry_point.name] = f"{type(exc).__name__}: {exc}"

        manager = extension.ExtensionManager(namespace, invoke_on_load=False,
                                             on_load_failure_callback=on_failure)
        loaded = {ext.name: ext for ext in manager.extensions}
        for entry_point in manager.list_entry_points():
            ext = loaded.get(entry_point.name)
            error = failures.get(entry_point.name)
            stage = "load" if error is not None else None
            version = None
            if ext is not None:
                candidate = LoadedDriver(slot, ext.name, ext.plugin, _dist_label(entry_point))
                version = getattr(ext.plugin, "contract_version", None)
                try:
                    candidate.validate_class()
                except DriverLoadError as exc:
                    error, stage = exc.cause, exc.stage
            dist = _distribution(entry_point)
            rows.append({
                "slot": str(slot), "name": entry_point.name, "target": entry_point.value,
                "distribution": dist.name if dist else None,
                "version": dist.version if dist else None,
                "contract_version": version, "loads": error is None, "error": error,
                "stage": stage,
            })
    return sorted(rows, key=lambda r: (r["slot"], r["name"]))
