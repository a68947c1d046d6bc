"""Transactions over HTTP: the status of each outcome, idempotency replay and
conflict, four-eyes between two real keys, the key's name as the acting
person, cursor pagination and filters. On SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from http_support import NW, Bank, assert_problem, bank_on

_refs = itertools.count()


def ref(prefix: str = "r") -> str:
    return f"{prefix}-{next(_refs)}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], scope="module")
def bank(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bank]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('txns') / 'bank.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    with bank_on(url) as b:
        yield b


def balance(bank: Bank, account: str) -> dict[str, Any]:
    r = bank.call(NW, "teller", "GET", f"/v1/accounts/{account}/balance")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def two_accounts(bank: Bank, funds: str = "9000.00") -> tuple[str, str]:
    source = bank.open(NW, "Ada")
    bank.deposit(NW, source, funds, ref("fund"))
    return source, bank.open(NW, "Bo")


def transfer(bank: Bank, source: str, dest: str, amount: str, key: str, role: str = "teller",
             expect: int | None = None) -> Any:
    return bank.submit(NW, key, role=role, expect=expect, type="transfer", **{"from": source}, to=dest,
                       amount=amount)


def test_each_outcome_has_its_status(bank: Bank) -> None:
    source, dest = two_accounts(bank)
    posted = transfer(bank, source, dest, "100.00", ref(), expect=201).json()
    assert posted["status"] == "posted" and posted["amount"] == "100.00" and posted["fee_total"] == "0.50"
    held = transfer(bank, source, dest, "6000.00", ref(), expect=202).json()
    assert held["status"] == "held" and held["code"] == "northwind.large_transfer_review"
    rejected = assert_problem(transfer(bank, source, dest, "12000.00", ref()), 422, "rejected")
    assert rejected["exit_code"] == 4
    assert rejected["result"]["status"] == "rejected"
    assert rejected["result"]["code"] == "northwind.single_transaction"
    assert rejected["txn_id"] == rejected["result"]["txn_id"]
    invalid = assert_problem(transfer(bank, source, dest, "10.505", ref()), 400, "invalid", "10.505")
    assert invalid["field"] == "amount" and invalid["exit_code"] == 5
    missing = assert_problem(transfer(bank, source, "acc_000000000000", "1.00", ref()), 404, "invalid",
                             "acc_000000000000")
    assert missing["exit_code"] == 5
    conflict_key = ref()
    transfer(bank, source, dest, "1.00", conflict_key, expect=201)
    conflict = assert_problem(transfer(bank, source, dest, "2.00", conflict_key), 409, "conflict")
    assert conflict["exit_code"] == 6


def test_amounts_are_strings_in_major_units(bank: Bank) -> None:
    source, _ = two_accounts(bank, "1234.56")
    doc = balance(bank, source)
    assert doc["posted"] == "1234.56" and doc["available"] == "1234.56" and doc["currency"] == "USD"
    assert_problem(bank.submit(NW, ref(), type="deposit", to=source, amount=12.5), 400, "usage")


def test_same_key_and_body_returns_the_first_result_and_posts_once(bank: Bank) -> None:
    source, dest = two_accounts(bank)
    key = ref("replay")
    first = transfer(bank, source, dest, "250.00", key, expect=201)
    again = transfer(bank, source, dest, "250.00", key, expect=201)
    assert again.json() == first.json()
    assert balance(bank, dest)["posted"] == "250.00"
    assert balance(bank, source)["posted"] == "8748.75"  # 9000 - 250 - 1.25 fee, once
    # held and rejected results replay with their own status too
    held_key, rejected_key = ref("held"), ref("rej")
    held = transfer(bank, source, dest, "5500.00", held_key, expect=202)
    assert transfer(bank, source, dest, "5500.00", held_key, expect=202).json() == held.json()
    rejected = transfer(bank, source, dest, "50000.00", rejected_key)
    assert transfer(bank, source, dest, "50000.00", rejected_key).json() == rejected.json()
    assert rejected.status_code == 422


def test_same_key_with_another_body_is_409_and_changes_nothing(bank: Bank) -> None:
    source, dest = two_accounts(bank)
    key = ref("conflict")
    transfer(bank, source, dest, "10.00", key, expect=201)
    before = balance(bank, source), balance(bank, dest)
    assert_problem(transfer(bank, source, dest, "10.01", key), 409, "conflict", key)
    assert_problem(bank.submit(NW, key, type="deposit", to=source, amount="10.00"), 409, "conflict")
    assert (balance(bank, source), balance(bank, dest)) == before


def test_idempotency_key_is_required(bank: Bank) -> None:
    source, _ = two_accounts(bank)
    r = bank.call(NW, "teller", "POST", "/v1/transactions", json={"type": "deposit", "to": source, "amount": "1.00"})
    doc = assert_problem(r, 400, "usage", "Idempotency-Key")
    assert doc["field"] == "header.Idempotency-Key"
    bad = assert_problem(bank.submit(NW, "has space", type="deposit", to=source, amount="1.00"), 400, "invalid")
    assert bad["field"] == "header.Idempotency-Key"


def test_four_eyes_compares_the_keys_people(bank: Bank) -> None:
    source, dest = two_accounts(bank)
    held = transfer(bank, source, dest, "6000.00", ref("4e"), role="supervisor", expect=202).json()
    txn = held["txn_id"]
    refused = assert_problem(bank.call(NW, "supervisor", "POST", f"/v1/transactions/{txn}:approve"),
                             422, "rejected", "four-eyes")
    assert refused["exit_code"] == 4
    # a second key of the same person is the same person
    same_person = bank.add_key(NW, "supervisor", f"{NW}-supervisor", label="supervisor-again")
    r = bank.client.post(f"/v1/transactions/{txn}:approve",  # type: ignore[union-attr]
                         headers={"Authorization": f"Bearer {same_person}"})
    assert_problem(r, 422, "rejected", "four-eyes")
    assert bank.call(NW, "teller", "GET", f"/v1/transactions/{txn}").json()["status"] == "held"
    approved = bank.call(NW, "supervisor2", "POST", f"/v1/transactions/{txn}:approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "posted"
    now = bank.call(NW, "teller", "GET", f"/v1/transactions/{txn}").json()
    assert now["initiator"] == f"{NW}-supervisor" and now["resolved_by"] == f"{NW}-supervisor-2"
    assert balance(bank, dest)["posted"] == "6000.00"


def test_the_acting_person_is_the_keys_name_never_a_header_or_field(bank: Bank) -> None:
    source, dest = two_accounts(bank)
    r = bank.call(NW, "teller", "POST", "/v1/transactions", key=ref("actor"),
                  headers={"X-Actor": "mallory", "Bank-Actor": "mallory"},
                  json={"type": "transfer", "from": source, "to": dest, "amount": "6000.00"})
    assert r.status_code == 202, r.text
    txn = r.json()["txn_id"]
    assert bank.call(NW, "teller", "GET", f"/v1/transactions/{txn}").json()["initiator"] == f"{NW}-teller"
    trail = bank.call(NW, "auditor", "GET", "/v1/audit/log", params={"txn": txn}).json()["entries"]
    assert [e["actor"] for e in trail] == [f"{NW}-teller"]
    spoof = bank.call(NW, "teller", "POST", "/v1/transactions", key=ref("actor"),
                      json={"type": "deposit", "to": source, "amount": "1.00", "actor": "mallory"})
    assert assert_problem(spoof, 400, "usage")["field"] == "actor"
    # the supervisor may approve the teller's transfer; the audit names both people
    assert bank.call(NW, "supervisor", "POST", f"/v1/transactions/{txn}:approve",
                     headers={"X-Actor": "northwind-teller"}).status_code == 200
    trail = bank.call(NW, "auditor", "GET", "/v1/audit/log", params={"txn": txn}).json()["entries"]
    assert [e["actor"] for e in trail] == [f"{NW}-teller", f"{NW}-supervisor"]


def test_reject_reverse_and_expire(bank: Bank) -> None:
    source, dest = two_accounts(bank)
    held = transfer(bank, source, dest, "6000.00", ref("rj"), expect=202).json()["txn_id"]
    r = bank.call(NW, "supervisor", "POST", f"/v1/transactions/{held}:reject", json={"reason": "unconfirmed"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert_problem(bank.call(NW, "supervisor", "POST", f"/v1/transactions/{held}:reject",
                             json={"reason": "again"}), 409, "conflict")
    assert balance(bank, source)["available"] == "9000.00"
    posted = transfer(bank, source, dest, "100.00", ref("rv"), expect=201).json()["txn_id"]
    r = bank.call(NW, "supervisor", "POST", f"/v1/transactions/{posted}:reverse", json={"memo": "dup"})
    assert r.status_code == 201 and r.json()["reverses"] == posted
    assert_problem(bank.call(NW, "supervisor", "POST", f"/v1/transactions/{posted}:reverse"), 409, "conflict")
    assert balance(bank, dest)["posted"] == "0.00"
    old = transfer(bank, source, dest, "6000.00", ref("ex"), expect=202).json()["txn_id"]
    later = (datetime.now(timezone.utc) + timedelta(hours=73)).isoformat()
    r = bank.call(NW, "supervisor", "POST", "/v1/holds:expire", json={"as_of": later})
    assert r.status_code == 200 and old in r.json()["expired"]
    assert bank.call(NW, "teller", "GET", f"/v1/transactions/{old}").json()["status"] == "expired"


def test_explain_names_every_driver_and_the_trail(bank: Bank) -> None:
    source, dest = two_accounts(bank)
    txn = transfer(bank, source, dest, "6000.00", ref("x"), expect=202).json()["txn_id"]
    doc = bank.call(NW, "auditor", "GET", f"/v1/transactions/{txn}/explain").json()
    drivers = {r["driver"] for r in doc["reasons"]}
    assert {"northwind.transfer_fee", "northwind.single_transaction", "core.no_overdraft",
            "northwind.large_transfer_review"} <= drivers
    assert doc["status"] == "held" and [a["action"] for a in doc["audit"]] == ["txn.held"]


def test_list_filters_and_cursor_pages(bank: Bank) -> None:
    source, dest = two_accounts(bank)
    started = datetime.now(timezone.utc).isoformat()
    made = [transfer(bank, source, dest, f"{n}.00", ref("page"), expect=201).json()["txn_id"] for n in range(1, 8)]
    held = transfer(bank, source, dest, "6000.00", ref("page"), expect=202).json()["txn_id"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"account": dest, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = bank.call(NW, "teller", "GET", "/v1/transactions", params=params).json()
        assert len(page["transactions"]) <= 3
        seen += [t["txn_id"] for t in page["transactions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [held, *reversed(made)]
    only_held = bank.call(NW, "teller", "GET", "/v1/transactions",
                          params={"account": dest, "status": "held"}).json()["transactions"]
    assert [t["txn_id"] for t in only_held] == [held]
    deposits = bank.call(NW, "teller", "GET", "/v1/transactions",
                         params={"account": source, "kind": "deposit"}).json()["transactions"]
    assert len(deposits) == 1 and deposits[0]["kind"] == "deposit"
    recent = bank.call(NW, "teller", "GET", "/v1/transactions",
                       params={"account": source, "since": started}).json()["transactions"]
    assert {t["txn_id"] for t in recent} == {held, *made}
    before = bank.call(NW, "teller", "GET", "/v1/transactions",
                       params={"account": source, "until": started}).json()["transactions"]
    assert [t["kind"] for t in before] == ["deposit"]
    assert_problem(bank.call(NW, "teller", "GET", "/v1/transactions", params={"cursor": "garbage!"}),
                   400, "usage")
    assert_problem(bank.call(NW, "teller", "GET", "/v1/transactions", params={"status": "lost"}), 400, "usage")
