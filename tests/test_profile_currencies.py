"""Amount parameters are checked against every currency an institution
opens accounts in, when the profile is applied, not when a row fails."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from bank_core.errors import InvalidRequest, ProfileError
from bank_core.profile import read_toml
from bank_wiring import build


def _northwind() -> dict:
    with resources.as_file(resources.files("northwind_policies") / "profile.toml") as path:
        return read_toml(Path(path))


def test_cents_cannot_be_a_jpy_parameter(sqlite_url: str) -> None:
    svc = build(sqlite_url)
    document = _northwind() | {"currencies": ["USD", "JPY"]}
    with pytest.raises(ProfileError) as caught:
        svc.apply_profile(document, "ops")
    problems = caught.value.problems
    assert "fee[0].params.min: '0.25' cannot be an amount in JPY (has 2 decimals; JPY allows 0)" in problems
    assert svc.institutions() == []  # nothing applied


def test_three_decimals_cannot_be_a_usd_parameter(sqlite_url: str) -> None:
    svc = build(sqlite_url)
    document = _northwind()
    document["limit"][0]["params"] = {"max": "10000.005"}
    with pytest.raises(ProfileError) as caught:
        svc.apply_profile(document, "ops")
    assert caught.value.problems == [
        "limit[0].params.max: '10000.005' cannot be an amount in USD (has 3 decimals; USD allows 2)"]


def test_accounts_only_in_the_profiles_currencies(sqlite_url: str) -> None:
    svc = build(sqlite_url)
    svc.apply_profile(_northwind(), "ops")
    with pytest.raises(InvalidRequest, match="northwind opens accounts in USD; list JPY"):
        svc.open_account("northwind", holder="Yuki", currency="JPY", actor="ops")
    document = _northwind() | {"currencies": ["EUR"]}
    svc.apply_profile(document, "ops")
    assert svc.open_account("northwind", holder="Eva", currency="EUR", actor="ops").currency == "EUR"
