"""Every Northwind driver passes the kernel's conformance kit
(``bank_core.testing``), loaded through its entry point, with the params
Northwind's profile gives it and in Northwind's timezone.

JPY: the profile's amounts are USD with cents ("0.25", "10000.00"), which
JPY (no minor unit) cannot express, so a request in JPY makes these drivers
raise and the kernel fails it closed (``driver_raised``). That is what would
happen to an account opened in JPY at Northwind today; ``JPY_PARAMS`` are
the params a JPY institution would write instead, so the kit can check the
drivers' logic on a JPY request too.
"""

from __future__ import annotations

import tomllib
from importlib import metadata

import northwind_policies

from bank_core.contract import NAMESPACES, Slot
from bank_core.testing import DriverConformance

PROFILE = tomllib.loads(northwind_policies.profile_resource().read_text(encoding="utf-8"))
JPY_PARAMS = {
    "northwind.transfer_fee": {"percent": "0.5", "min": "25", "max": "2500"},
    "northwind.atm_withdrawal_fee": {"free_per_month": 4, "fee": "200", "channel": "atm"},
    "northwind.single_transaction": {"max": "1000000"},
    "northwind.daily_withdrawal": {"max": "250000"},
    "northwind.large_transfer_review": {"threshold": "500000"},
}


class NorthwindConformance(DriverConformance):
    """Not collected itself (no ``Test`` prefix): what every class shares."""

    timezone = PROFILE["timezone"]
    currency = PROFILE["currency"]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.params = next(e["params"] for e in PROFILE[str(cls.slot)] if e["driver"] == cls.entry_point)
        cls.params_by_currency = {"JPY": JPY_PARAMS[cls.entry_point]}


class TestTransferFee(NorthwindConformance):
    slot = Slot.FEE
    entry_point = "northwind.transfer_fee"


class TestAtmWithdrawalFee(NorthwindConformance):
    slot = Slot.FEE
    entry_point = "northwind.atm_withdrawal_fee"


class TestSingleTransactionLimit(NorthwindConformance):
    slot = Slot.LIMIT
    entry_point = "northwind.single_transaction"


class TestDailyWithdrawalLimit(NorthwindConformance):
    slot = Slot.LIMIT
    entry_point = "northwind.daily_withdrawal"


class TestLargeTransferReview(NorthwindConformance):
    slot = Slot.APPROVAL
    entry_point = "northwind.large_transfer_review"


def test_every_northwind_entry_point_has_a_conformance_class() -> None:
    installed = {ep.name for namespace in NAMESPACES.values()
                 for ep in metadata.entry_points(group=namespace) if ep.name.startswith("northwind.")}
    assert {cls.entry_point for cls in NorthwindConformance.__subclasses__()} == installed == set(JPY_PARAMS)
