"""Idempotency keys: a replay returns the first result and writes nothing; the
same key with a different body is a conflict; keys are per institution."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bank_core.errors import Conflict, InvalidRequest
from bank_core.messages import TxnRequest, TxnResult
from bank_core.service import BankService
from bank_test_support import check_ledger, counts, deposit
from conftest import profile_doc


@pytest.fixture
def accounts(service: BankService, inst: str) -> tuple[str, str]:
    a = service.open_account(inst, holder="Ann")
    b = service.open_account(inst, holder="Bob")
    deposit(service, inst, a.id, 10_000, "seed")
    return a.id, b.id


@pytest.mark.parametrize("amount", ["25.00", "900.00"], ids=["posted", "rejected"])
def test_replay_returns_identical_result_and_writes_nothing(service: BankService, inst: str,
                                                            accounts: tuple[str, str],
                                                            amount: str) -> None:
    a, b = accounts
    request = TxnRequest(inst, "pay-1", "transfer", amount, source=a, dest=b, memo="rent")
    first = service.submit(request)
    assert first.status == ("posted" if amount == "25.00" else "rejected")
    # Another transaction in between changes the balances the result reported.
    deposit(service, inst, a, 1_000, "between")
    before = counts(service, inst)
    ledger_before = check_ledger(service, inst)

    again = service.submit(request)
    assert again == first
    assert again.model_dump() == first.model_dump()
    assert counts(service, inst) == before  # no txn, posting, audit entry or usage
    assert check_ledger(service, inst).posted == ledger_before.posted


def test_replay_from_another_client_and_with_equal_amount_text(make_service, service: BankService,  # type: ignore[no-untyped-def]
                                                               inst: str,
                                                               accounts: tuple[str, str]) -> None:
    a, b = accounts
    first = service.submit(TxnRequest(inst, "pay-2", "transfer", "25.00", source=a, dest=b))
    before = counts(service, inst)
    other = make_service()
    # "25" and "25.00" are the same amount: the same body, so a replay.
    again = other.submit(TxnRequest(inst, "pay-2", "transfer", "25", source=a, dest=b))
    assert again == first
    assert counts(service, inst) == before


def test_replay_of_a_held_transaction_returns_the_held_result(service: BankService, inst: str,
                                                              accounts: tuple[str, str]) -> None:
    a, b = accounts
    service.apply_profile(profile_doc(inst, approval=[
        {"driver": "testkit.review_above", "params": {"threshold": "50.00"}}]), "ops")
    request = TxnRequest(inst, "big", "transfer", "60.00", source=a, dest=b)
    first = service.submit(request)
    assert first.status == "held"
    before = counts(service, inst)
    assert service.submit(request) == first
    assert counts(service, inst) == before
    # Still the first result after the hold was approved (the txn view moves on).
    service.holds.approve(inst, first.txn_id, "checker")
    assert service.submit(request) == first
    assert service.txn(inst, first.txn_id)["status"] == "posted"


@pytest.mark.parametrize("change", [
    {"amount": "25.01"},
    {"dest": "other"},
    {"memo": "something else"},
    {"channel": "atm"},
    {"kind": "withdrawal", "dest": None},
    {"at": "now"},  # replaced by the time of the test (inside the profile's window)
], ids=["amount", "dest", "memo", "channel", "kind", "at"])
def test_key_reuse_with_a_different_body_is_a_conflict(service: BankService, inst: str,
                                                       accounts: tuple[str, str],
                                                       change: dict[str, object]) -> None:
    a, b = accounts
    c = service.open_account(inst, holder="Cy").id
    fields = {"institution": inst, "ref": "pay-3", "kind": "transfer", "amount": "25.00",
              "source": a, "dest": b}
    first = service.submit(TxnRequest(**fields))  # type: ignore[arg-type]
    before = counts(service, inst)
    replace = {"other": c, "now": datetime.now(timezone.utc)}
    changed = {**fields, **{k: replace.get(v, v) if isinstance(v, str) else v for k, v in change.items()}}
    with pytest.raises(Conflict, match="pay-3"):
        service.submit(TxnRequest(**changed))  # type: ignore[arg-type]
    assert counts(service, inst) == before
    assert service.submit(TxnRequest(**fields)) == first  # type: ignore[arg-type]


def test_the_actor_is_not_part_of_the_body(service: BankService, inst: str,
                                           accounts: tuple[str, str]) -> None:
    a, b = accounts
    first = service.submit(TxnRequest(inst, "pay-4", "transfer", "1.00", source=a, dest=b, actor="ann"))
    assert service.submit(TxnRequest(inst, "pay-4", "transfer", "1.00", source=a, dest=b,
                                     actor="retry-bot")) == first


def test_batch_with_the_same_key_twice(service: BankService, inst: str,
                                       accounts: tuple[str, str]) -> None:
    a, b = accounts
    request = TxnRequest(inst, "batch-1", "transfer", "30.00", source=a, dest=b)
    before = counts(service, inst)
    outcomes = list(service.submit_batch(inst, [request, request]))
    assert [o.error for o in outcomes] == [None, None]
    first = TxnResult.model_validate(outcomes[0].result)
    assert first.status == "posted"
    assert TxnResult.model_validate(outcomes[1].result) == first
    after = counts(service, inst)
    assert after["txn"] == before["txn"] + 1
    assert after["posting"] == before["posting"] + 2
    assert after["audit_entry"] == before["audit_entry"] + 1
    assert check_ledger(service, inst).posted[b] == 3_000

    # The same key again in later batches (one row per chunk) and alone: replays.
    again = list(service.submit_batch(inst, [request, request], chunk_size=1))
    assert [TxnResult.model_validate(o.result) for o in again] == [first, first]
    assert service.submit(request) == first
    assert counts(service, inst) == after


def test_batch_key_reuse_with_another_body_fails_only_that_item(service: BankService, inst: str,
                                                                accounts: tuple[str, str]) -> None:
    a, b = accounts
    before = counts(service, inst)
    outcomes = list(service.submit_batch(inst, [
        TxnRequest(inst, "batch-2", "transfer", "30.00", source=a, dest=b),
        TxnRequest(inst, "batch-2", "transfer", "31.00", source=a, dest=b),
        TxnRequest(inst, "batch-3", "deposit", "1.00", dest=b),
        TxnRequest(inst, "batch-4", "deposit", "1.005", dest=b),
    ]))
    assert outcomes[0].result is not None and outcomes[0].result["status"] == "posted"
    assert isinstance(outcomes[1].error, Conflict) and outcomes[1].result is None
    assert outcomes[2].result is not None and outcomes[2].result["status"] == "posted"
    assert isinstance(outcomes[3].error, InvalidRequest) and "1.005" in str(outcomes[3].error)
    assert counts(service, inst)["txn"] == before["txn"] + 2
    assert check_ledger(service, inst).posted[b] == 3_100
    # A single submit with the reused key and the other body is a conflict too.
    with pytest.raises(Conflict):
        service.submit(TxnRequest(inst, "batch-2", "transfer", "31.00", source=a, dest=b))


def test_keys_are_per_institution(service: BankService, inst: str,
                                  accounts: tuple[str, str]) -> None:
    a, _ = accounts
    other = f"{inst}-b"
    service.apply_profile(profile_doc(other), "ops")
    x = service.open_account(other, holder="Xavier").id
    mine = service.submit(TxnRequest(inst, "same-ref", "deposit", "1.00", dest=a))
    theirs = service.submit(TxnRequest(other, "same-ref", "deposit", "2.00", dest=x))
    assert mine.status == theirs.status == "posted"
    assert mine.txn_id != theirs.txn_id
    assert check_ledger(service, other).posted[x] == 200


def test_batch_row_of_another_institution_is_invalid(sqlite_url: str) -> None:
    from bank_wiring import build
    from bank_core.errors import InvalidRequest
    from bank_core.messages import TxnRequest
    from bank_core.profile import DEFAULT_PROFILE

    svc = build(sqlite_url)
    svc.apply_profile(DEFAULT_PROFILE, "ops")
    acc = svc.open_account("default", holder="A").id
    items = list(svc.submit_batch("default", [
        TxnRequest("default", "x1", "deposit", "1.00", dest=acc),
        TxnRequest("elsewhere", "x2", "deposit", "1.00", dest=acc)]))
    assert items[0].result is not None and items[0].result["status"] == "posted"
    assert isinstance(items[1].error, InvalidRequest) and "elsewhere" in str(items[1].error)
