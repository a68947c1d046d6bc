"""A deterministic workload for the benchmark: accounts and transaction files.

1,000 accounts split across Northwind and Harbor; for each institution a CSV
of mixed rows spread over one calendar month: opening deposits, deposits,
withdrawals on several channels, transfers, some above the limits and review
thresholds, and about 1% malformed rows. The same seed gives the same files.
Amounts are generated as integers of minor units and written as text.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

START = datetime(2026, 10, 1, 5, 0, tzinfo=timezone.utc)
MONTH = timedelta(days=30)
CHANNELS = ("branch", "atm", "online", "mobile")
FIELDS = ("ref", "type", "from", "to", "amount", "currency", "channel", "memo", "at")


def text(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


@dataclass(frozen=True)
class Plan:
    institution: str
    accounts: list[str]


def open_accounts(svc, institution: str, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    opened = START - timedelta(days=60)
    for n in range(count):
        product = "checking-plus" if institution == "harbor" and n % 2 else "standard"
        record = svc.open_account(institution, holder=f"{institution} customer {n}", product=product,
                                  actor="bench", opened_at=opened if n % 10 else START - timedelta(days=2))
        ids.append(record.id)
    return ids


def write_file(path: Path, plan: Plan, rows: int, seed: int) -> dict[str, int]:
    """Write ``rows`` rows for one institution; returns counts by intent."""
    rng = random.Random(f"{seed}:{plan.institution}")
    accounts = plan.accounts
    step = MONTH / max(rows, 1)
    counts: dict[str, int] = {}
    refs: list[tuple[str, list[str]]] = []
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for n in range(rows):
            at = (START + step * n).isoformat().replace("+00:00", "Z")
            ref = f"{plan.institution}-{seed}-{n}"
            if n < len(accounts):
                intent, row = "opening", [ref, "deposit", "", accounts[n], text(rng.randint(200_000, 2_000_000)), "USD", "branch", "opening", at]
            else:
                intent, row = _row(rng, ref, accounts, at, refs)
            counts[intent] = counts.get(intent, 0) + 1
            writer.writerow(row)
            if len(refs) < 1000 and intent in ("deposit", "withdrawal", "transfer"):
                refs.append((ref, row))
    return counts


def _row(rng: random.Random, ref: str, accounts: list[str], at: str,
         refs: list[tuple[str, list[str]]]) -> tuple[str, list[str]]:
    roll = rng.randrange(1000)
    a, b = rng.sample(accounts, 2)
    channel = rng.choice(CHANNELS)
    if roll < 10:  # about 1% malformed, several kinds
        kind = roll % 5
        if kind == 0:
            return "malformed", [ref, "deposit", "", a, "1e3", "", "branch", "", at]
        if kind == 1:
            return "malformed", [ref, "withdrawal", "acc_unknown", "", "10.00", "", "atm", "", at]
        if kind == 2:
            return "malformed", [ref, "deposit", "", a, "10.00", "EUR", "branch", "", at]
        if kind == 3:
            return "malformed", [ref, "refund", "", a, "10.00", "", "branch", "", at]
        if refs:  # a reused ref with a different body
            old_ref, old = rng.choice(refs)
            return "malformed", [old_ref, old[1], old[2], old[3], text(rng.randint(1, 99_999)), "", old[6], "", at]
        return "malformed", [ref, "deposit", "", a, "10.505", "", "branch", "", at]
    if roll < 20:  # above single-transaction limits
        return "deposit", [ref, "deposit", "", a, text(rng.randint(1_000_001, 1_500_000)), "", "branch", "", at]
    if roll < 35:  # transfers at or above review thresholds
        return "transfer", [ref, "transfer", a, b, text(rng.randint(500_000, 700_000)), "", channel, "", at]
    if roll < 330:
        return "deposit", [ref, "deposit", "", a, text(rng.randint(1_000, 300_000)), "", channel, "", at]
    if roll < 600:
        return "withdrawal", [ref, "withdrawal", a, "", text(rng.randint(500, 150_000)), "", channel, "", at]
    return "transfer", [ref, "transfer", a, b, text(rng.randint(100, 200_000)), "", channel, "", at]
