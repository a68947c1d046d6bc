"""Harbor's distribution as a whole: its five entry points, the profile it ships
(with the one nested params table), and the contract every driver keeps on a grid
of products, account ages, overdrawn balances and busy hours. The generic checks
are the conformance kit's."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from harbor_support import AT, account, make_ctx

import harbor_policies
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
PACKAGE_DIR = ROOT / "harbor_policies"
ENTRY_POINTS = package_drivers(ROOT / "pyproject.toml")
each_driver = pytest.mark.parametrize(("slot", "name", "cls"), ENTRY_POINTS, ids=[n for _, n, _ in ENTRY_POINTS])


def test_entry_points_are_the_five_harbor_rules() -> None:
    assert sorted(name for _, name, _ in ENTRY_POINTS) == [
        "harbor.monthly_outgoing", "harbor.new_account_review", "harbor.overdraft_fee",
        "harbor.overdraft_limit", "harbor.velocity_review"]


@each_driver
def test_driver_shape(slot: Slot, name: str, cls: type) -> None:
    assert_driver_shape(cls, slot, name)


def sample_contexts() -> list:
    busy_day = {(Kind.WITHDRAWAL, "atm"): Tally(240_000, 800, 9)}
    busy_month = {(Kind.TRANSFER, "online"): Tally(1_900_000, 1_000, 12)}
    busy_hour = tuple(AT - timedelta(minutes=m) for m in (50, 40, 30, 20, 10))
    return [make_ctx(kind, amount, payer=account(balance=avail, product=product, opened_at=opened),
                     day=day, month=month, recent_out_at=recent, fees=fees)
            for kind in Kind
            for amount in (1, 100_001, 10**15)
            for product in ("checking", "checking-plus")
            for opened in (AT, AT - timedelta(days=30))
            for avail in (-50_000, 0, 10**12)
            for day, month, recent, fees in (({}, {}, (), 0), (busy_day, busy_month, busy_hour, 1_500))]


CONTEXTS = sample_contexts()


@each_driver
def test_every_answer_keeps_the_contract(slot: Slot, name: str, cls: type) -> None:
    assert_answers_keep_the_contract(cls, slot, name, CONTEXTS)


def test_profile_is_package_data_with_the_agreed_header() -> None:
    assert harbor_policies.profile_resource().is_file()
    assert (PACKAGE_DIR / "profile.toml").is_file()
    profile = read_profile(harbor_policies.profile_resource())
    assert list(profile) == ["id", "name", "currency", "timezone", "hold_expiry_hours",
                             "fee", "limit", "approval"]
    assert {k: profile[k] for k in list(profile)[:5]} == {
        "id": "harbor", "name": "Harbor Credit Union", "currency": "USD",
        "timezone": "America/Chicago", "hold_expiry_hours": 48}


def test_profile_lists_the_drivers_in_order_with_their_defaults() -> None:
    profile = read_profile(harbor_policies.profile_resource())
    assert {slot: [entry["driver"] for entry in profile[slot]] for slot in ("fee", "limit", "approval")} == {
        "fee": ["harbor.overdraft_fee"],
        "limit": ["harbor.overdraft_limit", "harbor.monthly_outgoing"],
        "approval": ["core.frozen_reject", "harbor.velocity_review", "harbor.new_account_review"],
    }
    # products is the one nested table (product name -> amount text)
    assert_profile_params_are_defaults(profile, ENTRY_POINTS, nested={"harbor.overdraft_limit"})


def test_no_float_in_driver_code() -> None:
    assert_no_float(PACKAGE_DIR)
