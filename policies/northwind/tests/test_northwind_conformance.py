"""Every Northwind driver passes the kernel's conformance kit
(``bank_core.testing``), loaded through its entry point, with the params
Northwind's profile gives it and in Northwind's timezone.

JPY: the profile's amounts are USD with cents ("0.25", "10000.00"), which
JPY (no minor unit) cannot express, so a request in JPY makes these drivers
raise and the kernel fails it closed (``driver_raised``). That is what would
happen to an account opened in JPY at Northwind today; ``JPY_PARAMS`` are
the params a JPY institution would write instead, so the kit can check the
drivers' logic on a JPY request too.

The kit makes one ``DriverConformance`` class per driver of the profile
(``TestTransferFee`` and so on, after the driver classes).
"""

from __future__ import annotations

import northwind_policies

from bank_core.testing import installed_entry_points, profile_conformance, read_profile

PROFILE = read_profile(northwind_policies.profile_resource())
JPY_PARAMS = {
    "northwind.transfer_fee": {"percent": "0.5", "min": "25", "max": "2500"},
    "northwind.atm_withdrawal_fee": {"free_per_month": 4, "fee": "200", "channel": "atm"},
    "northwind.single_transaction": {"max": "1000000"},
    "northwind.daily_withdrawal": {"max": "250000"},
    "northwind.large_transfer_review": {"threshold": "500000"},
}

CONFORMANCE = profile_conformance(PROFILE, "northwind.", params_by_currency={"JPY": JPY_PARAMS})
globals().update(CONFORMANCE)


def test_every_northwind_entry_point_has_a_conformance_class() -> None:
    installed = installed_entry_points("northwind.")
    assert {cls.entry_point for cls in CONFORMANCE.values()} == installed == set(JPY_PARAMS)
