"""Write-ahead chunks (``BANK_WRITE_AHEAD``, ``submit_batch(write_ahead=...)``).

With write-ahead, chunk N is written and committed by a writer (a thread or
a process of its own) while chunk N+1 is decided against a snapshot taken
before chunk N went to the writer plus chunk N's effects applied in memory
(balances, usage counters, recent outgoing times, idempotency refs, the next
transaction id). Another client's write in between is caught by the writer
(the institution's audit head moved) and the chunks decided on stale state
are decided again on the database's state.

Everything runs through the real parts: real SQLite files (and PostgreSQL
where ``BANK_TEST_POSTGRES_URL`` names a server), the real ``bank`` command
(CliRunner in-process, and real processes), and the Northwind and Harbor
drivers loaded by stevedore from their installed policy packages. Tests that
ask for write-ahead also check that it ran: some transaction rows were
inserted off the main thread of the deciding process (``_Trace``).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event
from typer.testing import CliRunner

from bank_cli.main import app
from bank_core.batchfile import read_rows
from bank_core.messages import TxnRequest
from bank_core.money import format_minor
from bank_core.profile import read_toml
from bank_core.service import BankService
from bank_test_support import check_ledger, deposit
from bank_wiring import build
from conftest import profile_doc
from simulation_support import profile_doc as package_profile
from simulation_support import write_profile

BANK = str(Path(sys.executable).with_name("bank"))
ENV = "BANK_WRITE_AHEAD"
INSTITUTIONS = ("northwind", "harbor")
HEADER = "ref,type,from,to,amount,currency,channel,memo,at"
SHADOW_FEES = [
    {"driver": "northwind.transfer_fee", "params": {"percent": "1.0", "min": "0.50", "max": "30.00"}},
    {"driver": "northwind.atm_withdrawal_fee", "params": {"free_per_month": 1, "fee": "3.00", "channel": "atm"}}]


def _money(minor: int) -> str:
    return format_minor(minor, "USD")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------
# A seeded database with both institutions
# --------------------------------------------------------------------------

NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
BASE = NOW - timedelta(hours=30)  # the workloads' rows start here (inside max_backdate)


def _seed(path: Path | str) -> dict[str, list[str]]:
    """Northwind and Harbor in one SQLite file, six accounts each:
    [hot0, hot1, hot2, other, drained, special]. ``special`` holds 30,000.00,
    ``drained`` nothing, the others 3,000.00. Harbor's hot2 is a checking-plus account (overdraft up to
    500.00, with Harbor's overdraft fee) and its ``special`` was opened three
    days ago (new-account review from 1,000.00)."""
    svc = build(path if isinstance(path, str) else f"sqlite:///{path}")
    ids: dict[str, list[str]] = {}
    for inst in INSTITUTIONS:
        package = f"{inst}_policies"
        with resources.as_file(resources.files(package) / "profile.toml") as toml:
            svc.apply_profile(read_toml(Path(toml)), "setup")
        accounts = []
        for n in range(6):
            product = "checking-plus" if (inst, n) == ("harbor", 2) else "standard"
            opened = NOW - (timedelta(days=3) if n == 5 else timedelta(days=30))
            accounts.append(svc.open_account(inst, holder=f"{inst}-{n}", product=product, actor="setup",
                                             opened_at=opened).id)
        for n, account in enumerate(accounts):
            for part in range(0 if n == 4 else 3 if n == 5 else 1):  # 10,000.00 a deposit at most
                amount = "10000.00" if n == 5 else "3000.00"
                result = svc.submit(TxnRequest(inst, f"seed-{n}-{part}", "deposit", amount, dest=account,
                                               channel="branch", at=BASE - timedelta(hours=12)))
                assert result.status == "posted", result
        ids[inst] = accounts
    svc.engine.dispose()
    if isinstance(path, Path):
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ids


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    base = tmp_path_factory.mktemp("seed") / "seed.db"
    return base, _seed(base)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


# --------------------------------------------------------------------------
# A workload that stresses what write-ahead carries across a chunk boundary
# --------------------------------------------------------------------------

def _workload(path: Path, inst: str, ids: list[str], rows: int, seed: int) -> Path:
    """Rows that lean on state a chunk hands the next one:

    - three hot accounts that most rows touch, so consecutive chunks share
      accounts (balances, usage counters, recent outgoing times);
    - a deposit into the empty ``drained`` account followed by a withdrawal of
      exactly that amount (it posts only if the deposit is seen);
    - many withdrawals a day from the hot accounts (Northwind's daily
      withdrawal limit and free ATM withdrawals, Harbor's velocity review);
    - an exact replay of a row a few rows back, and a reuse of an earlier ref
      with another amount (a conflict);
    - three rows a minute (equal ``at``) and backdated rows;
    - rejections (overdraft, single-transaction limit), reviews (large
      transfers, Harbor's new account) and invalid rows.
    Every row has an ``at``: the outcome never depends on the wall clock."""
    rng = random.Random(seed)
    hot, other, drained, special = ids[:3], ids[3], ids[4], ids[5]
    lines: list[str] = []

    def moment(n: int) -> str:
        if rng.random() < 0.08:  # backdated, behind rows already processed
            return _iso(BASE - timedelta(hours=rng.randint(0, 10), minutes=rng.randint(0, 59)))
        return _iso(BASE + timedelta(minutes=n // 3))  # ties: three rows a minute

    while len(lines) < rows:
        n = len(lines)
        ref = f"{inst[0]}{seed}-{n}"
        at = moment(n)
        pick = rng.random()
        if pick < 0.12:
            amount = rng.randint(100, 90_000)
            lines.append(f"{ref},deposit,,{drained},{_money(amount)},,branch,,{at}")
            lines.append(f"{ref}w,withdrawal,{drained},,{_money(amount)},,branch,,{at}")
        elif pick < 0.40:
            channel = "atm" if rng.random() < 0.5 else "branch"
            lines.append(f"{ref},withdrawal,{rng.choice(hot)},,{_money(rng.randint(5_000, 60_000))},,"
                         f"{channel},,{at}")
        elif pick < 0.56:
            source = rng.choice(hot + [special])
            dest = rng.choice([a for a in ids if a != source])
            lines.append(f"{ref},transfer,{source},{dest},{_money(rng.randint(1, 80_000))},,online,,{at}")
        elif pick < 0.64:
            lines.append(f"{ref},deposit,,{rng.choice(ids)},{_money(rng.randint(1_000, 200_000))},,branch,,{at}")
        elif pick < 0.68:  # a review: Northwind's large transfer, Harbor's new account's withdrawal
            if inst == "northwind":
                lines.append(f"{ref},transfer,{special},{other},5000.00,,online,big,{at}")
            else:
                lines.append(f"{ref},withdrawal,{special},,1200.00,,branch,big,{at}")
        elif pick < 0.71:  # overdraft (and, at Northwind, over the single-transaction limit)
            lines.append(f"{ref},withdrawal,{other},,{_money(rng.choice([400_000, 1_500_000]))},,branch,,{at}")
        elif pick < 0.78 and n > 2:  # the same row again, a few rows later
            lines.append(lines[n - rng.randint(1, min(n, 15))])
        elif pick < 0.83 and n > 2:  # an earlier ref with another body
            earlier = lines[n - rng.randint(1, min(n, 15))].split(",")
            if earlier[4] in ("1e3",) or not earlier[0]:
                continue
            earlier[4] = _money(int(earlier[4].replace(".", "")) + 1) if earlier[4].replace(".", "").isdigit() else "1.00"
            lines.append(",".join(earlier))
        elif pick < 0.86:
            lines.append(f"{ref},withdrawal,{rng.choice(hot)},,1e3,,atm,,{at}")
        elif pick < 0.88:
            lines.append(f"{ref},deposit,,acc_nope,1.00,,branch,,{at}")
        else:  # between hot accounts, at the same minute as its neighbours
            a, b = rng.sample(hot, 2)
            lines.append(f"{ref},transfer,{a},{b},{_money(rng.randint(1, 30_000))},,online,,{at}")
    path.write_text("\n".join([HEADER, *lines[:rows]]) + "\n")
    return path


# --------------------------------------------------------------------------
# What a run leaves
# --------------------------------------------------------------------------

def _state(db: Path) -> dict[str, list[tuple]]:
    """Ledger, transactions, usage, decision terms and every audit entry,
    without wall-clock times (and so without the chain's hashes)."""
    with sqlite3.connect(db) as conn:
        return {
            "txn": conn.execute(
                "SELECT id, institution_id, idempotency_key, kind, status, amount_minor, fee_minor, "
                "currency, source_account_id, dest_account_id, channel, memo, at, initiator, "
                "profile_version, code, lines FROM txn ORDER BY id").fetchall(),
            "posting": conn.execute("SELECT txn_id, institution_id, account_id, amount_minor, currency, rule "
                                    "FROM posting ORDER BY id").fetchall(),
            "balance": conn.execute("SELECT account_id, debits_posted, credits_posted, debits_pending, "
                                    "credits_pending FROM balance ORDER BY account_id").fetchall(),
            "usage": conn.execute("SELECT account_id, period, kind, channel, amount_minor, fee_minor, count "
                                  "FROM usage_counter ORDER BY account_id, period, kind, channel").fetchall(),
            "terms": conn.execute("SELECT id, text FROM decision_term ORDER BY id").fetchall(),
            "audit": conn.execute("SELECT institution_id, seq, actor, action, subject, payload "
                                  "FROM audit_entry ORDER BY institution_id, seq").fetchall(),
            "shadow": conn.execute("SELECT institution_id, txn_id, shadow, status, code, fee_minor, record "
                                   "FROM shadow_decision ORDER BY institution_id, txn_id").fetchall(),
        }


def _run(db: Path, inst: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--db", f"sqlite:///{db}", "--profile", inst, "--actor", "ops", *args],
                                env=env)
    return result.exit_code, result.stdout, result.stderr


def _verify(db: Path, inst: str) -> None:
    code, out, err = _run(db, inst, "audit", "verify")
    assert code == 0, out + err


# --------------------------------------------------------------------------
# Where chunks are written, and a write step that fails
# --------------------------------------------------------------------------
#
# The same code runs in this process (``_Trace``, ``_fail_writes``) and in a
# ``bank`` process started by ``_bank`` (``_PRELUDE``): it records one line
# per ``INSERT INTO txn`` (process id, main thread or not) in a file, which a
# writer thread and a forked writer process append to alike; and it can make
# the chunk's write step fail, counting calls in a file for the same reason.
# The write step is taken to be ``AuditServer.append_many``: every chunk's
# write (one at a time, or by a write-ahead writer) ends with it, after the
# transaction, posting, balance and usage rows.

_PRELUDE = r"""
import os, sqlite3, threading
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

def _trace_inserts(path):
    def listener(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO TXN "):
            main = threading.current_thread() is threading.main_thread()
            with open(path, "a") as handle:
                handle.write(f"{os.getpid()} {int(main)}\n")
    event.listen(Engine, "before_cursor_execute", listener)
    return listener

def _fail_appends(counter, failing, kind):
    from bank_audit.server import AuditServer
    original = AuditServer.append_many
    def append_many(self, conn, institution_id, entries):
        head = original(self, conn, institution_id, entries)
        if entries:
            with open(counter, "a") as handle:
                handle.write(f"{os.getpid()} {int(threading.current_thread() is threading.main_thread())}\n")
            with open(counter) as handle:
                number = sum(1 for _ in handle)
            if number in failing:
                message = "database is locked" if kind == "retryable" else "disk I/O error"
                raise OperationalError("INSERT INTO audit_entry", {}, sqlite3.OperationalError(message))
        return head
    AuditServer.append_many = append_many
    return original
"""
_prelude: dict[str, Any] = {}
exec(_PRELUDE, _prelude)  # noqa: S102 - the same source as the bank processes run

_MAIN = _PRELUDE + r"""
import sys
if os.environ.get("WA_TRACE"):
    _trace_inserts(os.environ["WA_TRACE"])
if os.environ.get("WA_FAIL"):
    _fail_appends(os.environ["WA_COUNTER"], {int(n) for n in os.environ["WA_FAIL"].split(",")},
                  os.environ["WA_FAIL_KIND"])
from bank_cli.main import main
sys.argv[0] = "bank"
sys.exit(main())
"""


class _Places:
    """Where the writes recorded in ``path`` ran, seen from process ``pid``."""

    def __init__(self, path: Path, pid: int) -> None:
        self.path, self.pid = path, pid

    def lines(self) -> list[tuple[int, bool]]:
        if not self.path.exists():
            return []
        return [(int(p), m == "1") for p, m in (line.split() for line in self.path.read_text().splitlines())]

    def here(self) -> bool:
        """Every write ran on the main thread of process ``pid``."""
        return all(p == self.pid and main for p, main in self.lines())

    def elsewhere(self) -> bool:
        """Some write ran off it: a writer thread or a writer process."""
        return any(p != self.pid or not main for p, main in self.lines())


class _Trace(_Places):
    """``INSERT INTO txn`` of this process (and of any process it forks) while listening."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, os.getpid())

    def __enter__(self) -> _Trace:
        self.listener = _prelude["_trace_inserts"](str(self.path))
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(Engine, "before_cursor_execute", self.listener)


def _fail_writes(monkeypatch: pytest.MonkeyPatch, counter: Path, failing: set[int], kind: str) -> _Places:
    """Make this process's chunk write steps numbered in ``failing`` (1-based,
    counting those that wrote decisions) raise, after their statements: a
    ``database is locked`` (retryable) or a ``disk I/O error`` (not)."""
    from bank_audit.server import AuditServer

    original = _prelude["_fail_appends"](str(counter), failing, kind)
    patched = AuditServer.append_many
    AuditServer.append_many = original  # let monkeypatch restore it
    monkeypatch.setattr(AuditServer, "append_many", patched)
    return _Places(counter, os.getpid())


def _bank(tmp_path: Path, db: Path | str, inst: str, *args: str, mode: str | None = None,
          fail: tuple[set[int], str] | None = None) -> tuple[subprocess.CompletedProcess[str], _Places, _Places]:
    """``bank --db DB --profile INST ... ARGS`` in a process of its own (with
    ``BANK_WRITE_AHEAD=mode`` when given), tracing where it inserts
    transactions and, with ``fail``, failing those write steps."""
    scratch = Path(tempfile.mkdtemp(dir=tmp_path))
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if mode is not None:
        env[ENV] = mode
    env["WA_TRACE"] = str(scratch / "trace")
    env["WA_COUNTER"] = str(scratch / "counter")
    if fail is not None:
        env["WA_FAIL"] = ",".join(str(n) for n in sorted(fail[0]))
        env["WA_FAIL_KIND"] = fail[1]
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    child = subprocess.Popen([sys.executable, "-c", _MAIN, "--db", url, "--profile", inst,
                              "--actor", "ops", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    out, err = child.communicate(timeout=120)
    done = subprocess.CompletedProcess(child.args, child.returncode, out, err)
    return done, _Places(scratch / "trace", child.pid), _Places(scratch / "counter", child.pid)


# --------------------------------------------------------------------------
# 1. Differential: write-ahead or not, any chunk size, the same everything
# --------------------------------------------------------------------------

def test_write_ahead_and_serial_leave_identical_ledgers_and_results(
        tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]]) -> None:
    """One workload per institution on copies of one database: with
    ``BANK_WRITE_AHEAD=0`` and ``=1`` and chunks of 1, 7, 50 and 1,000 rows,
    the same transactions, postings, balances, usage, decision terms, audit
    entries, shadow decisions and results files; and the chain verifies.
    Write-ahead runs are real ``bank`` processes (where nothing has run
    before them), and must have written off their main thread."""
    seed_db, ids = seeded
    # Northwind runs a shadow profile too (stricter limits, other fees): its
    # decisions read the same usage and balances, and are written with the chunk.
    seed_db = _copy(seed_db, tmp_path / "shadowed.db")
    candidate = write_profile(tmp_path / "candidate.toml", package_profile("northwind", fee=SHADOW_FEES, limit=[
        {"driver": "northwind.daily_withdrawal", "params": {"max": "900.00"}},
        {"driver": "core.no_overdraft", "params": {}}]))
    code, out, err = _run(seed_db, "northwind", "profile", "shadow", str(candidate))
    assert code == 0, out + err
    files = {inst: _workload(tmp_path / f"{inst}.csv", inst, ids[inst], 260, seed)
             for seed, inst in enumerate(INSTITUTIONS, start=1)}
    runs: dict[tuple[str, int], tuple[dict[str, Any], dict[str, str]]] = {}
    for mode in ("0", "1"):
        for size in (1, 7, 50, 1000):
            db = _copy(seed_db, tmp_path / f"wa{mode}-{size}.db")
            outputs = {}
            for inst, file in files.items():
                out_file = tmp_path / f"wa{mode}-{size}-{inst}.jsonl"
                args = ("txn", "process", str(file), "--out", str(out_file), "--chunk-size", str(size))
                if mode == "0":
                    with _Trace(tmp_path / f"trace-{size}-{inst}") as trace:
                        code, _stdout, err = _run(db, inst, *args, env={ENV: mode})
                    assert trace.lines() and trace.here()  # one chunk at a time: on this thread
                else:
                    done, trace, _calls = _bank(tmp_path, db, inst, *args, mode=mode)
                    code, err = done.returncode, done.stderr
                    assert trace.lines()
                    if size < 200:
                        assert trace.elsewhere(), f"chunks of {size}: nothing written off the main thread"
                assert code == 5, err  # the invalid rows
                assert "Traceback" not in err
                outputs[inst] = out_file.read_text()
            runs[(mode, size)] = (_state(db), outputs)
            if size in (1, 50):
                for inst in INSTITUTIONS:
                    _verify(db, inst)
    reference_state, reference_out = runs[("0", 1000)]
    for key, (state, outputs) in runs.items():
        for table in reference_state:
            assert state[table] == reference_state[table], f"{key}: table {table} differs"
        for inst in INSTITUTIONS:
            assert outputs[inst] == reference_out[inst], f"{key}: results of {inst} differ"

    # The workload reached what it means to stress (else the comparison says little).
    statuses: dict[str, dict[str, int]] = {}
    for inst in INSTITUTIONS:
        results = [json.loads(line) for line in reference_out[inst].splitlines()]
        assert len(results) == 260
        statuses[inst] = {s: sum(r["status"] == s for r in results)
                          for s in ("posted", "held", "rejected", "invalid")}
        assert all(statuses[inst].values()), statuses
        errors = " ".join(r["error"] or "" for r in results if r["status"] == "invalid")
        assert "already used for a different request" in errors
    shadowed = reference_state["shadow"]
    assert len(shadowed) > 100 and any(row[4] == "northwind.daily_withdrawal" for row in shadowed)
    codes = {row[15] for row in reference_state["txn"] if row[15]}
    assert {"northwind.daily_withdrawal", "harbor.velocity_review", "harbor.new_account_review",
            "northwind.large_transfer_review", "core.no_overdraft"} <= codes, codes
    drained = {ids[inst][4] for inst in INSTITUTIONS}
    drained_out = [row for row in reference_state["txn"]
                   if row[8] in drained and row[3] == "withdrawal" and row[4] == "posted"]
    assert len(drained_out) >= 5  # withdrawals that only the deposit just before paid for
    atm_fees = [row for row in reference_state["txn"] if row[1] == "northwind" and row[10] == "atm"
                and row[4] == "posted" and row[6] > 0]
    assert atm_fees  # past the free ATM withdrawals of the month
    for inst in INSTITUTIONS:
        txn_ids = [json.loads(line)["txn_id"] for line in reference_out[inst].splitlines()]
        found = [t for t in txn_ids if t is not None]
        assert len(found) - len(set(found)) >= 3  # rows that replayed an earlier row


@pytest.mark.parametrize("size", [1, 7, 40])
def test_velocity_past_the_recent_times_limit(tmp_path: Path, size: int) -> None:
    """Harbor's velocity review over a day-long window: more outgoing rows per
    account than the kernel lists (``RECENT_OUT_LIMIT``), with ties and
    backdated rows, so a chunk's recent times come from the database, from
    the chunk before it (not yet committed) and from its own rows, truncated."""
    from bank_core.contract import UsageCounters

    with resources.as_file(resources.files("harbor_policies") / "profile.toml") as toml:
        doc = read_toml(Path(toml))
    doc = {**doc, "id": "harborday", "name": "Harbor by the day",
           "approval": [{"driver": "core.frozen_reject", "params": {}},
                        {"driver": "harbor.velocity_review", "params": {"max_per_window": 51,
                                                                        "window_minutes": 1440}}]}
    seed_db = tmp_path / "seed.db"
    svc = build(f"sqlite:///{seed_db}")
    svc.apply_profile(doc, "setup")
    accounts = [svc.open_account("harborday", holder=f"h{n}", opened_at=NOW - timedelta(days=30)).id
                for n in range(2)]
    for n, account in enumerate(accounts):
        deposit(svc, "harborday", account, 900_000, f"seed-{n}")
    svc.engine.dispose()
    rng = random.Random(size)
    requests = []
    for n in range(170):
        at = BASE + timedelta(minutes=n // 4) if rng.random() < 0.85 else BASE - timedelta(
            hours=rng.randint(0, 20), minutes=rng.randint(0, 59))
        account = accounts[0] if rng.random() < 0.8 else accounts[1]
        kind = "withdrawal" if rng.random() < 0.85 else "deposit"
        requests.append(TxnRequest("harborday", f"v{n}", kind, _money(rng.randint(1, 900)),
                                   source=account if kind == "withdrawal" else None,
                                   dest=account if kind == "deposit" else None, at=at))
    seen = {}
    for write_ahead in (False, True):
        db = _copy(seed_db, tmp_path / f"{write_ahead}.db")
        svc = build(f"sqlite:///{db}")
        try:
            with _Trace(tmp_path / f"trace-{write_ahead}") as trace:
                outcomes = [_outcome_view(o) for o in svc.submit_batch(
                    "harborday", iter(requests), chunk_size=size, write_ahead=write_ahead)]
        finally:
            svc.engine.dispose()
        assert trace.elsewhere() == write_ahead
        seen[write_ahead] = (outcomes, _state(db))
    held = [row for row in seen[False][1]["txn"] if row[4] == "held"]
    outgoing = [row for row in seen[False][1]["txn"] if row[3] == "withdrawal" and row[8] == accounts[0]]
    assert held and len(outgoing) > UsageCounters.RECENT_OUT_LIMIT + 20
    assert seen[True] == seen[False]


# --------------------------------------------------------------------------
# 1b. A property: any small workload, any chunk size, write-ahead or not
# --------------------------------------------------------------------------

_KINDS = st.sampled_from(["deposit", "withdrawal", "transfer", "replay", "reuse", "bad"])


@st.composite
def _small_workloads(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], int]:
    rows = draw(st.lists(st.tuples(_KINDS, st.integers(0, 3), st.integers(0, 3),
                                   st.integers(1, 150_000), st.integers(0, 40), st.booleans()),
                         min_size=1, max_size=30))
    return rows, draw(st.integers(1, 8))


def _requests(inst: str, ids: list[str], rows: list[tuple[Any, ...]]) -> list[TxnRequest]:
    made: list[TxnRequest] = []
    for n, (kind, a, b, amount, minute, atm) in enumerate(rows):
        at = BASE + timedelta(minutes=minute)  # ties and out-of-order times
        channel = "atm" if atm else "branch"
        src, dst = ids[a], ids[b if b != a else (a + 1) % 4]
        if kind == "replay" and made:
            made.append(made[n * 7 % len(made)])
            continue
        if kind == "reuse" and made:
            old = made[n * 5 % len(made)]
            made.append(TxnRequest(inst, old.ref, old.kind, _money(amount), source=old.source,
                                   dest=old.dest, channel=old.channel, at=old.at))
            continue
        ref = f"p{n}"
        if kind == "deposit":
            made.append(TxnRequest(inst, ref, "deposit", _money(amount), dest=dst, channel=channel, at=at))
        elif kind == "withdrawal":
            made.append(TxnRequest(inst, ref, "withdrawal", _money(amount), source=src, channel=channel, at=at))
        elif kind == "transfer":
            made.append(TxnRequest(inst, ref, "transfer", _money(amount), source=src, dest=dst,
                                   channel="online", at=at))
        else:
            made.append(TxnRequest(inst, ref, "withdrawal", _money(amount), source="acc_nope", at=at))
    return made


def _outcome_view(outcome: Any) -> tuple[Any, ...]:
    if outcome.error is not None:
        return ("error", type(outcome.error).__name__, str(outcome.error))
    return ("result", json.dumps(outcome.result, sort_keys=True, default=str), outcome.replayed)


@settings(max_examples=15)
@given(case=_small_workloads(), inst=st.sampled_from(INSTITUTIONS))
def test_property_write_ahead_equals_serial(seeded: tuple[Path, dict[str, list[str]]],
                                            case: tuple[list[tuple[Any, ...]], int], inst: str) -> None:
    rows, size = case
    seed_db, ids = seeded
    requests = _requests(inst, ids[inst][:4], rows)
    seen = {}
    with tempfile.TemporaryDirectory() as scratch:
        for write_ahead in (False, True):
            db = _copy(seed_db, Path(scratch) / f"{write_ahead}.db")
            svc = build(f"sqlite:///{db}")
            try:
                with _Trace(Path(scratch) / f"trace-{write_ahead}") as trace:
                    outcomes = [_outcome_view(o) for o in svc.submit_batch(
                        inst, iter(requests), chunk_size=size, write_ahead=write_ahead)]
                check_ledger(svc, inst, no_overdraft=inst == "northwind")
            finally:
                svc.engine.dispose()
            if not write_ahead or len(requests) <= size:  # one at a time, or a file of one chunk:
                assert not trace.elsewhere()  # everything written by this process (no writer forked)
            seen[write_ahead] = (outcomes, _state(db))
    assert len(seen[True][0]) == len(requests)
    assert seen[True] == seen[False]


@pytest.mark.parametrize("mode", ["write-ahead", "one at a time", "dry run"])
def test_submit_chunks_hands_up_each_chunk_whole_and_in_order(seeded: tuple[Path, dict[str, list[str]]],
                                                              tmp_path: Path, mode: str) -> None:
    """``submit_chunks`` (what ``bank txn process`` reads): one list per
    chunk as it was decided and written (write-ahead: the last chunk in two
    halves), the same outcomes in the same order as ``submit_batch`` gives
    one by one on a copy of the same database."""
    seed_db, ids = seeded
    rows = [(("deposit", "withdrawal", "transfer", "replay", "bad")[n % 5], n % 4, (n + 1) % 4,
             1_000 + 37 * n, n % 40, n % 3 == 0) for n in range(23)]
    requests = _requests("northwind", ids["northwind"][:4], rows)
    options = {"chunk_size": 5, "write_ahead": mode == "write-ahead", "dry_run": mode == "dry run"}
    views = {}
    for how in ("chunks", "batch"):
        svc = build(f"sqlite:///{_copy(seed_db, tmp_path / f'{how}.db')}")
        try:
            if how == "chunks":
                lists = list(svc.submit_chunks("northwind", iter(requests), **options))
                views[how] = [_outcome_view(o) for outcomes in lists for o in outcomes]
            else:
                views[how] = [_outcome_view(o) for o in svc.submit_batch("northwind", iter(requests), **options)]
        finally:
            svc.engine.dispose()
    assert all(type(outcomes) is list for outcomes in lists)
    assert [len(outcomes) for outcomes in lists] == ([5, 5, 5, 5, 2, 1] if mode == "write-ahead" else [5, 5, 5, 5, 3])
    assert [o.index for outcomes in lists for o in outcomes] == list(range(len(requests)))
    assert views["chunks"] == views["batch"]


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_write_ahead_equals_serial_on_either_engine(request: pytest.FixtureRequest, tmp_path: Path,
                                                    engine: str) -> None:
    """The same requests on two fresh databases of one engine, with
    ``write_ahead`` True and False: the same outcomes and ledger (on
    PostgreSQL write-ahead may or may not apply; the answer is the same)."""
    if engine == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"]
    else:
        server = request.getfixturevalue("pg_server")
        urls = [server.create(), server.create()]
    inst = "wa-either"
    doc = profile_doc(inst, fee=[{"driver": "testkit.flat_fee", "params": {"amount": "0.10"}}], limit=[
        {"driver": "northwind.daily_withdrawal", "params": {"max": "40.00"}}, {"driver": "core.no_overdraft"}])
    seen = []
    try:
        for url, write_ahead in zip(urls, (False, True)):
            svc = build(url)
            try:
                svc.apply_profile(doc, "setup")
                accounts = [svc.open_account(inst, holder=f"h{n}", opened_at=NOW - timedelta(days=30)).id
                            for n in range(4)]
                for n, account in enumerate(accounts[:3]):
                    deposit(svc, inst, account, 5_000, f"seed-{n}")
                rng = random.Random(11)
                rows = [(rng.choice(["deposit", "withdrawal", "withdrawal", "transfer", "replay", "reuse", "bad"]),
                         rng.randrange(4), rng.randrange(4), rng.randint(1, 2_500), rng.randint(0, 30),
                         rng.random() < 0.5) for _ in range(80)]
                requests = _requests(inst, accounts, rows)
                with _Trace(tmp_path / f"trace-{write_ahead}") as trace:
                    outcomes = [_outcome_view(o) for o in svc.submit_batch(inst, iter(requests), chunk_size=4,
                                                                            write_ahead=write_ahead)]
                if engine == "sqlite":
                    assert trace.elsewhere() == write_ahead
                ledger = check_ledger(svc, inst)
                seen.append((outcomes, {accounts.index(a) if a in accounts else ledger.role[a]: v
                                        for a, v in ledger.posted.items()}, ledger.txn_status))
            finally:
                svc.engine.dispose()
    finally:
        if engine == "postgres":
            for url in urls:
                server.drop(url)
    assert {s for view in seen[0][0] if view[0] == "result" for s in [json.loads(view[1])["status"]]} >= {
        "posted", "rejected"}
    assert seen[1][1:] == seen[0][1:]
    assert _by_appearance(seen[1][0]) == _by_appearance(seen[0][0])


@pytest.mark.parametrize("schedule", [(1, 1), (10**9, 10**9)], ids=["every-chunk", "never-by-schedule"])
def test_the_writer_checkpoints_between_chunks_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   schedule: tuple[int, int]) -> None:
    """SQLite: the forked writer checkpoints the WAL itself after sending a
    chunk's answer (``CHECKPOINT_ROWS`` set to 1: after every chunk; or so
    large that the schedule never does), and after the last chunk's first
    half whatever the schedule says, never after the last piece (the close
    copies what is left); the checkpoints run in the writer process, and
    the outcomes and the ledger are those of one chunk at a time."""
    from bank_core import ahead

    calls = tmp_path / "checkpoints"
    original = ahead._Checkpoints.written

    def written(self: Any, rows: int, ending: int = ahead.MIDDLE) -> bool:
        done = original(self, rows, ending)
        with open(calls, "a") as handle:  # (the forked writer inherits this patch)
            handle.write(f"{os.getpid()} {rows} {ending} {int(done)}\n")
        return done

    monkeypatch.setattr(ahead, "CHECKPOINT_ROWS", schedule)
    monkeypatch.setattr(ahead._Checkpoints, "written", written)
    inst = "wa-checkpoints"
    seen = []
    for name, write_ahead in (("a.db", False), ("b.db", True)):
        svc = build(f"sqlite:///{tmp_path / name}")
        try:
            svc.apply_profile(profile_doc(inst), "setup")
            accounts = [svc.open_account(inst, holder=f"h{n}", opened_at=NOW - timedelta(days=30)).id
                        for n in range(4)]
            deposit(svc, inst, accounts[0], 5_000, "seed")
            rng = random.Random(5)
            rows = [(rng.choice(["deposit", "withdrawal", "transfer"]), rng.randrange(4), rng.randrange(4),
                     rng.randint(1, 900), rng.randint(0, 30), False) for _ in range(60)]
            outcomes = [_outcome_view(o) for o in svc.submit_batch(inst, iter(_requests(inst, accounts, rows)),
                                                                    chunk_size=6, write_ahead=write_ahead)]
            ledger = check_ledger(svc, inst)
            seen.append((_by_appearance(outcomes), sorted(ledger.posted.values()), ledger.txn_status))
        finally:
            svc.engine.dispose()
    calls_seen = [line.split() for line in calls.read_text().splitlines()]
    assert {pid for pid, *_ in calls_seen} != {str(os.getpid())}  # in the writer
    # 10 chunks of 6; the last one decided and written as two halves of 3
    endings = [(int(ending), int(done)) for _pid, _rows, ending, done in calls_seen]
    every = schedule == (1, 1)
    assert endings == [(ahead.MIDDLE, int(every))] * 9 + [(ahead.NEXT_TO_LAST, 1), (ahead.LAST, 0)]
    assert seen[1] == seen[0]


@given(st.lists(st.integers(min_value=1, max_value=9), max_size=6))
def test_the_last_chunk_is_split_in_two_and_every_row_comes_once_in_order(sizes: list[int]) -> None:
    """``_tapered``: the chunks as they came, with where each is in the
    file, except the last, which comes as two halves (one piece if it is of
    one row); every row exactly once, in order."""
    from bank_core import ahead

    rows = iter(range(sum(sizes)))
    chunks = [[next(rows) for _ in range(size)] for size in sizes]
    pieces = list(ahead._tapered(iter(chunks)))
    assert [row for piece, _ in pieces for row in piece] == list(range(sum(sizes)))
    if not chunks:
        assert pieces == []
        return
    *middle, last = chunks
    assert pieces[:len(middle)] == [(chunk, ahead.MIDDLE) for chunk in middle]
    tail = pieces[len(middle):]
    if len(last) == 1:
        assert tail == [(last, ahead.LAST)]
    else:
        assert [ending for _, ending in tail] == [ahead.NEXT_TO_LAST, ahead.LAST]
        assert len(tail[0][0]) - len(tail[1][0]) in (0, 1) and tail[1][0]


def test_an_input_error_after_a_chunk_comes_after_that_chunk() -> None:
    """Read one ahead, the chunk before the input's error is still handed
    over (as an ordinary chunk: the file has no known end) before the error."""
    from bank_core import ahead

    def chunks() -> Iterator[list[int]]:
        yield [1, 2]
        yield [3, 4]
        raise RuntimeError("the input broke")

    pieces = ahead._tapered(chunks())
    assert next(pieces) == ([1, 2], ahead.MIDDLE)
    assert next(pieces) == ([3, 4], ahead.MIDDLE)
    with pytest.raises(RuntimeError, match="the input broke"):
        next(pieces)


def _by_appearance(views: list[tuple[Any, ...]]) -> str:
    """Outcomes as text, each account id replaced by the order it first appears in."""
    text = repr(views)
    names: dict[str, str] = {}
    return re.sub(r"acc_[0-9a-f]{12}", lambda m: names.setdefault(m.group(0), f"<account {len(names)}>"), text)


# --------------------------------------------------------------------------
# 2. Another client between chunks, write-ahead on
# --------------------------------------------------------------------------

def _withdrawals(inst: str, account: str, prefix: str, n: int, amount: str) -> list[TxnRequest]:
    return [TxnRequest(inst, f"{prefix}-{i}", "withdrawal", amount, source=account) for i in range(n)]


def _batch(service: BankService, inst: str, requests: list[TxnRequest], size: int) -> Iterator[Any]:
    return service.submit_batch(inst, iter(requests), chunk_size=size, write_ahead=True)


@pytest.fixture
def trace(tmp_path: Path, service: BankService) -> Iterator[_Trace]:
    """Where the test's chunks are written. On SQLite, ``write_ahead=True``
    must write them off this process's main thread (on PostgreSQL it may)."""
    with _Trace(tmp_path / "trace") as found:
        yield found
    if service.engine.dialect.name == "sqlite":
        assert found.elsewhere(), "write_ahead=True wrote every chunk on the main thread of this process"


def test_freeze_between_chunks(service: BankService, make_service: Callable[[], BankService],
                               inst: str, trace: _Trace) -> None:
    account = service.open_account(inst, holder="Ann").id
    deposit(service, inst, account, 100_000, "seed")
    batch = _batch(service, inst, _withdrawals(inst, account, "w", 6, "1.00"), 2)
    assert [next(batch).status, next(batch).status] == ["posted", "posted"]
    make_service().set_account_status(inst, account, "frozen", "ops")  # another client
    rest = [(o.status, o.code) for o in batch]
    assert rest == [("rejected", "core.frozen_reject")] * 4
    assert check_ledger(service, inst).posted[account] == 100_000 - 200


def test_deposit_between_chunks(service: BankService, make_service: Callable[[], BankService],
                                inst: str, trace: _Trace) -> None:
    account = service.open_account(inst, holder="Ann").id
    deposit(service, inst, account, 300, "seed")  # 3.00
    batch = _batch(service, inst, _withdrawals(inst, account, "w", 4, "1.50"), 2)
    assert [next(batch).status, next(batch).status] == ["posted", "posted"]  # 0.00 left
    deposit(make_service(), inst, account, 150, "between")
    rest = list(batch)
    assert [o.status for o in rest] == ["posted", "rejected"]  # on carried state: both rejected
    state = check_ledger(service, inst)
    assert state.posted[account] == 0
    ids = [o.result["txn_id"] for o in rest if o.status == "posted"]
    assert len(set(ids)) == len(ids) and ids  # a new id, not the one the other client took


def test_profile_change_between_chunks(service: BankService, make_service: Callable[[], BankService],
                                       inst: str, trace: _Trace) -> None:
    account = service.open_account(inst, holder="Ann").id
    deposit(service, inst, account, 10_000, "seed")
    batch = _batch(service, inst, _withdrawals(inst, account, "w", 6, "1.00"), 2)
    first = [next(batch), next(batch)]
    assert [(o.status, o.fee_minor()) for o in first] == [("posted", 0)] * 2
    make_service().apply_profile(profile_doc(inst, fee=[{"driver": "testkit.flat_fee",
                                                         "params": {"amount": "0.25"}}]), "ops")
    rest = list(batch)
    assert [(o.status, o.fee_minor()) for o in rest] == [("posted", 25)] * 4
    state = check_ledger(service, inst)
    assert state.posted[account] == 10_000 - 6 * 100 - 4 * 25
    with service.engine.connect() as conn:
        from sqlalchemy import text

        versions = conn.execute(text("SELECT idempotency_key, profile_version FROM txn WHERE "
                                     "institution_id = :i AND idempotency_key LIKE 'w-%' ORDER BY id"),
                                {"i": inst}).all()
    assert [v for _k, v in versions] == [1, 1, 2, 2, 2, 2]


def test_closed_account_between_chunks(service: BankService, make_service: Callable[[], BankService],
                                       inst: str, trace: _Trace) -> None:
    closing = service.open_account(inst, holder="Ann").id
    other = service.open_account(inst, holder="Bob").id
    deposit(service, inst, closing, 200, "seed")
    requests = [*_withdrawals(inst, closing, "w", 2, "1.00"),
                TxnRequest(inst, "d-1", "deposit", "5.00", dest=closing),
                TxnRequest(inst, "d-2", "deposit", "5.00", dest=other),
                TxnRequest(inst, "t-1", "transfer", "1.00", source=other, dest=closing)]
    batch = _batch(service, inst, requests, 2)
    assert [next(batch).status, next(batch).status] == ["posted", "posted"]  # at zero now
    make_service().set_account_status(inst, closing, "closed", "ops")
    rest = [(o.status, o.code) for o in batch]
    assert rest == [("rejected", "account_closed"), ("posted", None), ("rejected", "account_closed")]
    state = check_ledger(service, inst)
    assert state.posted[closing] == 0 and state.posted[other] == 500


def test_usage_between_chunks(service: BankService, make_service: Callable[[], BankService],
                              inst: str, trace: _Trace) -> None:
    """Daily usage: another client's withdrawal between chunks counts."""
    service.apply_profile(profile_doc(inst, limit=[
        {"driver": "northwind.daily_withdrawal", "params": {"max": "5.00"}},
        {"driver": "core.no_overdraft"}]), "setup")
    account = service.open_account(inst, holder="Ann").id
    deposit(service, inst, account, 10_000, "seed")
    batch = _batch(service, inst, _withdrawals(inst, account, "w", 4, "2.00"), 2)
    assert [next(batch).status, next(batch).status] == ["posted", "posted"]  # 4.00 of 5.00 today
    assert make_service().submit(TxnRequest(inst, "between", "withdrawal", "1.00", source=account)
                                 ).status == "posted"  # 5.00 of 5.00
    rest = [(o.status, o.code) for o in batch]
    assert rest == [("rejected", "northwind.daily_withdrawal")] * 2  # on carried usage: one posted
    assert check_ledger(service, inst).posted[account] == 10_000 - 500


def test_same_ref_from_another_client_between_chunks(service: BankService,
                                                     make_service: Callable[[], BankService],
                                                     inst: str, trace: _Trace) -> None:
    account = service.open_account(inst, holder="Ann").id
    deposit(service, inst, account, 10_000, "seed")
    requests = _withdrawals(inst, account, "w", 6, "1.00")
    batch = _batch(service, inst, requests, 2)
    assert [next(batch).status, next(batch).status] == ["posted", "posted"]
    other = make_service()
    theirs = other.submit(requests[2])  # the same request as the next chunk's first row
    clash = other.submit(TxnRequest(inst, "w-3", "withdrawal", "9.00", source=account))  # another body
    assert theirs.status == clash.status == "posted"
    rest = list(batch)
    assert rest[0].replayed and rest[0].result["txn_id"] == theirs.txn_id
    assert rest[1].error is not None and "already used for a different request" in str(rest[1].error)
    assert [o.status for o in rest[2:]] == ["posted", "posted"]
    with service.engine.connect() as conn:
        from sqlalchemy import text

        refs = conn.execute(text("SELECT idempotency_key FROM txn WHERE institution_id = :i "
                                 "AND idempotency_key LIKE 'w-%'"), {"i": inst}).scalars().all()
    assert sorted(refs) == [f"w-{i}" for i in range(6)]
    assert check_ledger(service, inst).posted[account] == 10_000 - 5 * 100 - 900


def test_reversal_between_chunks(service: BankService, make_service: Callable[[], BankService],
                                 inst: str, trace: _Trace) -> None:
    account = service.open_account(inst, holder="Ann").id
    deposit(service, inst, account, 300, "seed")
    requests = [TxnRequest(inst, "w-0", "withdrawal", "3.00", source=account),
                TxnRequest(inst, "w-1", "withdrawal", "0.01", source=account),
                TxnRequest(inst, "w-2", "withdrawal", "3.00", source=account),
                TxnRequest(inst, "w-3", "withdrawal", "0.01", source=account)]
    batch = _batch(service, inst, requests, 2)
    first = [next(batch), next(batch)]
    assert [o.status for o in first] == ["posted", "rejected"]  # 0.00 left
    make_service().holds.reverse(inst, first[0].txn_id, "ops")  # 3.00 back
    assert [o.status for o in batch] == ["posted", "rejected"]  # on carried state: both rejected
    assert check_ledger(service, inst).posted[account] == 0


# --------------------------------------------------------------------------
# 3. Another process writing during a long write-ahead run
# --------------------------------------------------------------------------

def _long_file(path: Path, ids: list[str], rows: int) -> Path:
    """Rows among the hot accounts only (never the deposit target below)."""
    rng = random.Random(7)
    lines = [HEADER]
    for n in range(rows):
        at = _iso(BASE + timedelta(seconds=20 * n))
        a, b = rng.sample(ids[:3], 2)
        pick = n % 10
        if pick < 3:
            lines.append(f"L{n},deposit,,{a},{_money(rng.randint(100, 50_000))},,branch,,{at}")
        elif pick < 5:
            lines.append(f"L{n},withdrawal,{a},,{_money(rng.randint(100, 40_000))},,branch,,{at}")
        elif pick < 9:
            lines.append(f"L{n},transfer,{a},{b},{_money(rng.randint(1, 50_000))},,online,,{at}")
        else:
            lines.append(f"L{n},withdrawal,{a},,2.5.0,,branch,,{at}")  # invalid
    path.write_text("\n".join(lines) + "\n")
    return path


def _strip_ids(text: str) -> list[dict[str, Any]]:
    docs = []
    for line in text.splitlines():
        doc = json.loads(line)
        doc.pop("txn_id", None)
        docs.append(doc)
    return docs


@contextmanager
def _depositing(base: list[str], target: str, env: dict[str, str]) -> Iterator[list[tuple[str, int, str]]]:
    """Two loops of ``bank txn deposit`` of 1.00 into ``target`` while the
    body runs (started half a second before it); yields the deposits made:
    (ref, exit code, stderr)."""
    stop = threading.Event()
    deposits: list[tuple[str, int, str]] = []

    def depositor(who: int) -> None:
        n = 0
        while not stop.is_set():
            ref = f"dep-{who}-{n}"
            done = subprocess.run([*base, "txn", "deposit", target, "1.00", "--ref", ref],
                                  capture_output=True, text=True, env=env)
            deposits.append((ref, done.returncode, done.stderr))
            n += 1

    workers = [threading.Thread(target=depositor, args=(who,)) for who in range(2)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)  # the depositors are running
        yield deposits
    finally:
        stop.set()
        for worker in workers:
            worker.join()


def test_another_process_deposits_during_a_long_write_ahead_run(
        tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]]) -> None:
    seed_db, ids = seeded
    nw = ids["northwind"]
    target = nw[3]  # deposits go here; the file never names it
    rows = 3000
    file = _long_file(tmp_path / "long.csv", nw, rows)
    clean = _copy(seed_db, tmp_path / "clean.db")
    code, _out, err = _run(clean, "northwind", "txn", "process", str(file), "--out",
                           str(tmp_path / "clean.jsonl"), "--chunk-size", "10", env={ENV: "0"})
    assert code == 5, err

    busy = _copy(seed_db, tmp_path / "busy.db")
    env = {**os.environ, ENV: "1"}
    base = [BANK, "--db", f"sqlite:///{busy}", "--profile", "northwind", "--actor", "ops"]
    with _depositing(base, target, env) as deposits:
        run = subprocess.run([*base, "txn", "process", str(file), "--out", str(tmp_path / "busy.jsonl"),
                              "--chunk-size", "10"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 5, run.stderr
    assert "Traceback" not in run.stderr
    assert all(code == 0 for _ref, code, _err in deposits), deposits

    # Every file row: one result line, the same outcome as without the other process.
    busy_out = (tmp_path / "busy.jsonl").read_text()
    assert len(busy_out.splitlines()) == rows
    assert _strip_ids(busy_out) == _strip_ids((tmp_path / "clean.jsonl").read_text())
    with sqlite3.connect(busy) as conn:
        file_refs = conn.execute("SELECT idempotency_key, COUNT(*) FROM txn WHERE institution_id = 'northwind' "
                                 "AND idempotency_key LIKE 'L%' GROUP BY idempotency_key").fetchall()
        dep_refs = conn.execute("SELECT idempotency_key, status, amount_minor FROM txn WHERE "
                                "institution_id = 'northwind' AND idempotency_key LIKE 'dep-%'").fetchall()
        ids_unique = conn.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM txn").fetchone()
        interleaved = conn.execute(
            "SELECT COUNT(*) FROM txn WHERE idempotency_key LIKE 'dep-%' AND id > (SELECT MIN(id) FROM txn "
            "WHERE idempotency_key LIKE 'L%') AND id < (SELECT MAX(id) FROM txn WHERE idempotency_key LIKE 'L%')"
        ).fetchone()[0]
    assert interleaved >= 1, "no deposit landed while the file ran"
    assert len(file_refs) == rows - rows // 10 and all(c == 1 for _r, c in file_refs)
    assert sorted(r for r, _s, _a in dep_refs) == sorted(ref for ref, _c, _e in deposits)
    assert all(s == "posted" and a == 100 for _r, s, a in dep_refs)
    assert ids_unique[0] == ids_unique[1]
    svc = build(f"sqlite:///{busy}")
    try:
        state = check_ledger(svc, "northwind")
    finally:
        svc.engine.dispose()
    assert state.posted[target] == 300_000 + 100 * len(deposits)
    clean_svc = build(f"sqlite:///{clean}")
    try:
        clean_state = check_ledger(clean_svc, "northwind")
    finally:
        clean_svc.engine.dispose()
    assert {a: state.posted[a] for a in nw[:3]} == {a: clean_state.posted[a] for a in nw[:3]}
    verify = subprocess.run([*base, "audit", "verify"], capture_output=True, text=True, env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.postgres
def test_another_process_deposits_during_a_long_write_ahead_run_on_postgres(
        tmp_path: Path, pg_server: Any) -> None:
    """The same on PostgreSQL (where write-ahead may apply): every file row's
    outcome as without the other process, every deposit posted once, the
    ledger and the chain whole."""
    clean_url, busy_url = pg_server.create(), pg_server.create()
    try:
        nw_clean = _seed(clean_url)["northwind"]
        nw = _seed(busy_url)["northwind"]
        rows = 1500
        file = _long_file(tmp_path / "long.csv", nw, rows)
        clean_file = tmp_path / "clean.csv"
        text = file.read_text()
        for old, new in zip(nw, nw_clean):
            text = text.replace(old, new)
        clean_file.write_text(text)
        done, _t, _c = _bank(tmp_path, clean_url, "northwind", "txn", "process", str(clean_file), "--out",
                             str(tmp_path / "clean.jsonl"), "--chunk-size", "1000", mode="0")
        assert done.returncode == 5, done.stderr
        target = nw[3]
        env = {**os.environ, ENV: "1"}
        base = [BANK, "--db", busy_url, "--profile", "northwind", "--actor", "ops"]
        with _depositing(base, target, env) as deposits:
            run, trace, _c = _bank(tmp_path, busy_url, "northwind", "txn", "process", str(file), "--out",
                                   str(tmp_path / "busy.jsonl"), "--chunk-size", "10", mode="1")
        assert run.returncode == 5, run.stderr
        assert "Traceback" not in run.stderr
        assert all(code == 0 for _ref, code, _err in deposits), deposits
        busy_out = (tmp_path / "busy.jsonl").read_text()
        assert len(busy_out.splitlines()) == rows
        clean_docs = _strip_ids((tmp_path / "clean.jsonl").read_text())
        assert _by_appearance(_strip_ids(busy_out)) == _by_appearance(clean_docs)
        svc = build(busy_url)
        try:
            state = check_ledger(svc, "northwind")
            with svc.engine.connect() as conn:
                from sqlalchemy import text as sql

                file_refs = conn.execute(sql("SELECT idempotency_key, COUNT(*) FROM txn WHERE institution_id = "
                                             "'northwind' AND idempotency_key LIKE 'L%' GROUP BY idempotency_key")
                                         ).all()
                dep_refs = conn.execute(sql("SELECT idempotency_key FROM txn WHERE institution_id = 'northwind' "
                                            "AND idempotency_key LIKE 'dep-%'")).scalars().all()
                interleaved = conn.execute(sql(
                    "SELECT COUNT(*) FROM txn WHERE idempotency_key LIKE 'dep-%' AND id > (SELECT MIN(id) FROM "
                    "txn WHERE idempotency_key LIKE 'L%') AND id < (SELECT MAX(id) FROM txn WHERE "
                    "idempotency_key LIKE 'L%')")).scalar_one()
        finally:
            svc.engine.dispose()
        assert len(file_refs) == rows - rows // 10 and all(c == 1 for _r, c in file_refs)
        assert sorted(dep_refs) == sorted(ref for ref, _c, _e in deposits)
        assert interleaved >= 1, "no deposit landed while the file ran"
        assert state.posted[target] == 300_000 + 100 * len(deposits)
        verify = subprocess.run([*base, "audit", "verify"], capture_output=True, text=True, env=env)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        pg_server.drop(clean_url)
        pg_server.drop(busy_url)


# --------------------------------------------------------------------------
# 4. The write step failing
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["1", "0"])
def test_a_retryable_write_failure_is_retried_and_changes_nothing(
        tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]], mode: str) -> None:
    """The write step fails with ``database is locked`` after its statements,
    on the first chunk, on one chunk twice in a row and on the last: each is
    rolled back and retried, and the run equals a clean one."""
    seed_db, ids = seeded
    file = _workload(tmp_path / "w.csv", "northwind", ids["northwind"], 120, 5)
    clean = _copy(seed_db, tmp_path / "clean.db")
    code, _out, err = _run(clean, "northwind", "txn", "process", str(file), "--out", str(tmp_path / "clean.jsonl"),
                           "--chunk-size", "10", env={ENV: "0"})
    assert code == 5, err
    rows = len(_file_requests(file))
    chunks = -(-rows // 10)
    # write-ahead decides and writes the last chunk as two halves (``ahead._tapered``)
    writes = chunks + (1 if mode == "1" and rows - 10 * (chunks - 1) > 1 else 0)
    faulty = _copy(seed_db, tmp_path / "faulty.db")
    done, trace, calls = _bank(tmp_path, faulty, "northwind", "txn", "process", str(file), "--out",
                               str(tmp_path / "f.jsonl"), "--chunk-size", "10", mode=mode,
                               fail=({1, 4, 5, writes + 3}, "retryable"))
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr
    assert len(calls.lines()) == writes + 4  # every fault fired, each chunk's write then held
    assert _state(faulty) == _state(clean)
    assert (tmp_path / "f.jsonl").read_text() == (tmp_path / "clean.jsonl").read_text()
    if mode == "1":
        assert calls.elsewhere()  # by the writer
    _verify(faulty, "northwind")


def _file_requests(file: Path) -> list[TxnRequest]:
    """The requests ``bank txn process`` hands ``submit_batch`` for a file, in order (its chunks)."""
    with file.open() as handle:
        return [r for _line, r in read_rows(handle, "csv", "northwind", "ops") if isinstance(r, TxnRequest)]


def _northwind_requests(ids: list[str], n: int) -> list[TxnRequest]:
    at = BASE + timedelta(hours=2)
    made = []
    for i in range(n):
        a, b = ids[i % 3], ids[(i + 1) % 3]
        if i % 3 == 0:
            made.append(TxnRequest("northwind", f"f{i}", "deposit", _money(1_000 + i), dest=a, at=at))
        else:
            made.append(TxnRequest("northwind", f"f{i}", "transfer", _money(500 + i), source=a, dest=b,
                                   channel="online", at=at))
    return made


def _refs_in(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r for (r,) in conn.execute("SELECT idempotency_key FROM txn WHERE idempotency_key LIKE 'f%' "
                                           "ORDER BY id")]


def _views_of_batch(db: Path, requests: list[TxnRequest], *, write_ahead: bool) -> list[Any]:
    """Northwind's ``submit_batch`` of ``requests`` in chunks of 5 on ``db``: each outcome's view."""
    svc = build(f"sqlite:///{db}")
    try:
        return [_outcome_view(o) for o in svc.submit_batch("northwind", iter(requests), chunk_size=5,
                                                            write_ahead=write_ahead)]
    finally:
        svc.engine.dispose()


def test_a_fatal_write_failure_keeps_earlier_chunks_and_writes_nothing_of_its_own(
        tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]], monkeypatch: pytest.MonkeyPatch) -> None:
    """``submit_batch(write_ahead=True)``: the third chunk's write fails
    (``disk I/O error``, not retryable) after its statements. The two chunks
    before it were committed and yielded, nothing of the third (nor of the
    fourth, decided meanwhile) is in the database, the error reaches the
    caller, and a run again ends as one clean run."""
    seed_db, ids = seeded
    requests = _northwind_requests(ids["northwind"], 40)
    clean = _copy(seed_db, tmp_path / "clean.db")
    expected = _views_of_batch(clean, requests, write_ahead=False)
    db = _copy(seed_db, tmp_path / "a.db")
    calls = _fail_writes(monkeypatch, tmp_path / "counter", {3}, "fatal")
    svc = build(f"sqlite:///{db}")
    got = []
    try:
        with pytest.raises(Exception, match="disk I/O error"):
            for outcome in svc.submit_batch("northwind", iter(requests), chunk_size=5, write_ahead=True):
                got.append(_outcome_view(outcome))
        check_ledger(svc, "northwind")
    finally:
        svc.engine.dispose()
    assert len(calls.lines()) == 3
    assert got == expected[:10]  # the two chunks that committed, and only they
    assert _refs_in(db) == [r.ref for r in requests[:10]]  # nothing of the failing chunk, nor later
    _verify(db, "northwind")
    assert calls.elsewhere(), "write_ahead=True wrote every chunk on the main thread of this process"
    # Run again to the end: the same as one clean run.
    monkeypatch.undo()
    again = _views_of_batch(db, requests, write_ahead=True)
    assert again[10:] == expected[10:]
    assert _state(db) == _state(clean)


def test_a_fatal_write_failure_is_one_line_from_bank_txn_process(
        tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]]) -> None:
    """The same through ``bank txn process``: exit 7 and one line naming the
    error, no traceback, no results file, the first two chunks' rows only."""
    seed_db, ids = seeded
    file = _workload(tmp_path / "w.csv", "northwind", ids["northwind"], 60, 6)
    clean = _copy(seed_db, tmp_path / "clean.db")
    _run(clean, "northwind", "txn", "process", str(file), "--chunk-size", "10", env={ENV: "0"})
    with sqlite3.connect(clean) as conn:
        clean_rows = conn.execute("SELECT idempotency_key FROM txn WHERE idempotency_key NOT LIKE 'seed-%' "
                                  "ORDER BY id").fetchall()
    db = _copy(seed_db, tmp_path / "a.db")
    done, _trace, calls = _bank(tmp_path, db, "northwind", "txn", "process", str(file), "--out",
                                str(tmp_path / "r.jsonl"), "--chunk-size", "10", mode="1", fail=({3}, "fatal"))
    assert len(calls.lines()) == 3 and calls.elsewhere()
    assert done.returncode == 7, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("line ")]
    assert len(lines) == 1 and "disk I/O error" in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "r.jsonl").exists()
    with sqlite3.connect(db) as conn:
        written = conn.execute("SELECT idempotency_key FROM txn WHERE idempotency_key NOT LIKE 'seed-%' "
                               "ORDER BY id").fetchall()
    # Exactly what the first two chunks (20 requests) wrote in the clean run.
    first20 = {r.ref for r in _file_requests(file)[:20]}
    assert written and written == [row for row in clean_rows if row[0] in first20]
    assert len(clean_rows) > len(written)
    _verify(db, "northwind")


def test_the_input_failing_mid_run_keeps_what_one_chunk_at_a_time_keeps(
        tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]]) -> None:
    """The requests' iterator raises while the fifth chunk is read: the four
    chunks before it are committed and yielded, write-ahead or not."""
    seed_db, ids = seeded
    requests = _northwind_requests(ids["northwind"], 23)

    def broken() -> Iterator[TxnRequest]:
        yield from requests
        raise RuntimeError("the input broke")

    seen = {}
    for write_ahead in (False, True):
        db = _copy(seed_db, tmp_path / f"{write_ahead}.db")
        svc = build(f"sqlite:///{db}")
        got = []
        try:
            with _Trace(tmp_path / f"trace-{write_ahead}") as trace, \
                    pytest.raises(RuntimeError, match="the input broke"):
                for outcome in svc.submit_batch("northwind", broken(), chunk_size=5, write_ahead=write_ahead):
                    got.append(_outcome_view(outcome))
        finally:
            svc.engine.dispose()
        assert trace.elsewhere() == write_ahead
        seen[write_ahead] = (got, _refs_in(db), _state(db))
    assert len(seen[False][0]) == 20 and seen[False][1] == [r.ref for r in requests[:20]]
    assert seen[True] == seen[False]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _file_refs(db: Path) -> list[str]:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return [r for (r,) in conn.execute("SELECT idempotency_key FROM txn WHERE idempotency_key LIKE 'L%'")]
    except sqlite3.OperationalError:
        return []


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the writer process through /proc")
def test_a_killed_writer_process_fails_the_run_cleanly(
        tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]]) -> None:
    """Where the writer is a process of its own, kill -9 it mid-run: the run
    ends with one line and no traceback, nothing half-written (the committed
    rows are whole chunks from the start of the file), the chain verifies,
    and a run again ends as one clean run."""
    seed_db, ids = seeded
    file = _long_file(tmp_path / "long.csv", ids["northwind"], 3000)
    requests = [r.ref for r in _file_requests(file)]
    clean = _copy(seed_db, tmp_path / "clean.db")
    code, _out, err = _run(clean, "northwind", "txn", "process", str(file), "--out", str(tmp_path / "clean.jsonl"),
                           "--chunk-size", "10", env={ENV: "0"})
    assert code == 5, err
    db = _copy(seed_db, tmp_path / "a.db")
    args = [BANK, "--db", f"sqlite:///{db}", "--profile", "northwind", "--actor", "ops", "txn", "process",
            str(file), "--out", str(tmp_path / "r.jsonl"), "--chunk-size", "10"]
    run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, ENV: "1"})
    killed = None
    deadline = time.monotonic() + 60
    while run.poll() is None and time.monotonic() < deadline:
        children = _children(run.pid)
        if children and len(_file_refs(db)) >= 200:
            killed = children[0]
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.005)
    out, err = run.communicate(timeout=60)
    if killed is None:
        pytest.skip("no writer process to kill (a writer thread, or the run ended first)")
    assert run.returncode not in (0, 5), out + err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("line ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "r.jsonl").exists()
    landed = set(_file_refs(db))
    whole = [set(r for r in requests[:k] if int(r[1:]) % 10 != 9) for k in range(0, len(requests) + 1, 10)]
    assert landed in whole, "not whole chunks from the start of the file"
    assert 200 <= len(landed) < len(whole[-1])
    _verify(db, "northwind")
    code, _out, err = _run(db, "northwind", "txn", "process", str(file), "--out", str(tmp_path / "r.jsonl"),
                           "--chunk-size", "10", env={ENV: "1"})
    assert code == 5, err
    assert _state(db) == _state(clean)
    assert (tmp_path / "r.jsonl").read_text() == (tmp_path / "clean.jsonl").read_text()


# --------------------------------------------------------------------------
# 5. The environment variable
# --------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["2", "true", "yes", "on", " 1", "1.0", ""])
def test_a_bad_write_ahead_value_is_one_line_and_exit_5(
        tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]], value: str) -> None:
    seed_db, ids = seeded
    db = _copy(seed_db, tmp_path / "a.db")
    file = _workload(tmp_path / "w.csv", "northwind", ids["northwind"], 20, 3)
    before = _state(db)
    code, out, err = _run(db, "northwind", "txn", "process", str(file), "--out", str(tmp_path / "r.jsonl"),
                          env={ENV: value})
    assert code == 5, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and ENV in lines[0], err
    assert "Traceback" not in err
    assert _state(db) == before
    assert not (tmp_path / "r.jsonl").exists()


def test_a_bad_write_ahead_value_in_a_real_process(
        tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]]) -> None:
    seed_db, ids = seeded
    db = _copy(seed_db, tmp_path / "a.db")
    file = _workload(tmp_path / "w.csv", "northwind", ids["northwind"], 20, 3)
    before = _state(db)
    done = subprocess.run([BANK, "--db", f"sqlite:///{db}", "--profile", "northwind", "--actor", "ops",
                           "txn", "process", str(file)], capture_output=True, text=True,
                          env={**os.environ, ENV: "maybe"})
    assert done.returncode == 5, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and ENV in lines[0] and "maybe" in lines[0], done.stderr
    assert _state(db) == before


@pytest.mark.parametrize("value", ["0", "1"])
def test_good_values_and_unset_run(tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]],
                                   value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_db, ids = seeded
    file = _workload(tmp_path / "w.csv", "northwind", ids["northwind"], 40, 4)
    db = _copy(seed_db, tmp_path / "a.db")
    code, _out, err = _run(db, "northwind", "txn", "process", str(file), "--out", str(tmp_path / "a.jsonl"),
                           "--chunk-size", "3", env={ENV: value})
    assert code == 5, err
    monkeypatch.delenv(ENV, raising=False)
    unset = _copy(seed_db, tmp_path / "b.db")
    code, _out, err = _run(unset, "northwind", "txn", "process", str(file), "--out",
                           str(tmp_path / "b.jsonl"), "--chunk-size", "3")
    assert code == 5, err
    assert _state(db) == _state(unset)
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()


def test_a_file_of_one_chunk_forks_no_writer(tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]]) -> None:
    """With write-ahead on, a file that fits in one chunk has nothing to
    overlap: it is decided and written by the command's own process (no
    writer forked), and equals one chunk at a time; a file one row longer
    than the chunk is written ahead."""
    seed_db, ids = seeded
    file = _workload(tmp_path / "w.csv", "northwind", ids["northwind"], 40, 6)
    clean = _copy(seed_db, tmp_path / "clean.db")
    code, _out, err = _run(clean, "northwind", "txn", "process", str(file), "--out", str(tmp_path / "clean.jsonl"),
                           env={ENV: "0"})
    assert code == 5, err
    one = _copy(seed_db, tmp_path / "one.db")
    done, trace, _c = _bank(tmp_path, one, "northwind", "txn", "process", str(file), "--out",
                            str(tmp_path / "one.jsonl"), "--chunk-size", "40", mode="1")
    assert done.returncode == 5, done.stderr
    assert trace.lines() and not trace.elsewhere()
    assert _state(one) == _state(clean)
    assert (tmp_path / "one.jsonl").read_text() == (tmp_path / "clean.jsonl").read_text()
    two = _copy(seed_db, tmp_path / "two.db")
    done, trace, _c = _bank(tmp_path, two, "northwind", "txn", "process", str(file), "--out",
                            str(tmp_path / "two.jsonl"), "--chunk-size", "39", mode="1")
    assert done.returncode == 5, done.stderr
    assert trace.elsewhere()
    assert _state(two) == _state(clean)


def test_a_dry_run_is_never_write_ahead(tmp_path: Path, seeded: tuple[Path, dict[str, list[str]]]) -> None:
    """``--dry-run`` with ``BANK_WRITE_AHEAD=1``: decided and written (to its
    throw-away copy) one chunk at a time on the main thread, nothing written
    to the database, and the same results as the real run after it."""
    seed_db, ids = seeded
    file = _workload(tmp_path / "w.csv", "northwind", ids["northwind"], 80, 8)
    db = _copy(seed_db, tmp_path / "a.db")
    before = _state(db)
    done, trace, _calls = _bank(tmp_path, db, "northwind", "txn", "process", str(file), "--dry-run", "--out",
                                str(tmp_path / "dry.jsonl"), "--chunk-size", "7", mode="1")
    assert done.returncode == 5, done.stderr
    assert trace.here()
    assert _state(db) == before
    done, trace, _calls = _bank(tmp_path, db, "northwind", "txn", "process", str(file), "--out",
                                str(tmp_path / "real.jsonl"), "--chunk-size", "7", mode="1")
    assert done.returncode == 5, done.stderr
    assert trace.elsewhere()
    assert (tmp_path / "dry.jsonl").read_text() == (tmp_path / "real.jsonl").read_text()


class _Sealed:
    """A sealed chunk as ``_packed`` sees it: only its ``writes()``."""

    def __init__(self, writes: tuple[Any, ...]) -> None:
        self._writes = writes

    def writes(self) -> tuple[Any, ...]:
        return self._writes


class _Text(str):
    """A caller's own str subclass: what marshal refuses to write."""


def test_a_chunk_goes_to_the_writer_marshalled_or_pickled_and_arrives_the_same() -> None:
    import pickle

    from bank_core.actors import actor_name
    from bank_core.ahead import _packed, _unpacked

    now = datetime(2026, 12, 4, tzinfo=timezone.utc)
    actor = actor_name("ＡＮＮ")  # fullwidth: its normal form is "ann"
    assert actor.typed != actor
    record = [2, "r1", "transfer", "acc_a", "acc_b", 150, "USD", "web", "", True, now.isoformat(), "posted",
              None, 3, ["acc_a", 850, 0, "acc_b", 150, 0], [[1, 2, "p", 1000, 150, [4, 150, 1000]]], None]
    plain = ([(17, 0, 0, [("acc_a", -150, "transfer"), ("acc_b", 150, "transfer")], record)],
             {"acc_a": [150, 0, 0, 0], "acc_b": [0, 150, 0, 0]}, {"acc_a": "s1", "acc_b": "s2"},
             {("acc_a", "2026-12-04", "transfer", "web"): [150, 0, 1]})
    writes = ("bank", now, [actor], [], plain)
    packed = pickle.loads(_packed(_Sealed(writes)))  # type: ignore[arg-type]
    assert type(packed[4]) is bytes  # the plain part marshalled
    assert _unpacked(packed) == writes
    assert _unpacked(packed)[2][0].typed == actor.typed  # the actor as typed, not only its normal form

    odd = [*record[:8], _Text("a memo of the caller's own type"), *record[9:]]
    writes = ("bank", now, [actor], [], ([(17, 0, 0, None, odd)], {}, {}, {}))
    packed = pickle.loads(_packed(_Sealed(writes)))  # type: ignore[arg-type]
    assert type(packed[4]) is tuple  # marshal refused it: pickled as it is
    arrived = _unpacked(packed)
    assert arrived == writes and type(arrived[4][0][0][4][8]) is _Text
