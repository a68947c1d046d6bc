"""Frozen copies of the drivers as they were written against contract
version 2 (the two institutions' drivers and the kernel's built-ins, before
they moved to version 3: answer objects with message templates, declared
reads). They stay exactly as written then: the test suite proves that a
version-2 driver keeps working, and decides and explains exactly as its
version-3 successor, whatever the kernel becomes. Do not modernise them."""
