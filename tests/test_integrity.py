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
from conftest import profile_doc

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
    # every posting of the transfer, so that they still sum to zero per currency
    "posting_currency": ("posting", "currency = 'EUR'", "postings"),
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


# Values SQLite would keep in another type than the engine writes, each
# reading as the very text or number the chain records (a blob that starts
# with a NUL byte reads as ''; a blob of digits reads as the number).
MISTYPED = {
    "memo": ("txn", "memo = x'00' || CAST(memo AS BLOB)"),
    "channel": ("txn", "channel = CAST(channel AS BLOB)"),
    "amount": ("txn", "amount_minor = CAST(CAST(amount_minor AS TEXT) AS BLOB)"),
    "memo_blob": ("txn", "memo = x'00ff'"),
    "posting_rule": ("posting", "rule = CAST(rule AS BLOB)"),
    "posting_rule_nul": ("posting", "rule = rule || x'00' || 'forged'"),
    "at": ("txn", "at = CAST(CAST(at AS TEXT) AS BLOB)"),
    "fee": ("txn", "fee_minor = CAST(CAST(fee_minor AS TEXT) AS BLOB)"),
    "profile_version": ("txn", "profile_version = CAST(CAST(profile_version AS TEXT) AS BLOB)"),
    "initiator_nul": ("txn", "initiator = initiator || x'00'"),
    "code_nul": ("txn", "code = coalesce(code, '') || x'00'"),
    "posting_amount": ("posting", "amount_minor = CAST(CAST(amount_minor AS TEXT) AS BLOB)"),
    "posting_currency": ("posting", "currency = CAST(currency AS BLOB)"),
    "posting_currency_nul": ("posting", "currency = currency || x'00'"),
    "posting_account_nul": ("posting", "account_id = account_id || x'00'"),
}


@pytest.mark.parametrize("field", list(MISTYPED))
def test_a_value_stored_with_another_type_is_named(bank: Bank, field: str) -> None:
    """SQLite keeps any type in any column: a value rewritten as a blob
    that reads as the same text must not verify OK (PostgreSQL's columns
    refuse it)."""
    if not bank.url.startswith("sqlite"):
        pytest.skip("PostgreSQL's columns hold only their declared types")
    table, change = MISTYPED[field]
    column = "id" if table == "txn" else "txn_id"
    bank.sql(f"UPDATE {table} SET {change} WHERE {column} = :t", t=number(bank.transfer))
    assert_one_error_line(bank.verify(), 1, "ledger does not verify", "coverage", bank.transfer)


def forge_without_foreign_keys(bank: Bank, statement: str, **params: Any) -> None:
    """SQL on a SQLite connection of the forger's own: the engine's turn
    the foreign keys on, a forger's need not."""
    import sqlite3

    with sqlite3.connect(bank.url.removeprefix("sqlite:///")) as conn:
        conn.execute(statement, params)
    conn.close()


ORPHAN = ("INSERT INTO posting (txn_id, institution_id, account_id, amount_minor, currency, rule, posted_at) "
          "SELECT 999999, institution_id, account_id, 0, currency, rule, posted_at FROM posting "
          "WHERE txn_id = :t LIMIT 1")


def test_a_posting_without_its_transaction_is_named(bank: Bank) -> None:
    """A posting of nothing (moving no money: only the orphan check sees it)."""
    if not bank.url.startswith("sqlite"):
        pytest.skip("PostgreSQL enforces the posting's foreign key")
    forge_without_foreign_keys(bank, ORPHAN, t=number(bank.transfer))
    assert_one_error_line(bank.verify(), 1, "postings", "txn_999999", "no transaction row")


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


@pytest.mark.parametrize("edit", EDITS, ids=[e.__name__ for e in EDITS])
def test_ledger_edit_is_detected_and_named(bank: Bank, edit: Any) -> None:
    where = edit(bank)
    result = bank.verify()
    assert_one_error_line(result, 1, "ledger does not verify", where)
    assert "Traceback" not in result.stdout


def test_a_commit_between_the_readers_leaves_verify_reading_alone(bank: Bank, monkeypatch: Any) -> None:
    """verify reads beside its own connection (threads, a child process on
    SQLite) only on the same snapshot. SQLite cannot share one: after a
    commit in between (the audit head moved) it reads everything alone;
    PostgreSQL's readers import verify's snapshot. Either way the edit is
    named."""
    from contextlib import contextmanager

    from bank_core import integrity
    from bank_core.storage import snapshot

    edit_amount(bank)
    svc = build(bank.url)
    seen: list[Any] = []

    @contextmanager
    def twins_after_a_commit(conn: Any, count: int, fingerprint: Any):  # type: ignore[no-untyped-def]
        bank.cli.deposit(bank.b, "1.00", ref=f"between-{len(seen)}")  # after verify's snapshot
        with snapshot.twins(conn, count, fingerprint) as others:
            seen.append(others)
            if conn.dialect.name == "sqlite":
                seen.append(snapshot.rows_in_process(conn, "SELECT 1", (), (svc.audit.head_sql, (INST,))))
            yield others

    monkeypatch.setattr(integrity, "twins", twins_after_a_commit)
    report = svc.verify_integrity(INST)
    svc.engine.dispose()
    if bank.url.startswith("sqlite"):
        assert seen == [None, None]
    else:
        assert len(seen) == 1 and seen[0] is not None
    assert not report.ok and report.problems[0].check == "coverage"
    assert bank.transfer in report.problems[0].line()


def test_forged_balance_is_never_spent(bank: Bank) -> None:
    edit_balance(bank)
    result = bank.cli("txn", "withdraw", bank.a, "2000.00", "--ref", "spend")
    assert_one_error_line(result, 1, bank.a, "changed outside")
    with bank.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM txn WHERE idempotency_key = 'spend'")).scalar() == 0


# ------------------------------------------------------------ the chain, signed

def rows(bank: Bank) -> list[Any]:
    with bank.engine.connect() as conn:
        table = AuditEntryRow.__table__
        return conn.execute(select(table).where(table.c.institution_id == INST).order_by(table.c.seq)).all()


def rechain(bank: Bank, entries: list[dict[str, Any]]) -> None:
    """Replace the chain with ``entries``, every hash recomputed, head moved:
    what a forger with database write access (and no key) can do."""
    prev = "0" * 64
    table = AuditEntryRow.__table__
    with bank.engine.begin() as conn:
        conn.execute(table.delete().where(table.c.institution_id == INST))
        for seq, entry in enumerate(entries, start=1):
            digest = entry_hash(INST, seq, entry["at"], entry["actor"], entry["action"], entry["subject"],
                                entry["payload"], prev, entry["actor_typed"])
            conn.execute(table.insert().values({**entry, "seq": seq, "prev_hash": prev, "hash": digest}))
            prev = digest
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE institution_id = :i"),
                     {"s": len(entries), "h": prev, "i": INST})


def rewrite(bank: Bank) -> None:
    entries = [dict(r._mapping) for r in rows(bank)]
    entries[2]["payload"] = '{"forged":true}'
    rechain(bank, entries)


def renumber(bank: Bank) -> None:
    rechain(bank, [dict(r._mapping) for r in rows(bank) if r.seq != 3])


def truncate(bank: Bank) -> None:
    rechain(bank, [dict(r._mapping) for r in rows(bank)][:3])


def empty(bank: Bank) -> None:
    rechain(bank, [])


def delete_head(bank: Bank) -> None:
    bank.sql("DELETE FROM audit_head WHERE institution_id = :i", i=INST)


CHAIN_ATTACKS = [rewrite, renumber, truncate, empty, delete_head]


@pytest.fixture
def keys(bank: Bank) -> dict[str, str]:
    bank.cli("audit", "keygen", "--dir", str(bank.tmp / "keys"), expect=0)
    return {"BANK_AUDIT_SIGNING_KEY": str(bank.tmp / "keys" / "audit-signing-key.pem"),
            "BANK_AUDIT_PUBLIC_KEY": str(bank.tmp / "keys" / "audit-public-key.pem")}


@pytest.mark.parametrize("attack", CHAIN_ATTACKS, ids=[a.__name__ for a in CHAIN_ATTACKS])
def test_chain_attack_fails_against_stored_and_exported_checkpoints(bank: Bank, keys: dict[str, str],
                                                                   attack: Any) -> None:
    exported = bank.tmp / "head.json"
    bank.cli("audit", "checkpoint", "--out", str(exported), env=keys, expect=0)
    assert json.loads(exported.read_text())["institution"] == INST
    ok = bank.verify("--checkpoint", str(exported), env=keys, expect=0)
    assert "signed checkpoints OK: 1 stored" in ok.stdout
    attack(bank)
    # a stored checkpoint, checked with the public key
    assert_one_error_line(bank.verify(env=keys), 1, "audit chain broken")
    # the exported one alone, even with every stored checkpoint deleted too
    bank.sql("DELETE FROM audit_checkpoint")
    assert_one_error_line(bank.verify("--checkpoint", str(exported),
                                      env={"BANK_AUDIT_PUBLIC_KEY": keys["BANK_AUDIT_PUBLIC_KEY"]}),
                          1, "audit chain broken")


def test_missing_head_refuses_writes_with_one_line(bank: Bank) -> None:
    delete_head(bank)
    assert_one_error_line(bank.verify(), 1, "head record is missing")
    result = bank.cli("txn", "deposit", bank.a, "1.00", "--ref", "after")
    assert_one_error_line(result, 1, "audit chain head", "missing")


def test_process_signs_a_checkpoint_at_the_end_of_each_file(bank: Bank, keys: dict[str, str]) -> None:
    rows_file = bank.tmp / "day.csv"
    rows_file.write_text(f"ref,type,to,amount\np1,deposit,{bank.b},1.00\n")
    bank.cli("txn", "process", str(rows_file), env=keys, expect=0)
    with bank.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_checkpoint")).scalar() == 1
    bank.verify(env=keys, expect=0)


# ------------------------------------------------------------ reversals

def test_reversal_into_closed_and_frozen_accounts_is_refused(bank: Bank) -> None:
    c = bank.cli.open("Cy")
    bank.cli.deposit(c, "10.00", ref="c-in")
    out = bank.cli.json("txn", "withdraw", c, "10.00", "--ref", "c-out")["txn_id"]
    bank.cli("account", "close", c, actor="supervisor", expect=0)
    assert_one_error_line(bank.cli("txn", "reverse", out, actor="supervisor"), 4, "closed")
    d = bank.cli.open("Di")
    bank.cli.deposit(d, "50.00", ref="d-in")
    out = bank.cli.json("txn", "withdraw", d, "10.00", "--ref", "d-out")["txn_id"]
    bank.cli("account", "freeze", d, actor="supervisor", expect=0)
    assert_one_error_line(bank.cli("txn", "reverse", out, actor="supervisor"), 4, "frozen")
    assert bank.cli.balance(d)["posted"] == "40.00"
    bank.verify(expect=0)


# ------------------------------------------------------------ four-eyes

@pytest.mark.parametrize("spelling", ["Alice", "ALICE", "alice ", "alice\t", "\uff41lice"])
def test_four_eyes_refuses_every_spelling_of_the_initiator(fresh_db_url: str, tmp_path: Path,
                                                           spelling: str) -> None:
    cli = Cli(fresh_db_url, tmp_path / "config", actor="alice")
    cli("init", expect=0)
    cli.apply("northwind_policies")
    a, b = cli.open("Ann"), cli.open("Bob")
    cli.deposit(a, "9000.00", ref="seed")
    held = cli.json("txn", "transfer", a, b, "6000.00", "--ref", "big", expect=3)["txn_id"]
    assert_one_error_line(cli("txn", "approve", held, actor=spelling), 4, "four-eyes")
    cli("txn", "approve", held, actor="Bob", expect=0)
    log = cli.json("audit", "log", "--txn", held)["entries"]
    assert {e["actor"] for e in log} == {"alice", "bob"}


# ------------------------------------------------------------ tenancy of profiles

def test_another_institutions_profile_is_not_found(fresh_db_url: str, tmp_path: Path) -> None:
    cli = Cli(fresh_db_url, tmp_path / "config")
    cli("init", expect=0)
    cli.apply("northwind_policies")
    cli.apply("harbor_policies")
    before = cli.json("profile", "show", "harbor", profile="harbor")
    changed = tmp_path / "harbor.toml"
    changed.write_text(profile_file("harbor_policies").read_text().replace("name = ", "name = \"X\"\n#", 1))
    assert_one_error_line(cli("profile", "apply", str(changed), profile="northwind"), 5, "not found")
    assert_one_error_line(cli("profile", "show", "harbor", profile="northwind"), 5, "not found")
    assert_one_error_line(cli("plugins", "check", "--profile", "harbor", profile="northwind"), 5, "not found")
    assert cli.json("profile", "show", "harbor", profile="harbor") == before


# ------------------------------------------------------------ dry run

def advisory_locks(url: str) -> int:
    """Advisory locks held in this test's PostgreSQL database (0 on SQLite,
    which has none); not the server's others, where other runs may hold theirs."""
    if not url.startswith("postgresql"):
        return 0
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())")).scalar_one()
    finally:
        engine.dispose()


def test_a_deposit_during_a_dry_run_finishes_within_a_second(fresh_db_url: str, tmp_path: Path) -> None:
    cli = Cli(fresh_db_url, tmp_path / "config")
    cli("init", "--default-institution", expect=0)
    a = cli.open("Ann")
    rows_file = tmp_path / "day.csv"
    # long enough to be still running when the deposit comes, on a fast hour of this machine too
    # (30,000 rows took under 2.5 s there)
    rows_file.write_text("ref,type,to,amount\n" + "".join(f"r{i},deposit,{a},1.00\n" for i in range(100_000)))
    dry = subprocess.Popen([bank_executable(), "--db", fresh_db_url, "txn", "process", str(rows_file), "--dry-run"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "BANK_CONFIG_DIR": str(tmp_path / "config"),
                                "BANK_ACTOR": "teller"})
    try:
        time.sleep(2.5)
        assert dry.poll() is None, "the dry run ended before the deposit could meet it"
        assert advisory_locks(fresh_db_url) == 0  # the dry run holds no institution lock
        svc = build(fresh_db_url)
        # the first deposit opens the service's connections and loads its profile (untimed, and
        # also during the dry run); the second is the one a teller waits for. Under the parallel
        # suite a second worker shares the two cores with this test and the dry run.
        svc.submit(TxnRequest(INST, "during-1", "deposit", "2.00", dest=a))
        started = time.perf_counter()
        svc.submit(TxnRequest(INST, "during-2", "deposit", "3.00", dest=a))
        assert time.perf_counter() - started < 1.0
        assert dry.poll() is None
        svc.engine.dispose()
    finally:
        dry.wait(timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert cli.balance(a)["posted"] == "5.00"  # the dry run wrote nothing; the deposit is there


def ledger_state(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {table: conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")).all()
                    for table in ("txn", "posting", "balance", "audit_entry", "audit_head", "usage_counter",
                                  "decision_term", "account")}
    finally:
        engine.dispose()


def test_dry_run_predicts_the_real_run_and_writes_nothing(fresh_db_url: str, tmp_path: Path) -> None:
    """Northwind's drivers (fees, limits, review holds, usage counters), a
    ref already posted (a replay) and one reused with another body (a
    conflict), over several chunks: the dry run's results are the real
    run's, byte for byte, and the database is as it was."""
    cli = Cli(fresh_db_url, tmp_path / "config")
    cli("init", expect=0)
    cli.apply("northwind_policies")
    a, b = cli.open("Ann"), cli.open("Bob")
    cli.deposit(a, "9000.00", ref="seed")
    rows = ["ref,type,from,to,amount,channel", "seed,deposit,,%s,9000.00,branch" % a,
            "seed,deposit,,%s,1.00,branch" % a]
    for n in range(60):
        kind = ("deposit,,%s,%d.00,branch" % (b, 10 + n), "withdrawal,%s,,%d.00,atm" % (a, 20 + n),
                "transfer,%s,%s,%d.50,online" % (a, b, 1 + n * 37), "transfer,%s,%s,6000.00,online" % (b, a))[n % 4]
        rows.append(f"r{n},{kind}")
    rows_file = tmp_path / "day.csv"
    rows_file.write_text("\n".join(rows) + "\n")
    before = ledger_state(fresh_db_url)
    cli("txn", "process", str(rows_file), "--dry-run", "--chunk-size", "7", "--out", str(tmp_path / "dry.jsonl"))
    assert ledger_state(fresh_db_url) == before
    cli("txn", "process", str(rows_file), "--chunk-size", "7", "--out", str(tmp_path / "real.jsonl"))
    dry, real = (tmp_path / "dry.jsonl").read_text(), (tmp_path / "real.jsonl").read_text()
    statuses = {json.loads(line)["status"] for line in real.splitlines()}
    assert {"posted", "held", "rejected"} <= statuses, statuses  # every outcome is predicted
    assert dry == real


def test_a_dry_run_leaves_no_id_in_the_process_caches(fresh_db_url: str) -> None:
    """Terms and accounts a dry run creates are rolled back: a long-lived
    process (``bank serve``) must not remember their ids (they would be
    written into later, real decision records)."""
    svc = build(fresh_db_url)
    svc.apply_profile(profile_doc(INST), "setup")
    a = svc.open_account(INST, holder="Ann", actor="setup").id
    requests = [TxnRequest(INST, f"d{n}", "deposit", "5.00", dest=a) for n in range(3)]
    assert len(list(svc.submit_batch(INST, requests, chunk_size=1, dry_run=True))) == 3
    with svc.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, text FROM decision_term")).all())
    assert all(stored.get(number) == term for number, term in svc.pipeline.terms.texts.items())
    svc.submit(requests[0])  # and a real decision after it explains
    assert svc.txn(INST, svc.txns(INST)[0]["txn_id"])["status"] == "posted"
    svc.engine.dispose()
