"""Accounts, balances and statements over HTTP mirror the CLI: the same
documents as ``bank --json``, the same CSV as ``bank statement --format csv``,
and the same refusals (freeze twice, close with a balance)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_support import Cli
from http_support import NW, Bank, assert_problem, bank_on


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bank, Cli]]:
    base = tmp_path_factory.mktemp("accounts")
    with bank_on(f"sqlite:///{base / 'bank.db'}") as bank:
        yield bank, Cli(bank.url, base / "config", actor="operator")


def test_documents_are_the_clis(world: tuple[Bank, Cli]) -> None:
    bank, cli = world
    acc = bank.open(NW, "Ada Lovelace", product="checking-plus")
    bank.deposit(NW, acc, "120.50", "acc-dep-1")
    assert bank.call(NW, "teller", "GET", f"/v1/accounts/{acc}").json() == cli.json("account", "show", acc, profile=NW)
    assert bank.call(NW, "teller", "GET", f"/v1/accounts/{acc}/balance").json() == cli.json("balance", acc, profile=NW)
    listed = bank.call(NW, "teller", "GET", "/v1/accounts").json()
    assert listed == cli.json("account", "list", profile=NW)
    statement = bank.call(NW, "teller", "GET", f"/v1/accounts/{acc}/statement")
    assert statement.headers["content-type"].startswith("application/json")
    assert statement.json() == cli.json("statement", acc, profile=NW)
    assert statement.json()["closing"] == "120.50"
    csv_text = bank.call(NW, "teller", "GET", f"/v1/accounts/{acc}/statement", params={"format": "csv"})
    assert csv_text.headers["content-type"].startswith("text/csv")
    # (RFC 4180 lines end in CRLF; the CLI runner's captured stdout shows them as LF)
    assert csv_text.text.splitlines() == cli("statement", acc, "--format", "csv", profile=NW, expect=0).stdout.splitlines()
    dated = bank.call(NW, "teller", "GET", f"/v1/accounts/{acc}/statement",
                      params={"from": "2000-01-01", "to": "2000-01-31"}).json()
    assert dated["lines"] == [] and dated["opening"] == "0.00"
    assert_problem(bank.call(NW, "teller", "GET", f"/v1/accounts/{acc}/statement", params={"from": "May 1"}),
                   400, "usage")
    assert json.loads(json.dumps(listed)) == listed


def test_open_refusals_are_the_kernels(world: tuple[Bank, Cli]) -> None:
    bank, _ = world
    r = bank.call(NW, "teller", "POST", "/v1/accounts", json={"holder": "Ada", "currency": "EUR"})
    assert assert_problem(r, 400, "invalid", "EUR")["field"] == "currency"
    r = bank.call(NW, "teller", "POST", "/v1/accounts", json={"holder": "  "})
    assert assert_problem(r, 400, "invalid")["field"] == "holder"
    opened = bank.call(NW, "teller", "POST", "/v1/accounts", json={"holder": "Ada"}).json()
    log = bank.call(NW, "auditor", "GET", "/v1/audit/log", params={"limit": 5}).json()["entries"]
    assert [(e["subject"], e["actor"]) for e in log if e["action"] == "account.opened"][-1] == \
        (opened["id"], f"{NW}-teller")


def test_freeze_unfreeze_close(world: tuple[Bank, Cli]) -> None:
    bank, _ = world
    acc = bank.open(NW)
    bank.deposit(NW, acc, "5.00", "acc-dep-2")

    def act(verb: str) -> object:
        return bank.call(NW, "supervisor", "POST", f"/v1/accounts/{acc}:{verb}")

    assert act("freeze").json() == {"id": acc, "status": "frozen"}  # type: ignore[attr-defined]
    assert_problem(act("freeze"), 409, "conflict", "frozen")  # type: ignore[arg-type]
    frozen = bank.submit(NW, "acc-frozen", type="withdrawal", **{"from": acc}, amount="1.00")
    assert assert_problem(frozen, 422, "rejected")["result"]["code"] == "core.frozen_reject"
    assert act("unfreeze").json()["status"] == "open"  # type: ignore[attr-defined]
    assert_problem(act("close"), 422, "rejected", "5.00")  # type: ignore[arg-type]
    bank.submit(NW, "acc-out", expect=201, type="withdrawal", **{"from": acc}, amount="5.00")
    assert act("close").json()["status"] == "closed"  # type: ignore[attr-defined]
    assert_problem(act("unfreeze"), 409, "conflict")  # type: ignore[arg-type]
    assert bank.call(NW, "teller", "GET", f"/v1/accounts/{acc}").json()["status"] == "closed"


def test_statement_of_a_missing_account(world: tuple[Bank, Cli], tmp_path: Path) -> None:
    bank, _ = world
    assert_problem(bank.call(NW, "teller", "GET", "/v1/accounts/acc_000000000000/statement"), 404, "invalid")
