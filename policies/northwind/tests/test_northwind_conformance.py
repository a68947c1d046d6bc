"""Every Northwind driver passes the kernel's conformance kit
(``bank_core.testing``), loaded through its entry point, with the params
Northwind's profile gives it and in Northwind's timezone.

The profile is USD only, so ``profile_conformance`` feeds the drivers USD
requests only (the currencies the profile declares). ``JPY_PARAMS`` are the
params a JPY institution would write (the profile's amounts have cents,
"0.25" and "10000.00", which JPY cannot express): the drivers' logic is
checked on JPY requests with them too.

The kit makes one ``DriverConformance`` class per driver of the profile
(``TestTransferFee`` and so on, after the driver classes).
"""

from __future__ import annotations

import northwind_policies
import pytest

from bank_core.testing import check_driver, installed_entry_points, profile_conformance, read_profile

PROFILE = read_profile(northwind_policies.profile_resource())
JPY_PARAMS = {
    "northwind.transfer_fee": {"percent": "0.5", "min": "25", "max": "2500"},
    "northwind.atm_withdrawal_fee": {"free_per_month": 4, "fee": "200", "channel": "atm"},
    "northwind.single_transaction": {"max": "1000000"},
    "northwind.daily_withdrawal": {"max": "250000"},
    "northwind.large_transfer_review": {"threshold": "500000"},
}

CONFORMANCE = profile_conformance(PROFILE, "northwind.")
globals().update(CONFORMANCE)


def test_every_northwind_entry_point_has_a_conformance_class() -> None:
    installed = installed_entry_points("northwind.")
    assert {cls.entry_point for cls in CONFORMANCE.values()} == installed == set(JPY_PARAMS)


@pytest.mark.parametrize("cls", CONFORMANCE.values(), ids=list(CONFORMANCE))
def test_the_drivers_conform_in_a_jpy_institution_with_jpy_params(cls: type) -> None:
    assert check_driver(cls.entry_point, cls.slot, JPY_PARAMS[cls.entry_point], currency="JPY",
                        timezone=cls.timezone, currencies=()) == []
