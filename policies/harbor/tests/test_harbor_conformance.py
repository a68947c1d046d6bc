"""Every Harbor driver passes the kernel's conformance kit
(``bank_core.testing``), loaded through its entry point, with the params
Harbor's profile gives it and in Harbor's timezone.

JPY: the profile's amounts are USD with cents ("15.00", "20000.00"), which
JPY (no minor unit) cannot express, so a request in JPY makes these drivers
raise and the kernel fails it closed (``driver_raised``). That is what would
happen to an account opened in JPY at Harbor today; ``JPY_PARAMS`` are the
params a JPY institution would write instead, so the kit can check the
drivers' logic on a JPY request too.
"""

from __future__ import annotations

import tomllib
from importlib import metadata

import harbor_policies

from bank_core.contract import NAMESPACES, Slot
from bank_core.testing import DriverConformance

PROFILE = tomllib.loads(harbor_policies.profile_resource().read_text(encoding="utf-8"))
JPY_PARAMS = {
    "harbor.overdraft_fee": {"fee": "1500"},
    "harbor.overdraft_limit": {"products": {"checking-plus": "50000"}},
    "harbor.monthly_outgoing": {"max": "2000000"},
    "harbor.velocity_review": {"max_per_window": 6, "window_minutes": 60},
    "harbor.new_account_review": {"days": 7, "threshold": "100000"},
}


class HarborConformance(DriverConformance):
    """Not collected itself (no ``Test`` prefix): what every class shares."""

    timezone = PROFILE["timezone"]
    currency = PROFILE["currency"]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.params = next(e["params"] for e in PROFILE[str(cls.slot)] if e["driver"] == cls.entry_point)
        cls.params_by_currency = {"JPY": JPY_PARAMS[cls.entry_point]}


class TestOverdraftFee(HarborConformance):
    slot = Slot.FEE
    entry_point = "harbor.overdraft_fee"


class TestOverdraftLimit(HarborConformance):
    slot = Slot.LIMIT
    entry_point = "harbor.overdraft_limit"


class TestMonthlyOutgoingLimit(HarborConformance):
    slot = Slot.LIMIT
    entry_point = "harbor.monthly_outgoing"


class TestVelocityReview(HarborConformance):
    slot = Slot.APPROVAL
    entry_point = "harbor.velocity_review"


class TestNewAccountReview(HarborConformance):
    slot = Slot.APPROVAL
    entry_point = "harbor.new_account_review"


def test_every_harbor_entry_point_has_a_conformance_class() -> None:
    installed = {ep.name for namespace in NAMESPACES.values()
                 for ep in metadata.entry_points(group=namespace) if ep.name.startswith("harbor.")}
    assert {cls.entry_point for cls in HarborConformance.__subclasses__()} == installed == set(JPY_PARAMS)
