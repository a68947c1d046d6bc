"""The distribution as a whole: entry points, the shipped profile, and the
contract every driver must keep whatever the input."""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest
from northwind_support import account, make_ctx

import northwind_policies
from bank_core.contract import (
    NAMESPACES,
    SUPPORTED_CONTRACT_VERSIONS,
    ApprovalAnswer,
    ApprovalDriver,
    Decision,
    FeeAnswer,
    FeeDriver,
    Kind,
    LimitAnswer,
    LimitDriver,
    Slot,
    Tally,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "northwind_policies"
BASES = {Slot.FEE: FeeDriver, Slot.LIMIT: LimitDriver, Slot.APPROVAL: ApprovalDriver}
ANSWERS = {Slot.FEE: FeeAnswer, Slot.LIMIT: LimitAnswer, Slot.APPROVAL: ApprovalAnswer}
METHODS = {Slot.FEE: "fees", Slot.LIMIT: "check", Slot.APPROVAL: "decide"}
KERNEL_DRIVERS = {Slot.LIMIT: {"core.no_overdraft"}, Slot.APPROVAL: {"core.frozen_reject"}}


def entry_points() -> list[tuple[Slot, str, type]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = []
    for slot, namespace in NAMESPACES.items():
        for name, target in project["entry-points"].get(namespace, {}).items():
            module, _, attr = target.partition(":")
            found.append((slot, name, getattr(importlib.import_module(module), attr)))
    return found


ENTRY_POINTS = entry_points()
DRIVERS = {(slot, name): cls for slot, name, cls in ENTRY_POINTS}


def test_entry_points_are_the_five_northwind_rules() -> None:
    assert sorted(name for _, name, _ in ENTRY_POINTS) == [
        "northwind.atm_withdrawal_fee", "northwind.daily_withdrawal", "northwind.large_transfer_review",
        "northwind.single_transaction", "northwind.transfer_fee"]


@pytest.mark.parametrize(("slot", "name", "cls"), ENTRY_POINTS, ids=[n for _, n, _ in ENTRY_POINTS])
def test_driver_shape(slot: Slot, name: str, cls: type) -> None:
    assert issubclass(cls, BASES[slot]) and not getattr(cls, "__abstractmethods__", None)
    assert cls.RULE == name
    low, high = SUPPORTED_CONTRACT_VERSIONS
    assert low <= cls.contract_version <= high
    assert "contract_version" in vars(cls)  # pinned, not inherited from the kernel
    assert cls.__doc__ and name in cls.__doc__
    cls.Params()  # every field has a default
    with pytest.raises(ValueError):
        cls.Params(not_a_param="1")


def sample_contexts() -> list:
    busy_day = {(Kind.WITHDRAWAL, "atm"): Tally(240_000, 800, 9)}
    busy_month = {(Kind.WITHDRAWAL, "atm"): Tally(900_000, 1_000, 12)}
    return [make_ctx(kind, amount, channel=channel, payer=account(available_minor=avail),
                     day=day, month=month, fees_minor=fees)
            for kind in Kind
            for amount in (1, 4_999, 1_000_000, 10**15)
            for channel in ("atm", "branch")
            for avail in (0, 10**12)
            for day, month, fees in (({}, {}, 0), (busy_day, busy_month, 200))]


CONTEXTS = sample_contexts()


@pytest.mark.parametrize(("slot", "name", "cls"), ENTRY_POINTS, ids=[n for _, n, _ in ENTRY_POINTS])
def test_every_answer_keeps_the_contract(slot: Slot, name: str, cls: type) -> None:
    driver = cls(cls.Params())
    for ctx in CONTEXTS:
        answer = getattr(driver, METHODS[slot])(ctx)
        assert type(answer) is ANSWERS[slot]
        assert answer.rule == name and answer.message
        assert answer == getattr(driver, METHODS[slot])(ctx)  # same input, same answer
        if slot is Slot.FEE:
            for line in answer.lines:
                assert line.rule == name and line.amount.amount_minor > 0
                assert line.amount.currency == ctx.request.amount.currency
        elif slot is Slot.LIMIT:
            assert type(answer.passed) is bool
        else:
            assert answer.decision in (Decision.APPROVE, Decision.REVIEW)
        if slot is not Slot.FEE:
            for value in (answer.threshold, answer.observed):
                assert value is None or type(value) is int or value.currency == "USD"


def load_profile() -> dict:
    return tomllib.loads(northwind_policies.profile_resource().read_text(encoding="utf-8"))


def test_profile_is_package_data_with_the_agreed_header() -> None:
    assert northwind_policies.profile_resource().is_file()
    assert (PACKAGE_DIR / "profile.toml").is_file()
    profile = load_profile()
    assert list(profile) == ["id", "name", "currency", "timezone", "hold_expiry_hours",
                             "fee", "limit", "approval"]
    assert {k: profile[k] for k in list(profile)[:5]} == {
        "id": "northwind", "name": "Northwind Bank", "currency": "USD",
        "timezone": "America/New_York", "hold_expiry_hours": 72}


def test_profile_lists_the_drivers_in_order_with_their_defaults() -> None:
    profile = load_profile()
    assert {slot: [entry["driver"] for entry in profile[slot]] for slot in ("fee", "limit", "approval")} == {
        "fee": ["northwind.transfer_fee", "northwind.atm_withdrawal_fee"],
        "limit": ["northwind.single_transaction", "northwind.daily_withdrawal", "core.no_overdraft"],
        "approval": ["core.frozen_reject", "northwind.large_transfer_review"],
    }
    for slot in Slot:
        for entry in profile[slot.value]:
            assert set(entry) == {"driver", "params"}
            assert all(type(v) in (str, int) for v in entry["params"].values())
            if entry["driver"] in KERNEL_DRIVERS.get(slot, set()):
                assert entry["params"] == {}
                continue
            cls = DRIVERS[(slot, entry["driver"])]
            assert cls.Params(**entry["params"]) == cls.Params()


def test_no_float_in_driver_code() -> None:
    for path in PACKAGE_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            assert not (isinstance(node, ast.Constant) and type(node.value) is float), path
            assert not (isinstance(node, ast.Name) and node.id == "float"), path
            assert not isinstance(node, ast.Div), f"{path}: true division"
