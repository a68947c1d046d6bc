"""Every route of ``bank serve`` with every role: allowed ones succeed, the
others answer 403 ``forbidden`` and write nothing (the audit chain does not
grow). The table of routes here must be exactly the API's: OpenAPI lists
every route, and every listed route is in the table.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bank_core.profile import read_toml
from bank_http.auth import PERMISSIONS
from cli_support import profile_file
from http_support import HB, NW, ROLES, Bank, assert_problem, bank_on

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bank]:
    with bank_on(f"sqlite:///{tmp_path_factory.mktemp('roles') / 'bank.db'}") as b:
        yield b


def funded(bank: Bank, amount: str = "9000.00") -> str:
    acc = bank.open(NW)
    bank.deposit(NW, acc, amount, unique("fund"))
    return acc


def held_txn(bank: Bank) -> str:
    source, dest = funded(bank), bank.open(NW, "Bo")
    r = bank.submit(NW, unique("held"), expect=202, type="transfer", **{"from": source}, to=dest, amount="6000.00")
    return r.json()["txn_id"]  # type: ignore[no-any-return]


def posted_txn(bank: Bank) -> str:
    return bank.deposit(NW, bank.open(NW), "10.00", unique("posted"))["txn_id"]  # type: ignore[no-any-return]


def frozen_account(bank: Bank) -> str:
    acc = bank.open(NW)
    assert bank.call(NW, "supervisor", "POST", f"/v1/accounts/{acc}:freeze").status_code == 200
    return acc


def new_key(bank: Bank) -> str:
    assert bank.keys is not None
    return bank.keys.create(NW, role="teller", name=unique("spare"), actor="setup")[0]["id"]  # type: ignore[no-any-return]


def batch_body(bank: Bank) -> dict[str, Any]:
    line = json.dumps({"ref": unique("batch"), "type": "deposit", "to": bank.open(NW), "amount": "1.00"})
    return {"content": line + "\n", "headers": {"Content-Type": "application/x-ndjson"}}


def profile_body(_bank: Bank) -> dict[str, Any]:
    return {"json": read_toml(profile_file("northwind_policies"))}


# name: (method, path template, action, prepare(bank) -> (path values, request kwargs), success status)
Prepare = Callable[[Bank], tuple[dict[str, str], dict[str, Any]]]
ROUTES: dict[str, tuple[str, str, str, Prepare, int]] = {
    "account open": ("POST", "/v1/accounts", "open_account", lambda b: ({}, {"json": {"holder": "Cy"}}), 201),
    "account list": ("GET", "/v1/accounts", "read", lambda b: ({}, {}), 200),
    "account get": ("GET", "/v1/accounts/{account_id}", "read", lambda b: ({"account_id": b.open(NW)}, {}), 200),
    "balance": ("GET", "/v1/accounts/{account_id}/balance", "read",
                lambda b: ({"account_id": b.open(NW)}, {}), 200),
    "statement": ("GET", "/v1/accounts/{account_id}/statement", "read",
                  lambda b: ({"account_id": funded(b)}, {"params": {"format": "csv"}}), 200),
    "freeze": ("POST", "/v1/accounts/{account_id}:freeze", "freeze", lambda b: ({"account_id": b.open(NW)}, {}), 200),
    "unfreeze": ("POST", "/v1/accounts/{account_id}:unfreeze", "unfreeze",
                 lambda b: ({"account_id": frozen_account(b)}, {}), 200),
    "close": ("POST", "/v1/accounts/{account_id}:close", "close", lambda b: ({"account_id": b.open(NW)}, {}), 200),
    "submit": ("POST", "/v1/transactions", "submit", lambda b: ({}, {
        "json": {"type": "deposit", "to": b.open(NW), "amount": "5.00"},
        "headers": {"Idempotency-Key": unique("submit")}}), 201),
    "batch": ("POST", "/v1/transactions:batch", "submit", lambda b: ({}, batch_body(b)), 200),
    "txn list": ("GET", "/v1/transactions", "read", lambda b: ({}, {}), 200),
    "txn get": ("GET", "/v1/transactions/{txn_id}", "read", lambda b: ({"txn_id": posted_txn(b)}, {}), 200),
    "explain": ("GET", "/v1/transactions/{txn_id}/explain", "read", lambda b: ({"txn_id": posted_txn(b)}, {}), 200),
    "approve": ("POST", "/v1/transactions/{txn_id}:approve", "approve", lambda b: ({"txn_id": held_txn(b)}, {}), 200),
    "reject": ("POST", "/v1/transactions/{txn_id}:reject", "reject",
               lambda b: ({"txn_id": held_txn(b)}, {"json": {"reason": "not confirmed"}}), 200),
    "reverse": ("POST", "/v1/transactions/{txn_id}:reverse", "reverse",
                lambda b: ({"txn_id": posted_txn(b)}, {"json": {"memo": "duplicate"}}), 201),
    "expire holds": ("POST", "/v1/holds:expire", "expire", lambda b: ({}, {}), 200),
    "audit verify": ("GET", "/v1/audit/verify", "audit", lambda b: ({}, {}), 200),
    "audit log": ("GET", "/v1/audit/log", "audit", lambda b: ({}, {}), 200),
    "profile get": ("GET", "/v1/profile", "profile", lambda b: ({}, {}), 200),
    "profile apply": ("PUT", "/v1/profile", "profile", lambda b: ({}, profile_body(b)), 200),
    "key list": ("GET", "/v1/apikeys", "keys", lambda b: ({}, {}), 200),
    "key create": ("POST", "/v1/apikeys", "keys", lambda b: ({}, {"json": {"name": unique("new"), "role": "teller"}}), 201),
    "key revoke": ("POST", "/v1/apikeys/{key_id}:revoke", "keys", lambda b: ({"key_id": new_key(b)}, {}), 200),
}
UNAUTHENTICATED = {("GET", "/healthz"), ("GET", "/readyz")}


def audit_entries(bank: Bank) -> int:
    return bank.service.audit_verify(NW).entries  # type: ignore[no-any-return]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_route_with_every_role(bank: Bank, route: str, role: str) -> None:
    method, template, action, prepare, success = ROUTES[route]
    values, kwargs = prepare(bank)
    path = template.format(**values)
    before = audit_entries(bank)
    response = bank.call(NW, role, method, path, **kwargs)
    if action in PERMISSIONS[role]:
        assert response.status_code == success, f"{role} {route}: {response.status_code} {response.text}"
        return
    assert_problem(response, 403, "forbidden", role)
    assert audit_entries(bank) == before, f"a refused {route} wrote to the audit chain"


def test_the_role_table_is_the_issues(bank: Bank) -> None:
    # teller: open accounts, submit, read; supervisor: teller's plus approve,
    # reject, reverse, expire; auditor: read and audit, nothing that writes;
    # admin: profile and keys.
    assert PERMISSIONS["teller"] == {"read", "open_account", "submit"}
    assert PERMISSIONS["supervisor"] >= PERMISSIONS["teller"] | {"approve", "reject", "reverse", "expire"}
    assert PERMISSIONS["auditor"] == {"read", "audit"}
    assert PERMISSIONS["admin"] == {"profile", "keys"}


def test_openapi_lists_every_route_and_the_table_covers_them(bank: Bank) -> None:
    assert bank.client is not None
    spec = bank.client.get("/openapi.json")
    assert spec.status_code == 200
    listed = {(method.upper(), path) for path, ops in spec.json()["paths"].items() for method in ops}
    table = {(method, template) for method, template, *_ in ROUTES.values()}
    assert listed == table | UNAUTHENTICATED
    # (test_every_route_with_every_role proves each route of the table is served)
    assert spec.json()["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    docs = bank.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_health_and_readiness_need_no_key(bank: Bank) -> None:
    assert bank.client is not None
    assert bank.client.get("/healthz").json() == {"status": "ok"}
    ready = bank.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "schema": "ok",
                                                      "drivers": {HB: "ok", NW: "ok"}}}
