"""Each institution's accounts and transactions are invisible to every other
one: an id of institution B is NotFound for institution A everywhere, and
nothing of B changes."""

from __future__ import annotations

import pytest

from bank_core.errors import InvalidRequest, NotFound
from bank_core.messages import TxnRequest
from bank_core.service import BankService
from bank_test_support import check_ledger, counts, deposit
from conftest import profile_doc


@pytest.fixture
def two(service: BankService, inst: str):  # type: ignore[no-untyped-def]
    """Institution A (``inst``) and B, each with accounts, a posted transfer
    and a held one."""
    a_inst, b_inst = inst, f"{inst}-b"
    review = {"driver": "testkit.review_above", "params": {"threshold": "500.00"}}
    for i in (a_inst, b_inst):
        service.apply_profile(profile_doc(i, approval=[review]), "setup")
    a1 = service.open_account(a_inst, holder="Ann").id
    a2 = service.open_account(a_inst, holder="Al").id
    b1 = service.open_account(b_inst, holder="Bea").id
    b2 = service.open_account(b_inst, holder="Bo").id
    deposit(service, inst=a_inst, account=a1, minor=10_000, ref="seed")
    for ref in ("seed", "seed-2"):
        deposit(service, inst=b_inst, account=b1, minor=49_999, ref=ref)
    b_posted = service.submit(TxnRequest(b_inst, "pay", "transfer", "10.00", source=b1, dest=b2))
    b_held = service.submit(TxnRequest(b_inst, "big", "transfer", "600.00", source=b1, dest=b2,
                                       actor="bea"))
    assert (b_posted.status, b_held.status) == ("posted", "held")
    return service, a_inst, b_inst, (a1, a2), (b1, b2), b_posted.txn_id, b_held.txn_id


def snapshot_b(svc: BankService, b_inst: str):  # type: ignore[no-untyped-def]
    return counts(svc, b_inst), check_ledger(svc, b_inst).posted, svc.txns(b_inst)


def test_other_institutions_accounts_are_not_found_in_submit(two) -> None:  # type: ignore[no-untyped-def]
    svc, a_inst, b_inst, (a1, a2), (b1, b2), _, _ = two
    before_a, before_b = counts(svc, a_inst), snapshot_b(svc, b_inst)
    cases = [
        ("from", TxnRequest(a_inst, "x1", "transfer", "1.00", source=b1, dest=a1)),
        ("to", TxnRequest(a_inst, "x2", "transfer", "1.00", source=a1, dest=b1)),
        ("from", TxnRequest(a_inst, "x3", "transfer", "1.00", source=b1, dest=b2)),
        ("from", TxnRequest(a_inst, "x4", "withdrawal", "1.00", source=b1)),
        ("to", TxnRequest(a_inst, "x5", "deposit", "1.00", dest=b1)),
        # The internal accounts of B (and of A) are not customer accounts either.
        ("to", TxnRequest(a_inst, "x6", "deposit", "1.00", dest=f"{b_inst}.cash.USD")),
        ("from", TxnRequest(a_inst, "x7", "withdrawal", "1.00", source=f"{a_inst}.cash.USD")),
    ]
    for label, request in cases:
        with pytest.raises(NotFound, match=f"{label}: account"):
            svc.submit(request)
    outcomes = list(svc.submit_batch(a_inst, [r for _, r in cases]))
    assert all(isinstance(o.error, NotFound) for o in outcomes)
    # A row that names B inside A's batch cannot reach B's accounts either.
    (row,) = svc.submit_batch(a_inst, [TxnRequest(b_inst, "x8", "deposit", "1.00", dest=b1)])
    assert isinstance(row.error, (NotFound, InvalidRequest)) and row.result is None
    assert counts(svc, a_inst) == before_a
    assert snapshot_b(svc, b_inst) == before_b


def test_other_institutions_accounts_are_not_found_in_account_views(two) -> None:  # type: ignore[no-untyped-def]
    svc, a_inst, b_inst, (a1, _), (b1, _), _, _ = two
    before_b = snapshot_b(svc, b_inst)
    with pytest.raises(NotFound):
        svc.account(a_inst, b1)
    for status in ("frozen", "closed", "open"):
        with pytest.raises(NotFound):
            svc.set_account_status(a_inst, b1, status, "ops")
    with pytest.raises(NotFound):
        svc.txns(a_inst, account=b1)
    assert b1 not in {r.id for r, _ in svc.list_accounts(a_inst, include_internal=True)}
    assert svc.account(b_inst, b1)[0].status == "open"
    assert svc.account(a_inst, a1)[0].institution_id == a_inst
    assert snapshot_b(svc, b_inst) == before_b


def test_other_institutions_transactions_are_not_found(two) -> None:  # type: ignore[no-untyped-def]
    svc, a_inst, b_inst, _, _, b_posted, b_held = two
    before_b = snapshot_b(svc, b_inst)
    for txn in (b_posted, b_held):
        with pytest.raises(NotFound):
            svc.txn(a_inst, txn)
    with pytest.raises(NotFound):
        svc.holds.approve(a_inst, b_held, "checker")
    with pytest.raises(NotFound):
        svc.holds.reject(a_inst, b_held, "checker", "not yours")
    with pytest.raises(NotFound):
        svc.holds.reverse(a_inst, b_posted, "checker")
    assert svc.holds.expire(a_inst, "sweeper") == []
    assert {t["txn_id"] for t in svc.txns(a_inst)}.isdisjoint({b_posted, b_held})
    assert all(e.subject not in (b_posted, b_held) for e in svc.audit_log(a_inst, limit=None))
    assert snapshot_b(svc, b_inst) == before_b
    # B itself can still act on them.
    assert svc.holds.approve(b_inst, b_held, "checker").status == "posted"
    assert svc.holds.reverse(b_inst, b_posted, "checker")["status"] == "posted"
    check_ledger(svc, b_inst)


def test_unknown_institution_is_not_found(service: BankService) -> None:
    with pytest.raises(NotFound):
        service.submit(TxnRequest("nobody", "r", "deposit", "1.00", dest="acc_x"))
    with pytest.raises(NotFound):
        service.open_account("nobody", holder="Ann")
    with pytest.raises(NotFound):
        service.audit_verify("nobody")
