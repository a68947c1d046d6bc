"""A key never sees another institution: with a key of each institution, every
route that takes an id answers the other institution's ids with 404, exactly
(status, code, detail) as an id that never existed, and nothing of the other
institution changes. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from http_support import HB, NW, Bank, assert_problem, bank_on

MISSING = {"account": "acc_0000deadbeef", "txn": "txn_00000000deadbeef0000", "key": "key_00000000deadbeef"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], scope="module")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Bank, dict[str, dict[str, str]]]]:
    url = (f"sqlite:///{tmp_path_factory.mktemp('tenancy') / 'bank.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    with bank_on(url) as bank:
        ids = {inst: own_things(bank, inst) for inst in (NW, HB)}
        yield bank, ids


def own_things(bank: Bank, inst: str) -> dict[str, str]:
    """An account with money, an empty one, a posted and a held transaction, a key."""
    rich, empty = bank.open(inst, "Rich"), bank.open(inst, "Empty")
    posted = bank.deposit(inst, rich, "3000.00", f"{inst}-dep")["txn_id"]
    # Northwind holds transfers over 5000.00; Harbor holds withdrawals over
    # 1000.00 from accounts younger than 7 days.
    if inst == NW:
        bank.deposit(inst, rich, "9000.00", f"{inst}-dep2")
        r = bank.submit(inst, f"{inst}-held", expect=202, type="transfer", **{"from": rich}, to=empty,
                        amount="6000.00")
    else:
        r = bank.submit(inst, f"{inst}-held", expect=202, type="withdrawal", **{"from": rich}, amount="1000.01")
    return {"account": rich, "empty": empty, "txn": posted, "held": r.json()["txn_id"],
            "key": bank.key_ids[(inst, "teller")]}


def requests_for(ids: dict[str, str]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(role, method, path, kwargs) of every route that takes an id."""
    acc, txn, held, key = ids["account"], ids["txn"], ids["held"], ids["key"]
    return [
        ("teller", "GET", f"/v1/accounts/{acc}", {}),
        ("teller", "GET", f"/v1/accounts/{acc}/balance", {}),
        ("teller", "GET", f"/v1/accounts/{acc}/statement", {}),
        ("teller", "GET", "/v1/transactions", {"params": {"account": acc}}),
        ("supervisor", "POST", f"/v1/accounts/{acc}:freeze", {}),
        ("supervisor", "POST", f"/v1/accounts/{acc}:unfreeze", {}),
        ("supervisor", "POST", f"/v1/accounts/{ids.get('empty', acc)}:close", {}),
        ("teller", "GET", f"/v1/transactions/{txn}", {}),
        ("teller", "GET", f"/v1/transactions/{txn}/explain", {}),
        ("auditor", "GET", "/v1/audit/log", {"params": {"txn": txn}}),
        ("supervisor", "POST", f"/v1/transactions/{held}:approve", {}),
        ("supervisor", "POST", f"/v1/transactions/{held}:reject", {"json": {"reason": "x"}}),
        ("supervisor", "POST", f"/v1/transactions/{txn}:reverse", {}),
        ("admin", "POST", f"/v1/apikeys/{key}:revoke", {}),
        ("teller", "POST", "/v1/transactions", {"json": {"type": "withdrawal", "from": acc, "amount": "1.00"},
                                                "headers": {"Idempotency-Key": "tenancy-probe"}}),
    ]


def what_they_see(bank: Bank, inst: str, ids: dict[str, str]) -> dict[str, Any]:
    def get(role: str, path: str, **kw: Any) -> Any:
        r = bank.call(inst, role, "GET", path, **kw)
        assert r.status_code == 200, r.text
        return r.json()
    return {"accounts": get("teller", "/v1/accounts"), "txns": get("teller", "/v1/transactions"),
            "verify": get("auditor", "/v1/audit/verify"), "log": get("auditor", "/v1/audit/log", params={"limit": 5}),
            "keys": get("admin", "/v1/apikeys"), "held": get("teller", f"/v1/transactions/{ids['held']}")}


def without_ids(detail: str, ids: list[str]) -> str:
    for value in ids:
        detail = detail.replace(value, "<id>")
    return detail


@pytest.mark.parametrize("me,other", [(NW, HB), (HB, NW)])
def test_another_institutions_ids_are_not_found_like_ids_that_never_existed(
        world: tuple[Bank, dict[str, dict[str, str]]], me: str, other: str) -> None:
    bank, ids = world
    theirs_before = what_they_see(bank, other, ids[other])
    foreign = requests_for(ids[other])
    never = requests_for({"account": MISSING["account"], "txn": MISSING["txn"], "held": MISSING["txn"],
                          "key": MISSING["key"], "empty": MISSING["account"]})
    for (role, method, path, kw), (_, _, missing_path, missing_kw) in zip(foreign, never):
        got = bank.call(me, role, method, path, **kw)
        doc = assert_problem(got, 404, "invalid")
        expected = assert_problem(bank.call(me, role, method, missing_path, **missing_kw), 404, "invalid")
        known = list(ids[other].values()) + list(MISSING.values())
        assert {**doc, "detail": without_ids(doc["detail"], known)} == \
            {**expected, "detail": without_ids(expected["detail"], known)}, (method, path)
    assert what_they_see(bank, other, ids[other]) == theirs_before


@pytest.mark.parametrize("me,other", [(NW, HB), (HB, NW)])
def test_lists_show_only_the_keys_institution(world: tuple[Bank, dict[str, dict[str, str]]],
                                              me: str, other: str) -> None:
    bank, ids = world
    accounts = bank.call(me, "teller", "GET", "/v1/accounts").json()["accounts"]
    assert {a["institution"] for a in accounts} == {me}
    assert ids[other]["account"] not in {a["id"] for a in accounts}
    txns = bank.call(me, "teller", "GET", "/v1/transactions", params={"limit": 1000}).json()["transactions"]
    assert ids[other]["txn"] not in {t["txn_id"] for t in txns} and ids[me]["txn"] in {t["txn_id"] for t in txns}
    keys = bank.call(me, "admin", "GET", "/v1/apikeys").json()["keys"]
    assert {k["institution"] for k in keys} == {me}
    log = bank.call(me, "auditor", "GET", "/v1/audit/log", params={"limit": 1000}).json()["entries"]
    assert not any(ids[other]["account"] == e["subject"] for e in log)


def test_an_admin_applies_only_its_own_institutions_profile(world: tuple[Bank, dict[str, dict[str, str]]]) -> None:
    bank, _ = world
    theirs = bank.call(HB, "admin", "GET", "/v1/profile").json()
    r = bank.call(NW, "admin", "PUT", "/v1/profile", json=theirs)
    assert_problem(r, 403, "forbidden", NW)
    assert bank.call(HB, "admin", "GET", "/v1/profile").json() == theirs
