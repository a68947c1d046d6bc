"""Errors are ``application/problem+json`` with a stable code and the field
path: malformed JSON, wrong types, unknown and missing fields, oversized
bodies (declared or streamed), unknown routes, and an unexpected failure
that never shows a traceback or SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from bank_http.limits import MAX_BATCH_BODY_BYTES, MAX_JSON_BODY_BYTES
from bank_http.problems import EXIT_CODES
from http_support import HB, NW, Bank, assert_problem, bank_on


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bank]:
    with bank_on(f"sqlite:///{tmp_path_factory.mktemp('problems') / 'bank.db'}") as b:
        yield b


@pytest.fixture(scope="module")
def account(bank: Bank) -> str:
    return bank.open(NW)


def post_txn(bank: Bank, key: str = "p-1", **kw: object) -> object:
    return bank.call(NW, "teller", "POST", "/v1/transactions", key=key, **kw)


def test_codes_are_the_cli_exit_code_categories() -> None:
    assert EXIT_CODES == {"integrity": 1, "usage": 2, "rejected": 4, "invalid": 5, "conflict": 6,
                          "system": 7, "unauthenticated": None, "forbidden": None}


def test_malformed_json(bank: Bank) -> None:
    for body in (b"{", b"{\"type\": \"deposit\",}", b"not json", b"\xff\xfe"):
        r = post_txn(bank, content=body, headers={"Content-Type": "application/json"})
        doc = assert_problem(r, 400, "usage", "not valid JSON")  # type: ignore[arg-type]
        assert doc["field"] == "body" and doc["exit_code"] == 2


def test_wrong_types_name_the_field(bank: Bank, account: str) -> None:
    cases = [({"type": "deposit", "to": account, "amount": 10}, "amount"),
             ({"type": "deposit", "to": account, "amount": 10.5}, "amount"),
             ({"type": "deposit", "to": 42, "amount": "1.00"}, "to"),
             ({"type": ["deposit"], "to": account, "amount": "1.00"}, "type"),
             ({"type": "deposit", "to": account, "amount": "1.00", "memo": {"a": 1}}, "memo")]
    for body, field in cases:
        doc = assert_problem(post_txn(bank, json=body), 400, "usage", field)  # type: ignore[arg-type]
        assert doc["field"] == field and doc["errors"][0]["field"] == field
    r = bank.call(NW, "teller", "POST", "/v1/accounts", json={"holder": 7})
    assert assert_problem(r, 400, "usage")["field"] == "holder"
    r = bank.call(NW, "teller", "GET", "/v1/transactions", params={"limit": "many"})
    assert assert_problem(r, 400, "usage")["field"] == "query.limit"
    r = bank.call(NW, "teller", "POST", "/v1/transactions", key="p-arr", json=["deposit"])
    assert_problem(r, 400, "usage")


def test_unknown_and_missing_fields(bank: Bank, account: str) -> None:
    r = post_txn(bank, json={"type": "deposit", "to": account, "amount": "1.00", "amuont": "2.00"})
    doc = assert_problem(r, 400, "usage", "unknown field")  # type: ignore[arg-type]
    assert doc["field"] == "amuont"
    r = post_txn(bank, json={"type": "deposit", "to": account})
    assert assert_problem(r, 400, "usage")["field"] == "amount"  # type: ignore[arg-type]
    r = bank.call(NW, "supervisor", "POST", "/v1/transactions/txn_x:reject", json={})
    assert assert_problem(r, 400, "usage")["field"] == "reason"
    r = bank.call(NW, "teller", "POST", "/v1/accounts", json={"holder": "Ada", "owner": "me"})
    assert assert_problem(r, 400, "usage")["field"] == "owner"


def test_values_the_kernel_refuses_are_invalid_with_their_field(bank: Bank, account: str) -> None:
    for amount in ("10.505", "1e3", "NaN", "-5", "0", "10,00"):
        doc = assert_problem(post_txn(bank, key=f"k-{amount}", json={"type": "deposit", "to": account,  # type: ignore[arg-type]
                                                                    "amount": amount}), 400, "invalid")
        assert doc["field"] == "amount" and doc["exit_code"] == 5, doc
    doc = assert_problem(post_txn(bank, key="k-kind", json={"type": "gift", "to": account, "amount": "1.00"}),  # type: ignore[arg-type]
                         400, "invalid", "gift")
    assert doc["field"] == "type"
    doc = assert_problem(post_txn(bank, key="k-at", json={"type": "deposit", "to": account, "amount": "1.00",  # type: ignore[arg-type]
                                                         "at": "yesterday"}), 400, "usage")
    assert doc["field"] == "at"


def test_oversized_bodies_are_413(bank: Bank, account: str) -> None:
    big = b'{"holder": "' + b"x" * MAX_JSON_BODY_BYTES + b'"}'
    r = bank.call(NW, "teller", "POST", "/v1/accounts", content=big, headers={"Content-Type": "application/json"})
    assert assert_problem(r, 413, "usage", str(MAX_JSON_BODY_BYTES))["field"] == "body"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"holder": "'
        for _ in range(MAX_JSON_BODY_BYTES // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    r = bank.call(NW, "teller", "POST", "/v1/accounts", content=chunks(), headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "usage")
    line = b'{"ref":"big","type":"deposit","to":"%s","amount":"1.00"}\n' % account.encode()
    r = bank.call(NW, "teller", "POST", "/v1/transactions:batch", content=line * (MAX_BATCH_BODY_BYTES // len(line) + 1),
                  headers={"Content-Type": "application/x-ndjson"})
    assert_problem(r, 413, "usage", str(MAX_BATCH_BODY_BYTES))
    assert bank.call(NW, "teller", "GET", "/v1/transactions", params={"account": account}).json()["transactions"] == []
    # a body just under the JSON limit is read normally
    ok = bank.call(NW, "teller", "POST", "/v1/accounts", json={"holder": "Ada", "product": "p" * 100})
    assert_problem(ok, 400, "invalid", "product")


def test_unknown_routes_and_methods(bank: Bank) -> None:
    assert_problem(bank.call(NW, "teller", "GET", "/v1/nothing"), 404, "usage")
    assert_problem(bank.call(NW, "teller", "DELETE", "/v1/accounts"), 405, "usage")
    r = bank.call(NW, "teller", "POST", "/v1/transactions:batch", content=b"x", headers={"Content-Type": "text/plain"})
    assert assert_problem(r, 415, "usage")["field"] == "header.Content-Type"


def test_an_unexpected_failure_is_500_without_traceback_or_sql(bank: Bank, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy.exc import OperationalError

    def broken(*_args: object, **_kw: object) -> None:
        raise OperationalError("SELECT * FROM txn WHERE secret = 1", {}, Exception("disk I/O error"))

    monkeypatch.setattr(bank.service, "txn", broken)
    r = bank.call(NW, "teller", "GET", "/v1/transactions/txn_1")
    doc = assert_problem(r, 500, "system", "incident")
    assert doc["exit_code"] == 7 and "disk" not in r.text and "txn WHERE" not in r.text
    assert doc["incident"] in caplog.text  # the server's log has it, with the cause


def test_a_broken_audit_chain_is_409_integrity(tmp_path: Path) -> None:
    with bank_on(f"sqlite:///{tmp_path / 'bank.db'}") as bank:
        acc = bank.open(NW)
        bank.deposit(NW, acc, "10.00", "audit-1")
        ok = bank.call(NW, "auditor", "GET", "/v1/audit/verify")
        assert ok.status_code == 200 and ok.json()["ok"] is True
        with closing(sqlite3.connect(tmp_path / "bank.db")) as conn:
            seq = conn.execute("SELECT max(seq) FROM audit_entry WHERE institution_id = ?", (NW,)).fetchone()[0]
            conn.execute("UPDATE audit_entry SET actor = 'mallory' WHERE institution_id = ? AND seq = ?", (NW, seq))
            conn.commit()
        doc = assert_problem(bank.call(NW, "auditor", "GET", "/v1/audit/verify"), 409, "integrity", str(seq))
        assert doc["exit_code"] == 1 and doc["ok"] is False and doc["first_bad_seq"] == seq
        assert bank.call(HB, "auditor", "GET", "/v1/audit/verify").json()["ok"] is True
