"""Issue 11, ledger integrity: every attack of the outside probe, through the
real ``bank`` command, on SQLite and PostgreSQL. Each tampering is done with
raw SQL behind the kernel's back, and ``bank audit verify`` must name it;
writes must refuse what they must not trust."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from bank_audit import AuditEntryRow, entry_hash
from bank_core.storage.engine import make_engine
from bank_wiring import build
from bank_core.messages import TxnRequest
from cli_support import Cli, assert_one_error_line, bank_executable, profile_file

INST = "default"


class Bank:
    """A fresh bank with a few transactions of every outcome, and raw SQL."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url, self.tmp = url, tmp
        self.cli = Cli(url, tmp / "config")
        self.cli("init", "--default-institution", expect=0)
        self.a, self.b = self.cli.open("Ann"), self.cli.open("Bob")
        self.deposit = self.cli.deposit(self.a, "1000.00", ref="dep")["txn_id"]
        self.transfer = self.cli.json("txn", "transfer", self.a, self.b, "102.50", "--ref", "tr")["txn_id"]
        self.cli.json("txn", "withdraw", self.a, "5.00", "--ref", "wd")
        self.rejected = self.cli.json("txn", "withdraw", self.b, "5000.00", "--ref", "big", expect=4)["txn_id"]
        self.engine = make_engine(url)

    def sql(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(statement), params)

    def verify(self, *args: str, expect: int = 1, env: dict[str, str] | None = None) -> Any:
        return self.cli("audit", "verify", *args, expect=expect, env=env)

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def bank(fresh_db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    found = Bank(fresh_db_url, tmp_path)
    yield found
    found.close()


def number(txn_id: str) -> int:
    return int(txn_id.removeprefix("txn_"))


def test_untouched_ledger_verifies_and_prints_the_rate(bank: Bank) -> None:
    result = bank.verify(expect=0)
    assert "ledger OK: 4 transactions" in result.stdout
    assert "transactions/s" in result.stdout
    assert "only changes made without recomputing hashes" in result.stdout  # no key: says so


# ------------------------------------------------------------ the six ledger edits

def edit_posting(bank: Bank) -> str:
    bank.sql("UPDATE posting SET amount_minor = amount_minor + 100 WHERE txn_id = :t AND amount_minor > 0",
             t=number(bank.transfer))
    return bank.transfer


def delete_posting(bank: Bank) -> str:
    bank.sql("DELETE FROM posting WHERE id = (SELECT min(id) FROM posting WHERE txn_id = :t)",
             t=number(bank.transfer))
    return bank.transfer


def edit_balance(bank: Bank) -> str:
    bank.sql("UPDATE balance SET credits_posted = credits_posted + 10000000 WHERE account_id = :a", a=bank.a)
    return bank.a


def flip_rejected_to_posted(bank: Bank) -> str:
    bank.sql("UPDATE txn SET status = 'posted' WHERE id = :t", t=number(bank.rejected))
    return bank.rejected


def edit_amount(bank: Bank) -> str:
    bank.sql("UPDATE txn SET amount_minor = 1 WHERE id = :t", t=number(bank.transfer))
    return bank.transfer


def forge_balanced_pair(bank: Bank) -> str:
    for account, amount in ((bank.a, 50_000), (bank.b, -50_000)):
        bank.sql("INSERT INTO posting (txn_id, institution_id, account_id, amount_minor, currency, rule, "
                 "posted_at) SELECT id, institution_id, :acc, :amt, currency, 'deposit', decided_at "
                 "FROM txn WHERE id = :t", acc=account, amt=amount, t=number(bank.deposit))
    return bank.deposit


EDITS = [edit_posting, delete_posting, edit_balance, flip_rejected_to_posted, edit_amount, forge_balanced_pair]

# Every other field of a row and its postings: verify compares a posted or
# rejected row with the row its record implies as one text (the fast path),
# so each field must reach that text; the slow path then names it.
FIELD_EDITS = {
    "ref": ("txn", "idempotency_key = 'forged'", "ref"),
    "kind": ("txn", "kind = 'deposit'", "kind"),
    "fee": ("txn", "fee_minor = 1", "fee"),
    "currency": ("txn", "currency = 'EUR'", "currency"),
    "source": ("txn", "source_account_id = NULL", "from"),
    "dest": ("txn", "dest_account_id = :a", "to"),
    "channel": ("txn", "channel = 'atm'", "channel"),
    "memo": ("txn", "memo = 'forged'", "memo"),
    "at": ("txn", None, "at"),
    "initiator": ("txn", "initiator = 'mallory'", "initiator"),
    "profile_version": ("txn", "profile_version = 7", "profile version"),
    "code": ("txn", "code = 'forged'", "code"),
    "posting_rule": ("posting", "rule = 'forged'", "postings"),
    "posting_account": ("posting", "account_id = :a", "postings"),
}


@pytest.mark.parametrize("field", list(FIELD_EDITS))
def test_every_field_of_a_row_and_its_postings_is_covered(bank: Bank, field: str) -> None:
    table, change, named = FIELD_EDITS[field]
    if change is None:  # the request's time, one second later, as each engine stores it
        change = "at = at + 1000000" if bank.url.startswith("sqlite") else "at = at + interval '1 second'"
    column = "id" if table == "txn" else "txn_id"
    bank.sql(f"UPDATE {table} SET {change} WHERE {column} = :t", t=number(bank.transfer), a=bank.a)
    result = bank.verify()
    line = assert_one_error_line(result, 1, "ledger does not verify", "coverage", bank.transfer)
    assert f"its {named} is" in line or (named == "postings" and "postings" in line)


def test_a_row_inserted_or_deleted_with_sql_is_named(bank: Bank) -> None:
    forged = number(bank.rejected) + 1000
    bank.sql("INSERT INTO txn SELECT :f, institution_id, 'inserted', kind, status, amount_minor, fee_minor, "
             "currency, source_account_id, dest_account_id, channel, memo, at, decided_at, initiator, "
             "profile_version, code, reverses_txn_id, lines, resolved_at, resolved_by, resolution, legacy_id "
             "FROM txn WHERE id = :t", f=forged, t=number(bank.rejected))
    assert_one_error_line(bank.verify(), 1, "coverage", f"txn_{forged}", "not in the audit chain")
    bank.sql("DELETE FROM txn WHERE id = :f", f=forged)
    bank.verify(expect=0)
    bank.sql("DELETE FROM txn WHERE id = :t", t=number(bank.rejected))  # a rejected row has no postings
    assert_one_error_line(bank.verify(), 1, "coverage", bank.rejected, "row is missing")
