"""Holds (two-phase transfers) and reversals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bank_core.errors import Conflict, InvalidRequest, NotFound, Refused
from bank_core.messages import TxnRequest, utc_now
from bank_core.profile import DEFAULT_PROFILE
from bank_core.service import BankService
from bank_test_support import check_ledger, counts, deposit
from conftest import profile_doc

REVIEW_PROFILE = {
    "hold_expiry_hours": 24,
    "approval": [*DEFAULT_PROFILE["approval"],
                 {"driver": "testkit.review_above",
                  "params": {"threshold": "500.00", "kinds": ["transfer", "withdrawal"]}}],
}


@pytest.fixture
def bank(service: BankService, inst: str) -> tuple[BankService, str, str, str]:
    """An institution that holds transfers of 500.00 or more; Ann has 1,000.00."""
    service.apply_profile(profile_doc(inst, **REVIEW_PROFILE), "setup")
    a = service.open_account(inst, holder="Ann")
    b = service.open_account(inst, holder="Bob")
    deposit(service, inst, a.id, 100_000, "seed")
    return service, inst, a.id, b.id


def balance(svc: BankService, inst: str, acc: str) -> tuple[int, int, int]:
    """(posted, available, held_out) in minor units."""
    _, row = svc.account(inst, acc)
    return row.posted, row.available, row.debits_pending


def hold(svc: BankService, inst: str, a: str, b: str, amount: str = "600.00",
         ref: str = "big", actor: str = "ann") -> str:
    result = svc.submit(TxnRequest(inst, ref, "transfer", amount, source=a, dest=b, actor=actor))
    assert result.status == "held" and result.code == "testkit.review_above"
    return result.txn_id


def test_hold_reduces_available_not_posted(bank) -> None:  # type: ignore[no-untyped-def]
    svc, inst, a, b = bank
    before = counts(svc, inst)
    txn = hold(svc, inst, a, b)
    assert balance(svc, inst, a) == (100_000, 40_000, 60_000)
    assert balance(svc, inst, b) == (0, 0, 0)
    _, row_b = svc.account(inst, b)
    assert row_b.credits_pending == 60_000  # incoming, not yet available
    assert counts(svc, inst)["posting"] == before["posting"]
    assert svc.txn(inst, txn)["status"] == "held"
    # The reservation is real: Ann cannot spend the held funds.
    spend = svc.submit(TxnRequest(inst, "spend", "withdrawal", "400.01", source=a))
    assert spend.status == "rejected" and spend.code == "core.no_overdraft"
    check_ledger(svc, inst)


def test_approve_by_another_actor_posts(bank) -> None:  # type: ignore[no-untyped-def]
    svc, inst, a, b = bank
    txn = hold(svc, inst, a, b)
    outcome = svc.holds.approve(inst, txn, "checker")
    assert outcome.status == "posted"
    assert balance(svc, inst, a) == (40_000, 40_000, 0)
    assert balance(svc, inst, b) == (60_000, 60_000, 0)
    view = svc.txn(inst, txn)
    assert view["status"] == "posted" and view["resolved_by"] == "checker"
    entries = svc.audit_log(inst, subject=txn)
    assert [e.action for e in entries] == ["txn.held", "txn.approved"]
    assert entries[-1].actor == "checker" and entries[-1].payload["initiator"] == "ann"
    check_ledger(svc, inst)
    with pytest.raises(Conflict):
        svc.holds.approve(inst, txn, "checker")  # no longer held


def test_same_actor_cannot_approve(bank) -> None:  # type: ignore[no-untyped-def]
    svc, inst, a, b = bank
    txn = hold(svc, inst, a, b, actor="ann")
    with pytest.raises(Refused, match="four-eyes"):
        svc.holds.approve(inst, txn, "ann")
    assert svc.txn(inst, txn)["status"] == "held"
    assert balance(svc, inst, a) == (100_000, 40_000, 60_000)


def test_reject_releases(bank) -> None:  # type: ignore[no-untyped-def]
    svc, inst, a, b = bank
    txn = hold(svc, inst, a, b)
    with pytest.raises(InvalidRequest, match="reason"):
        svc.holds.reject(inst, txn, "checker", "  ")
    outcome = svc.holds.reject(inst, txn, "checker", "suspicious")
    assert outcome.status == "rejected"
    assert balance(svc, inst, a) == (100_000, 100_000, 0)
    _, row_b = svc.account(inst, b)
    assert (row_b.posted, row_b.credits_pending) == (0, 0)
    view = svc.txn(inst, txn)
    assert view["status"] == "rejected" and view["fee_total"] == "0.00" and view["resolution"] == "suspicious"
    with pytest.raises(Conflict):
        svc.holds.approve(inst, txn, "checker")
    with pytest.raises(Conflict):
        svc.holds.reverse(inst, txn, "checker")
    # Released usage no longer counts: the whole balance can move again.
    assert svc.submit(TxnRequest(inst, "all", "transfer", "400.00", source=a, dest=b)).status == "posted"
    check_ledger(svc, inst)


def test_expire_releases_and_hold_cannot_be_approved_after(bank) -> None:  # type: ignore[no-untyped-def]
    svc, inst, a, b = bank
    txn = hold(svc, inst, a, b, amount="500.00")
    other = hold(svc, inst, a, b, amount="500.00", ref="big-2")
    assert balance(svc, inst, a) == (100_000, 0, 100_000)
    now = utc_now()
    # Not yet: 23 hours is inside the 24-hour expiry.
    assert svc.holds.expire(inst, "sweeper", now=now + timedelta(hours=23)) == []
    assert svc.txn(inst, txn)["status"] == "held"
    expired = svc.holds.expire(inst, "sweeper", now=now + timedelta(hours=25))
    assert sorted(expired) == sorted([txn, other])
    assert balance(svc, inst, a) == (100_000, 100_000, 0)
    for t in (txn, other):
        view = svc.txn(inst, t)
        assert view["status"] == "expired" and view["resolved_by"] == "sweeper"
    with pytest.raises(Conflict):
        svc.holds.approve(inst, txn, "checker")
    assert svc.holds.expire(inst, "sweeper", now=now + timedelta(hours=48)) == []
    check_ledger(svc, inst)


def test_expiry_compares_instants_whatever_the_timezone_of_now(bank) -> None:  # type: ignore[no-untyped-def]
    """``now`` may be given in any timezone: 25 hours later is 25 hours later
    (SQLite stores naive UTC text, so a non-UTC ``now`` must be converted)."""
    from datetime import timezone

    svc, inst, a, b = bank
    txn = hold(svc, inst, a, b)
    pacific = timezone(timedelta(hours=-8))
    assert svc.holds.expire(inst, "sweeper", now=(utc_now() + timedelta(hours=23)).astimezone(pacific)) == []
    tokyo = timezone(timedelta(hours=9))
    assert svc.holds.expire(inst, "sweeper", now=(utc_now() + timedelta(hours=23)).astimezone(tokyo)) == []
    later = (utc_now() + timedelta(hours=25)).astimezone(pacific)
    assert svc.holds.expire(inst, "sweeper", now=later) == [txn]
    assert svc.txn(inst, txn)["resolved_at"] == later.astimezone(timezone.utc).isoformat()


def test_approving_an_expired_hold_releases_it_instead(bank) -> None:  # type: ignore[no-untyped-def]
    svc, inst, a, b = bank
    txn = hold(svc, inst, a, b)
    with pytest.raises(Refused, match="expired"):
        svc.holds.approve(inst, txn, "checker", now=utc_now() + timedelta(hours=25))
    assert svc.txn(inst, txn)["status"] == "expired"
    assert balance(svc, inst, a) == (100_000, 100_000, 0)
    check_ledger(svc, inst)


def test_approve_rechecks_limits_and_refuses_when_balance_no_longer_covers(
        service: BankService, inst: str) -> None:
    """A hold placed under a profile without no-overdraft; by approval time
    the profile has it, and the balance does not cover the hold: refused,
    still held. Once the balance covers it, approval posts."""
    review = {"driver": "testkit.review_above", "params": {"threshold": "500.00"}}
    service.apply_profile(profile_doc(inst, limit=[], approval=[review]), "setup")
    a = service.open_account(inst, holder="Ann").id
    b = service.open_account(inst, holder="Bob").id
    deposit(service, inst, a, 10_000, "seed")
    txn = hold(service, inst, a, b, amount="600.00")
    assert balance(service, inst, a) == (10_000, -50_000, 60_000)

    service.apply_profile(profile_doc(inst, approval=[review]), "ops")  # no-overdraft again
    before = counts(service, inst)
    with pytest.raises(Refused, match="core.no_overdraft"):
        service.holds.approve(inst, txn, "checker")
    assert service.txn(inst, txn)["status"] == "held"
    assert balance(service, inst, a) == (10_000, -50_000, 60_000)
    assert counts(service, inst)["posting"] == before["posting"]
    assert service.audit_log(inst, subject=txn)[-1].action == "txn.approval_refused"

    # A deposit into the overdrawn account is accepted even though it does
    # not cure the overdraft (money coming in never makes it worse) ...
    assert service.submit(TxnRequest(inst, "top-up", "deposit", "499.99", dest=a)).status == "posted"
    # ... but 499.99 is just short of covering the hold; one cent more covers it.
    with pytest.raises(Refused):
        service.holds.approve(inst, txn, "checker")
    assert service.submit(TxnRequest(inst, "top-up-2", "deposit", "0.01", dest=a)).status == "posted"
    assert service.holds.approve(inst, txn, "checker").status == "posted"
    assert balance(service, inst, a) == (0, 0, 0)
    assert balance(service, inst, b) == (60_000, 60_000, 0)
    check_ledger(service, inst)


def test_reversal_posts_opposite_lines_and_twice_is_conflict(service: BankService, inst: str) -> None:
    service.apply_profile(profile_doc(inst, fee=[{"driver": "testkit.flat_fee",
                                                  "params": {"amount": "1.50"}}]), "setup")
    a = service.open_account(inst, holder="Ann").id
    b = service.open_account(inst, holder="Bob").id
    deposit(service, inst, a, 10_000, "seed")
    paid = service.submit(TxnRequest(inst, "pay", "transfer", "40.00", source=a, dest=b))
    assert paid.status == "posted" and paid.fee_total == "1.50"
    assert balance(service, inst, a)[0] == 10_000 - 4_000 - 150

    reversal = service.holds.reverse(inst, paid.txn_id, "ops", memo="sent in error")
    assert reversal["reverses"] == paid.txn_id and reversal["status"] == "posted"
    assert balance(service, inst, a) == (10_000, 10_000, 0)
    assert balance(service, inst, b) == (0, 0, 0)

    from sqlalchemy import text

    from bank_core.messages import parse_txn_id
    with service.engine.connect() as conn:
        original = conn.execute(text("SELECT account_id, amount_minor FROM posting WHERE txn_id = :t"),
                                {"t": parse_txn_id(paid.txn_id)}).all()
        opposite = conn.execute(text("SELECT account_id, amount_minor FROM posting WHERE txn_id = :t"),
                                {"t": parse_txn_id(reversal["txn_id"])}).all()
    assert len(original) == 4  # principal and fee, two legs each
    assert sorted((acc, -amount) for acc, amount in original) == sorted(opposite)
    view = service.txn(inst, reversal["txn_id"])
    assert view["kind"] == "reversal" and view["reverses"] == paid.txn_id
    assert service.txn(inst, paid.txn_id)["status"] == "posted"  # the original is never edited

    before = counts(service, inst)
    with pytest.raises(Conflict, match="already reversed"):
        service.holds.reverse(inst, paid.txn_id, "ops")
    with pytest.raises(Conflict, match="itself a reversal"):
        service.holds.reverse(inst, reversal["txn_id"], "ops")
    assert counts(service, inst) == before
    check_ledger(service, inst)


def test_reversal_that_would_overdraw_is_refused(service: BankService, inst: str) -> None:
    a = service.open_account(inst, holder="Ann").id
    b = service.open_account(inst, holder="Bob").id
    dep = deposit(service, inst, a, 10_000, "seed")
    assert service.submit(TxnRequest(inst, "move", "transfer", "60.00", source=a, dest=b)).status == "posted"
    # The profile's own no-overdraft driver decides a reversal like any other transaction.
    with pytest.raises(Refused, match="core.no_overdraft"):
        service.holds.reverse(inst, dep.txn_id, "ops")
    assert balance(service, inst, a) == (4_000, 4_000, 0)
    check_ledger(service, inst)


def test_rejected_and_unknown_transactions_cannot_be_reversed(service: BankService, inst: str) -> None:
    a = service.open_account(inst, holder="Ann").id
    rejected = service.submit(TxnRequest(inst, "no", "withdrawal", "1.00", source=a))
    assert rejected.status == "rejected"
    with pytest.raises(Conflict):
        service.holds.reverse(inst, rejected.txn_id, "ops")
    with pytest.raises(NotFound):
        service.holds.reverse(inst, "txn_does_not_exist", "ops")
    with pytest.raises(NotFound):
        service.holds.approve(inst, "txn_does_not_exist", "ops")
