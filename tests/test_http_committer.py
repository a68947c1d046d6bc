"""Group commit changes no outcome: concurrent transactions of an institution
are decided together as one chunk, and each still gets exactly its own
result or error. On SQLite and on PostgreSQL; the last test over a real
``bank serve`` with concurrent clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from bank_core.errors import Conflict, NotFound
from bank_core.messages import TxnRequest
from bank_http.committer import GroupCommit
from cli_support import profile_file, run_bank
from http_support import NW, Bank, bank_on, served


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def bank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bank]:
    url = (f"sqlite:///{tmp_path / 'bank.db'}" if request.param == "sqlite"
           else request.getfixturevalue("fresh_pg_url"))
    with bank_on(url) as b:
        yield b


def transfer(source: str, dest: str, amount: str, ref: str, actor: str = "alice") -> TxnRequest:
    return TxnRequest(institution=NW, ref=ref, kind="transfer", amount=amount, source=source, dest=dest, actor=actor)


class HeldOpen:
    """Wraps ``submit_batch``: the first chunk waits until released, so the
    requests sent meanwhile queue up and must form the next chunk."""

    def __init__(self, service: Any) -> None:
        self.real = service.submit_batch
        self.release = threading.Event()
        self.sizes: list[int] = []

    def __call__(self, institution: str, requests: list[TxnRequest], **kw: Any) -> Any:
        self.sizes.append(len(requests))
        if len(self.sizes) == 1:
            assert self.release.wait(30)
        return self.real(institution, requests, **kw)


def grouped(bank: Bank, monkeypatch: pytest.MonkeyPatch, first: TxnRequest, rest: list[TxnRequest]
            ) -> tuple[list[Any], list[int]]:
    """Submit ``first``, then ``rest`` while it is being decided: outcomes (a
    result or an exception) in order, and the chunk sizes."""
    gate = HeldOpen(bank.service)
    monkeypatch.setattr(bank.service, "submit_batch", gate)
    committer = GroupCommit(bank.service)
    pool = ThreadPoolExecutor(len(rest) + 1)
    futures = [pool.submit(committer.submit, first)]
    while not gate.sizes:
        time.sleep(0.005)
    futures += [pool.submit(committer.submit, r) for r in rest]
    queue = committer._queues[NW]
    deadline = time.monotonic() + 30
    while queue.qsize() < len(rest):
        assert time.monotonic() < deadline
        time.sleep(0.005)
    gate.release.set()
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result(60))
        except Exception as exc:  # noqa: BLE001 - the request's own error is its outcome
            outcomes.append(exc)
    committer.close()
    pool.shutdown()
    return outcomes, gate.sizes


def test_requests_that_arrive_while_a_chunk_is_decided_form_the_next_chunk(
        bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    source, dest = bank.open(NW), bank.open(NW)
    bank.deposit(NW, source, "100.00", "fund")
    # each 10.00 transfer costs 10.25 with Northwind's fee: nine fit in 100.00
    rest = [transfer(source, dest, "10.00", f"t-{n}") for n in range(1, 12)]
    rest.append(transfer(source, "acc_000000000000", "1.00", "t-missing"))
    outcomes, sizes = grouped(bank, monkeypatch, transfer(source, dest, "10.00", "t-0"), rest)
    assert sizes == [1, len(rest)]
    statuses = [getattr(o, "status", type(o).__name__) for o in outcomes]
    assert statuses == ["posted"] * 9 + ["rejected"] * 3 + ["NotFound"]
    assert isinstance(outcomes[-1], NotFound)
    assert [o.code for o in outcomes[9:12]] == ["core.no_overdraft"] * 3
    record, balance = bank.service.account(NW, source)
    assert balance.posted == 775 and balance.available == 775  # 100.00 - 9 x 10.25, in cents
    assert bank.service.audit_verify(NW).ok


def test_one_key_twice_in_a_chunk_posts_once_and_another_body_conflicts(
        bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    source, dest = bank.open(NW), bank.open(NW)
    bank.deposit(NW, source, "500.00", "fund")
    same = [transfer(source, dest, "20.00", "dup") for _ in range(3)]
    other = transfer(source, dest, "21.00", "dup")
    outcomes, sizes = grouped(bank, monkeypatch, transfer(source, dest, "1.00", "first"), [*same, other])
    assert sizes == [1, 4]
    first_dup = outcomes[1]
    assert first_dup.status == "posted"
    assert all(o == first_dup for o in outcomes[2:4])  # the first result, returned again
    assert isinstance(outcomes[4], Conflict)
    assert bank.service.account(NW, dest)[1].posted == 2100  # 1.00 + 20.00 once


def test_a_failed_chunk_fails_each_of_its_requests(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(bank.service, "submit_batch", broken)
    committer = GroupCommit(bank.service)
    with pytest.raises(RuntimeError, match="went away"):
        committer.submit(transfer(bank.open(NW), bank.open(NW), "1.00", "x"))
    committer.close()


def test_the_acting_person_stays_each_requests_own(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    source, dest = bank.open(NW), bank.open(NW)
    bank.deposit(NW, source, "100.00", "fund")
    rest = [transfer(source, dest, "1.00", f"p-{n}", actor=f"person-{n}") for n in range(1, 4)]
    outcomes, _ = grouped(bank, monkeypatch, transfer(source, dest, "1.00", "p-0", actor="person-0"), rest)
    for n, outcome in enumerate(outcomes):
        assert bank.service.txn(NW, outcome.txn_id)["initiator"] == f"person-{n}"


def test_concurrent_clients_of_a_real_server_never_overdraw(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    config = tmp_path / "config"
    assert run_bank(["--db", url, "init"], config).returncode == 0
    assert run_bank(["--db", url, "profile", "apply", str(profile_file("northwind_policies"))], config).returncode == 0
    secret = run_bank(["--db", url, "apikey", "create", "--institution", NW, "--role", "teller", "--name", "t"],
                      config).stdout.strip()
    with served(url, tmp_path) as srv:
        http = httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {secret}"}, timeout=60)
        source = http.post("/v1/accounts", json={"holder": "Hot"}).json()["id"]
        dest = http.post("/v1/accounts", json={"holder": "Cold"}).json()["id"]
        assert http.post("/v1/transactions", json={"type": "deposit", "to": source, "amount": "100.00"},
                         headers={"Idempotency-Key": "fund"}).status_code == 201

        def send(n: int) -> int:
            with httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as c:
                return c.post("/v1/transactions", json={"type": "transfer", "from": source, "to": dest,
                                                        "amount": "10.00"},
                              headers={"Idempotency-Key": f"hot-{n}"}).status_code

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(send, range(40)))
        assert sorted(codes) == [201] * 9 + [422] * 31
        bal = http.get(f"/v1/accounts/{source}/balance").json()
        assert bal["posted"] == "7.75" and bal["available"] == "7.75"


def test_without_group_commit_the_same_outcomes(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from bank_http.app import create_app

    with bank_on(f"sqlite:///{tmp_path / 'bank.db'}") as bank:
        bank.client = TestClient(create_app(bank.service, bank.keys, group_commit=False))
        source, dest = bank.open(NW), bank.open(NW)
        bank.deposit(NW, source, "9000.00", "fund")
        body = {"type": "transfer", "from": source, "to": dest}
        assert bank.submit(NW, "a", **body, amount="10.00").status_code == 201
        assert bank.submit(NW, "b", **body, amount="6000.00").status_code == 202
        assert bank.submit(NW, "c", **body, amount="9999.00").status_code == 422
        assert bank.submit(NW, "a", **body, amount="11.00").status_code == 409
        assert bank.submit(NW, "a", **body, amount="10.00").json()["txn_id"] == \
            bank.service.txns(NW, account=dest, status="posted")[0]["txn_id"]
