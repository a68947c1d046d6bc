"""Northwind's distribution as a whole: its five entry points, the profile it
ships, and the contract every driver keeps on a grid of ATM and branch requests,
quiet and busy. The generic checks are the conformance kit's."""

from __future__ import annotations

from pathlib import Path

import pytest
from northwind_support import account, make_ctx

import northwind_policies
from bank_core.contract import Kind, Slot, Tally
from bank_core.testing import (
    assert_answers_keep_the_contract,
    assert_driver_shape,
    assert_no_float,
    assert_profile_params_are_defaults,
    package_drivers,
    read_profile,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "northwind_policies"
ENTRY_POINTS = package_drivers(ROOT / "pyproject.toml")
each_driver = pytest.mark.parametrize(("slot", "name", "cls"), ENTRY_POINTS, ids=[n for _, n, _ in ENTRY_POINTS])


def test_entry_points_are_the_five_northwind_rules() -> None:
    assert sorted(name for _, name, _ in ENTRY_POINTS) == [
        "northwind.atm_withdrawal_fee", "northwind.daily_withdrawal", "northwind.large_transfer_review",
        "northwind.single_transaction", "northwind.transfer_fee"]


@each_driver
def test_driver_shape(slot: Slot, name: str, cls: type) -> None:
    assert_driver_shape(cls, slot, name)


def sample_contexts() -> list:
    busy_day = {(Kind.WITHDRAWAL, "atm"): Tally(240_000, 800, 9)}
    busy_month = {(Kind.WITHDRAWAL, "atm"): Tally(900_000, 1_000, 12)}
    return [make_ctx(kind, amount, channel=channel, payer=account(balance=avail),
                     day=day, month=month, fees=fees)
            for kind in Kind
            for amount in (1, 4_999, 1_000_000, 10**15)
            for channel in ("atm", "branch")
            for avail in (0, 10**12)
            for day, month, fees in (({}, {}, 0), (busy_day, busy_month, 200))]


CONTEXTS = sample_contexts()


@each_driver
def test_every_answer_keeps_the_contract(slot: Slot, name: str, cls: type) -> None:
    assert_answers_keep_the_contract(cls, slot, name, CONTEXTS)


def test_profile_is_package_data_with_the_agreed_header() -> None:
    assert northwind_policies.profile_resource().is_file()
    assert (PACKAGE_DIR / "profile.toml").is_file()
    profile = read_profile(northwind_policies.profile_resource())
    assert list(profile) == ["id", "name", "currency", "timezone", "hold_expiry_hours",
                             "fee", "limit", "approval"]
    assert {k: profile[k] for k in list(profile)[:5]} == {
        "id": "northwind", "name": "Northwind Bank", "currency": "USD",
        "timezone": "America/New_York", "hold_expiry_hours": 72}


def test_profile_lists_the_drivers_in_order_with_their_defaults() -> None:
    profile = read_profile(northwind_policies.profile_resource())
    assert {slot: [entry["driver"] for entry in profile[slot]] for slot in ("fee", "limit", "approval")} == {
        "fee": ["northwind.transfer_fee", "northwind.atm_withdrawal_fee"],
        "limit": ["northwind.single_transaction", "northwind.daily_withdrawal", "core.no_overdraft"],
        "approval": ["core.frozen_reject", "northwind.large_transfer_review"],
    }
    assert_profile_params_are_defaults(profile, ENTRY_POINTS)


def test_no_float_in_driver_code() -> None:
    assert_no_float(PACKAGE_DIR)
