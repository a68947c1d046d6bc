"""Bad command-line input: one line, exit 2 (command line) or 5 (data),
never 7, and nothing written; on SQLite and on PostgreSQL alike.

Each case is one the corpus found reported as a system error (exit 7),
stored differently by the two databases, or silently accepted.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bad_input_support import bank, funded, written  # noqa: F401 - fixtures
from bank_core.limits import MAX_MEMO_LENGTH
from cli_support import Cli, assert_one_error_line

DIGITS = "9" * 5000


def ago(**delta: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(**delta)).isoformat()


# (args with {a} for a funded account, exit code, words of the one error line)
CASES = {
    "5000-digit amount": (["txn", "deposit", "{a}", DIGITS], 5, ["amount", "characters"]),
    "5000-digit withdrawal": (["txn", "withdraw", "{a}", DIGITS], 5, ["amount"]),
    "at year 1": (["txn", "deposit", "{a}", "1.00", "--at", "0001-01-01T00:00:00Z"], 5, ["--at", "range"]),
    "at year 9999 minus 5": (["txn", "deposit", "{a}", "1.00", "--at", "9999-12-31T23:00:00-05:00"], 5,
                             ["--at", "range"]),
    "at year 999": (["txn", "deposit", "{a}", "1.00", "--at", "0999-06-01T12:00:00Z"], 5, ["--at"]),
    "at a month back": (["txn", "deposit", "{a}", "1.00", "--at", ago(days=30)], 5,
                        ["at", "window", "7d", "max_backdate"]),
    "at a day ahead": (["txn", "deposit", "{a}", "1.00", "--at", ago(days=-1)], 5,
                       ["at", "window", "5m", "max_future"]),
    "at before the account was opened": (["txn", "deposit", "{a}", "1.00", "--at", ago(hours=1)], 5,
                                         ["before account", "opened"]),
    "statement to year 9999": (["statement", "{a}", "--to", "9999-12-31"], 5, ["--to", "range"]),
    "statement from after to": (["statement", "{a}", "--from", "2026-12-01", "--to", "2026-11-01"], 5,
                                ["--from", "after", "--to"]),
    "expire as-of year 1": (["txn", "expire", "--as-of", "0001-01-01T00:00:00Z"], 5, ["--as-of", "range"]),
    "expire as-of a bare date": (["txn", "expire", "--as-of", "0001-01-01"], 5, ["--as-of", "timezone"]),
    "NUL in memo": (["txn", "deposit", "{a}", "1.00", "--memo", "a\x00b"], 5, ["memo", "control"]),
    "lone surrogate in memo": (["txn", "deposit", "{a}", "1.00", "--memo", "\ud800"], 5, ["memo", "surrogate"]),
    "memo too long": (["txn", "deposit", "{a}", "1.00", "--memo", "m" * (MAX_MEMO_LENGTH + 1)], 5,
                      ["memo", "500"]),
    "reject reason of 600": (["txn", "reject", "txn_x", "--reason", "r" * 600], 5, ["--reason", "500"]),
    "reverse memo of 600": (["txn", "reverse", "txn_x", "--memo", "r" * 600], 5, ["--memo", "500"]),
    "empty currency": (["account", "open", "--holder", "Ann", "--currency", ""], 5, ["currency", "empty"]),
    "holder of 300": (["account", "open", "--holder", "h" * 300], 5, ["holder", "200"]),
    "holder with NUL": (["account", "open", "--holder", "A\x00n"], 5, ["holder", "control"]),
    "account id with NUL": (["account", "show", "acc_\x00"], 5, ["not found"]),
    "txn id with NUL": (["txn", "show", "txn_\x00"], 5, ["not found"]),
    "audit log of a txn id with NUL": (["audit", "log", "--txn", "txn_\x00"], 5, ["not found"]),
    "transfer to an id with NUL": (["txn", "transfer", "{a}", "acc\x00", "1.00"], 5, ["not found"]),
    "ref of 5000": (["txn", "deposit", "{a}", "1.00", "--ref", "r" * 5000], 5, ["ref", "200"]),
    "channel with NUL": (["txn", "deposit", "{a}", "1.00", "--channel", "atm\x00"], 5, ["channel"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_command_line_input_is_one_line_and_writes_nothing(bank: Cli, case: str) -> None:
    args, code, words = CASES[case]
    acc = funded(bank)
    before = written(bank.db_url)
    result = bank(*[a.replace("{a}", acc) for a in args])
    assert_one_error_line(result, code, *words)
    assert written(bank.db_url) == before


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--actor", "a" * 300, ["--actor", "200"]),
    ("--actor", "a\x00b", ["--actor", "control"]),
    ("--profile", "Bad Bank", ["--profile", "institution id"]),
    ("--profile", "x\x00", ["--profile"]),
])
def test_bad_global_options_are_usage_errors(bank: Cli, option: str, value: str, words: list[str]) -> None:
    acc = funded(bank)
    before = written(bank.db_url)
    result = bank(option, value, "txn", "deposit", acc, "1.00")
    assert_one_error_line(result, 2, *words)
    assert written(bank.db_url) == before


def test_at_inside_the_window_round_trips(bank: Cli) -> None:
    """An accepted ``at`` comes back as the same instant (microseconds and
    all) from both databases, whatever offset it was written in."""
    from bank_wiring import build

    svc = build(bank.db_url)
    acc = svc.open_account("default", holder="Old Holder", actor="setup",
                           opened_at=datetime.now(timezone.utc) - timedelta(days=30)).id
    svc.engine.dispose()
    moment = (datetime.now(timezone.utc) - timedelta(days=6, hours=23)).replace(microsecond=123456)
    given = moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    posted = bank.json("txn", "deposit", acc, "1.00", "--at", given)
    assert posted["at"] == moment.isoformat()
    assert bank.json("txn", "show", posted["txn_id"])["at"] == moment.isoformat()
    assert [t["at"] for t in bank.json("txn", "list", "--account", acc)["transactions"]] == [moment.isoformat()]
    soon = (datetime.now(timezone.utc) + timedelta(minutes=4)).isoformat()
    assert bank.json("txn", "deposit", acc, "1.00", "--at", soon)["status"] == "posted"


def test_the_window_comes_from_the_profile(bank: Cli, tmp_path: Path) -> None:
    profile = tmp_path / "wide.toml"
    profile.write_text('id = "wide"\nname = "Wide"\ncurrency = "USD"\ntimezone = "UTC"\n'
                       'max_backdate = "40d"\nmax_future = "1h"\n'
                       '[[limit]]\ndriver = "core.no_overdraft"\n')
    bank("profile", "apply", str(profile), expect=0)
    from bank_wiring import build

    svc = build(bank.db_url)
    acc = svc.open_account("wide", holder="W", actor="setup",
                           opened_at=datetime.now(timezone.utc) - timedelta(days=90)).id
    svc.engine.dispose()
    assert bank.json("txn", "deposit", acc, "1.00", "--at", ago(days=39), profile="wide")["status"] == "posted"
    assert bank.json("txn", "deposit", acc, "1.00", "--at", ago(minutes=-50), profile="wide")["status"] == "posted"
    assert_one_error_line(bank("txn", "deposit", acc, "1.00", "--at", ago(days=41), profile="wide"), 5,
                          "40d", "1h", "window")


@pytest.mark.parametrize("value", ["7 days", "-1d", "1w", "", "3661d", "7"])
def test_a_bad_window_in_a_profile_is_refused(bank: Cli, tmp_path: Path, value: str) -> None:
    profile = tmp_path / "bad.toml"
    profile.write_text(f'id = "badwin"\nname = "B"\ncurrency = "USD"\ntimezone = "UTC"\n'
                       f'max_backdate = {json.dumps(value)}\n')
    result = bank("profile", "apply", str(profile))
    assert_one_error_line(result, 5, "max_backdate")


@pytest.mark.parametrize(("content", "words"), [
    (None, ["is a directory"]),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ["not UTF-8"]),
    (b'id = "big"\nname = "B"\ncurrency = "USD"\ntimezone = "UTC"\n'
     b'[[limit]]\ndriver = "core.no_overdraft"\n[[fee]]\ndriver = "core.no_fee"\n'
     b'[[approval]]\ndriver = "core.auto_approve"\nparams = {}\n'
     b'hold_expiry_hours = ' + b"9" * 5000 + b"\n", ["TOML"]),
])
def test_profile_apply_of_an_unreadable_file_is_one_line(bank: Cli, tmp_path: Path, content: bytes | None,
                                                          words: list[str]) -> None:
    path = tmp_path / "dir.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    before = written(bank.db_url)
    assert_one_error_line(bank("profile", "apply", str(path)), 5, str(path), *words)
    assert written(bank.db_url) == before


def test_a_5000_digit_amount_param_is_a_profile_problem(bank: Cli, tmp_path: Path) -> None:
    path = tmp_path / "nw.toml"
    path.write_text('id = "nwx"\nname = "N"\ncurrency = "USD"\ntimezone = "UTC"\n'
                    f'[[limit]]\ndriver = "northwind.single_transaction"\nparams = {{ max = "{"9" * 5000}" }}\n')
    before = written(bank.db_url)
    assert_one_error_line(bank("profile", "apply", str(path)), 5, "limit[0].params.max")
    assert written(bank.db_url) == before


@pytest.mark.parametrize(("args", "code", "name"), [
    (["account", "show", "acc_nope"], 5, "not_found"),
    (["txn", "deposit", "{a}", "abc"], 5, "invalid"),
    (["txn", "deposit", "{a}", "1.00", "--ref", "j-{a}"], 6, "conflict"),
    (["account", "close", "{a}"], 4, "refused"),
    (["--actor", "a" * 300, "account", "open", "--holder", "Ann"], 2, "usage"),
])
def test_json_errors_are_one_document_with_the_exit_code(bank: Cli, args: list[str], code: int,
                                                          name: str) -> None:
    acc = funded(bank)
    bank.deposit(acc, "2.00", ref=f"j-{acc}")
    result = bank(*[a.replace("{a}", acc) for a in args], json_out=True)
    assert result.exit_code == code
    document = json.loads(result.stdout)
    assert document == {"error": {"code": name, "message": document["error"]["message"], "exit_code": code}}
    assert document["error"]["message"] and "\n" not in document["error"]["message"]
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("args", [["txn", "deposit"], ["txn", "list", "--limit", "0"], ["no-such-command"],
                                  ["account", "open", "--no-such-option"]])
def test_json_usage_errors_are_one_document_too(bank: Cli, args: list[str]) -> None:
    result = bank(*args, json_out=True)
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["exit_code"]) == ("usage", 2) and error["message"]
