"""Every Harbor driver passes the kernel's conformance kit
(``bank_core.testing``), loaded through its entry point, with the params
Harbor's profile gives it and in Harbor's timezone.

JPY: the profile's amounts are USD with cents ("15.00", "20000.00"), which
JPY (no minor unit) cannot express, so a request in JPY makes these drivers
raise and the kernel fails it closed (``driver_raised``). That is what would
happen to an account opened in JPY at Harbor today; ``JPY_PARAMS`` are the
params a JPY institution would write instead, so the kit can check the
drivers' logic on a JPY request too.

The kit makes one ``DriverConformance`` class per driver of the profile
(``TestOverdraftFee`` and so on, after the driver classes).
"""

from __future__ import annotations

import harbor_policies

from bank_core.testing import installed_entry_points, profile_conformance, read_profile

PROFILE = read_profile(harbor_policies.profile_resource())
JPY_PARAMS = {
    "harbor.overdraft_fee": {"fee": "1500"},
    "harbor.overdraft_limit": {"products": {"checking-plus": "50000"}},
    "harbor.monthly_outgoing": {"max": "2000000"},
    "harbor.velocity_review": {"max_per_window": 6, "window_minutes": 60},
    "harbor.new_account_review": {"days": 7, "threshold": "100000"},
}

CONFORMANCE = profile_conformance(PROFILE, "harbor.", params_by_currency={"JPY": JPY_PARAMS})
globals().update(CONFORMANCE)


def test_every_harbor_entry_point_has_a_conformance_class() -> None:
    installed = installed_entry_points("harbor.")
    assert {cls.entry_point for cls in CONFORMANCE.values()} == installed == set(JPY_PARAMS)
