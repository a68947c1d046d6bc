"""An account's statement, read without an index of postings by account
(revision 0014): a customer's postings are found through the transactions
it is the source or destination of, an institution's own accounts by
reading the postings. Both must list exactly the account's postings."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from bank_core.messages import TxnRequest, public_txn_id
from bank_core.money import format_minor
from bank_core.profile import DEFAULT_PROFILE
from bank_core.service import BankService, _postings_of
from bank_core.storage.models import Posting, Txn
from bank_test_support import check_ledger, deposit
from conftest import profile_doc

# Fees paid by the payer, holds above 500.00 (approved, rejected), reversals.
PROFILE = {
    "hold_expiry_hours": 24,
    "fee": [{"driver": "northwind.transfer_fee",
             "params": {"percent": "1", "min": "0.50", "max": "100.00", "kinds": ["withdrawal", "transfer"]}}],
    "approval": [*DEFAULT_PROFILE["approval"],
                 {"driver": "testkit.review_above",
                  "params": {"threshold": "500.00", "kinds": ["transfer", "withdrawal"]}}],
}


def every_posting(svc: BankService, inst: str, account: str) -> list[tuple[Any, ...]]:
    """The account's postings read the plain way: the institution's
    postings with that account, in order (what the index gave)."""
    with svc.engine.connect() as conn:
        return conn.execute(select(Posting.id, Posting.txn_id, Posting.rule, Posting.amount_minor,
                                   Posting.currency).where(Posting.institution_id == inst,
                                                           Posting.account_id == account)
                            .order_by(Posting.id)).all()


def as_lines(postings: list[tuple[Any, ...]]) -> list[tuple[str, str, str]]:
    return [(public_txn_id(p.txn_id), p.rule, format_minor(p.amount_minor, p.currency)) for p in postings]


@pytest.fixture
def busy(service: BankService, inst: str) -> tuple[BankService, str, list[str]]:
    """Three customers with every kind of posting a customer account gets:
    deposits, withdrawals and transfers both ways with fees paid by the
    payer, an approved hold, a rejected hold, a rejected transfer (no
    postings) and a reversal."""
    svc = service
    svc.apply_profile(profile_doc(inst, **PROFILE), "setup")
    a, b, c = (svc.open_account(inst, holder=h).id for h in ("Ann", "Bob", "Cy"))
    deposit(svc, inst, a, 200_000, "seed-a")
    deposit(svc, inst, b, 50_000, "seed-b")

    def submit(ref: str, kind: str, amount: str, **parties: str) -> Any:
        return svc.submit(TxnRequest(inst, ref, kind, amount, actor="ann", **parties))

    assert submit("t1", "transfer", "120.00", source=a, dest=b).status == "posted"
    assert submit("t2", "transfer", "30.00", source=b, dest=a).status == "posted"
    assert submit("w1", "withdrawal", "15.00", source=b).status == "posted"
    assert submit("t3", "transfer", "5000.00", source=c, dest=a).status == "rejected"  # Cy has nothing
    approved = submit("h1", "transfer", "600.00", source=a, dest=c)
    assert approved.status == "held"
    svc.holds.approve(inst, approved.txn_id, "checker")
    refused = submit("h2", "transfer", "700.00", source=a, dest=b)
    assert refused.status == "held"
    svc.holds.reject(inst, refused.txn_id, "checker", "suspicious")
    paid = submit("t4", "transfer", "40.00", source=c, dest=b)
    assert paid.status == "posted"
    svc.holds.reverse(inst, paid.txn_id, "ops", memo="sent in error")
    check_ledger(svc, inst)
    return svc, inst, [a, b, c]


def test_every_account_lists_exactly_its_postings(busy) -> None:  # type: ignore[no-untyped-def]
    svc, inst, customers = busy
    with svc.engine.connect() as conn:
        internal = list(conn.execute(select(Posting.account_id).distinct().where(
            Posting.institution_id == inst, Posting.account_id.notin_(customers))).scalars())
    assert len(internal) == 2  # cash and fee income
    for account in customers + internal:
        expected = every_posting(svc, inst, account)
        assert expected, account
        doc = svc.statement(inst, account, None, None)
        assert [(l["txn_id"], l["rule"], l["amount"]) for l in doc["lines"]] == as_lines(expected), account
        total = sum(p.amount_minor for p in expected)
        assert doc["closing"] == format_minor(total, "USD")
        if account in customers:
            assert svc.account(inst, account)[1].posted == total


def test_a_customers_statement_shows_fees_holds_and_reversals(busy) -> None:  # type: ignore[no-untyped-def]
    svc, inst, (a, b, c) = busy
    rules = [l["rule"] for l in svc.statement(inst, c, None, None)["lines"]]
    # Cy: the approved hold from Ann, its own transfer to Bob with its fee, the reversal of both lines
    assert rules == ["transfer", "transfer", "northwind.transfer_fee", "reversal", "reversal"]
    assert svc.statement(inst, c, None, None)["closing"] == "600.00"


def test_a_customers_statement_reads_its_transactions_not_every_posting(busy) -> None:  # type: ignore[no-untyped-def]
    svc, inst, (a, _b, _c) = busy
    if svc.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan (PostgreSQL chooses by its statistics)")
    with svc.engine.connect() as conn:
        record = svc.account_record(conn, inst, a)
        query = select(Posting.id).where(*_postings_of(inst, record))
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        plan = " | ".join(r[-1] for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_posting_txn_id" in plan and "SCAN posting" not in plan, plan
    assert "ix_txn_source_at" in plan and "ix_txn_dest_at" in plan, plan


def test_rejected_transactions_post_nothing_to_either_side(busy) -> None:  # type: ignore[no-untyped-def]
    svc, inst, (a, _b, c) = busy
    with svc.engine.connect() as conn:
        rejected = conn.execute(select(Txn.id).where(Txn.institution_id == inst, Txn.status == "rejected")).scalars().all()
    assert rejected
    shown = {l["txn_id"] for acc in (a, c) for l in svc.statement(inst, acc, None, None)["lines"]}
    assert not shown & {public_txn_id(t) for t in rejected}
