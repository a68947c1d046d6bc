"""A month of mixed traffic at Northwind and Harbor, for the simulation tests.

Accounts are opened (through the service: the command has no opening time)
before the month starts, a few during it; the traffic is a file per half
month run by the real ``bank txn process``. The institutions' shipped
profiles are used with ``max_backdate = "40d"`` so a request may carry a
time in the past month.
"""

from __future__ import annotations

import json
import random
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import bank_wiring
from bank_core.profile_history import to_toml
from cli_support import Cli, profile_file

DAYS = 30
PACKAGES = {"northwind": "northwind_policies", "harbor": "harbor_policies"}


def profile_doc(inst: str, **changes: Any) -> dict[str, Any]:
    doc = tomllib.loads(profile_file(PACKAGES[inst]).read_text())
    doc["max_backdate"] = "40d"
    doc.update(changes)
    return doc


def write_profile(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(to_toml(doc))
    return path


@dataclass
class Bank:
    """One institution's accounts and the month it lives through."""

    inst: str
    cli: Cli
    start: datetime
    accounts: list[tuple[str, datetime]] = field(default_factory=list)

    def open_accounts(self, count: int, rng: random.Random) -> None:
        svc = bank_wiring.build(self.cli.db_url)
        products = ["standard", "checking-plus"] if self.inst == "harbor" else ["standard"]
        for n in range(count):
            # most before the month, a few during it (Harbor's new-account review)
            opened = self.start - timedelta(days=2) if n % 5 else self.start + timedelta(days=rng.randint(0, 20))
            record = svc.open_account(self.inst, holder=f"holder {n}", product=rng.choice(products),
                                      opened_at=opened, actor="teller")
            self.accounts.append((record.id, opened))
        svc.engine.dispose()

    def traffic(self, rng: random.Random, rows: int, first_day: int, last_day: int, tag: str) -> list[dict[str, Any]]:
        """Rows in time order: deposits to fund accounts, then a mix of
        withdrawals (branch and atm), transfers (some large: reviews and
        limit failures) and overdraft attempts."""
        found: list[dict[str, Any]] = []
        span = (last_day - first_day) * 86400
        times = sorted(rng.randint(0, span - 1) for _ in range(rows))
        for n, offset in enumerate(times):
            at = self.start + timedelta(days=first_day, seconds=offset)
            usable = [a for a, opened in self.accounts if opened < at]
            acc = rng.choice(usable)
            roll = rng.random()
            row: dict[str, Any] = {"ref": f"{tag}-{n}", "at": at.isoformat()}
            if roll < 0.35:
                row.update(type="deposit", to=acc, amount=f"{rng.randint(200, 6000)}.{rng.randint(0, 99):02d}")
            elif roll < 0.62:
                row.update(type="withdrawal", **{"from": acc}, amount=f"{rng.randint(5, 900)}.00",
                           channel=rng.choice(["atm", "atm", "branch", "online"]))
            elif roll < 0.66:  # a burst: Harbor's velocity review
                for k in range(7):
                    found.append({"ref": f"{tag}-{n}-{k}", "at": (at + timedelta(seconds=k)).isoformat(),
                                  "type": "withdrawal", "from": acc, "amount": "20.00", "channel": "atm"})
                continue
            else:
                other = rng.choice([a for a in usable if a != acc] or usable)
                amount = rng.choice([f"{rng.randint(1, 400)}.{rng.randint(0, 99):02d}", "5200.00", "12000.00",
                                     f"{rng.randint(400, 2500)}.00"])
                row.update(type="transfer", **{"from": acc}, to=other, amount=amount, channel="online")
            found.append(row)
        return found

    def process(self, rows: list[dict[str, Any]], path: Path) -> dict[str, Any]:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return self.cli.json("txn", "process", str(path), profile=self.inst)


def month_start() -> datetime:
    return (datetime.now(timezone.utc) - timedelta(days=DAYS + 1)).replace(microsecond=0)


def setup_banks(cli: Cli, tmp_path: Path, accounts: int = 24) -> dict[str, Bank]:
    banks = {}
    for inst in PACKAGES:
        cli("profile", "apply", str(write_profile(tmp_path / f"{inst}.toml", profile_doc(inst))), expect=0)
        bank = Bank(inst, cli, month_start())
        bank.open_accounts(accounts, random.Random(inst))
        banks[inst] = bank
    return banks


def simulate(cli: Cli, inst: str, profile: Path, *args: str) -> dict[str, Any]:
    return cli.json("profile", "simulate", str(profile), *args, profile=inst)
