"""Reading an institution whole: tables that never cut an id or an amount,
``txn list`` filters and formats, the institution's own accounts, the trial
balance, the daily summary and statements in local time (real ``bank``
command, on a fresh SQLite file and a fresh PostgreSQL database)."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import bank_cli.state
from cli_support import Cli, assert_one_error_line

MAX = "10000000000000.00"  # the largest amount: 10^15 minor units


@pytest.fixture
def cli(fresh_db_url: str, tmp_path: Path) -> Cli:
    """A fresh database (SQLite file or PostgreSQL database) after ``bank init``."""
    cli = Cli(fresh_db_url, tmp_path / "config")
    cli("init", "--default-institution", expect=0)
    return cli


@pytest.mark.parametrize("width", [80, 120])
def test_txn_list_at_narrow_widths_shows_whole_ids_and_amounts(cli: Cli, width: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = cli.open("Ann"), cli.open("Ben")
    cli.deposit(a, MAX)
    cli.json("txn", "transfer", a, b, "12345678901.23", "--memo", "a long memo " * 10)
    cli.json("txn", "withdraw", b, "999999999999.99", expect=4)
    ids = [t["txn_id"] for t in cli.json("txn", "list")["transactions"]]
    monkeypatch.setattr(bank_cli.state.out, "width", width)
    text = cli("txn", "list", expect=0).stdout
    assert re.findall(r"txn_[0-9a-f]+", text) == ids
    assert f"{MAX} USD" in text and "12345678901.23 USD" in text and "999999999999.99 USD" in text
    accounts = cli("account", "list", expect=0).stdout
    assert a in accounts and b in accounts and "9987654321098.77" in accounts
    shown = cli("txn", "show", ids[1], expect=0).stdout
    assert ids[1] in shown and a in shown and b in shown


def test_txn_list_filters_and_formats(cli: Cli) -> None:
    a, b = cli.open("Ann"), cli.open("Ben")
    dep = cli.deposit(a, "100.00", ref="f-dep")["txn_id"]
    move = cli.json("txn", "transfer", a, b, "10.00", "--ref", "f-move")["txn_id"]
    wd = cli.json("txn", "withdraw", a, "500.00", "--ref", "f-wd", expect=4)["txn_id"]
    ids = lambda *args: [t["txn_id"] for t in cli.json("txn", "list", *args)["transactions"]]  # noqa: E731
    assert ids("--kind", "transfer") == [move]
    assert ids("--kind", "deposit", "--status", "posted") == [dep]
    assert ids("--status", "rejected") == [wd]
    assert ids("--ref", "f-dep") == [dep]
    today = datetime.now(timezone.utc).date()
    assert set(ids("--from", str(today), "--to", str(today))) == {dep, move, wd}
    assert ids("--to", str(today - timedelta(days=1))) == []
    assert ids("--from", str(today + timedelta(days=1))) == []
    rows = list(csv.DictReader(io.StringIO(cli("txn", "list", "--format", "csv", expect=0).stdout)))
    assert {r["txn_id"] for r in rows} == {dep, move, wd}
    assert {r["ref"]: r["amount"] for r in rows} == {"f-dep": "100.00", "f-move": "10.00", "f-wd": "500.00"}
    assert cli("txn", "list", "--format", "json", expect=0).stdout.startswith("{")
    assert_one_error_line(cli("txn", "list", "--kind", "payment"), 5, "--kind", "payment")
    assert_one_error_line(cli("txn", "list", "--format", "xml"), 5, "--format", "xml")
    assert_one_error_line(cli("txn", "list", "--from", str(today), "--to", str(today - timedelta(days=2))),
                          5, "--from", "--to")


def test_the_institutions_own_accounts_can_be_listed_and_read(cli: Cli) -> None:
    a = cli.open("Ann")
    cli.deposit(a, "70.00")
    customers = cli.json("account", "list")["accounts"]
    assert [c["id"] for c in customers] == [a]
    every = {d["role"]: d for d in cli.json("account", "list", "--internal")["accounts"] if d["role"] != "customer"}
    assert set(every) >= {"cash", "fee_income"}
    cash = every["cash"]["id"]
    assert cash in cli("account", "list", "--internal", expect=0).stdout
    assert cli.json("account", "show", cash)["posted"] == "-70.00"
    assert cli.json("balance", cash)["posted"] == "-70.00"
    assert [line["amount"] for line in cli.json("statement", cash)["lines"]] == ["-70.00"]
    # Reading is not moving: money never goes to or from them by hand.
    assert_one_error_line(cli("txn", "deposit", cash, "1.00"), 5, "not found")


def test_trial_balance_sums_to_zero_per_currency(cli: Cli) -> None:
    cli.apply("northwind_policies")
    nw = lambda *args, **kw: cli.json(*args, profile="northwind", **kw)  # noqa: E731
    a = cli.open("Ann", profile="northwind")
    b = cli.open("Ben", profile="northwind")
    nw("txn", "deposit", a, "1000.00")
    before = datetime.now(timezone.utc).isoformat()
    nw("txn", "transfer", a, b, "100.00")  # 0.50 fee
    doc = nw("report", "trial-balance")
    usd = doc["currencies"]["USD"]
    assert doc["balanced"] is True and usd["balanced"] is True and usd["net"] == "0.00"
    balances = {x["account"]: x["balance"] for x in usd["accounts"]}
    assert (balances[a], balances[b]) == ("899.50", "100.00")
    assert usd["debit"] == usd["credit"] == "1000.00"
    roles = {x["role"]: x["balance"] for x in usd["accounts"] if x["role"] != "customer"}
    assert (roles["cash"], roles["fee_income"]) == ("-1000.00", "0.50")
    earlier = nw("report", "trial-balance", "--as-of", before)["currencies"]["USD"]
    assert {x["account"]: x["balance"] for x in earlier["accounts"]}[a] == "1000.00"
    text = cli("report", "trial-balance", profile="northwind", expect=0).stdout
    assert a in text and "balanced" in text and "899.50" in text


def test_daily_summary_counts_amounts_and_fees_by_rule(cli: Cli) -> None:
    cli.apply("northwind_policies")
    nw = lambda *args, **kw: cli.json(*args, profile="northwind", **kw)  # noqa: E731
    a = cli.open("Ann", profile="northwind")
    b = cli.open("Ben", profile="northwind")
    nw("txn", "deposit", a, "1000.00")
    nw("txn", "transfer", a, b, "100.00")
    nw("txn", "transfer", a, b, "200.00")
    nw("txn", "withdraw", b, "5000.00", expect=4)
    doc = nw("report", "daily")
    assert doc["timezone"] == "America/New_York"
    groups = {(r["kind"], r["status"]): (r["count"], r["amount"], r["fees"]) for r in doc["transactions"]}
    assert groups == {("deposit", "posted"): (1, "1000.00", "0.00"),
                      ("transfer", "posted"): (2, "300.00", "1.50"),
                      ("withdrawal", "rejected"): (1, "5000.00", "0.00")}
    assert doc["fees"] == [{"rule": "northwind.transfer_fee", "currency": "USD", "count": 2, "amount": "1.50"}]
    yesterday = datetime.fromisoformat(doc["date"]).date() - timedelta(days=1)
    assert nw("report", "daily", "--date", str(yesterday))["transactions"] == []
    assert "northwind.transfer_fee" in cli("report", "daily", profile="northwind", expect=0).stdout
    assert_one_error_line(cli("report", "daily", "--date", "9999-12-31", profile="northwind"), 5, "--date")


def test_statement_in_local_time_with_memo_ref_and_counterparty(cli: Cli) -> None:
    cli.apply("northwind_policies")
    a = cli.open("Ann", profile="northwind")
    b = cli.open("Ben", profile="northwind")
    cli.json("txn", "deposit", a, "1000.00", "--ref", "s-dep", "--memo", "salary", profile="northwind")
    cli.json("txn", "transfer", a, b, "100.00", "--ref", "s-rent", "--memo", "rent", profile="northwind")
    doc = cli.json("statement", a, profile="northwind")
    assert doc["timezone"] == "America/New_York"
    offset = datetime.now(timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).isoformat()[-6:]
    assert all(line["posted_at"].endswith(offset) for line in doc["lines"])
    rows = [(l["ref"], l["memo"], l["counterparty"], l["rule"], l["amount"]) for l in doc["lines"]]
    assert rows == [("s-dep", "salary", "cash", "deposit", "1000.00"),
                    ("s-rent", "rent", b, "transfer", "-100.00"),
                    ("s-rent", "rent", "fee income", "northwind.transfer_fee", "-0.50")]
    text = cli("statement", a, profile="northwind", expect=0).stdout
    assert "rent" in text and "s-rent" in text and "America/New_York" in text
    assert_one_error_line(cli("statement", a, "--from", "2026-12-02", "--to", "2026-12-01",
                              profile="northwind"), 5, "--from", "after", "--to")
