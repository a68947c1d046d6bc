"""Frozen copies of the drivers as they were written against contract
version 1 (the two institutions' drivers and the kernel's built-ins, before
they moved to version 2). They stay exactly as written then: the test suite
proves that a version-1 driver keeps working, and decides exactly as its
version-2 successor, whatever the kernel becomes. Do not modernise them."""
