"""Every Harbor driver passes the kernel's conformance kit
(``bank_core.testing``), loaded through its entry point, with the params
Harbor's profile gives it and in Harbor's timezone.

The profile is USD only, so ``profile_conformance`` feeds the drivers USD
requests only (the currencies the profile declares). ``JPY_PARAMS`` are the
params a JPY institution would write (the profile's amounts have cents,
"15.00" and "20000.00", which JPY cannot express): the drivers' logic is
checked on JPY requests with them too.

The kit makes one ``DriverConformance`` class per driver of the profile
(``TestOverdraftFee`` and so on, after the driver classes).
"""

from __future__ import annotations

import harbor_policies
import pytest

from bank_core.testing import check_driver, installed_entry_points, profile_conformance, read_profile

PROFILE = read_profile(harbor_policies.profile_resource())
JPY_PARAMS = {
    "harbor.overdraft_fee": {"fee": "1500"},
    "harbor.overdraft_limit": {"products": {"checking-plus": "50000"}},
    "harbor.monthly_outgoing": {"max": "2000000"},
    "harbor.velocity_review": {"max_per_window": 6, "window_minutes": 60},
    "harbor.new_account_review": {"days": 7, "threshold": "100000"},
}

CONFORMANCE = profile_conformance(PROFILE, "harbor.")
globals().update(CONFORMANCE)


def test_every_harbor_entry_point_has_a_conformance_class() -> None:
    installed = installed_entry_points("harbor.")
    assert {cls.entry_point for cls in CONFORMANCE.values()} == installed == set(JPY_PARAMS)


@pytest.mark.parametrize("cls", CONFORMANCE.values(), ids=list(CONFORMANCE))
def test_the_drivers_conform_in_a_jpy_institution_with_jpy_params(cls: type) -> None:
    assert check_driver(cls.entry_point, cls.slot, JPY_PARAMS[cls.entry_point], currency="JPY",
                        timezone=cls.timezone, currencies=()) == []
