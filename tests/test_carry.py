"""A file's chunks carry accounts and balances from one to the next
(``bank_core.chunk.Carry``) only while nobody else changed the institution.

Each test interleaves another client's write between two chunks of one
``submit_batch`` and checks that the later chunk decided on the database's
state, not on what the earlier chunk left in memory; and that a chunk whose
transaction failed and was retried is decided afresh.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bank_core.chunk import Carry
from bank_core.messages import TxnRequest
from bank_core.service import BankService
from bank_test_support import check_ledger, deposit


def _withdrawals(inst: str, account: str, prefix: str, n: int, amount: str) -> list[TxnRequest]:
    return [TxnRequest(inst, f"{prefix}-{i}", "withdrawal", amount, source=account) for i in range(n)]


def test_a_freeze_between_chunks_is_seen_by_the_next_chunk(service: BankService, inst: str) -> None:
    account = service.open_account(inst, holder="Ann").id
    deposit(service, inst, account, 100_000, "seed")
    batch = service.submit_batch(inst, iter(_withdrawals(inst, account, "w", 4, "1.00")), chunk_size=2)
    first = [next(batch), next(batch)]
    assert [o.status for o in first] == ["posted", "posted"]
    service.set_account_status(inst, account, "frozen", "ops")  # another client, between chunks
    rest = list(batch)
    assert [(o.status, o.code) for o in rest] == [("rejected", "core.frozen_reject")] * 2


def test_a_deposit_between_chunks_is_in_the_next_chunks_balance(service: BankService, inst: str) -> None:
    account = service.open_account(inst, holder="Ann").id
    deposit(service, inst, account, 300, "seed")  # 3.00
    batch = service.submit_batch(inst, iter(_withdrawals(inst, account, "w", 4, "1.50")), chunk_size=2)
    assert [next(batch).status, next(batch).status] == ["posted", "posted"]  # 0.00 left
    deposit(service, inst, account, 150, "between")  # another client tops it up
    rest = [o.status for o in batch]
    assert rest == ["posted", "rejected"]  # the carried balance (0.00) would reject both
    state = check_ledger(service, inst)
    assert state.posted[account] == 0


def test_a_retried_chunk_is_decided_on_the_database_not_on_its_own_first_attempt(
        service: BankService, inst: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bank_core import chunk as chunk_module
    from bank_core.storage import engine as engine_module

    account = service.open_account(inst, holder="Ann").id
    deposit(service, inst, account, 400, "seed")  # 4.00
    failures = {"left": 1}
    flush = chunk_module.Chunk.flush

    class Retry(Exception):
        pass

    def failing_flush(self: chunk_module.Chunk) -> None:
        flush(self)  # the balances in memory have moved by now
        if self.carry is not None and failures["left"] and self.carry.head is not None and len(self.rows) == 2:
            failures["left"] -= 1
            raise Retry("as a serialization failure would, after the writes")

    monkeypatch.setattr(chunk_module.Chunk, "flush", failing_flush)
    retryable: Callable[[BaseException], bool] = engine_module.is_retryable
    monkeypatch.setattr(engine_module, "is_retryable", lambda exc: isinstance(exc, Retry) or retryable(exc))
    outcomes = list(service.submit_batch(inst, iter(_withdrawals(inst, account, "w", 6, "1.00")),
                                         chunk_size=2, write_ahead=False))  # (one chunk at a time: its flush)
    assert failures["left"] == 0
    assert [o.status for o in outcomes] == ["posted"] * 4 + ["rejected"] * 2
    assert check_ledger(service, inst).posted[account] == 0


def test_a_carry_is_used_only_while_the_head_is_where_it_was_left() -> None:
    carry = Carry()
    assert not carry.begin((1, "a"), 1)  # nothing carried yet
    carry.head = (2, "b")  # the chunk's flush moved the head
    carry.records["acc"] = object()  # type: ignore[assignment]
    carry.committed()
    assert carry.begin((2, "b"), 1)
    assert carry.records  # kept
    carry.committed()
    assert not carry.begin((3, "c"), 1)  # someone else appended
    assert not carry.records
    carry.committed()
    carry.head = (4, "d")
    assert not carry.begin((4, "d"), 2)  # another profile version
    # no commit: the next begin must start afresh even at the same head
    assert not carry.begin((4, "d"), 2)


def _usage_loads(service: BankService) -> list[str]:
    """Every SELECT of usage counters ``service`` runs from now on."""
    from sqlalchemy import event

    seen: list[str] = []

    def before(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "usage_counter" in statement:
            seen.append(statement)
    event.listen(service.engine, "before_cursor_execute", before)
    return seen


def _daily_limited(service: BankService, inst: str, max_text: str) -> str:
    from conftest import profile_doc

    service.apply_profile(profile_doc(inst, limit=[
        {"driver": "northwind.daily_withdrawal", "params": {"max": max_text}},
        {"driver": "core.no_overdraft"}]), "setup")
    account = service.open_account(inst, holder="Ann").id
    deposit(service, inst, account, 100_000, "seed")
    return account


@pytest.mark.parametrize("write_ahead", [False, True], ids=["one-at-a-time", "write-ahead"])
def test_usage_windows_are_carried_from_chunk_to_chunk_and_loaded_once(
        service: BankService, inst: str, write_ahead: bool) -> None:
    """A daily limit over six chunks of one file: the day's counters are read
    from the database by the first chunk only, later chunks decide on the
    carried counters, and the outcomes are those of counters read afresh
    (5.00 a day in withdrawals of 1.00: five posted, then rejected)."""
    account = _daily_limited(service, inst, "5.00")
    loads = _usage_loads(service)
    outcomes = list(service.submit_batch(inst, iter(_withdrawals(inst, account, "w", 12, "1.00")),
                                         chunk_size=2, write_ahead=write_ahead))
    assert [(o.status, o.code) for o in outcomes] == \
        [("posted", None)] * 5 + [("rejected", "northwind.daily_withdrawal")] * 7
    assert len(loads) == 1, loads
    assert check_ledger(service, inst).posted[account] == 100_000 - 500


@pytest.mark.parametrize("write_ahead", [False, True], ids=["one-at-a-time", "write-ahead"])
def test_carried_usage_is_forgotten_when_another_client_writes(
        service: BankService, make_service: Callable[[], BankService], inst: str, write_ahead: bool) -> None:
    """Another client's withdrawal between two chunks: the next chunk reads
    the counters again and counts it (the carried counters would not)."""
    account = _daily_limited(service, inst, "5.00")
    batch = service.submit_batch(inst, iter(_withdrawals(inst, account, "w", 6, "1.00")),
                                 chunk_size=2, write_ahead=write_ahead)
    assert [next(batch).status, next(batch).status] == ["posted", "posted"]  # 2.00 of 5.00 today
    assert make_service().submit(TxnRequest(inst, "between", "withdrawal", "2.00", source=account)
                                 ).status == "posted"  # 4.00 of 5.00
    rest = [(o.status, o.code) for o in batch]
    assert rest == [("posted", None)] + [("rejected", "northwind.daily_withdrawal")] * 3
    assert check_ledger(service, inst).posted[account] == 100_000 - 500


def test_a_carry_past_its_window_bound_starts_afresh(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bank_core import chunk as chunk_module

    monkeypatch.setattr(chunk_module, "CARRIED_WINDOWS", 2)
    carry = Carry()
    assert not carry.begin((1, "a"), 1)
    carry.head = (2, "b")
    carry.windows |= {("acc", "d:2026-01-01"), ("acc", "m:2026-01")}
    carry.usage[("acc", "m:2026-01")] = {}
    carry.committed()
    assert carry.begin((2, "b"), 1) and carry.windows  # at the bound: kept
    carry.windows.add(("acc", "d:2026-01-02"))
    carry.head = (3, "c")
    carry.committed()
    carry.begin((3, "c"), 1)
    assert not carry.windows and not carry.usage  # past it: read again
