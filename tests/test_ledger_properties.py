"""Property test: any sequence of opens, deposits, withdrawals, transfers,
holds, approvals, rejections, expiries, reversals and replays, driven through
the real BankService, keeps the ledger's invariants, and every balance equals
what an independent integer model of the rules predicts.

One database is shared by all examples; each example is a fresh institution
(the default profile under a new id), which tenancy keeps apart. The
institution charges a flat 1.00 fee on withdrawals and transfers (so fee
income takes part in the zero sum) and holds anything of 500.00 or more for
a second person (``testkit.review_above``).

Invariants, checked after every step (``bank_test_support.check_ledger``):
the sum of all balances, customer and internal, is zero per currency; each
account's stored counters equal the sum of its postings plus the lines of held
transactions; available = posted - held; no customer account is ever below
zero, posted or available.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bank_core.errors import Conflict, InvalidRequest, Refused
from bank_core.messages import TxnRequest, TxnResult, utc_now
from bank_core.profile import DEFAULT_PROFILE
from bank_core.service import BankService
from bank_test_support import check_ledger, counts, usd
from bank_wiring import build
from conftest import new_institution_id, profile_doc

FEE = 100          # "1.00"
THRESHOLD = 50_000  # "500.00"
MAX_ACCOUNTS = 4
PROFILE = {
    "hold_expiry_hours": 24,
    "fee": [{"driver": "testkit.flat_fee", "params": {"amount": usd(FEE)}}],
    "limit": [{"driver": "core.no_overdraft"}],
    "approval": [*DEFAULT_PROFILE["approval"],
                 {"driver": "testkit.review_above", "params": {"threshold": usd(THRESHOLD)}}],
}

# Minor units: mostly amounts the balances can cover, sometimes large ones
# (held at 500.00 and above, or rejected by no-overdraft).
amounts = st.one_of(st.integers(min_value=1, max_value=10_000),
                    st.integers(min_value=1, max_value=80_000))
# Or a share of the payer's available balance (None: use the absolute amount).
percents = st.one_of(st.integers(min_value=1, max_value=100), st.integers(min_value=90, max_value=120),
                     st.none())
deposits = st.one_of(st.integers(min_value=1, max_value=30_000),
                     st.integers(min_value=30_000, max_value=120_000))
picks = st.integers(min_value=0, max_value=10**6)     # an index into a list, taken modulo


@dataclass
class Planned:
    kind: str
    source: str | None
    dest: str | None
    amount: int
    fee: int


class LedgerMachine(RuleBasedStateMachine):
    svc: ClassVar[BankService]

    @initialize(seed=st.lists(st.integers(min_value=1, max_value=60_000), min_size=2, max_size=2))
    def new_institution(self, seed: list[int]) -> None:
        self.inst = new_institution_id("p")
        self.svc.apply_profile(profile_doc(self.inst, **PROFILE), "setup")
        self.accounts: list[str] = []
        self.posted: dict[str, int] = {}
        self.held_out: dict[str, int] = {}
        self.held_in: dict[str, int] = {}
        self.holds: dict[str, Planned] = {}
        self.reversible: dict[str, Planned] = {}
        self.reversals: list[str] = []
        self.replays: list[tuple[TxnRequest, TxnResult]] = []
        self.n = 0
        for amount in seed:  # two accounts with opening deposits
            self.open_account()
            self.submit("deposit", None, self.accounts[-1], amount)

    # ------------------------------------------------------------ helpers

    def ref(self) -> str:
        self.n += 1
        return f"r{self.n}"

    def pick(self, items: list[str], index: int) -> str:
        return items[index % len(items)]

    def available(self, acc: str) -> int:
        return self.posted[acc] - self.held_out[acc]

    def apply(self, plan: Planned, stage: str) -> None:
        """Model the effect of ``plan`` at ``stage``: post, hold, settle, release, reverse."""
        debit, credit = plan.amount + plan.fee, plan.amount
        if stage in ("post", "settle", "reverse"):
            s = -1 if stage == "reverse" else 1
            if plan.source:
                self.posted[plan.source] -= s * debit
            if plan.dest:
                self.posted[plan.dest] += s * credit
        if stage in ("hold", "settle", "release"):
            s = 1 if stage == "hold" else -1
            if plan.source:
                self.held_out[plan.source] += s * debit
            if plan.dest:
                self.held_in[plan.dest] += s * credit

    def submit(self, kind: str, source: str | None, dest: str | None, amount: int) -> None:
        fee = 0 if kind == "deposit" else FEE
        plan = Planned(kind, source, dest, amount, fee)
        request = TxnRequest(self.inst, self.ref(), kind, usd(amount), source=source, dest=dest,
                             actor="teller")
        result = self.svc.submit(request)
        if source is not None and self.available(source) < amount + fee:
            expected = "rejected"
        elif amount >= THRESHOLD:
            expected = "held"
        else:
            expected = "posted"
        assert result.status == expected, (plan, result)
        event(f"{kind} {expected}")
        if expected == "rejected":
            assert result.code == "core.no_overdraft" and result.fee_total == "0.00"
        else:
            assert result.fee_total == usd(fee)
        if expected == "posted":
            self.apply(plan, "post")
            self.reversible[result.txn_id] = plan
        elif expected == "held":
            self.apply(plan, "hold")
            self.holds[result.txn_id] = plan
        # The result reports the balances right after the decision.
        for out in result.balances:
            assert int(out.posted.replace(".", "")) == self.posted[out.account]
            assert int(out.available.replace(".", "")) == self.available(out.account)
        self.replays.append((request, result))

    # ------------------------------------------------------------ rules

    @precondition(lambda self: len(self.accounts) < MAX_ACCOUNTS)
    @rule()
    def open_account(self) -> None:
        acc = self.svc.open_account(self.inst, holder=f"holder {len(self.accounts)}").id
        self.accounts.append(acc)
        self.posted[acc] = self.held_out[acc] = self.held_in[acc] = 0

    @precondition(lambda self: self.accounts)
    @rule(i=picks, amount=deposits)
    def deposit(self, i: int, amount: int) -> None:
        self.submit("deposit", None, self.pick(self.accounts, i), amount)

    def spend(self, i: int, amount: int, percent: int | None) -> tuple[str, int]:
        """The paying account (one with money, when there is one) and the
        amount: absolute, or ``percent`` of what it has available (up to
        120%, so the edge of no-overdraft is hit exactly)."""
        funded = [a for a in self.accounts if self.available(a) > 0] or self.accounts
        source = self.pick(funded, i)
        if percent is not None and self.available(source) > FEE:
            amount = max(1, (self.available(source) - FEE) * percent // 100)
        return source, amount

    @precondition(lambda self: self.accounts)
    @rule(i=picks, amount=amounts, percent=percents)
    def withdraw(self, i: int, amount: int, percent: int | None) -> None:
        source, amount = self.spend(i, amount, percent)
        self.submit("withdrawal", source, None, amount)

    @precondition(lambda self: len(self.accounts) >= 2)
    @rule(i=picks, j=picks, amount=amounts, percent=percents)
    def transfer(self, i: int, j: int, amount: int, percent: int | None) -> None:
        source, amount = self.spend(i, amount, percent)
        others = [a for a in self.accounts if a != source]
        self.submit("transfer", source, self.pick(others, j), amount)

    @precondition(lambda self: self.accounts)
    @rule(i=picks)
    def transfer_to_self_is_invalid(self, i: int) -> None:
        acc = self.pick(self.accounts, i)
        with pytest.raises(InvalidRequest):
            self.svc.submit(TxnRequest(self.inst, self.ref(), "transfer", "1.00", source=acc, dest=acc))

    @precondition(lambda self: self.holds)
    @rule(i=picks)
    def approve(self, i: int) -> None:
        txn = self.pick(list(self.holds), i)
        with pytest.raises(Refused):  # four eyes: never the initiator
            self.svc.holds.approve(self.inst, txn, "teller")
        assert self.svc.holds.approve(self.inst, txn, "checker").status == "posted"
        plan = self.holds.pop(txn)
        self.apply(plan, "settle")
        event("hold approved")
        self.reversible[txn] = plan

    @precondition(lambda self: self.holds)
    @rule()
    def approve_oldest(self) -> None:
        self.approve(0)

    @precondition(lambda self: self.holds)
    @rule(i=picks)
    def reject(self, i: int) -> None:
        txn = self.pick(list(self.holds), i)
        assert self.svc.holds.reject(self.inst, txn, "checker", "declined").status == "rejected"
        self.apply(self.holds.pop(txn), "release")
        event("hold rejected")
        with pytest.raises(Conflict):
            self.svc.holds.approve(self.inst, txn, "checker")

    @precondition(lambda self: self.holds)
    @rule()
    def expire_all(self) -> None:
        expired = self.svc.holds.expire(self.inst, "sweeper", now=utc_now() + timedelta(hours=25))
        assert sorted(expired) == sorted(self.holds)
        event(f"expired {min(len(expired), 3)}{'+' if len(expired) >= 3 else ''} holds")
        for txn in expired:
            self.apply(self.holds.pop(txn), "release")

    @precondition(lambda self: self.reversible)
    @rule(i=picks)
    def reverse(self, i: int) -> None:
        txn = self.pick(list(self.reversible), i)
        plan = self.reversible[txn]
        # Reversing takes back what the destination received (and refunds the
        # fee); refused if the destination no longer has it available.
        if plan.dest is not None and self.available(plan.dest) < plan.amount:
            with pytest.raises(Refused, match="overdraw|core.no_overdraft"):
                self.svc.holds.reverse(self.inst, txn, "ops")
            event("reversal refused")
            return
        view = self.svc.holds.reverse(self.inst, txn, "ops")
        assert view["reverses"] == txn and view["status"] == "posted"
        self.apply(self.reversible.pop(txn), "reverse")
        self.reversals.append(txn)
        self.reversals.append(view["txn_id"])
        event(f"{plan.kind} reversed")

    @precondition(lambda self: self.reversals)
    @rule(i=picks)
    def reverse_again_is_conflict(self, i: int) -> None:
        with pytest.raises(Conflict):
            self.svc.holds.reverse(self.inst, self.pick(self.reversals, i), "ops")

    @precondition(lambda self: self.replays)
    @rule(i=picks)
    def replay(self, i: int) -> None:
        request, first = self.replays[i % len(self.replays)]
        before = counts(self.svc, self.inst)
        assert self.svc.submit(request) == first
        assert counts(self.svc, self.inst) == before

    # ------------------------------------------------------------ invariants

    @invariant()
    def ledger_is_consistent_and_matches_the_model(self) -> None:
        if not hasattr(self, "inst"):
            return
        state = check_ledger(self.svc, self.inst, no_overdraft=True)
        for acc in self.accounts:
            assert state.posted[acc] == self.posted[acc], acc
            assert state.held_out[acc] == self.held_out[acc], acc
            assert state.held_in[acc] == self.held_in[acc], acc
        assert state.txn_status.get("held", 0) == len(self.holds)
        fee_income = [a for a, role in state.role.items() if role == "fee_income"]
        assert len(fee_income) == 1


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BankService]:
    svc = build(f"sqlite:///{tmp_path_factory.mktemp('properties') / 'bank.db'}")
    yield svc
    svc.engine.dispose()


def test_ledger_invariants_hold_for_any_sequence(shared_service: BankService) -> None:
    class Machine(LedgerMachine):
        svc = shared_service

    run_state_machine_as_test(
        Machine, settings=settings(settings.default, stateful_step_count=30))


@pytest.mark.postgres
def test_ledger_invariants_hold_on_postgres(pg_url: str) -> None:
    svc = build(pg_url)

    class Machine(LedgerMachine):
        pass

    Machine.svc = svc
    try:
        run_state_machine_as_test(
            Machine, settings=settings(settings.default, stateful_step_count=20,
                                       max_examples=max(3, settings.default.max_examples // 5)))
    finally:
        svc.engine.dispose()
