"""Checks of a whole policy package, for its own tests (private; import
them from :mod:`bank_core.testing`).

Each raises ``AssertionError`` saying what is wrong and what to change.
"""

from __future__ import annotations

import ast
import importlib
import os
import tomllib
from collections.abc import Collection, Iterable, Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from bank_core._conformance import METHODS
from bank_core.answers import checked_object, version_problem
from bank_core.contract import (
    ANSWER_TYPES,
    NAMESPACES,
    SLOT_BASES,
    SUPPORTED_CONTRACT_VERSIONS,
    Decision,
    PolicyContext,
    Slot,
)
from bank_core.hints import CONTRACT_VERSION_HINT

def package_drivers(pyproject: str | os.PathLike[str]) -> list[tuple[Slot, str, type]]:
    """The drivers a distribution's ``pyproject.toml`` registers, imported:
    ``(slot, entry-point name, class)``, slot by slot in the file's order.
    Read from the file, so it works on a checkout that is not installed."""
    with open(pyproject, "rb") as file:
        entry_points = tomllib.load(file)["project"].get("entry-points", {})
    found = []
    for slot, namespace in NAMESPACES.items():
        for name, target in entry_points.get(namespace, {}).items():
            module, _, attr = target.partition(":")
            found.append((slot, name, getattr(importlib.import_module(module), attr)))
    return found


def assert_driver_shape(cls: type, slot: Slot | str, name: str) -> None:
    """Assert that the class registered as ``name`` in ``slot`` subclasses
    the slot's base and implements it, names ``name`` as its ``RULE`` and in
    its docstring, pins a supported ``contract_version`` on its own class
    (not inherited from the kernel), and has ``Params`` whose every field
    has a default and which refuse an unknown key."""
    slot = Slot(slot)
    assert issubclass(cls, SLOT_BASES[slot]) and not getattr(cls, "__abstractmethods__", None), \
        f"{name}: {cls.__name__} does not implement {SLOT_BASES[slot].__name__}"
    assert cls.RULE == name, f"{name}: RULE is {cls.RULE!r}"
    low, high = SUPPORTED_CONTRACT_VERSIONS
    assert "contract_version" in vars(cls), f"{name}: no contract_version of its own: {CONTRACT_VERSION_HINT}"
    assert low <= cls.contract_version <= high, f"{name}: contract_version {cls.contract_version!r}"
    assert cls.__doc__ and name in cls.__doc__, f"{name}: its docstring does not name {name!r}"
    cls.Params()  # every field has a default
    try:
        cls.Params(not_a_param="1")
    except ValueError:
        pass
    else:
        raise AssertionError(f"{name}: Params accepted an unknown key")


def assert_answers_keep_the_contract(cls: type, slot: Slot | str, name: str,
                                     contexts: Iterable[PolicyContext]) -> None:
    """Assert that the driver, built with its default params, answers each
    context with its slot's answer type, names ``name`` (in the answer and
    every fee line) with a message, gives the same answer twice, charges only
    positive fees in the request's currency, passes or fails with a bool,
    approves or reviews (the kernel's own drivers reject), and states
    thresholds and observations as a count or an amount in the request's
    currency."""
    slot = Slot(slot)
    driver = cls(cls.Params())
    for ctx in contexts:
        currency = ctx.request.amount.currency
        answer = _ask(cls, driver, slot, name, ctx)
        said = f"{name} answered {answer!r} to {ctx!r}"
        assert type(answer) is ANSWER_TYPES[slot], said
        assert answer.rule == name and answer.message, said
        assert answer == _ask(cls, driver, slot, name, ctx), f"{said}, then otherwise"
        if slot is Slot.FEE:
            for line in answer.lines:
                assert line.rule == name and line.amount.amount_minor > 0, said
                assert line.amount.currency == currency, said
        elif slot is Slot.LIMIT:
            assert type(answer.passed) is bool, said
        else:
            assert answer.decision in (Decision.APPROVE, Decision.REVIEW), said
        if slot is not Slot.FEE:
            for value in (answer.threshold, answer.observed):
                assert value is None or type(value) is int or value.currency == currency, said


def _ask(cls: type, driver: Any, slot: Slot, name: str, ctx: PolicyContext) -> Any:
    """The driver's answer to ``ctx``; a data answer (contract version 3)
    passes the kernel's own check and is read as the object it stands for."""
    answer = getattr(driver, METHODS[slot])(ctx)
    if type(answer) is not tuple:
        return answer
    problem = version_problem(cls.contract_version, ANSWER_TYPES[slot])
    assert problem is None, f"{name} {problem}"
    return checked_object(answer, ANSWER_TYPES[slot], ctx.request.amount.currency)


def read_profile(source: str | os.PathLike[str] | Traversable) -> dict[str, Any]:
    """A bank profile document: a ``profile.toml`` file, or the resource of
    an installed package (``importlib.resources.files(...) / "profile.toml"``)."""
    path = Path(source) if isinstance(source, (str, os.PathLike)) else source
    return tomllib.loads(path.read_text(encoding="utf-8"))


def assert_profile_params_are_defaults(profile: Mapping[str, Any],
                                       drivers: Iterable[tuple[Slot, str, type]], *,
                                       nested: Collection[str] = ()) -> None:
    """Assert that every driver entry of ``profile`` has just ``driver`` and
    ``params``; that its params are text or ints (a table too for the drivers
    named in ``nested``); that a driver of ``drivers`` (as from
    :func:`package_drivers`) is given exactly its ``Params`` defaults, and any
    other (the kernel's) no params. A slot the profile leaves out is empty."""
    classes = {(slot, name): cls for slot, name, cls in drivers}
    for slot in Slot:
        for index, entry in enumerate(profile.get(slot.value, ())):
            where = f"{slot}[{index}] {entry.get('driver')!r}"
            assert set(entry) == {"driver", "params"}, \
                f"{where}: has keys {sorted(entry)}; give exactly `driver` and `params`"
            for key, value in entry["params"].items():
                assert type(value) in (str, int) or entry["driver"] in nested, \
                    f"{where}: param `{key}` is {value!r}; params are text (\"0.20\") or ints"
            cls = classes.get((slot, entry["driver"]))
            if cls is None:
                assert entry["params"] == {}, \
                    f"{where}: params for a driver not the package's: {entry['params']} (give it none)"
                continue
            given, default = cls.Params(**entry["params"]), cls.Params()
            for name in type(default).model_fields:
                assert getattr(given, name) == getattr(default, name), (
                    f"{where}: param `{name}` is {getattr(given, name)!r}, its default is "
                    f"{getattr(default, name)!r}: the shipped profile gives the defaults (change the "
                    f"default in the Params model, or the profile)")


def assert_no_float(package_dir: str | os.PathLike[str]) -> None:
    """Assert that no module of the import package ``package_dir`` (its
    sub-packages too) has a float literal, names ``float`` or divides with
    ``/``: amounts are integers of minor units and rates exact text. Fails
    on a path that is not an import package (a missing path, a file, the
    distribution's root)."""
    root = Path(package_dir)
    assert root.is_dir() and (root / "__init__.py").is_file(), (
        f"{root} is not an import package (no {root / '__init__.py'}): pass the package's "
        f"directory, e.g. ROOT / \"acme_policies\"")
    modules = sorted(root.rglob("*.py"))
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            where = f"{path}:{getattr(node, 'lineno', '?')}"
            assert not (isinstance(node, ast.Constant) and type(node.value) is float), \
                f"{where}: a float literal; amounts are ints of minor units, rates text (Rate.parse_percent)"
            assert not (isinstance(node, ast.Name) and node.id == "float"), \
                f"{where}: uses the float type; amounts are ints of minor units"
            assert not (isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.Div)), \
                f"{where}: true division (/) makes a float; use // and divmod, or Rate.of_half_up"
