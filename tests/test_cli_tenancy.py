"""Tenant isolation through the ``bank`` command.

Northwind and Harbor share one database. Harbor gets accounts and
transactions (posted and held); then, acting as Northwind, every command that
takes an id must answer "not found" (exit 5, one stderr line) for Harbor's
ids, exactly as for ids that never existed, and nothing of Harbor's may
change. The setup runs once per module (the commands under test change
nothing, which each test checks); the tests that do write only write to
Northwind.
"""

from __future__ import annotations

import json

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cli_support import SUPERVISOR, Cli, assert_one_error_line, fresh_copy, init_template

NW, HB = "northwind", "harbor"


@dataclass
class World:
    cli: Cli
    ids: dict[str, str] = field(default_factory=dict)

    def harbor_state(self) -> dict[str, Any]:
        """Everything a Harbor user can see, for before/after comparisons."""
        accounts = self.cli.json("account", "list", profile=HB)
        txns = self.cli.json("txn", "list", "--limit", "10000", profile=HB)
        newest = self.cli.json("audit", "log", "--limit", "1", profile=HB)["entries"]
        verify = self.cli.json("audit", "verify", profile=HB)
        for timing in ("seconds", "transactions_per_second"):  # a measurement, not state
            verify.pop(timing)
        return {"accounts": accounts, "txns": txns, "audit_head": newest, "verify": verify,
                "statement": self.cli.json("statement", self.ids["h1"], profile=HB)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    template = init_template(tmp_path_factory.mktemp("tenancy-template"))
    base = tmp_path_factory.mktemp("tenancy")
    cli = Cli(fresh_copy(template, f"sqlite:///{base / 'bank.db'}"), base / "config")
    cli.apply("northwind_policies")
    cli.apply("harbor_policies")
    w = World(cli)
    ids = w.ids

    ids["h1"] = cli.open("Hal", profile=HB)
    ids["h2"] = cli.open("Hope", profile=HB, product="checking-plus")
    ids["h3"] = cli.open("Zero", profile=HB)  # zero balance: closable at home
    ids["h_deposit"] = cli.deposit(ids["h1"], "3000.00", profile=HB, ref="shared-ref")["txn_id"]
    ids["h_transfer"] = cli.json("txn", "transfer", ids["h1"], ids["h2"], "100.00", "--ref", "h-tr-1",
                                 profile=HB)["txn_id"]
    # Harbor holds withdrawals above 1000.00 from accounts younger than 7 days.
    held = cli.json("txn", "withdraw", ids["h1"], "1000.01", "--ref", "h-wd-1", profile=HB, expect=3)
    assert held["status"] == "held" and held["code"] == "harbor.new_account_review"
    ids["h_held"] = held["txn_id"]

    ids["n1"] = cli.open("Nina", profile=NW)
    cli.deposit(ids["n1"], "500.00", profile=NW)
    yield w


@pytest.fixture(scope="module")
def harbor_before(world: World) -> dict[str, Any]:
    state = world.harbor_state()
    assert len(state["accounts"]["accounts"]) == 3
    assert {t["status"] for t in state["txns"]["transactions"]} == {"posted", "held"}
    assert state["verify"]["ok"] is True
    return state


# Every command that takes an id, with Harbor's ids; "{x}" is filled from World.ids.
FOREIGN = {
    "account show": ["account", "show", "{h1}"],
    "account freeze": ["account", "freeze", "{h1}"],
    "account unfreeze": ["account", "unfreeze", "{h1}"],
    "account close": ["account", "close", "{h3}"],
    "txn deposit": ["txn", "deposit", "{h1}", "1.00"],
    "txn withdraw": ["txn", "withdraw", "{h1}", "1.00"],
    "txn transfer from": ["txn", "transfer", "{h1}", "{n1}", "1.00"],
    "txn transfer to": ["txn", "transfer", "{n1}", "{h1}", "1.00"],
    "txn transfer both": ["txn", "transfer", "{h1}", "{h2}", "1.00"],
    "txn show": ["txn", "show", "{h_deposit}"],
    "txn show held": ["txn", "show", "{h_held}"],
    "txn explain": ["txn", "explain", "{h_held}"],
    "txn approve": ["txn", "approve", "{h_held}"],
    "txn reject": ["txn", "reject", "{h_held}", "--reason", "not yours"],
    "txn reverse": ["txn", "reverse", "{h_transfer}"],
    "balance": ["balance", "{h1}"],
    "statement": ["statement", "{h1}"],
    "statement csv": ["statement", "{h1}", "--format", "csv"],
    "txn list --account": ["txn", "list", "--account", "{h1}"],
    "audit log --txn": ["audit", "log", "--txn", "{h_deposit}"],
}


def fill(args: list[str], ids: dict[str, str]) -> list[str]:
    return [a.format(**ids) if a.startswith("{") else a for a in args]


@pytest.mark.parametrize("case", list(FOREIGN))
def test_harbor_ids_are_not_found_as_northwind(world: World, harbor_before: dict[str, Any],
                                               case: str) -> None:
    args = fill(FOREIGN[case], world.ids)
    foreign = next(a for a in args if a in {world.ids[k] for k in world.ids if k.startswith("h")})
    # A supervisor, so that four-eyes cannot be the reason an approval fails.
    plain = world.cli(*args, profile=NW, actor=SUPERVISOR)
    line = assert_one_error_line(plain, 5, "not found", foreign)
    assert HB not in line.lower()  # nothing about the other tenant leaks
    assert plain.stdout == ""
    as_json = world.cli(*args, profile=NW, actor=SUPERVISOR, json_out=True)
    assert_one_error_line(as_json, 5, "not found")
    error = json.loads(as_json.stdout)["error"]  # --json: the error as one document
    assert (error["code"], error["exit_code"]) == ("not_found", 5) and foreign in error["message"]
    assert HB not in as_json.stdout.lower()
    # The same as for an id that never existed (only the id differs).
    invented = "acc_000000000000" if foreign.startswith("acc_") else "txn_00000000000000000000"
    never = world.cli(*[invented if a == foreign else a for a in args], profile=NW, actor=SUPERVISOR)
    assert never.exit_code == 5
    assert never.stderr.replace(invented, foreign) == plain.stderr
    assert world.harbor_state() == harbor_before


def test_harbor_ids_are_found_at_home(world: World, harbor_before: dict[str, Any]) -> None:
    """The control: the same ids work with --profile harbor (read-only checks)."""
    ids = world.ids
    assert world.cli.json("account", "show", ids["h1"], profile=HB)["institution"] == HB
    assert world.cli.json("txn", "show", ids["h_held"], profile=HB)["status"] == "held"
    explained = world.cli.json("txn", "explain", ids["h_held"], profile=HB)
    assert explained["code"] == "harbor.new_account_review"
    # A replay of Harbor's own request answers with Harbor's first result and changes nothing.
    replay = world.cli.json("txn", "deposit", ids["h1"], "3000.00", "--ref", "shared-ref", profile=HB)
    assert replay["txn_id"] == ids["h_deposit"]
    assert world.harbor_state() == harbor_before


def test_northwind_never_lists_harbor_data(world: World, harbor_before: dict[str, Any]) -> None:
    ids, cli = world.ids, world.cli
    harbor_ids = {v for k, v in ids.items() if k.startswith("h")}
    accounts = cli.json("account", "list", profile=NW)["accounts"]
    assert [a["id"] for a in accounts] == [ids["n1"]]
    assert all(a["institution"] == NW for a in accounts)
    for status in (None, "held", "posted"):
        extra = ["--status", status] if status else []
        txns = cli.json("txn", "list", "--limit", "10000", *extra, profile=NW)["transactions"]
        assert not harbor_ids & {t["txn_id"] for t in txns}
        assert not harbor_ids & ({t["source"] for t in txns} | {t["dest"] for t in txns})
    entries = cli.json("audit", "log", "--limit", "100000", profile=NW)["entries"]
    assert not any(e["subject"] in harbor_ids for e in entries)
    assert not any(any(i in str(e["payload"]) for i in harbor_ids) for e in entries)
    table = cli("account", "list", profile=NW, expect=0).stdout + \
        cli("txn", "list", profile=NW, expect=0).stdout
    assert not any(i in table for i in harbor_ids)
    assert world.harbor_state() == harbor_before


def test_expire_as_northwind_leaves_harbor_holds(world: World, harbor_before: dict[str, Any]) -> None:
    far = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
    assert world.cli.json("txn", "expire", "--as-of", far, profile=NW) == {"expired": []}
    assert world.cli.json("txn", "show", world.ids["h_held"], profile=HB)["status"] == "held"
    assert world.harbor_state() == harbor_before


def test_a_ref_belongs_to_one_institution(world: World, harbor_before: dict[str, Any]) -> None:
    """Harbor used "shared-ref"; Northwind may use it too, for another body."""
    mine = world.cli.deposit(world.ids["n1"], "7.00", profile=NW, ref="shared-ref")
    assert mine["status"] == "posted" and mine["txn_id"] != world.ids["h_deposit"]
    assert mine["institution"] == NW
    again = world.cli.deposit(world.ids["n1"], "7.00", profile=NW, ref="shared-ref")
    assert again["txn_id"] == mine["txn_id"]
    assert world.harbor_state() == harbor_before


def test_northwind_ids_are_not_found_as_harbor(world: World, harbor_before: dict[str, Any]) -> None:
    """The other direction, for a few commands."""
    n1 = world.ids["n1"]
    for args in (["account", "show", n1], ["balance", n1], ["txn", "deposit", n1, "1.00"],
                 ["txn", "transfer", world.ids["h1"], n1, "1.00"], ["statement", n1]):
        assert_one_error_line(world.cli(*args, profile=HB), 5, "not found", n1)
    assert world.harbor_state() == harbor_before


def test_both_audit_chains_verify_afterwards(world: World, harbor_before: dict[str, Any]) -> None:
    for inst in (NW, HB):
        doc = world.cli.json("audit", "verify", profile=inst)
        assert doc["ok"] is True and doc["institution"] == inst
    assert world.harbor_state() == harbor_before
