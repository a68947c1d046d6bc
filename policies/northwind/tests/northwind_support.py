"""Northwind's driver inputs, in USD minor units: the kit's builders in Northwind's id and
timezone, on open ``checking`` accounts of 10,000,000.00 unless a test says otherwise."""

from __future__ import annotations

from functools import partial
from typing import Any

from bank_core.testing import DEST_ID, make_account, make_payer_context, money, read_checked

TZ = "America/New_York"
usd = money  # an int is minor units, USD the default currency
account = partial(make_account, balance=10**9, product="checking")
make_ctx = partial(make_payer_context, payer=account(), counterparty=account(DEST_ID),
                   institution="northwind", timezone=TZ)


def read(answer: object, currency: str = "USD") -> Any:
    """A driver's answer, which must be data (contract version 3) that the kernel's own check
    passes, as the answer object it stands for: its ints amounts in ``currency`` (``Money``),
    its ``count(n)`` counts (``int``)."""
    assert type(answer) is tuple, f"{answer!r} is not a data answer"
    return read_checked(answer, currency)
