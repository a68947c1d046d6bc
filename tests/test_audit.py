"""The audit log is a hash chain per institution: verify() names the first
bad sequence number after an edit, a deletion (middle or tail) or a
reordering done behind the kernel's back with raw SQL. Each case runs on a
fresh database (SQLite file and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select, text

from bank_audit import AuditEntryRow, entry_hash
from bank_core.messages import TxnRequest
from bank_core.service import BankService
from bank_test_support import deposit
from bank_wiring import build
from conftest import profile_doc

Tamper = Callable[[BankService, str, int], int]  # returns the expected first bad seq


@pytest.fixture
def chain(fresh_db_url: str):  # type: ignore[no-untyped-def]
    """A fresh database with two institutions and a few entries each."""
    svc = build(fresh_db_url)
    for inst in ("alpha", "beta"):
        svc.apply_profile(profile_doc(inst), "setup")
        a = svc.open_account(inst, holder="Ann")
        b = svc.open_account(inst, holder="Bob")
        deposit(svc, inst, a.id, 10_000, "d1")
        svc.submit(TxnRequest(inst, "t1", "transfer", "10.00", source=a.id, dest=b.id))
        svc.set_account_status(inst, b.id, "frozen", "ops")
    yield svc
    svc.engine.dispose()


def last_seq(svc: BankService, inst: str) -> int:
    with svc.engine.connect() as conn:
        return conn.execute(text("SELECT MAX(seq) FROM audit_entry WHERE institution_id = :i"),
                            {"i": inst}).scalar_one()


def sql(svc: BankService, statement: str, **params: object) -> int:
    with svc.engine.begin() as conn:
        return conn.execute(text(statement), params).rowcount


def edit_payload(svc: BankService, inst: str, last: int) -> int:
    seq = 5
    assert sql(svc, "UPDATE audit_entry SET payload = :p WHERE institution_id = :i AND seq = :s",
               p='{"forged":true}', i=inst, s=seq) == 1
    return seq


def edit_actor(svc: BankService, inst: str, last: int) -> int:
    seq = last - 1
    assert sql(svc, "UPDATE audit_entry SET actor = 'mallory' WHERE institution_id = :i AND seq = :s",
               i=inst, s=seq) == 1
    return seq


def edit_and_rehash(svc: BankService, inst: str, last: int) -> int:
    """A forger who recomputes the edited entry's own hash breaks the link of
    the next entry."""
    seq = 4
    with svc.engine.begin() as conn:
        table = AuditEntryRow.__table__
        row = conn.execute(select(table).where(table.c.institution_id == inst,
                                               table.c.seq == seq)).one()  # typed `at`
        payload = '{"forged":true}'
        digest = entry_hash(inst, seq, row.at, row.actor, row.action, row.subject, payload,
                            row.prev_hash)
        conn.execute(text("UPDATE audit_entry SET payload = :p, hash = :h "
                          "WHERE institution_id = :i AND seq = :s"),
                     {"p": payload, "h": digest, "i": inst, "s": seq})
    return seq + 1


def delete_middle(svc: BankService, inst: str, last: int) -> int:
    seq = 6
    assert sql(svc, "DELETE FROM audit_entry WHERE institution_id = :i AND seq = :s", i=inst, s=seq) == 1
    return seq


def delete_first(svc: BankService, inst: str, last: int) -> int:
    assert sql(svc, "DELETE FROM audit_entry WHERE institution_id = :i AND seq = 1", i=inst) == 1
    return 1


def delete_last(svc: BankService, inst: str, last: int) -> int:
    assert sql(svc, "DELETE FROM audit_entry WHERE institution_id = :i AND seq = :s",
               i=inst, s=last) == 1
    return last


def delete_last_two(svc: BankService, inst: str, last: int) -> int:
    assert sql(svc, "DELETE FROM audit_entry WHERE institution_id = :i AND seq >= :s",
               i=inst, s=last - 1) == 2
    return last - 1


def swap(svc: BankService, inst: str, last: int) -> int:
    """Reorder: entries 3 and 6 trade sequence numbers."""
    low, high = 3, 6
    with svc.engine.begin() as conn:
        for old, new in ((low, -1), (high, low), (-1, high)):
            conn.execute(text("UPDATE audit_entry SET seq = :n WHERE institution_id = :i AND seq = :o"),
                         {"n": new, "o": old, "i": inst})
    return low


def swap_adjacent(svc: BankService, inst: str, last: int) -> int:
    low, high = last - 2, last - 1
    with svc.engine.begin() as conn:
        for old, new in ((low, -1), (high, low), (-1, high)):
            conn.execute(text("UPDATE audit_entry SET seq = :n WHERE institution_id = :i AND seq = :o"),
                         {"n": new, "o": old, "i": inst})
    return low


CASES = [edit_payload, edit_actor, edit_and_rehash, delete_middle, delete_first, delete_last,
         delete_last_two, swap, swap_adjacent]


def test_untouched_chain_verifies(chain: BankService) -> None:
    for inst in ("alpha", "beta"):
        verdict = chain.audit_verify(inst)
        assert verdict.ok and verdict.first_bad_seq is None
        assert verdict.entries == last_seq(chain, inst) >= 9
        entries = chain.audit_log(inst, limit=None)
        assert [e.seq for e in entries] == list(range(1, verdict.entries + 1))
        assert entries[0].prev_hash == "0" * 64
        assert all(e.prev_hash == p.hash for p, e in zip(entries, entries[1:], strict=False))


@pytest.mark.parametrize("tamper", CASES, ids=[c.__name__ for c in CASES])
def test_tampering_is_detected_at_the_right_entry(chain: BankService, tamper: Tamper) -> None:
    last = last_seq(chain, "alpha")
    expected = tamper(chain, "alpha", last)
    verdict = chain.audit_verify("alpha")
    assert not verdict.ok
    assert verdict.first_bad_seq == expected, verdict
    assert verdict.problem  # a human-readable reason
    # Chains are per institution: the other one still verifies.
    assert chain.audit_verify("beta").ok


def test_appends_after_verify_keep_the_chain_valid(chain: BankService) -> None:
    before = chain.audit_verify("alpha").entries
    (acc, _), *_ = chain.list_accounts("alpha")
    deposit(chain, "alpha", acc.id, 100, "d2")
    verdict = chain.audit_verify("alpha")
    assert verdict.ok and verdict.entries == before + 1
