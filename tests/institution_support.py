"""Helpers of the institution end-to-end tests (``test_institution_*.py``).

Everything goes through the real stack: ``bank_wiring.build`` on a SQLite
file (schema by the real migrations), the profiles shipped inside the
installed ``northwind_policies`` and ``harbor_policies`` packages, applied
with ``BankService.apply_profile``, and drivers found by the real registry
through stevedore entry points. Nothing is monkeypatched.

The fixtures ``svc`` (a service on a fresh SQLite file), ``banks`` (both
shipped profiles applied), ``nw`` and ``hb`` (Northwind's and Harbor's
Bank) are defined here as ``svc_fixture`` and so on; a test module imports
them (their names differ from the fixtures', so no test argument shadows one).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bank_wiring import build

from bank_core.messages import TxnRequest, TxnResult
from bank_core.money import parse_minor
from bank_core.profile import read_toml
from bank_core.service import BankService

NORTHWIND = "northwind"
HARBOR = "harbor"
PACKAGES = {NORTHWIND: "northwind_policies", HARBOR: "harbor_policies"}
DISTRIBUTIONS = {NORTHWIND: "northwind-policies", HARBOR: "harbor-policies"}

TELLER = "teller-tess"
SUPERVISOR = "supervisor-sam"
UTC = ZoneInfo("UTC")


def shipped_profile(institution: str) -> dict[str, Any]:
    """The profile.toml inside the installed policy package, as a document,
    with ``max_backdate`` widened to ten years: these tests replay dated
    history (June 2026) through the real pipeline, which otherwise refuses
    an ``at`` more than the default seven days back."""
    resource = resources.files(PACKAGES[institution]) / "profile.toml"
    with resources.as_file(resource) as path:
        return {**read_toml(Path(path)), "max_backdate": HISTORY_WINDOW}


HISTORY_WINDOW = "3650d"


def changed_profile(institution: str, slot: str, driver: str, **params: Any) -> dict[str, Any]:
    """The shipped profile with ``params`` of one driver changed."""
    doc = copy.deepcopy(shipped_profile(institution))
    refs = [ref for ref in doc[slot] if ref["driver"] == driver]
    assert len(refs) == 1, f"{driver} is not listed once in {institution}'s {slot} slot"
    refs[0]["params"] = {**refs[0].get("params", {}), **params}
    return doc


def minor(text: str) -> int:
    return parse_minor(text, "USD")


def reason(result: TxnResult | dict[str, Any], rule: str) -> dict[str, Any]:
    """The one reason in a result (or txn view) that names ``rule``."""
    reasons = result.reasons if isinstance(result, TxnResult) else result["reasons"]
    found = [r for r in reasons if r["rule"] == rule]
    assert len(found) == 1, f"expected one reason for {rule}, got {found} in {reasons}"
    return found[0]


def outcomes(reasons: list[dict[str, Any]]) -> dict[str, str]:
    return {r["rule"]: r["outcome"] for r in reasons}


@dataclass
class Bank:
    """One institution on a service: open accounts and send requests."""

    svc: BankService
    id: str
    tz: ZoneInfo
    sent: int = 0
    accounts: dict[str, str] = field(default_factory=dict)

    def local(self, year: int, month: int, day: int, hour: int = 12, minute: int = 0,
              second: int = 0) -> datetime:
        """A wall-clock time in the institution's own timezone."""
        return datetime(year, month, day, hour, minute, second, tzinfo=self.tz)

    def open(self, name: str, product: str = "standard", *, opened_at: datetime | None = None,
             age: timedelta = timedelta(days=365)) -> str:
        """Open an account; by default a year old (so no 'new account' rule applies)."""
        when = opened_at if opened_at is not None else datetime(2026, 6, 1, tzinfo=UTC) - age
        record = self.svc.open_account(self.id, holder=name, product=product, actor=TELLER,
                                       opened_at=when)
        self.accounts[name] = record.id
        return record.id

    def submit(self, kind: str, amount: str, *, src: str | None = None, dst: str | None = None,
               at: datetime, channel: str = "branch", actor: str = TELLER,
               ref: str | None = None) -> TxnResult:
        self.sent += 1
        request = TxnRequest(self.id, ref or f"{self.id}-{self.sent}", kind, amount,
                             source=self.accounts.get(src, src) if src else None,
                             dest=self.accounts.get(dst, dst) if dst else None,
                             channel=channel, at=at, actor=actor)
        return self.svc.submit(request)

    def deposit(self, name: str, amount: str, at: datetime) -> TxnResult:
        result = self.submit("deposit", amount, dst=name, at=at)
        assert result.status == "posted", result
        return result

    def balance(self, name: str) -> Any:
        _record, row = self.svc.account(self.id, self.accounts.get(name, name))
        return row

    def posted(self, name: str) -> int:
        return self.balance(name).posted

    def available(self, name: str) -> int:
        return self.balance(name).available

    def internal(self, role: str) -> Any:
        rows = [b for r, b in self.svc.list_accounts(self.id, include_internal=True) if r.role == role]
        assert len(rows) == 1, rows
        return rows[0]

    def fee_income(self) -> int:
        return self.internal("fee_income").posted

    def actions(self, subject: str) -> list[str]:
        return [e.action for e in self.svc.audit_log(self.id, subject=subject, limit=None)]


def open_banks(svc: BankService) -> dict[str, Bank]:
    """Apply both shipped profiles to ``svc`` and return a Bank for each."""
    banks = {}
    for inst in (NORTHWIND, HARBOR):
        profile, version = svc.apply_profile(shipped_profile(inst), "setup")
        assert (profile.id, version) == (inst, 1)
        banks[inst] = Bank(svc, inst, ZoneInfo(profile.timezone))
    return banks


# --------------------------------------------------------------------------
# Fixtures: a test module imports the ones it uses (svc_fixture, ...); the
# tests ask for them by their names (svc, banks, nw, hb).
# --------------------------------------------------------------------------

@pytest.fixture(name="svc")
def svc_fixture(sqlite_url: str) -> Iterator[BankService]:
    service = build(sqlite_url)
    yield service
    service.engine.dispose()


@pytest.fixture(name="banks")
def banks_fixture(svc: BankService) -> dict[str, Bank]:
    return open_banks(svc)


@pytest.fixture(name="nw")
def nw_fixture(banks: dict[str, Bank]) -> Bank:
    return banks[NORTHWIND]


@pytest.fixture(name="hb")
def hb_fixture(banks: dict[str, Bank]) -> Bank:
    return banks[HARBOR]
