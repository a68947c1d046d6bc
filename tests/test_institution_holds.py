"""End to end: holds at Northwind Bank and Harbor Credit Union, through the
service (``svc.holds``), with the shipped profiles and the real registry.

A review hold reserves funds (available drops, posted does not); a second
person approves it (four eyes) and only then does money move, fees included;
expiry after the profile's ``hold_expiry_hours`` releases it for good;
approval re-checks the profile as it is at that moment (limits, and approval
drivers that reject); every hold action is in the audit log.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from bank_test_support import check_ledger
from institution_support import (
    HARBOR,
    NORTHWIND,
    SUPERVISOR,
    TELLER,
    Bank,
    banks_fixture,  # noqa: F401 - a fixture
    changed_profile,
    hb_fixture,  # noqa: F401 - a fixture
    minor,
    nw_fixture,  # noqa: F401 - a fixture
    reason,
    shipped_profile,
    svc_fixture,  # noqa: F401 - a fixture
)

from bank_core.errors import Conflict, InvalidRequest, Refused
from bank_core.service import BankService

SWEEPER = "hold-sweeper"


def nw_hold(nw: Bank, funds: str = "6000.00") -> str:
    """Ann (``funds``) sends Bob 5,000.00: held for review, fee 25.00."""
    nw.open("ann")
    nw.open("bob")
    day = nw.local(2026, 6, 3, 9)
    nw.deposit("ann", funds, day)
    result = nw.submit("transfer", "5000.00", src="ann", dst="bob", at=day + timedelta(hours=1))
    assert result.status == "held" and result.code == "northwind.large_transfer_review"
    assert result.fee_total == "25.00"
    return result.txn_id


def hb_hold(hb: Bank, funds: str = "3000.00", product: str = "standard") -> str:
    """A withdrawal of 1,000.01 from a one-day-old account: held for review."""
    w = hb.local(2026, 6, 20, 12)
    hb.open("fay", product, opened_at=w - timedelta(days=1))
    hb.deposit("fay", funds, w - timedelta(hours=1))
    result = hb.submit("withdrawal", "1000.01", src="fay", at=w)
    assert result.status == "held" and result.code == "harbor.new_account_review"
    return result.txn_id


def decided_at(bank: Bank, txn_id: str) -> datetime:
    return datetime.fromisoformat(bank.svc.txn(bank.id, txn_id)["decided_at"])


# ---------------------------------------------------------------------------
# Reserve, four eyes, approve
# ---------------------------------------------------------------------------

def test_review_hold_lowers_available_not_posted_and_a_second_person_posts_it(nw: Bank) -> None:
    txn = nw_hold(nw)
    ann, bob, income = nw.balance("ann"), nw.balance("bob"), nw.internal("fee_income")
    assert (ann.posted, ann.available, ann.debits_pending) == (600000, 97500, 502500)
    assert (bob.posted, bob.available, bob.credits_pending) == (0, 0, 500000)
    assert (income.posted, income.credits_pending) == (0, 2500)
    view = nw.svc.txn(nw.id, txn)
    assert (view["status"], view["initiator"], view["profile_version"]) == ("held", TELLER, 1)

    # The reservation is real: Ann can spend 975.00, not a cent more.
    over = nw.submit("withdrawal", "975.01", src="ann", at=nw.local(2026, 6, 3, 11))
    assert over.status == "rejected" and over.code == "core.no_overdraft"
    assert reason(over, "core.no_overdraft")["observed"] == "975.00 USD"

    # Four eyes: the teller who sent it cannot approve it; nothing changes.
    with pytest.raises(Refused, match="four-eyes"):
        nw.svc.holds.approve(nw.id, txn, TELLER)
    assert nw.svc.txn(nw.id, txn)["status"] == "held"
    assert nw.balance("ann").posted == 600000 and nw.balance("bob").posted == 0

    outcome = nw.svc.holds.approve(nw.id, txn, SUPERVISOR)
    assert outcome.status == "posted"
    assert {r["rule"]: r["outcome"] for r in outcome.reasons if r["slot"] == "limit"} == {
        "northwind.single_transaction": "pass", "northwind.daily_withdrawal": "pass",
        "core.no_overdraft": "pass"}
    ann, bob, income = nw.balance("ann"), nw.balance("bob"), nw.internal("fee_income")
    assert (ann.posted, ann.available, ann.debits_pending) == (97500, 97500, 0)
    assert (bob.posted, bob.available, bob.credits_pending) == (500000, 500000, 0)
    assert (income.posted, income.credits_pending) == (2500, 0)  # the fee reached fee income
    view = nw.svc.txn(nw.id, txn)
    assert (view["status"], view["resolved_by"], view["resolution"]) == ("posted", SUPERVISOR, "approved")
    assert view["fee_total"] == "25.00"
    with pytest.raises(Conflict):
        nw.svc.holds.approve(nw.id, txn, SUPERVISOR)  # no longer held

    entries = nw.svc.audit_log(nw.id, subject=txn, limit=None)
    assert [(e.action, e.actor) for e in entries] == [
        ("txn.held", TELLER), ("txn.approval_refused", TELLER), ("txn.approved", SUPERVISOR)]
    assert entries[1].payload["reason"] == "four-eyes"  # the refused self-approval is audited
    assert entries[-1].payload["initiator"] == TELLER
    assert nw.svc.audit_verify(nw.id).ok
    check_ledger(nw.svc, nw.id)


def test_harbor_review_holds_post_on_approval_though_the_reviewer_rule_still_says_review(hb: Bank) -> None:
    """Approval re-runs the approval drivers too; their REVIEW is what the
    approver answers, so it never blocks the approval itself."""
    txn = hb_hold(hb)
    assert hb.balance("fay").available == minor("3000.00") - minor("1000.01")
    outcome = hb.svc.holds.approve(hb.id, txn, SUPERVISOR)
    assert outcome.status == "posted"
    assert reason({"reasons": outcome.reasons}, "harbor.new_account_review")["outcome"] == "review"
    assert hb.balance("fay").posted == minor("3000.00") - minor("1000.01")

    # A velocity hold likewise.
    hb.open("vic")
    t0 = hb.local(2026, 6, 21, 10)
    hb.deposit("vic", "500.00", t0 - timedelta(minutes=1))
    for n in range(5):
        assert hb.submit("withdrawal", "10.00", src="vic", at=t0 + timedelta(minutes=n)).status == "posted"
    sixth = hb.submit("withdrawal", "10.00", src="vic", at=t0 + timedelta(minutes=5))
    assert sixth.status == "held" and sixth.code == "harbor.velocity_review"
    assert hb.svc.holds.approve(hb.id, sixth.txn_id, SUPERVISOR).status == "posted"
    assert hb.posted("vic") == minor("440.00")
    assert hb.actions(sixth.txn_id) == ["txn.held", "txn.approved"]
    check_ledger(hb.svc, hb.id)


# ---------------------------------------------------------------------------
# Expiry and rejection release
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("inst, hours", [(NORTHWIND, 72), (HARBOR, 48)])
def test_expiry_at_exactly_hold_expiry_hours_releases_and_it_can_never_be_approved(
        banks: dict[str, Bank], inst: str, hours: int) -> None:
    bank = banks[inst]
    txn = nw_hold(bank) if inst == NORTHWIND else hb_hold(bank)
    payer = "ann" if inst == NORTHWIND else "fay"
    before = bank.balance(payer)
    assert before.debits_pending > 0
    decided = decided_at(bank, txn)

    assert bank.svc.holds.expire(inst, SWEEPER, now=decided + timedelta(hours=hours, microseconds=-1)) == []
    assert bank.svc.txn(inst, txn)["status"] == "held"
    assert bank.svc.holds.expire(inst, SWEEPER, now=decided + timedelta(hours=hours)) == [txn]
    view = bank.svc.txn(inst, txn)
    assert (view["status"], view["resolved_by"]) == ("expired", SWEEPER)
    assert f"older than {hours} hours" in view["resolution"]
    after = bank.balance(payer)
    assert (after.posted, after.available, after.debits_pending) == (before.posted, before.posted, 0)
    assert bank.internal("fee_income").credits_pending == 0

    # Never approvable afterwards, whatever clock the approver claims.
    for now in (None, decided, decided + timedelta(hours=1)):
        with pytest.raises(Conflict, match="expired, not held"):
            bank.svc.holds.approve(inst, txn, SUPERVISOR, now=now)
    with pytest.raises(Conflict):
        bank.svc.holds.reject(inst, txn, SUPERVISOR, "too late")
    assert bank.svc.holds.expire(inst, SWEEPER, now=decided + timedelta(hours=hours * 2)) == []
    assert bank.balance(payer).posted == before.posted
    assert bank.actions(txn) == ["txn.held", "txn.expired"]
    assert bank.svc.audit_verify(inst).ok
    check_ledger(bank.svc, inst)


def test_approving_a_hold_past_its_expiry_releases_it_instead(nw: Bank) -> None:
    txn = nw_hold(nw)
    late = decided_at(nw, txn) + timedelta(hours=72)
    with pytest.raises(Refused, match="had expired"):
        nw.svc.holds.approve(nw.id, txn, SUPERVISOR, now=late)
    assert nw.svc.txn(nw.id, txn)["status"] == "expired"
    assert nw.balance("ann").available == minor("6000.00")
    assert nw.balance("bob").posted == 0
    with pytest.raises(Conflict):
        nw.svc.holds.approve(nw.id, txn, SUPERVISOR)
    entries = nw.svc.audit_log(nw.id, subject=txn, limit=None)
    assert [(e.action, e.actor) for e in entries] == [("txn.held", TELLER), ("txn.expired", SUPERVISOR)]


def test_rejecting_a_hold_releases_funds_and_usage(hb: Bank) -> None:
    """A held transaction counts toward the month's outgoing total while it
    is held; once rejected it no longer does."""
    hb.open("ida", "checking-plus")
    hb.open("joe")
    for d in (1, 2, 3):
        hb.deposit("ida", "9000.00", hb.local(2026, 6, d, 8))
    assert hb.submit("transfer", "9000.00", src="ida", dst="joe", at=hb.local(2026, 6, 4)).status == "posted"
    assert hb.submit("transfer", "9000.00", src="ida", dst="joe", at=hb.local(2026, 6, 5)).status == "posted"
    t0 = hb.local(2026, 6, 15, 10)
    for n in range(5):
        assert hb.submit("withdrawal", "10.00", src="ida", at=t0 + timedelta(minutes=10 * n)).status == "posted"
    held = hb.submit("withdrawal", "1950.00", src="ida", at=t0 + timedelta(minutes=50))
    assert held.status == "held" and held.code == "harbor.velocity_review"
    assert hb.available("ida") == minor("27000.00") - minor("18050.00") - minor("1950.00")
    # 18,050.00 posted + 1,950.00 held = 20,000.00: one more cent is over.
    over = hb.submit("transfer", "0.01", src="ida", dst="joe", at=t0 + timedelta(hours=3))
    assert over.status == "rejected" and over.code == "harbor.monthly_outgoing"
    assert reason(over, "harbor.monthly_outgoing")["observed"] == "20000.01 USD"

    with pytest.raises(InvalidRequest, match="reason is required"):
        hb.svc.holds.reject(hb.id, held.txn_id, SUPERVISOR, "  ")
    outcome = hb.svc.holds.reject(hb.id, held.txn_id, SUPERVISOR, "customer did not confirm")
    assert outcome.status == "rejected"
    view = hb.svc.txn(hb.id, held.txn_id)
    assert (view["status"], view["resolved_by"], view["resolution"]) == (
        "rejected", SUPERVISOR, "customer did not confirm")
    assert hb.available("ida") == hb.posted("ida") == minor("27000.00") - minor("18050.00")
    again = hb.submit("transfer", "0.01", src="ida", dst="joe", at=t0 + timedelta(hours=3, minutes=1))
    assert again.status == "posted"
    assert reason(again, "harbor.monthly_outgoing")["observed"] == "18050.01 USD"
    with pytest.raises(Conflict):
        hb.svc.holds.approve(hb.id, held.txn_id, SUPERVISOR)
    entries = hb.svc.audit_log(hb.id, subject=held.txn_id, limit=None)
    assert [e.action for e in entries] == ["txn.held", "txn.rejected"]
    assert entries[-1].payload == {"reason": "customer did not confirm"}
    check_ledger(hb.svc, hb.id)


# ---------------------------------------------------------------------------
# Approval re-checks the profile as it is at that moment
# ---------------------------------------------------------------------------

def test_northwind_approval_rechecks_limits_of_the_current_profile_version(svc: BankService, nw: Bank) -> None:
    txn = nw_hold(nw)
    _, v2 = svc.apply_profile(changed_profile(NORTHWIND, "limit", "northwind.single_transaction",
                                              max="4999.99"), "risk-officer")
    assert v2 == 2
    with pytest.raises(Refused) as refused:
        svc.holds.approve(nw.id, txn, SUPERVISOR)
    assert "northwind.single_transaction" in str(refused.value)
    assert "5000.00 USD is over the single-transaction limit 4999.99 USD" in str(refused.value)
    assert svc.txn(nw.id, txn)["status"] == "held"
    assert (nw.posted("ann"), nw.available("ann"), nw.posted("bob")) == (600000, 97500, 0)
    last = svc.audit_log(nw.id, subject=txn, limit=None)[-1]
    assert (last.action, last.actor) == ("txn.approval_refused", SUPERVISOR)
    failed = [r for r in last.payload["reasons"] if r["outcome"] == "fail"]
    assert [(r["rule"], r["threshold"], r["observed"]) for r in failed] == [
        ("northwind.single_transaction", "4999.99 USD", "5000.00 USD")]

    # Version 3 puts the shipped limit back: the same hold now approves.
    assert svc.apply_profile(shipped_profile(NORTHWIND), "risk-officer")[1] == 3
    assert svc.holds.approve(nw.id, txn, SUPERVISOR).status == "posted"
    assert (nw.posted("ann"), nw.posted("bob"), nw.fee_income()) == (97500, 500000, 2500)
    assert svc.txn(nw.id, txn)["profile_version"] == 1  # the version that decided to hold it
    assert nw.actions(txn) == ["txn.held", "txn.approval_refused", "txn.approved"]
    check_ledger(svc, nw.id)


def test_harbor_hold_cannot_be_approved_into_an_overdraft_the_institution_now_forbids(
        svc: BankService, hb: Bank) -> None:
    """Placed within checking-plus's 500.00 allowance (600.00 - 1,000.01 -
    15.00 fee = -415.01); by approval time Harbor allows less. One cent short
    is refused, exactly at the new floor posts."""
    txn = hb_hold(hb, funds="600.00", product="checking-plus")
    held = svc.txn(hb.id, txn)
    assert held["fee_total"] == "15.00"
    assert (hb.posted("fay"), hb.available("fay")) == (60000, -41501)

    products = {"checking-plus": "415.00"}
    assert svc.apply_profile(changed_profile(HARBOR, "limit", "harbor.overdraft_limit",
                                             products=products), "risk-officer")[1] == 2
    with pytest.raises(Refused) as refused:
        svc.holds.approve(hb.id, txn, SUPERVISOR)
    assert "harbor.overdraft_limit" in str(refused.value)
    assert svc.txn(hb.id, txn)["status"] == "held"
    assert (hb.posted("fay"), hb.available("fay"), hb.fee_income()) == (60000, -41501, 0)
    last = svc.audit_log(hb.id, subject=txn, limit=None)[-1]
    assert last.action == "txn.approval_refused"
    r = reason({"reasons": last.payload["reasons"]}, "harbor.overdraft_limit")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("fail", "-415.00 USD", "-415.01 USD")

    products = {"checking-plus": "415.01"}
    assert svc.apply_profile(changed_profile(HARBOR, "limit", "harbor.overdraft_limit",
                                             products=products), "risk-officer")[1] == 3
    outcome = svc.holds.approve(hb.id, txn, SUPERVISOR)
    assert outcome.status == "posted"
    r = reason({"reasons": outcome.reasons}, "harbor.overdraft_limit")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("pass", "-415.01 USD", "-415.01 USD")
    assert (hb.posted("fay"), hb.available("fay"), hb.fee_income()) == (-41501, -41501, 1500)
    assert hb.actions(txn) == ["txn.held", "txn.approval_refused", "txn.approved"]
    check_ledger(svc, hb.id, no_overdraft=False)


def test_northwind_reservation_cannot_be_drained_before_approval(nw: Bank) -> None:
    """Under Northwind's profile a hold can never be approved into an
    overdraft: its funds are reserved, and every other debit (a withdrawal,
    a transfer, a reversal of the deposit that funded it) is checked against
    the available balance, which already excludes the hold."""
    nw.open("ann")
    nw.open("bob")
    day = nw.local(2026, 6, 3, 9)
    first = nw.deposit("ann", "3000.00", day)
    second = nw.deposit("ann", "3000.00", day + timedelta(minutes=1))
    held = nw.submit("transfer", "5000.00", src="ann", dst="bob", at=day + timedelta(hours=1))
    assert held.status == "held"
    assert nw.available("ann") == 97500

    with pytest.raises(Refused, match="would overdraw|cannot reverse"):
        nw.svc.holds.reverse(nw.id, second.txn_id, SUPERVISOR)
    assert nw.svc.txn(nw.id, second.txn_id)["status"] == "posted"
    assert nw.svc.txn(nw.id, first.txn_id)["status"] == "posted"
    over = nw.submit("withdrawal", "975.01", src="ann", at=day + timedelta(hours=2))
    assert over.code == "core.no_overdraft"
    # Spend what is free: 950.00 + 4.75 fee leaves 20.25 available.
    spent = nw.submit("transfer", "950.00", src="ann", dst="bob", at=day + timedelta(hours=3))
    assert spent.status == "posted" and spent.fee_total == "4.75"
    assert nw.available("ann") == 2025

    outcome = nw.svc.holds.approve(nw.id, held.txn_id, SUPERVISOR)
    assert outcome.status == "posted"
    r = reason({"reasons": outcome.reasons}, "core.no_overdraft")
    # Re-checked as if the hold had reserved nothing: 5,045.25 covers 5,025.00.
    assert (r["outcome"], r["threshold"], r["observed"]) == ("pass", "5025.00 USD", "5045.25 USD")
    assert (nw.posted("ann"), nw.available("ann")) == (2025, 2025)
    assert nw.fee_income() == 2500 + 475
    check_ledger(nw.svc, nw.id)


@pytest.mark.parametrize("frozen", ["ann", "bob"])
def test_hold_cannot_be_approved_while_an_account_it_touches_is_frozen(nw: Bank, frozen: str) -> None:
    txn = nw_hold(nw)
    account = nw.accounts[frozen]
    nw.svc.set_account_status(nw.id, account, "frozen", TELLER)
    with pytest.raises(Refused) as refused:
        nw.svc.holds.approve(nw.id, txn, SUPERVISOR)
    assert f"core.frozen_reject: account {account} is frozen" in str(refused.value)
    assert nw.svc.txn(nw.id, txn)["status"] == "held"
    assert (nw.posted("ann"), nw.available("ann"), nw.posted("bob")) == (600000, 97500, 0)
    last = nw.svc.audit_log(nw.id, subject=txn, limit=None)[-1]
    assert last.action == "txn.approval_refused"
    assert reason({"reasons": last.payload["reasons"]}, "core.frozen_reject")["outcome"] == "reject"

    nw.svc.set_account_status(nw.id, account, "open", TELLER)
    assert nw.svc.holds.approve(nw.id, txn, SUPERVISOR).status == "posted"
    assert (nw.posted("ann"), nw.posted("bob")) == (97500, 500000)
    assert nw.actions(txn) == ["txn.held", "txn.approval_refused", "txn.approved"]
    check_ledger(nw.svc, nw.id)
