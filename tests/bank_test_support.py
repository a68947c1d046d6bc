"""Shared helpers of the kernel's tests: ledger invariants checked with raw
SQL against the tables (independently of the kernel's own queries), and
small builders. Importable from worker processes (multiprocessing spawn)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from bank_core.messages import TxnRequest
from bank_core.money import format_minor
from bank_core.service import BankService


def usd(minor: int) -> str:
    """Minor units as request text, e.g. 1050 -> "10.50" (never a float)."""
    return format_minor(minor, "USD")


def count(svc: BankService, table: str, inst: str) -> int:
    with svc.engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE institution_id = :i"),
                            {"i": inst}).scalar_one()


def counts(svc: BankService, inst: str) -> dict[str, int]:
    return {t: count(svc, t, inst) for t in ("txn", "posting", "audit_entry", "usage_counter")}


def deposit(svc: BankService, inst: str, account: str, minor: int, ref: str) -> Any:
    result = svc.submit(TxnRequest(inst, ref, "deposit", usd(minor), dest=account))
    assert result.status == "posted", result
    return result


@dataclass
class LedgerState:
    """What the tables say, after every invariant has been asserted."""

    posted: dict[str, int] = field(default_factory=dict)  # account -> posted balance
    held_out: dict[str, int] = field(default_factory=dict)
    held_in: dict[str, int] = field(default_factory=dict)
    role: dict[str, str] = field(default_factory=dict)
    txn_status: dict[str, int] = field(default_factory=dict)


def check_ledger(svc: BankService, inst: str, *, no_overdraft: bool = True) -> LedgerState:
    """Assert the ledger invariants of one institution and return its state.

    - every posted transaction's postings sum to zero per currency, and only
      posted transactions (and reversals) have postings;
    - the sum of all balances (customer and internal) is zero per currency,
      posted and pending alike;
    - each account's four stored counters equal what its postings and the
      lines of the institution's held transactions add up to;
    - available = posted - held_out, where held_out is recomputed from the
      held transactions; under no-overdraft no customer account has posted or
      available below zero;
    - the service's own account view agrees with the tables.
    """
    state = LedgerState()
    with svc.engine.connect() as conn:
        params = {"i": inst}
        accounts = conn.execute(text(
            "SELECT a.id, a.role, a.currency, b.debits_posted, b.credits_posted, "
            "b.debits_pending, b.credits_pending, b.institution_id "
            "FROM account a JOIN balance b ON b.account_id = a.id "
            "WHERE a.institution_id = :i"), params).all()
        postings = conn.execute(text(
            "SELECT p.txn_id, p.account_id, p.amount_minor, p.currency, p.institution_id, t.status, "
            "t.institution_id AS txn_inst FROM posting p JOIN txn t ON t.id = p.txn_id "
            "WHERE p.institution_id = :i OR t.institution_id = :i"), params).all()
        held = conn.execute(text(
            "SELECT id, lines FROM txn WHERE institution_id = :i AND status = 'held'"), params).all()
        statuses = conn.execute(text(
            "SELECT status, COUNT(*) FROM txn WHERE institution_id = :i GROUP BY status"),
            params).all()
    state.txn_status = {s: n for s, n in statuses}
    currency = {a.id: a.currency for a in accounts}
    assert all(a.institution_id == inst for a in accounts)

    # Postings: balanced per transaction, only for posted ones, own tenant only.
    per_txn: dict[tuple[str, str], int] = defaultdict(int)
    debits_posted: dict[str, int] = defaultdict(int)
    credits_posted: dict[str, int] = defaultdict(int)
    for p in postings:
        assert p.institution_id == inst and p.txn_inst == inst, f"posting across tenants: {p}"
        assert p.account_id in currency, f"posting to an account of another institution: {p}"
        assert p.status == "posted", f"a {p.status} transaction has postings: {p.txn_id}"
        assert p.currency == currency[p.account_id]
        per_txn[(p.txn_id, p.currency)] += p.amount_minor
        if p.amount_minor < 0:
            debits_posted[p.account_id] += -p.amount_minor
        else:
            credits_posted[p.account_id] += p.amount_minor
    unbalanced = {k: v for k, v in per_txn.items() if v != 0}
    assert not unbalanced, f"unbalanced transactions: {unbalanced}"

    # Pending: the planned lines of every held transaction.
    debits_pending: dict[str, int] = defaultdict(int)
    credits_pending: dict[str, int] = defaultdict(int)
    for row in held:
        lines = json.loads(row.lines)
        assert lines, f"held transaction {row.id} has no planned lines"
        assert sum(amount for _acc, amount, _rule in lines) == 0, f"held {row.id} unbalanced"
        for acc, amount, _rule in lines:
            assert acc in currency
            if amount < 0:
                debits_pending[acc] += -amount
            else:
                credits_pending[acc] += amount

    # The stored counters are exactly what history adds up to.
    for a in accounts:
        got = (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
        want = (debits_posted[a.id], credits_posted[a.id], debits_pending[a.id],
                credits_pending[a.id])
        assert got == want, f"counters of {a.id} ({a.role}) are {got}; postings and holds say {want}"
        state.posted[a.id] = a.credits_posted - a.debits_posted
        state.held_out[a.id] = a.debits_pending
        state.held_in[a.id] = a.credits_pending
        state.role[a.id] = a.role

    # Sum of all balances is zero per currency (posted and pending).
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for a in accounts:
        totals[a.currency][0] += a.credits_posted - a.debits_posted
        totals[a.currency][1] += a.credits_pending - a.debits_pending
    for cur, (posted, pending) in totals.items():
        assert posted == 0, f"posted balances of {inst} sum to {posted} {cur}, not zero"
        assert pending == 0, f"pending balances of {inst} sum to {pending} {cur}, not zero"

    # The service's view: available = posted - held, never below zero.
    for record, balance in svc.list_accounts(inst):
        assert balance.posted == state.posted[record.id]
        assert balance.available == state.posted[record.id] - debits_pending[record.id]
        if no_overdraft:
            assert balance.posted >= 0, f"{record.id} posted {balance.posted} < 0"
            assert balance.available >= 0, f"{record.id} available {balance.available} < 0"
    return state


# --------------------------------------------------------------------------
# Concurrency worker (runs in a spawned process)
# --------------------------------------------------------------------------

def transfer_worker(url: str, inst: str, accounts: list[str], worker: int, n: int,
                    seed: int, batch: int = 0) -> dict[str, Any]:
    """Submit ``n`` transfers among ``accounts`` through a service of its own
    (one by one, or with ``batch`` > 0 through ``submit_batch`` in chunks of
    that size); return how each request came back."""
    from bank_wiring import build

    svc = build(url)
    try:
        return run_transfers(svc, inst, accounts, worker, n, seed, batch)
    finally:
        svc.engine.dispose()


def run_transfers(svc: BankService, inst: str, accounts: list[str], worker: int, n: int,
                  seed: int, batch: int = 0) -> dict[str, Any]:
    import random

    from bank_core.messages import TxnResult

    rng = random.Random(seed)
    outcome: dict[str, Any] = {"posted": 0, "rejected": 0, "held": 0, "errors": [], "refs": []}
    requests = []
    for i in range(n):
        src, dst = rng.sample(accounts, 2)
        amount = rng.randint(1, 4000)  # 0.01 .. 40.00; the balances are seeded modestly
        requests.append(TxnRequest(inst, f"w{worker}-{i}", "transfer", usd(amount),
                                   source=src, dest=dst, actor=f"worker{worker}"))
    outcome["refs"] = [r.ref for r in requests]
    if batch:
        for item in svc.submit_batch(inst, requests, chunk_size=batch):
            if item.error is not None:
                outcome["errors"].append(f"{item.request.ref}: {item.error!r}")
            else:
                outcome[TxnResult.model_validate(item.result).status] += 1
    else:
        for request in requests:
            try:
                result = svc.submit(request)
            except Exception as exc:  # noqa: BLE001 - reported to the test
                outcome["errors"].append(f"{request.ref}: {type(exc).__name__}: {exc}")
                continue
            outcome[result.status] += 1
    return outcome
