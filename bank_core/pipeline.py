"""What the pipeline needs around a chunk: the institution as bound to its
profile's drivers, the ports, and the drivers' read-only account snapshots.
The steps themselves are in ``bank_core.chunk``."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from bank_core.contract import AccountSnapshot, AccountStatus, Money
from bank_core.decide import Drivers, Evaluator
from bank_core.ledger import BalanceRow
from bank_core.messages import as_utc
from bank_core.ports import AccountRecord, AccountsPort, AuditPort

KERNEL = "kernel"
ACCOUNT_CLOSED = "account_closed"


@lru_cache(maxsize=64)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class InstitutionView:
    id: str
    currency: str
    timezone: str
    hold_expiry_hours: int
    profile_version: int
    drivers: Drivers
    account_currencies: tuple[str, ...] = ()  # the profile's currency first, then its extras
    # How far before / after "now" a request's ``at`` may lie (the profile's
    # max_backdate, max_future; checked by bank_core.limits.check_at_window).
    at_window: tuple[timedelta, timedelta] = (timedelta(days=7), timedelta(minutes=5))
    channels: tuple[str, ...] = ()  # the profile's channels (empty: not checked)
    products: tuple[str, ...] = ()  # the profile's products (empty: not checked)


def snapshot(record: AccountRecord, balance: BalanceRow, exclude_hold: list[int] | None = None
             ) -> AccountSnapshot:
    """The driver's read-only view; ``exclude_hold`` removes one hold's own
    pending counters (used when re-checking a hold at approval)."""
    dpend, cpend = balance.debits_pending, balance.credits_pending
    if exclude_hold is not None:
        dpend -= exclude_hold[2]
        cpend -= exclude_hold[3]
    cur = balance.currency
    return AccountSnapshot(record.id, record.currency, AccountStatus(record.status),
                           record.product, as_utc(record.opened_at),
                           Money(balance.posted, cur), Money(dpend, cur), Money(cpend, cur))


class Pipeline:
    def __init__(self, accounts: AccountsPort, audit: AuditPort, evaluator: Evaluator) -> None:
        self.accounts = accounts
        self.audit = audit
        self.evaluator = evaluator
