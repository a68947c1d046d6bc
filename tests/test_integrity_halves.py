"""`bank audit verify` in two processes says exactly what one process says.

On a SQLite file verify forks a helper that walks the later half of the
chain and compares the later half of the rows (``Verifier._halves``,
``bank_core.storage.forked``); whatever either half cannot settle (holds,
their approvals and releases, reversals, anything that differs) is paired
in chain order by the parent, and any problem sends it back to the one-
process check, which names it. So for every attack of test_integrity and
test_audit, and for a clean ledger with holds and reversals, the real
`bank` command (a subprocess: only a process without other threads forks)
answers the same with the two-process threshold at 1 transaction as at a
billion, and the clean ledger really was settled by two processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cli_support import BANK_VARS, Cli, bank_executable
from test_integrity import (CHAIN_ATTACKS, EDITS, FIELD_EDITS, MISTYPED, ORPHAN, Bank,
                            forge_without_foreign_keys, number, rechain, rows)

ONE, TWO = "1000000000", "1"


@pytest.fixture
def ledger(sqlite_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """test_integrity's bank plus holds (one approved, one rejected, one
    open), a reversal and enough rows that each half has several."""
    bank = Bank(sqlite_url, tmp_path)
    cli = Cli(sqlite_url, tmp_path / "config", actor="alice")
    for i in range(12):
        cli.deposit(bank.a if i % 2 else bank.b, f"{i + 1}.00", ref=f"more-{i}")
    out = cli.json("txn", "withdraw", bank.a, "3.00", "--ref", "to-reverse")["txn_id"]
    cli("txn", "reverse", out, actor="supervisor", expect=0)
    bank.cli("profile", "apply", str(profile_with_review(tmp_path)), expect=0)
    cli.deposit(bank.a, "5000.00", ref="for-holds")
    held = [cli.json("txn", "transfer", bank.a, bank.b, "600.00", "--ref", f"held-{i}", expect=3)["txn_id"]
            for i in range(3)]
    cli("txn", "approve", held[0], actor="bob", expect=0)
    cli("txn", "reject", held[1], "--reason", "no", actor="bob", expect=0)
    for i in range(6):
        cli.deposit(bank.b, f"{i + 2}.50", ref=f"after-{i}")
    yield bank
    bank.close()


def profile_with_review(tmp: Path) -> Path:
    """The default institution with Northwind's fee and its review of
    transfers above 500.00 (so the ledger has fee lines and holds)."""
    from conftest import DEFAULT_PROFILE

    path = tmp / "review.toml"
    path.write_text(f"""id = "default"
name = "Default"
currency = "{DEFAULT_PROFILE['currency']}"
timezone = "UTC"

[[fee]]
driver = "northwind.transfer_fee"
params = {{ percent = "0.5", min = "0.25", max = "25.00" }}

[[limit]]
driver = "core.no_overdraft"
params = {{}}

[[approval]]
driver = "core.frozen_reject"
params = {{}}

[[approval]]
driver = "northwind.large_transfer_review"
params = {{ threshold = "500.00" }}
""")
    return path


def verify(bank: Bank, threshold: str, *args: str) -> tuple[int, dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if k not in BANK_VARS}
    env.update(BANK_CONFIG_DIR=str(bank.cli.config_dir), BANK_VERIFY_TWO_PROCESSES_FROM=threshold)
    done = subprocess.run([bank_executable(), "--db", bank.url, "--json", "audit", "verify", *args],
                          capture_output=True, text=True, env=env, timeout=120)
    return done.returncode, json.loads(done.stdout), done.stderr


def same(bank: Bank, *args: str) -> dict[str, Any]:
    """verify's answer with two processes, asserted equal to one process's."""
    code, doc, err = verify(bank, TWO, *args)
    one_code, one_doc, one_err = verify(bank, ONE, *args)
    assert one_doc["processes"] == 1
    for volatile in ("seconds", "transactions_per_second", "processes"):
        doc.pop(volatile), one_doc.pop(volatile)
    assert (code, doc, err) == (one_code, one_doc, one_err)
    return doc


def test_a_clean_ledger_with_holds_and_reversals_is_settled_by_two_processes(ledger: Bank) -> None:
    code, doc, _err = verify(ledger, TWO)
    assert code == 0 and doc["ok"] and doc["processes"] == 2, doc
    assert same(ledger)["ok"]


@pytest.mark.parametrize("edit", EDITS, ids=[e.__name__ for e in EDITS])
def test_each_ledger_edit_is_named_as_one_process_names_it(ledger: Bank, edit: Any) -> None:
    edit(ledger)
    assert not same(ledger)["ok"]


@pytest.mark.parametrize("field", list(FIELD_EDITS))
def test_each_field_edit_is_named_as_one_process_names_it(ledger: Bank, field: str) -> None:
    table, change, _named = FIELD_EDITS[field]
    change = change or "at = at + 1000000"
    column = "id" if table == "txn" else "txn_id"
    ledger.sql(f"UPDATE {table} SET {change} WHERE {column} = :t", t=number(ledger.transfer), a=ledger.a)
    assert not same(ledger)["ok"]


@pytest.mark.parametrize("field", list(MISTYPED))
def test_each_value_of_another_type_is_named_as_one_process_names_it(ledger: Bank, field: str) -> None:
    """The halves see the types in the JSON they compare (and test the
    rows they hand back as the one-process check does): every value of
    another type than the engine writes is named as one process names it."""
    table, change = MISTYPED[field]
    column = "id" if table == "txn" else "txn_id"
    ledger.sql(f"UPDATE {table} SET {change} WHERE {column} = :t", t=number(ledger.transfer))
    assert not same(ledger)["ok"]


def test_a_nul_the_chain_and_the_row_agree_on_is_named_as_one_process_names_it(ledger: Bank) -> None:
    """A forger without the key rewrites a record and its row alike, with
    a NUL in the memo: the JSON texts are equal, yet one process names the
    text with a NUL, so the halves must not settle that row."""
    entries = [dict(r._mapping) for r in rows(ledger)]
    for entry in entries:
        if entry["subject"] == ledger.transfer and entry["action"] == "txn.posted":
            record = json.loads(entry["payload"])
            record[8] = "rent\x00forged"
            entry["payload"] = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    rechain(ledger, entries)
    ledger.sql("UPDATE txn SET memo = 'rent' || x'00' || 'forged' WHERE id = :t", t=number(ledger.transfer))
    assert not same(ledger)["ok"]


def test_a_posting_without_its_transaction_or_of_another_institution_is_named_as_one_process_names_it(
        ledger: Bank) -> None:
    """The halves count the institution's postings the settled rows have
    (a posting of another institution keeps its row from being settled)
    against all it has: the orphan check of one process, by counting."""
    forge_without_foreign_keys(ledger, ORPHAN, t=number(ledger.transfer))
    assert not same(ledger)["ok"]
    forge_without_foreign_keys(ledger, "DELETE FROM posting WHERE txn_id = 999999")
    assert same(ledger)["ok"]
    # one of the transfer's postings handed to another institution, and the
    # same posting again as an orphan: every sum and count as before
    forge_without_foreign_keys(ledger, ORPHAN.replace("0, currency", "amount_minor, currency"),
                               t=number(ledger.transfer))
    forge_without_foreign_keys(ledger, "UPDATE posting SET institution_id = 'elsewhere' WHERE id = "
                                       "(SELECT min(id) FROM posting WHERE txn_id = :t)", t=number(ledger.transfer))
    assert not same(ledger)["ok"]


def test_rows_inserted_deleted_or_a_hold_edited_are_named_as_one_process_names_them(ledger: Bank) -> None:
    forged = 10_000
    ledger.sql("INSERT INTO txn SELECT :f, institution_id, 'inserted', kind, status, amount_minor, fee_minor, "
               "currency, source_account_id, dest_account_id, channel, memo, at, decided_at, initiator, "
               "profile_version, code, reverses_txn_id, lines, resolved_at, resolved_by, resolution, legacy_id "
               "FROM txn WHERE id = :t", f=forged, t=number(ledger.rejected))
    assert not same(ledger)["ok"]
    ledger.sql("DELETE FROM txn WHERE id = :f", f=forged)
    assert same(ledger)["ok"]
    ledger.sql("UPDATE txn SET memo = 'forged' WHERE status = 'held'")
    assert not same(ledger)["ok"]
    ledger.sql("DELETE FROM txn WHERE id = :t", t=number(ledger.rejected))
    assert not same(ledger)["ok"]


@pytest.mark.parametrize("attack", CHAIN_ATTACKS, ids=[a.__name__ for a in CHAIN_ATTACKS])
def test_each_chain_attack_is_answered_as_one_process_answers_it(ledger: Bank, attack: Any) -> None:
    attack(ledger)  # without a key, a chain recomputed passes: in both, the same way
    same(ledger)


def test_an_entry_edited_in_either_half_is_named_as_one_process_names_it(ledger: Bank) -> None:
    with ledger.engine.connect() as conn:
        last = conn.exec_driver_sql("SELECT max(seq) FROM audit_entry").scalar()
    for seq in (3, last // 2, last // 2 + 1, last - 1, last):
        ledger.sql("UPDATE audit_entry SET actor = actor || 'x' WHERE seq = :s", s=seq)
        assert not same(ledger)["ok"]
        ledger.sql("UPDATE audit_entry SET actor = substr(actor, 1, length(actor) - 1) WHERE seq = :s", s=seq)
    assert same(ledger)["ok"]


def test_a_value_sqlite_json_refuses_is_named_as_one_process_names_it(ledger: Bank) -> None:
    """A blob where text belongs: SQLite's json_array refuses it, so the
    halves cannot read that row; the one-process check names it."""
    ledger.sql("UPDATE txn SET memo = x'41' WHERE id = :t", t=number(ledger.transfer))
    assert not same(ledger)["ok"]
