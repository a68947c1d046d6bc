"""What the pipeline needs around a chunk: the institution as bound to its
profile's drivers, the ports, and the drivers' read-only account snapshots.
The steps themselves are in ``bank_core.chunk``."""

from __future__ import annotations

import copy
import zoneinfo
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from bank_core.contract import READS, AccountSnapshot, AccountStatus, Slot
from bank_core.decide import Drivers, Evaluator
from bank_core.fastmake import account_snapshot
from bank_core.seal import check_seals
from bank_core.ledger import BalanceRow, load_balances
from bank_core.ports import AccountRecord, AccountsPort, AuditPort
from bank_core.terms import Terms

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
    reads: frozenset[str] = READS  # the context data some driver of the profile reads
    shadow: Any = None  # the running shadow profile (bank_core.shadow.ShadowView), if any
    # isolation = "process": the RemoteEvaluator of the institution's policy
    # server (bank_core.supervisor); None: the drivers run in this process.
    remote: Any = None

    def evaluator(self, inline: Evaluator) -> Any:
        """What runs this institution's drivers: its policy server, or ``inline``."""
        return inline if self.remote is None else self.remote


def profile_reads(drivers: Drivers) -> frozenset[str]:
    """What the kernel must load for these drivers: everything for a
    version-1 driver, what it declares for a later one."""
    found: set[str] = set()
    for slot in Slot:
        for bound in drivers.get(slot, ()):
            cls = type(bound.driver)
            found |= READS if cls.contract_version < 2 else (set(cls.reads) & READS)
    return frozenset(found)


def snapshot(record: AccountRecord, balance: BalanceRow, exclude_hold: list[int] | None = None
             ) -> AccountSnapshot:
    """The driver's read-only view; ``exclude_hold`` removes one hold's own
    pending counters (used when re-checking a hold at approval)."""
    dpend, cpend = balance.debits_pending, balance.credits_pending
    if exclude_hold is not None:
        dpend -= exclude_hold[2]
        cpend -= exclude_hold[3]
    return account_snapshot(record.id, record.currency, _STATUS[record.status], record.product,
                            record.opened_at, balance.credits_posted - balance.debits_posted,
                            dpend, cpend)  # (a record's times are aware UTC: ``bank_accounts.server``)


_STATUS = {s.value: s for s in AccountStatus}


class Pipeline:
    def __init__(self, accounts: AccountsPort, audit: AuditPort, evaluator: Evaluator) -> None:
        self.accounts = accounts
        self.audit = audit
        self.evaluator = evaluator
        self.terms = Terms()
        self._internal: dict[tuple[str, str, str], str] = {}

    def for_dry_run(self) -> Pipeline:
        """This pipeline with caches of its own, which start empty and are
        dropped with it: a dry run's new terms and accounts are rolled
        back, so the process must never remember their ids."""
        found = copy.copy(self)
        found.terms = Terms()
        found._internal = {}
        return found

    def internal_account(self, conn: Connection, institution_id: str, role: str,
                         currency: str) -> str | None:
        """The id of an institution's internal account (cached once it exists:
        internal accounts are never closed or moved)."""
        key = (institution_id, role, currency)
        found = self._internal.get(key)
        if found is None:
            record = self.accounts.internal(conn, institution_id, role, currency)
            if record is None:
                return None
            found = self._internal[key] = record.id
        return found

    @staticmethod
    def load_balances(conn: Connection, institution_id: str, ids: list[str], lock: bool = True
                      ) -> dict[str, BalanceRow]:
        """The chunk's balances, locked (unless ``lock`` is false), their
        seals checked (``bank_core.seal``)."""
        found = load_balances(conn, institution_id, ids, for_update=lock)
        check_seals(institution_id, found)
        return found
