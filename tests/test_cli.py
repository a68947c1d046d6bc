"""The ``bank`` command, end to end: exit codes, stdout/stderr, ``--json``.

Most tests drive the typer app in-process (``CliRunner``, fast); the
``test_entry_point_*`` tests run the installed ``bank`` script in a
subprocess, as a shell script would. Every test has its own SQLite file
(``sqlite_url`` from conftest) and its own configuration directory.

Exit codes are the documented contract: 0 posted/ok, 1 audit chain broken,
2 usage, 3 held, 4 rejected/refused, 5 not found/invalid, 6 conflict,
7 system error.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import typer.main

from bank_cli.main import app
from cli_support import (
    SUPERVISOR,
    TELLER,
    Cli,
    assert_one_error_line,
    describe,
    fresh_copy,
    init_template,
    profile_file,
    run_bank,
)

AMOUNT_RE = re.compile(r"\A-?[0-9]+\.[0-9]{2}\Z")
MONEY_KEYS = {"amount", "posted", "available", "held", "held_out", "fee_total", "opening",
              "closing", "balance"}
UNREACHABLE_PG = "postgresql://nobody@127.0.0.1:1/x"


@pytest.fixture(scope="session")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_template(tmp_path_factory.mktemp("cli-template"))


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, initialized: Path) -> Cli:
    """A fresh SQLite file on which ``bank init`` ran; acting as the teller."""
    return Cli(fresh_copy(initialized, sqlite_url), tmp_path / "config")


@pytest.fixture
def nw(cli: Cli) -> Cli:
    """Northwind's profile applied from the installed policy package."""
    cli.apply("northwind_policies")
    return cli


def db_file(cli: Cli) -> str:
    return cli.db_url.removeprefix("sqlite:///")


def money_strings(document: Any, path: str = "") -> None:
    """Every amount anywhere in a JSON document is a string in major units."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in MONEY_KEYS and value is not None:
                assert isinstance(value, str) and AMOUNT_RE.match(value), f"{path}.{key}={value!r}"
            money_strings(value, f"{path}.{key}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            money_strings(value, f"{path}[{index}]")


def later(hours: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).isoformat()


# ----------------------------------------------------------------- init, accounts


def test_init_creates_the_schema_and_the_default_institution_only_when_asked(sqlite_url: str,
                                                                         tmp_path: Path) -> None:
    cli = Cli(sqlite_url, tmp_path / "config")
    first = cli.json("init")
    assert first["default_institution_created"] is False and first["institutions"] == []
    assert first["database"].endswith("bank.db")
    assert "bank profile apply" in cli("init", expect=0).stdout
    assert cli.json("profile", "list")["institutions"] == []  # nothing posts without policies
    line = assert_one_error_line(cli("account", "open", "--holder", "Ann"), 2, "none yet", "profile apply")
    assert "bank.db" in line
    asked = cli.json("init", "--default-institution")
    assert asked["default_institution_created"] is True and asked["institutions"] == ["default"]
    again = cli("init", "--default-institution", expect=0)
    assert "database ready" in again.stdout and "created" not in again.stdout
    assert cli.json("init", "--default-institution")["default_institution_created"] is False
    assert [i["id"] for i in cli.json("profile", "list")["institutions"]] == ["default"]


def test_with_several_institutions_none_is_guessed(cli: Cli) -> None:
    acc = cli.open("Ann")  # the only institution: no need to choose
    cli.apply("northwind_policies")
    for args in (["account", "open", "--holder", "Ben"], ["account", "list"], ["balance", acc],
                 ["txn", "deposit", acc, "1.00"], ["txn", "list"], ["audit", "verify"]):
        line = assert_one_error_line(cli(*args), 2, "no institution chosen", "default, northwind",
                                     "--profile", "BANK_PROFILE", "bank profile use")
        assert "bank.db" in line
    assert cli.json("profile", "list")["active"] is None
    assert cli.json("balance", acc, profile="default")["posted"] == "0.00"
    assert cli.json("balance", acc, env={"BANK_PROFILE": "default"})["posted"] == "0.00"
    cli("profile", "use", "default", expect=0)
    assert cli.json("balance", acc)["posted"] == "0.00"


def test_not_found_names_where_it_looked(cli: Cli) -> None:
    line = assert_one_error_line(cli("account", "show", "acc_nope"), 5, "acc_nope", "not found")
    assert "institution default" in line and "bank.db" in line
    line = assert_one_error_line(cli("account", "list", profile="nowhere"), 5, "nowhere", "not found")
    assert "bank.db" in line


def test_account_open_prints_just_the_id(cli: Cli) -> None:
    result = cli("account", "open", "--holder", "Ada Lovelace", expect=0)
    assert re.fullmatch(r"acc_[0-9a-f]+\n", result.stdout), result.stdout
    assert result.stderr == f"opened {result.stdout.strip()} at default (USD)\n"  # where it was opened
    doc = cli.json("account", "open", "--holder", "Grace Hopper", "--product", "checking-plus")
    assert doc["id"].startswith("acc_") and doc["id"] != result.stdout.strip()
    assert doc["holder"] == "Grace Hopper" and doc["product"] == "checking-plus"
    assert doc["currency"] == "USD" and doc["status"] == "open" and doc["institution"] == "default"


@pytest.mark.parametrize(("args", "words"), [
    (["--holder", "  "], ["holder"]),
    (["--holder", "Ann", "--currency", "XXX"], ["XXX"]),
])
def test_account_open_rejects_bad_input(cli: Cli, args: list[str], words: list[str]) -> None:
    assert_one_error_line(cli("account", "open", *args), 5, *words)


def test_account_list_show_freeze_unfreeze_close(cli: Cli) -> None:
    acc = cli.open("Ann")
    other = cli.open("Ben")
    listed = cli.json("account", "list")
    assert listed["institution"] == "default"
    assert {a["id"] for a in listed["accounts"]} == {acc, other}  # customer accounts only
    table = cli("account", "list", expect=0).stdout
    assert acc in table and "Ann" in table

    shown = cli.json("account", "show", acc)
    assert {"id", "holder", "product", "currency", "status", "opened_at", "posted", "available",
            "held", "institution"} <= shown.keys()
    assert (shown["id"], shown["status"], shown["posted"], shown["available"]) == (acc, "open", "0.00", "0.00")
    assert shown["opened_at"].endswith("+00:00")
    assert acc in cli("account", "show", acc, expect=0).stdout

    assert cli.json("account", "freeze", acc) == {"id": acc, "status": "frozen"}
    assert_one_error_line(cli("account", "freeze", acc), 6, acc, "frozen")
    rejected = cli.json("txn", "deposit", acc, "10.00", expect=4)  # the default profile rejects frozen
    assert rejected["status"] == "rejected" and rejected["code"] == "core.frozen_reject"
    assert "unfrozen" in cli("account", "unfreeze", acc, expect=0).stdout
    assert cli.json("account", "show", acc)["status"] == "open"
    assert_one_error_line(cli("account", "unfreeze", acc), 6, acc)

    cli.deposit(acc, "10.00")
    refused = assert_one_error_line(cli("account", "close", acc), 4, acc, "10.00")
    assert "pending holds" not in refused  # it has a balance, not holds
    assert cli.json("account", "show", acc)["status"] == "open"
    cli.json("txn", "withdraw", acc, "10.00")
    assert cli.json("account", "close", acc) == {"id": acc, "status": "closed"}
    assert cli.json("account", "show", acc)["status"] == "closed"
    assert_one_error_line(cli("account", "close", acc), 6, acc, "closed")
    assert_one_error_line(cli("account", "freeze", acc), 6, acc, "closed")


# ----------------------------------------------------------------- transactions


def test_deposit_withdraw_transfer_exit_codes_and_json(cli: Cli) -> None:
    a, b = cli.open("Ann"), cli.open("Ben")
    posted = cli.deposit(a, "100.00")
    for key in ("txn_id", "status", "amount", "currency", "fee_total", "reasons", "code", "kind",
                "ref", "balances", "fees", "profile_version"):
        assert key in posted, key
    assert posted["txn_id"].startswith("txn_")
    assert (posted["status"], posted["amount"], posted["currency"], posted["fee_total"]) == \
        ("posted", "100.00", "USD", "0.00")
    assert posted["kind"] == "deposit" and posted["code"] is None
    assert all({"slot", "driver", "rule", "outcome", "message"} <= r.keys() for r in posted["reasons"])
    assert posted["balances"] == [{"account": a, "posted": "100.00", "available": "100.00",
                                   "held_out": "0.00", "currency": "USD"}]
    money_strings(posted)

    text = cli("txn", "withdraw", a, "200.00", expect=4)
    assert "rejected" in text.stdout and "core.no_overdraft" in text.stdout
    rejected = cli.json("txn", "withdraw", a, "200.00", expect=4)
    assert rejected["status"] == "rejected" and rejected["code"] == "core.no_overdraft"
    failing = [r for r in rejected["reasons"] if r["outcome"] == "fail"]
    assert failing and failing[0]["threshold"] == "200.00 USD" and failing[0]["observed"] == "100.00 USD"

    moved = cli.json("txn", "transfer", a, b, "30.00", "--memo", "rent")
    assert moved["status"] == "posted" and moved["source"] == a and moved["dest"] == b
    cli.json("txn", "withdraw", a, "20.00", "--channel", "atm")
    assert cli.balance(a) == {"id": a, "currency": "USD", "posted": "50.00", "available": "50.00",
                              "held": "0.00", "status": "open"}
    assert cli.balance(b)["posted"] == "30.00"
    assert "posted 50.00 USD, available 50.00 USD" in cli("balance", a, expect=0).stdout


def test_generated_ref_is_printed_and_replays(cli: Cli) -> None:
    acc = cli.open()
    result = cli("txn", "deposit", acc, "5.00", expect=0)
    first_line = result.stdout.splitlines()[0]
    match = re.fullmatch(r"ref: (cli-[0-9a-f]+)", first_line)
    assert match, result.stdout
    txn_id = re.search(r"posted (txn_[0-9a-f]+)", result.stdout).group(1)
    replay = cli.json("txn", "deposit", acc, "5.00", "--ref", match.group(1))
    assert replay["txn_id"] == txn_id and replay["ref"] == match.group(1)
    assert cli.balance(acc)["posted"] == "5.00"
    # An explicit ref is not echoed as a generated one.
    assert "ref:" not in cli("txn", "deposit", acc, "1.00", "--ref", "mine-1", expect=0).stdout


def test_ref_replay_returns_the_first_result_and_other_body_conflicts(cli: Cli) -> None:
    acc = cli.open()
    first = cli.deposit(acc, "100.00", ref="dep-1")
    again = cli.deposit(acc, "100.00", ref="dep-1")
    assert again["txn_id"] == first["txn_id"] and again == first
    assert cli.balance(acc)["posted"] == "100.00"  # posted once
    assert_one_error_line(cli("txn", "deposit", acc, "100.01", "--ref", "dep-1"), 6, "dep-1")
    assert_one_error_line(cli("txn", "withdraw", acc, "100.00", "--ref", "dep-1"), 6, "dep-1")
    assert cli.balance(acc)["posted"] == "100.00"
    # A rejected result replays too, with its exit code.
    assert cli.json("txn", "withdraw", acc, "999.00", "--ref", "w-1", expect=4)["status"] == "rejected"
    assert cli.json("txn", "withdraw", acc, "999.00", "--ref", "w-1", expect=4)["status"] == "rejected"


@pytest.mark.parametrize("amount", ["10.505", "1e3", "-5", "abc", "NaN", "1,000.00", "", " 5"])
@pytest.mark.parametrize("kind", ["deposit", "withdraw", "transfer"])
def test_bad_amount_is_one_line_naming_field_and_value(cli: Cli, kind: str, amount: str) -> None:
    a, b = cli.open("Ann"), cli.open("Ben")
    args = [a, b, amount] if kind == "transfer" else [a, amount]
    line = assert_one_error_line(cli("txn", kind, *args), 5, "amount")
    assert repr(amount) in line or (amount and amount in line), line
    assert cli.json("txn", "list")["transactions"] == []


def test_bad_amount_names_the_currency_rule(cli: Cli) -> None:
    acc = cli.open()
    line = assert_one_error_line(cli("txn", "deposit", acc, "10.505"), 5, "amount", "10.505")
    assert "USD" in line and "2" in line


@pytest.mark.parametrize("args", [
    ["txn", "deposit", "acc_doesnotexist", "1.00"],
    ["txn", "withdraw", "acc_doesnotexist", "1.00"],
    ["txn", "transfer", "acc_doesnotexist", "{a}", "1.00"],
    ["txn", "transfer", "{a}", "acc_doesnotexist", "1.00"],
    ["account", "show", "acc_doesnotexist"],
    ["account", "freeze", "acc_doesnotexist"],
    ["account", "close", "acc_doesnotexist"],
    ["balance", "acc_doesnotexist"],
    ["statement", "acc_doesnotexist"],
    ["txn", "list", "--account", "acc_doesnotexist"],
    ["txn", "show", "txn_doesnotexist"],
    ["txn", "explain", "txn_doesnotexist"],
    ["txn", "approve", "txn_doesnotexist"],
    ["txn", "reject", "txn_doesnotexist", "--reason", "x"],
    ["txn", "reverse", "txn_doesnotexist"],
    ["audit", "log", "--txn", "txn_doesnotexist"],
], ids=lambda args: " ".join(args[:2]) + ("-" + args[2] if args[0] == "txn" and args[1] == "transfer" else ""))
def test_unknown_ids_are_not_found(cli: Cli, args: list[str]) -> None:
    a = cli.open()
    args = [x.replace("{a}", a) for x in args]
    missing = next(x for x in args if "doesnotexist" in x)
    assert_one_error_line(cli(*args), 5, "not found", missing)
    assert_one_error_line(cli(*args, json_out=True), 5, "not found")


def test_unknown_institution_is_not_found(cli: Cli) -> None:
    assert_one_error_line(cli("account", "list", profile="nowhere"), 5, "nowhere", "not found")
    assert_one_error_line(cli("account", "open", "--holder", "A", profile="nowhere"), 5, "nowhere")


@pytest.mark.parametrize(("args", "words"), [
    (["txn", "list", "--status", "bogus"], ["--status", "bogus"]),
    (["txn", "deposit", "{a}", "1.00", "--at", "yesterday"], ["--at", "yesterday"]),
    (["txn", "deposit", "{a}", "1.00", "--at", "2026-01-01T10:00:00"], ["--at", "timezone"]),
    (["txn", "deposit", "{a}", "1.00", "--channel", "ATM!"], ["channel"]),
    (["txn", "deposit", "{a}", "1.00", "--currency", "EUR"], ["EUR"]),
    (["txn", "deposit", "{a}", "1.00", "--ref", "has space"], ["ref"]),
    (["txn", "transfer", "{a}", "{a}", "1.00"], ["two different accounts"]),
    (["txn", "expire", "--as-of", "tomorrow"], ["tomorrow"]),
    (["statement", "{a}", "--format", "xml"], ["--format", "xml"]),
    (["statement", "{a}", "--from", "2026-13-01"], ["--from", "2026-13-01"]),
])
def test_invalid_input_is_exit_5(cli: Cli, args: list[str], words: list[str]) -> None:
    a = cli.open()
    assert_one_error_line(cli(*[x.replace("{a}", a) for x in args]), 5, *words)


def test_usage_errors_are_exit_2(cli: Cli) -> None:
    acc = cli.open()
    assert cli("txn", "deposit", acc).exit_code == 2  # missing amount
    assert cli("txn", "deposit", acc, "1.00", "--no-such-option").exit_code == 2
    assert cli("account", "open").exit_code == 2  # --holder is required
    assert cli("txn", "reject", "txn_x").exit_code == 2  # --reason is required
    assert cli("no-such-command").exit_code == 2
    assert cli("txn", "list", "--limit", "0").exit_code == 2
    assert cli.json("txn", "list")["transactions"] == []


# ----------------------------------------------------------------- holds (Northwind)


def test_large_transfer_is_held_then_four_eyes_approval_posts_it(nw: Cli) -> None:
    a, b = nw.open("Ann", profile="northwind"), nw.open("Ben", profile="northwind")
    nw.deposit(a, "9000.00", profile="northwind")
    assert nw.json("txn", "transfer", a, b, "4999.99", profile="northwind")["status"] == "posted"
    nw.deposit(a, "5000.00", profile="northwind")

    text = nw("txn", "transfer", a, b, "5000.00", "--ref", "big-1", profile="northwind", expect=3)
    assert "held" in text.stdout and "northwind.large_transfer_review" in text.stdout
    held = nw.json("txn", "transfer", a, b, "5000.00", "--ref", "big-1", profile="northwind", expect=3)
    txn = held["txn_id"]
    assert (held["status"], held["amount"], held["fee_total"], held["code"]) == \
        ("held", "5000.00", "25.00", "northwind.large_transfer_review")
    bal = nw.balance(a, profile="northwind")
    assert (bal["posted"], bal["held"]) == ("8975.01", "5025.00")  # 9000 + 5000 - 4999.99 - 25.00 fee
    assert bal["available"] == "3950.01"

    listed = nw.json("txn", "list", "--status", "held", profile="northwind")["transactions"]
    assert [t["txn_id"] for t in listed] == [txn]
    assert txn in nw("txn", "list", "--status", "held", profile="northwind", expect=0).stdout
    assert nw.json("txn", "list", "--status", "held", profile="default")["transactions"] == []

    explained = nw.json("txn", "explain", txn, profile="northwind")
    assert explained["status"] == "held" and explained["code"] == "northwind.large_transfer_review"
    assert explained["profile_version"] == 1
    review = [r for r in explained["reasons"] if r["outcome"] == "review"]
    assert review == [{**review[0], "slot": "approval", "driver": "northwind.large_transfer_review",
                       "rule": "northwind.large_transfer_review", "threshold": "5000.00 USD",
                       "observed": "5000.00 USD"}]
    for reason in explained["reasons"]:
        assert {"driver", "rule", "threshold", "observed", "outcome", "message"} <= reason.keys()
    assert [e["action"] for e in explained["audit"]][-1] == "txn.held"
    human = nw("txn", "explain", txn, profile="northwind", expect=0).stdout
    assert "northwind.large_transfer_review" in human and "5000.00 USD" in human

    line = assert_one_error_line(nw("txn", "approve", txn, profile="northwind"), 4, "four-eyes", TELLER)
    assert txn in line
    assert nw.json("txn", "show", txn, profile="northwind")["status"] == "held"
    approved = nw.json("txn", "approve", txn, profile="northwind", actor=SUPERVISOR)
    assert approved["txn_id"] == txn and approved["status"] == "posted"
    shown = nw.json("txn", "show", txn, profile="northwind")
    assert (shown["status"], shown["initiator"], shown["resolved_by"]) == ("posted", TELLER, SUPERVISOR)
    assert nw.balance(a, profile="northwind") == {
        "id": a, "currency": "USD", "posted": "3950.01", "available": "3950.01", "held": "0.00",
        "status": "open"}
    assert nw.balance(b, profile="northwind")["posted"] == "9999.99"
    assert_one_error_line(nw("txn", "approve", txn, profile="northwind", actor="third"), 6, txn, "posted")
    assert_one_error_line(nw("txn", "reject", txn, "--reason", "late", profile="northwind"), 6, txn)


def held_transfer(nw: Cli, ref: str) -> tuple[str, str, str]:
    a, b = nw.open("Ann", profile="northwind"), nw.open("Ben", profile="northwind")
    nw.deposit(a, "6000.00", profile="northwind")
    held = nw.json("txn", "transfer", a, b, "5000.00", "--ref", ref, profile="northwind", expect=3)
    return a, b, held["txn_id"]


def test_reject_releases_the_hold_with_a_reason(nw: Cli) -> None:
    a, _b, txn = held_transfer(nw, "big-r")
    assert nw.balance(a, profile="northwind")["available"] == "975.00"
    assert nw("txn", "reject", txn, profile="northwind").exit_code == 2  # --reason is required
    assert_one_error_line(nw("txn", "reject", txn, "--reason", " ", profile="northwind"), 5, "reason")
    done = nw.json("txn", "reject", txn, "--reason", "customer did not confirm",
                   profile="northwind", actor=SUPERVISOR)
    assert done == {"txn_id": txn, "status": "rejected", "message": done["message"]}
    assert nw.balance(a, profile="northwind") == {
        "id": a, "currency": "USD", "posted": "6000.00", "available": "6000.00", "held": "0.00",
        "status": "open"}
    shown = nw.json("txn", "show", txn, profile="northwind")
    assert (shown["status"], shown["resolution"], shown["fee_total"]) == ("rejected", "customer did not confirm", "0.00")
    listed = nw.json("txn", "list", "--status", "rejected", profile="northwind")["transactions"]
    assert [(t["txn_id"], t["fee_total"]) for t in listed] == [(txn, "0.00")]
    log = nw.json("audit", "log", "--txn", txn, profile="northwind")["entries"]
    assert log[-1]["action"] == "txn.rejected"
    assert log[-1]["payload"]["reason"] == "customer did not confirm" and log[-1]["actor"] == SUPERVISOR
    assert_one_error_line(nw("txn", "approve", txn, profile="northwind", actor=SUPERVISOR), 6, "rejected")
    assert_one_error_line(nw("txn", "reverse", txn, profile="northwind"), 6, txn)


def test_expire_releases_old_holds_then_approve_is_refused(nw: Cli) -> None:
    a, _b, txn = held_transfer(nw, "big-e")
    assert nw.json("txn", "expire", "--as-of", later(1), profile="northwind") == {"expired": []}
    assert nw.json("txn", "show", txn, profile="northwind")["status"] == "held"
    assert "expired 0 hold(s)" in nw("txn", "expire", "--as-of", later(2), profile="northwind",
                                     expect=0).stdout
    # Northwind holds for 72 hours.
    assert nw.json("txn", "expire", "--as-of", later(73), profile="northwind") == {"expired": [txn]}
    assert nw.json("txn", "show", txn, profile="northwind")["status"] == "expired"
    assert nw.balance(a, profile="northwind")["available"] == "6000.00"
    assert_one_error_line(nw("txn", "approve", txn, profile="northwind", actor=SUPERVISOR), 6, txn, "expired")
    assert nw.json("txn", "show", txn, profile="northwind")["status"] == "expired"
    assert nw.json("txn", "list", "--status", "expired", profile="northwind")["transactions"][0]["txn_id"] == txn


def test_reverse_posts_a_linked_opposite_once(nw: Cli) -> None:
    a, b = nw.open("Ann", profile="northwind"), nw.open("Ben", profile="northwind")
    nw.deposit(a, "1000.00", profile="northwind")
    original = nw.json("txn", "transfer", a, b, "100.00", profile="northwind")
    assert original["fee_total"] == "0.50"
    assert nw.balance(a, profile="northwind")["posted"] == "899.50"

    reversal = nw.json("txn", "reverse", original["txn_id"], "--memo", "duplicate",
                       profile="northwind", actor=SUPERVISOR)
    assert reversal["reverses"] == original["txn_id"] and reversal["status"] == "posted"
    assert reversal["txn_id"] != original["txn_id"] and reversal["amount"] == "100.00"
    assert nw.balance(a, profile="northwind")["posted"] == "1000.00"  # fee refunded
    assert nw.balance(b, profile="northwind")["posted"] == "0.00"
    shown = nw.json("txn", "show", reversal["txn_id"], profile="northwind")
    assert (shown["kind"], shown["reverses"], shown["memo"]) == ("reversal", original["txn_id"], "duplicate")

    line = assert_one_error_line(nw("txn", "reverse", original["txn_id"], profile="northwind"), 6,
                                 original["txn_id"])
    assert reversal["txn_id"] in line  # names the reversal that already exists
    assert_one_error_line(nw("txn", "reverse", reversal["txn_id"], profile="northwind"), 6, "reversal")
    rejected = nw.json("txn", "withdraw", a, "5000.00", profile="northwind", expect=4)
    assert_one_error_line(nw("txn", "reverse", rejected["txn_id"], profile="northwind"), 6, "rejected")
    assert nw.balance(a, profile="northwind")["posted"] == "1000.00"


# ----------------------------------------------------------------- reports


def test_statement_formats_and_date_range(cli: Cli) -> None:
    acc = cli.open()
    dep = cli.deposit(acc, "100.00")["txn_id"]
    wd = cli.json("txn", "withdraw", acc, "30.25")["txn_id"]
    today = datetime.now(timezone.utc).date()  # the default institution keeps UTC
    span = ["--from", str(today - timedelta(days=1)), "--to", str(today + timedelta(days=1))]

    doc = json.loads(cli("statement", acc, "--format", "json", *span, expect=0).stdout)
    assert (doc["account"], doc["currency"], doc["opening"], doc["closing"]) == (acc, "USD", "0.00", "69.75")
    assert [(line["txn_id"], line["amount"], line["balance"]) for line in doc["lines"]] == [
        (dep, "100.00", "100.00"), (wd, "-30.25", "69.75")]
    assert all(line["posted_at"].endswith("+00:00") for line in doc["lines"])
    assert cli.json("statement", acc, *span) == doc  # --json is the json format

    rows = list(csv.reader(io.StringIO(cli("statement", acc, "--format", "csv", *span, expect=0).stdout)))
    assert rows[0] == ["posted_at", "txn_id", "rule", "amount", "balance", "currency", "ref", "memo",
                       "counterparty"]
    assert [(r[1], r[3], r[4], r[5]) for r in rows[1:]] == [
        (dep, "100.00", "100.00", "USD"), (wd, "-30.25", "69.75", "USD")]

    table = cli("statement", acc, "--format", "table", *span, expect=0).stdout
    assert dep in table and wd in table and "closing 69.75 USD" in table

    before = cli.json("statement", acc, "--to", str(today - timedelta(days=1)))
    assert before["lines"] == [] and before["closing"] == "0.00"
    after = cli.json("statement", acc, "--from", str(today + timedelta(days=1)))
    assert after["lines"] == [] and after["opening"] == "69.75" and after["closing"] == "69.75"
    assert len(cli.json("statement", acc)["lines"]) == 2


# ----------------------------------------------------------------- audit


def test_audit_verify_ok_then_broken_by_a_raw_edit(nw: Cli) -> None:
    nw("profile", "use", "default", expect=0)  # two institutions: choose one
    acc = nw.open()
    txn = nw.deposit(acc, "10.00")["txn_id"]
    ok = nw("audit", "verify", expect=0)
    assert "audit chain OK" in ok.stdout and ok.stderr == ""
    doc = nw.json("audit", "verify")
    assert doc["ok"] is True and doc["first_bad_seq"] is None and doc["entries"] >= 3

    seq = nw.json("audit", "log", "--txn", txn)["entries"][0]["seq"]
    with sqlite3.connect(db_file(nw)) as conn:
        changed = conn.execute("UPDATE audit_entry SET actor = 'mallory' WHERE institution_id = 'default' "
                               "AND seq = ?", (seq,)).rowcount
    assert changed == 1
    broken = nw("audit", "verify")
    line = assert_one_error_line(broken, 1, f"entry {seq}")
    assert "broken" in line
    doc = nw.json("audit", "verify", expect=1)
    assert doc["ok"] is False and doc["first_bad_seq"] == seq and str(seq) in doc["problem"]
    # Another institution's chain is its own.
    assert nw.json("audit", "verify", profile="northwind")["ok"] is True


def test_audit_log_by_txn_and_limit(nw: Cli) -> None:
    a, _b, txn = held_transfer(nw, "big-a")
    nw.json("txn", "approve", txn, profile="northwind", actor=SUPERVISOR)
    log = nw.json("audit", "log", "--txn", txn, profile="northwind")
    assert log["institution"] == "northwind"
    assert [e["action"] for e in log["entries"]] == ["txn.held", "txn.approved"]
    assert all(e["subject"] == txn for e in log["entries"])
    assert [e["actor"] for e in log["entries"]] == [TELLER, SUPERVISOR]
    for entry in log["entries"]:
        assert {"seq", "at", "actor", "action", "subject", "payload", "hash"} <= entry.keys()
        assert entry["at"].endswith("+00:00") and len(entry["hash"]) == 64
    newest = nw.json("audit", "log", "--txn", txn, "--limit", "1", profile="northwind")["entries"]
    assert [e["action"] for e in newest] == ["txn.approved"]
    everything = nw.json("audit", "log", "--limit", "3", profile="northwind")["entries"]
    assert len(everything) == 3 and everything[-1]["seq"] == max(e["seq"] for e in everything)
    assert txn in nw("audit", "log", "--txn", txn, profile="northwind", expect=0).stdout
    assert nw("audit", "log", "--limit", "0").exit_code == 2


# ----------------------------------------------------------------- profiles


GOOD_PROFILE = '''\
id = "acme"
name = "Acme Savings"
currency = "{currency}"
timezone = "{timezone}"
hold_expiry_hours = 24
{extra}
[[fee]]
driver = "northwind.transfer_fee"
params = {{ percent = "{percent}", min = "0.25", max = "25.00" }}

[[limit]]
driver = "{limit}"
params = {{}}

[[approval]]
driver = "core.auto_approve"
'''


def profile_toml(tmp_path: Path, name: str = "p.toml", *, currency: str = "USD", timezone: str = "UTC",
                 extra: str = "", percent: str = "0.5", limit: str = "core.no_overdraft",
                 id: str = "acme") -> Path:
    path = tmp_path / name
    text = GOOD_PROFILE.format(currency=currency, timezone=timezone, extra=extra, percent=percent,
                               limit=limit)
    path.write_text(text.replace('id = "acme"', f'id = "{id}"'), encoding="utf-8")
    return path


BAD_PROFILES = {
    "unknown key": ({"extra": 'colour = "red"'}, [["colour"]]),
    "unknown driver": ({"limit": "nope.nothing"}, [["limit[0].driver", "nope.nothing"]]),
    "bad params": ({"percent": "abc"}, [["fee[0].params", "percent", "abc"]]),
    "bad currency": ({"currency": "XXX"}, [["currency", "XXX"]]),
    "bad timezone": ({"timezone": "Mars/Olympus"}, [["timezone", "Mars/Olympus"]]),
    "everything at once": (
        {"extra": 'colour = "red"', "limit": "nope.nothing", "percent": "abc", "currency": "XXX",
         "timezone": "Mars/Olympus"},
        [["currency", "XXX"], ["timezone", "Mars/Olympus"], ["colour"],
         ["fee[0].params", "percent"], ["limit[0].driver", "nope.nothing"]]),
}


def test_a_good_profile_applies(cli: Cli, tmp_path: Path) -> None:
    applied = cli.json("profile", "apply", str(profile_toml(tmp_path)))
    assert (applied["institution"], applied["version"], applied["unchanged"]) == ("acme", 1, False)
    assert {"change": "added", "key": "id", "new": "acme"} in applied["changes"]
    again = cli("profile", "apply", str(profile_toml(tmp_path)), expect=0)
    assert "acme profile unchanged (version 1)" in again.stdout  # no new version
    assert cli.json("profile", "apply", str(profile_toml(tmp_path)))["unchanged"] is True
    assert cli.json("profile", "show", "acme")["id"] == "acme"
    changed = cli("profile", "apply", str(profile_toml(tmp_path, percent="0.6")), expect=0).stdout
    assert '~ fee[0].params.percent: "0.5" -> "0.6"' in changed and "applied acme profile version 2" in changed


@pytest.mark.parametrize("answer", ["y", "n"])
def test_profile_apply_on_a_terminal_shows_the_changes_and_asks(cli: Cli, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                answer: str) -> None:
    import bank_cli.profiles

    cli("profile", "apply", str(profile_toml(tmp_path)), expect=0)
    monkeypatch.setattr(bank_cli.profiles, "interactive", lambda: True)
    result = cli.runner.invoke(app, ["--db", cli.db_url, "profile", "apply",
                                     str(profile_toml(tmp_path, percent="0.6"))],
                               input=f"{answer}\n", env=cli.env())
    assert result.exit_code == 0, describe(result)
    assert '~ fee[0].params.percent: "0.5" -> "0.6"' in result.stdout and "apply these changes" in result.stdout
    version = cli.json("profile", "list")["institutions"]
    assert {r["id"]: r["profile_version"] for r in version}["acme"] == (2 if answer == "y" else 1)
    skipped = cli.runner.invoke(app, ["--db", cli.db_url, "profile", "apply", "--yes",
                                      str(profile_toml(tmp_path, percent="0.7"))], env=cli.env())
    assert skipped.exit_code == 0 and "apply these changes" not in skipped.stdout
    assert "applied acme profile version" in skipped.stdout


STRICT_PROFILE = '''\
id = "strict"
name = "Strict"
currency = "USD"
timezone = "UTC"
hold_expiry_hours = {hours}
channels = {channels}

[[fee]]
driver = "northwind.atm_withdrawal_fee"
params = {{ free_per_month = {free}, fee = "2.00", channel = "atm" }}
'''


@pytest.mark.parametrize(("hours", "channels", "free", "words"), [
    ("true", '["branch"]', "4", [["hold_expiry_hours", "integer"]]),
    ('"72"', '["branch"]', "4", [["hold_expiry_hours", "integer"]]),
    ("72.0", '["branch"]', "4", [["hold_expiry_hours", "integer"]]),
    ("72", '["Branch!"]', "4", [["channels", "Branch!"]]),
    ("72", '"branch"', "4", [["channels"]]),
    ("72", '["branch"]', '"4"', [["fee[0].params", "free_per_month"]]),
    ("72", '["branch", "online"]', "4", [["fee[0].params.channel", "'atm'", "branch, online"]]),
    ("true", '["x y"]', "4.0", [["hold_expiry_hours"], ["channels"], ["fee[0].params", "free_per_month"]]),
])
def test_profiles_are_strict_and_every_problem_is_reported_at_once(cli: Cli, tmp_path: Path, hours: str,
                                                                   channels: str, free: str,
                                                                   words: list[list[str]]) -> None:
    path = tmp_path / "strict.toml"
    path.write_text(STRICT_PROFILE.format(hours=hours, channels=channels, free=free))
    result = cli("profile", "apply", str(path))
    assert result.exit_code == 5, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == len(words), describe(result)
    for line, expected in zip(lines, words):
        for word in expected:
            assert word in line, (word, line)
    assert "strict" not in [r["id"] for r in cli.json("profile", "list")["institutions"]]


def test_channels_and_products_outside_the_profile_are_refused(nw: Cli) -> None:
    acc = nw.open("Ann", profile="northwind")
    nw.deposit(acc, "100.00", profile="northwind")
    assert_one_error_line(nw("txn", "withdraw", acc, "1.00", "--channel", "atmm", profile="northwind"), 5,
                          "channel", "'atmm'", "branch, atm, online, mobile")
    assert_one_error_line(nw("account", "open", "--holder", "B", "--product", "chekcing-plus",
                             profile="northwind"), 5, "product", "chekcing-plus", "checking-plus")
    assert nw.balance(acc, profile="northwind")["posted"] == "100.00"


@pytest.mark.parametrize("case", list(BAD_PROFILES))
def test_bad_profile_lists_every_problem_and_applies_nothing(nw: Cli, tmp_path: Path, case: str) -> None:
    changes, expected = BAD_PROFILES[case]
    before = nw.json("profile", "list")
    shown_before = nw.json("profile", "show", "northwind")
    for inst in ("acme", "northwind"):  # a new institution, and a new version of an existing one
        result = nw("profile", "apply", str(profile_toml(tmp_path, f"{inst}.toml", id=inst, **changes)))
        assert result.exit_code == 5, describe(result)
        lines = result.stderr.splitlines()
        assert len(lines) == len(expected), describe(result)
        assert "Traceback" not in result.stderr
        for line, words in zip(lines, expected):
            assert line.startswith("error: "), line
            for word in words:
                assert word in line, (word, line)
        assert result.stdout == ""
    assert nw.json("profile", "list") == before  # no acme, northwind still at version 1
    assert nw.json("profile", "show", "northwind") == shown_before
    assert_one_error_line(nw("profile", "show", "acme"), 5, "acme")


def test_profile_apply_file_problems(cli: Cli, tmp_path: Path) -> None:
    assert_one_error_line(cli("profile", "apply", str(tmp_path / "missing.toml")), 5, "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('id = "x"\nname = \n', encoding="utf-8")
    assert_one_error_line(cli("profile", "apply", str(broken)), 5, "broken.toml", "TOML")


def test_profile_list_show_use_and_overrides(nw: Cli, tmp_path: Path) -> None:
    nw.apply("harbor_policies")
    listed = nw.json("profile", "list")
    assert listed["active"] is None  # three institutions and none chosen
    rows = {r["id"]: r for r in listed["institutions"]}
    assert set(rows) == {"default", "northwind", "harbor"}
    assert (rows["harbor"]["timezone"], rows["harbor"]["profile_version"]) == ("America/Chicago", 1)
    assert "Harbor Credit Union" in nw("profile", "list", expect=0).stdout

    shown = nw.json("profile", "show", "northwind")
    assert shown["id"] == "northwind" and shown["hold_expiry_hours"] == 72
    assert [d["driver"] for d in shown["fee"]] == ["northwind.transfer_fee", "northwind.atm_withdrawal_fee"]
    assert nw.json("profile", "show", profile="harbor")["id"] == "harbor"
    assert_one_error_line(nw("profile", "show", "nowhere"), 5, "nowhere")

    config = nw.config_dir / "config.toml"
    assert not config.exists()
    assert_one_error_line(nw("profile", "use", "nowhere"), 5, "nowhere")
    assert not config.exists()
    used = nw.json("profile", "use", "harbor")
    assert used["active"] == "harbor" and Path(used["config"]) == config
    assert 'profile = "harbor"' in config.read_text()
    assert nw.json("profile", "list")["active"] == "harbor"

    acc = nw.open("Hal")  # no --profile: the configured institution
    assert nw.json("account", "show", acc, profile="harbor")["institution"] == "harbor"
    assert nw.json("account", "list")["institution"] == "harbor"
    # --profile and BANK_PROFILE override the configuration, --profile first.
    assert nw.json("account", "list", profile="northwind")["institution"] == "northwind"
    assert nw.json("account", "list", env={"BANK_PROFILE": "northwind"})["institution"] == "northwind"
    assert nw.json("account", "list", profile="default",
                   env={"BANK_PROFILE": "northwind"})["institution"] == "default"
    assert_one_error_line(nw("account", "show", acc, env={"BANK_PROFILE": "northwind"}), 5, "not found")
    assert nw.json("profile", "use", "northwind")["active"] == "northwind"
    assert nw.json("account", "list")["institution"] == "northwind"


# ----------------------------------------------------------------- global options


def test_database_and_actor_from_the_environment(cli: Cli, tmp_path: Path) -> None:
    acc = cli.open()
    # BANK_DATABASE_URL instead of --db.
    listed = cli.json("account", "list", db=None, env={"BANK_DATABASE_URL": cli.db_url})
    assert [a["id"] for a in listed["accounts"]] == [acc]
    # --db beats BANK_DATABASE_URL.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert cli.json("init", db=None, env={"BANK_DATABASE_URL": other})["database"].endswith("other.db")
    assert cli.json("account", "list", env={"BANK_DATABASE_URL": other})["accounts"][0]["id"] == acc

    # BANK_ACTOR (set by the fixture), --actor over it, else the OS user.
    by_env = cli.deposit(acc, "1.00")["txn_id"]
    by_flag = cli.deposit(acc, "1.00", actor="flag-actor", env={"BANK_ACTOR": "env-actor"})["txn_id"]
    by_other_env = cli.deposit(acc, "1.00", env={"BANK_ACTOR": "env-actor"})["txn_id"]
    plain = Cli(cli.db_url, cli.config_dir, actor=None)
    by_os = plain.deposit(acc, "1.00")["txn_id"]
    initiators = [cli.json("txn", "show", t)["initiator"] for t in (by_env, by_flag, by_other_env, by_os)]
    assert initiators == [TELLER, "flag-actor", "env-actor", getpass.getuser()]


def test_sqlite_connections_keep_statement_journals_in_memory_and_a_sized_page_cache(
        cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from bank_core.storage.engine import ENV_SQLITE_CACHE_MIB, SQLITE_CACHE_MIB, make_engine

    def pragmas() -> tuple[int, int]:
        engine = make_engine(cli.db_url)
        try:
            with engine.connect() as conn:
                return (conn.exec_driver_sql("PRAGMA temp_store").scalar(),
                        conn.exec_driver_sql("PRAGMA cache_size").scalar())
        finally:
            engine.dispose()

    monkeypatch.delenv(ENV_SQLITE_CACHE_MIB, raising=False)
    assert pragmas() == (2, -1024 * SQLITE_CACHE_MIB)  # 2: MEMORY; negative: KiB
    monkeypatch.setenv(ENV_SQLITE_CACHE_MIB, "8")
    assert pragmas() == (2, -8192)
    acc = cli.open()
    for bad in ("0", "lots", "-3", "70000"):
        assert_one_error_line(cli("account", "list", env={ENV_SQLITE_CACHE_MIB: bad}), 5,
                              ENV_SQLITE_CACHE_MIB, repr(bad))
    listed = cli.json("account", "list", env={ENV_SQLITE_CACHE_MIB: "16"})
    assert [a["id"] for a in listed["accounts"]] == [acc]


def test_system_error_is_one_line_without_debug_and_a_traceback_with_it(cli: Cli) -> None:
    result = cli("account", "list", db=UNREACHABLE_PG)
    line = assert_one_error_line(result, 7, "OperationalError", "--debug")
    assert "Background on this error" not in line
    debug = cli("account", "list", db=UNREACHABLE_PG, debug=True)
    assert debug.exit_code == 7
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("error: ")


def test_domain_error_with_debug_shows_the_traceback(cli: Cli) -> None:
    plain = cli("account", "show", "acc_nope")
    assert_one_error_line(plain, 5, "not found")
    debug = cli("account", "show", "acc_nope", debug=True)
    assert debug.exit_code == 5 and "Traceback" in debug.stderr and "NotFound" in debug.stderr


# ----------------------------------------------------------------- --json everywhere


def test_every_command_speaks_json(nw: Cli, tmp_path: Path) -> None:
    """One JSON document on stdout per command, amounts as strings."""
    docs: dict[str, Any] = {}
    docs["init"] = nw.json("init")
    docs["db current"] = nw.json("db", "current")
    assert docs["db current"]["current"] == docs["db current"]["head"]
    docs["db upgrade"] = nw.json("db", "upgrade")
    assert docs["db upgrade"]["revision"] == docs["db current"]["head"]
    docs["profile apply"] = nw.json("profile", "apply", str(profile_file("harbor_policies")))
    assert (docs["profile apply"]["institution"], docs["profile apply"]["version"]) == ("harbor", 1)
    docs["profile list"] = nw.json("profile", "list")
    docs["profile show"] = nw.json("profile", "show", "harbor")
    docs["profile use"] = nw.json("profile", "use", "northwind")
    a = nw.json("account", "open", "--holder", "Ann")["id"]
    b = nw.json("account", "open", "--holder", "Ben")["id"]
    docs["account list"] = nw.json("account", "list")
    docs["account show"] = nw.json("account", "show", a)
    docs["account freeze"] = nw.json("account", "freeze", b)
    docs["account unfreeze"] = nw.json("account", "unfreeze", b)
    docs["deposit"] = nw.json("txn", "deposit", a, "7000.00")
    docs["withdraw"] = nw.json("txn", "withdraw", a, "100.00", "--channel", "atm")
    docs["transfer"] = nw.json("txn", "transfer", a, b, "200.00")
    held = nw.json("txn", "transfer", a, b, "5000.00", expect=3)
    held2 = nw.json("txn", "transfer", b, a, "150.00")  # a small one back
    docs["txn show"] = nw.json("txn", "show", held["txn_id"])
    docs["txn list"] = nw.json("txn", "list", "--account", a, "--limit", "10")
    docs["txn explain"] = nw.json("txn", "explain", held["txn_id"])
    docs["txn approve"] = nw.json("txn", "approve", held["txn_id"], actor=SUPERVISOR)
    docs["txn reverse"] = nw.json("txn", "reverse", held2["txn_id"])
    again = nw.json("txn", "transfer", a, b, "1000.00")
    assert again["status"] == "posted"
    docs["txn expire"] = nw.json("txn", "expire")
    docs["balance"] = nw.json("balance", a)
    docs["statement"] = nw.json("statement", a)
    docs["audit verify"] = nw.json("audit", "verify")
    docs["audit log"] = nw.json("audit", "log", "--limit", "5")
    c = nw.json("account", "open", "--holder", "Cat")["id"]
    docs["account close"] = nw.json("account", "close", c)
    nw.json("txn", "deposit", a, "6000.00")
    rejected_hold = nw.json("txn", "transfer", a, b, "5000.00", expect=3)
    docs["txn reject"] = nw.json("txn", "reject", rejected_hold["txn_id"], "--reason", "no")

    for name, doc in docs.items():
        money_strings(doc, name)
    assert docs["deposit"]["amount"] == "7000.00" and docs["deposit"]["currency"] == "USD"
    assert docs["withdraw"]["fee_total"] == "0.00"  # the first four ATM withdrawals are free
    assert docs["transfer"]["fee_total"] == "1.00" and docs["transfer"]["reasons"]
    assert docs["txn show"]["txn_id"] == held["txn_id"] and docs["txn show"]["status"] == "held"
    assert {t["txn_id"] for t in docs["txn list"]["transactions"]} >= {held["txn_id"], held2["txn_id"]}
    assert docs["txn approve"]["status"] == "posted"
    assert docs["txn reverse"]["reverses"] == held2["txn_id"]
    assert docs["txn expire"] == {"expired": []}
    assert docs["txn reject"]["status"] == "rejected"
    assert {"posted", "available", "held", "currency"} <= docs["balance"].keys()
    assert docs["account close"] == {"id": c, "status": "closed"}
    assert docs["audit verify"]["ok"] is True
    assert len(docs["audit log"]["entries"]) == 5
    assert docs["profile use"]["active"] == "northwind"
    assert docs["account list"]["institution"] == "northwind"


# ----------------------------------------------------------------- help


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        if hasattr(command, "list_commands"):  # a group (the root one loads its groups lazily)
            for name in sorted(command.list_commands(None)):
                walk(command.get_command(None, name), [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "bank")
def test_help_exits_0_with_an_example(cli: Cli, path: list[str]) -> None:
    result = cli(*path, "--help", db=None)
    assert result.exit_code == 0, describe(result)
    assert "Example:" in result.stdout, describe(result)
    assert "Usage:" in result.stdout


def test_help_covers_the_documented_commands() -> None:
    paths = {" ".join(p) for p in _command_paths()}
    assert {"init", "balance", "statement", "demo", "account open", "account close", "txn deposit",
            "txn approve", "txn expire", "audit verify", "audit log", "profile apply",
            "profile use"} <= paths


# ----------------------------------------------------------------- demo


def test_demo_json_is_ok_for_both_institutions(cli: Cli, tmp_path: Path) -> None:
    doc = cli.json("demo", "--db-file", str(tmp_path / "demo.db"), db=None)
    assert doc["ok"] is True
    assert {k: v["audit_ok"] for k, v in doc["institutions"].items()} == {"northwind": True, "harbor": True}
    assert all(step["ok"] for step in doc["steps"])
    again = cli("demo", "--db-file", str(tmp_path / "demo.db"), db=None)
    assert again.exit_code == 2 and "fresh" in again.stderr


# ----------------------------------------------------------------- the installed entry point


def test_entry_point_a_small_day(tmp_path: Path) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'ep.db'}"]
    cfg = tmp_path / "config"
    init = run_bank([*db, "init", "--default-institution"], cfg)
    assert init.returncode == 0 and "database ready" in init.stdout, describe(init)
    opened = run_bank([*db, "account", "open", "--holder", "Ann"], cfg)
    assert opened.returncode == 0 and re.fullmatch(r"acc_[0-9a-f]+\n", opened.stdout), describe(opened)
    acc = opened.stdout.strip()
    deposit = run_bank([*db, "--json", "txn", "deposit", acc, "100.00", "--ref", "ep-1"], cfg)
    assert deposit.returncode == 0, describe(deposit)
    doc = json.loads(deposit.stdout)
    assert (doc["status"], doc["amount"], doc["currency"]) == ("posted", "100.00", "USD")
    rejected = run_bank([*db, "txn", "withdraw", acc, "100.01"], cfg)
    assert rejected.returncode == 4 and "rejected" in rejected.stdout, describe(rejected)
    bad = run_bank([*db, "txn", "withdraw", acc, "-5"], cfg)
    assert_one_error_line(bad, 5, "amount", "'-5'")


def test_entry_point_system_error_and_debug(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    plain = run_bank(["--db", UNREACHABLE_PG, "account", "list"], cfg)
    assert_one_error_line(plain, 7, "OperationalError")
    debug = run_bank(["--debug", "--db", UNREACHABLE_PG, "account", "list"], cfg)
    assert debug.returncode == 7 and "Traceback (most recent call last)" in debug.stderr


def test_entry_point_demo(tmp_path: Path) -> None:
    result = run_bank(["demo", "--db-file", str(tmp_path / "demo.db")], tmp_path / "config", timeout=120)
    assert result.returncode == 0, describe(result)
    assert re.search(r"northwind: .*audit chain OK", result.stdout), result.stdout[-2000:]
    assert re.search(r"harbor: .*audit chain OK", result.stdout), result.stdout[-2000:]
    assert "MISMATCH" not in result.stdout and result.stderr == ""


def test_writes_name_the_institution(nw: Cli) -> None:
    opened = nw("account", "open", "--holder", "Ann", profile="northwind", expect=0)
    acc = opened.stdout.strip()
    assert opened.stderr == f"opened {acc} at northwind (USD)\n"
    assert f"at northwind" in nw("txn", "deposit", acc, "10.00", profile="northwind", expect=0).stdout
    assert f"{acc} frozen at northwind" in nw("account", "freeze", acc, profile="northwind", expect=0).stdout
    assert "hold(s) at northwind" in nw("txn", "expire", profile="northwind", expect=0).stdout
