"""A driver module that cannot be imported: loading it must fail the profile,
naming the slot, the entry point and this distribution."""

raise ImportError("bank_testkit_drivers.broken is broken on purpose")
