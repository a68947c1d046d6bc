"""`bank txn process`: files in, results out, crash-safe and idempotent.

Everything runs through the real `bank` command (CliRunner in-process, and a
real subprocess for the kill -9 test) on real SQLite files, with Northwind's
drivers loaded by stevedore from the installed policy package.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bank_cli.main import app
from bank_core.batchfile import read_rows
from bank_core.errors import BankError
from bank_core.profile import read_toml
from bank_wiring import build

BANK = str(Path(sys.executable).with_name("bank"))


def _seed(path: Path, accounts: int = 12) -> list[str]:
    """A Northwind database with funded accounts; returns the account ids."""
    svc = build(f"sqlite:///{path}")
    with resources.as_file(resources.files("northwind_policies") / "profile.toml") as toml:
        svc.apply_profile(read_toml(Path(toml)), "setup")
    opened = datetime.now(timezone.utc) - timedelta(days=30)  # before the workload's rows
    ids = [svc.open_account("northwind", holder=f"h{n}", actor="setup", opened_at=opened).id
           for n in range(accounts)]
    svc.engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ids


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def _workload(path: Path, ids: list[str], rows: int) -> Path:
    """Mixed rows: deposits, ATM and branch withdrawals, transfers, some over
    the limits and review threshold, and malformed rows, at minute steps
    (from six days ago: inside the profile's default max_backdate of 7 days)."""
    lines = ["ref,type,from,to,amount,currency,channel,memo,at"]
    base = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
    for n in range(rows):
        a, b = ids[n % len(ids)], ids[(n * 5 + 1) % len(ids)]
        moment = base + timedelta(days=(n // 600) % 5, hours=10 + (n // 60) % 10, minutes=n % 60)
        at = moment.isoformat().replace("+00:00", "Z")
        pick = n % 20
        if n < len(ids):
            row = f"r{n},deposit,,{a},9000.00,USD,branch,open,{at}"
        elif pick < 6:
            row = f"r{n},deposit,,{a},{100 + n % 900}.{n % 100:02d},,branch,,{at}"
        elif pick < 10:
            row = f"r{n},withdrawal,{a},,{20 + n % 400}.00,,{'atm' if n % 2 else 'branch'},,{at}"
        elif pick < 17:
            row = f"r{n},transfer,{a},{b},{1 + n % 700}.{n % 100:02d},,online,,{at}"
        elif pick == 17:
            row = f"r{n},transfer,{a},{b},5000.00,,online,big,{at}"
        elif pick == 18:
            row = f"r{n},withdrawal,{a},,1e3,,atm,,{at}"
        else:
            row = f"r{n},deposit,,acc_nope,1.00,,branch,,{at}"
        lines.append(row)
    path.write_text("\n".join(lines) + "\n")
    return path


def _state(db: Path) -> dict[str, list[tuple]]:
    """Ledger, transactions and audit chain, without wall-clock times."""
    with sqlite3.connect(db) as conn:
        return {
            "balance": conn.execute("SELECT account_id, debits_posted, credits_posted, debits_pending, "
                                    "credits_pending FROM balance ORDER BY account_id").fetchall(),
            "posting": conn.execute("SELECT txn_id, account_id, amount_minor, rule FROM posting "
                                    "ORDER BY id").fetchall(),
            "txn": conn.execute("SELECT id, idempotency_key, status, amount_minor, fee_minor, code, "
                                "lines FROM txn ORDER BY id").fetchall(),
            "audit": conn.execute("SELECT institution_id, seq, actor, action, subject, payload "
                                  "FROM audit_entry WHERE action LIKE 'txn.%' ORDER BY institution_id, seq"
                                  ).fetchall(),
        }


def _run(db: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(app, ["--db", f"sqlite:///{db}", "--profile", "northwind", "--actor", "ops", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    base = tmp_path_factory.mktemp("seed") / "seed.db"
    return base, _seed(base)


def test_results_and_summary(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    db = _copy(seeded[0], tmp_path / "a.db")
    file = _workload(tmp_path / "day.csv", seeded[1], 400)
    code, out, err = _run(db, "--json", "txn", "process", str(file), "--out", str(tmp_path / "r.jsonl"))
    summary = json.loads(out)
    results = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert code == 5  # some rows are malformed
    assert len(results) == 400 and [r["line"] for r in results] == list(range(2, 402))
    assert summary["rows"] == 400
    assert sum(summary[k] for k in ("posted", "held", "rejected", "invalid")) == 400
    assert summary["invalid"] == sum(r["status"] == "invalid" for r in results) == 40
    assert summary["held"] > 0 and summary["rejected"] > 0 and summary["posted"] > 0
    bad = {r["line"]: r["error"] for r in results if r["status"] == "invalid"}
    assert "amount: '1e3'" in bad[20] and "acc_nope" in bad[21]
    assert "line 20: amount: '1e3'" in err  # one line per bad row, with its line number
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT COUNT(*) FROM txn WHERE idempotency_key LIKE 'r%'").fetchone()[0]
        fees = conn.execute("SELECT SUM(fee_minor) FROM txn WHERE status IN ('posted','held')").fetchone()[0]
    assert stored == 360  # every valid row recorded once; invalid rows touch nothing
    assert summary["fees"]["USD"] == f"{fees // 100}.{fees % 100:02d}"


def test_posted_rows_with_refs_json_must_escape(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    """A posted row's line is written without its document unless its ref
    holds a quote or a backslash: either way each line is the standard
    encoder's text of the row's result, and a re-run (every row replayed,
    every line from its document) writes the same file."""
    db = _copy(seeded[0], tmp_path / "a.db")
    acc = seeded[1][0]
    file = tmp_path / "refs.csv"
    file.write_text("ref,type,from,to,amount\n"
                    f'"q""1",deposit,,{acc},1.00\n'
                    f"b\\2,deposit,,{acc},2.00\n"
                    f"p3,deposit,,{acc},3.00\n"
                    f"w4,withdrawal,{acc},,0.50\n")
    code, _, _ = _run(db, "txn", "process", str(file), "--out", str(tmp_path / "1.jsonl"))
    assert code == 0
    lines = (tmp_path / "1.jsonl").read_text().splitlines(keepends=True)
    docs = [json.loads(line) for line in lines]
    assert [d["ref"] for d in docs] == ['q"1', "b\\2", "p3", "w4"]
    assert [d["status"] for d in docs] == ["posted"] * 4
    assert lines == [json.dumps(d, sort_keys=True, separators=(",", ":")) + "\n" for d in docs]
    _run(db, "txn", "process", str(file), "--out", str(tmp_path / "2.jsonl"))
    assert (tmp_path / "2.jsonl").read_text() == "".join(lines)


def test_rerun_posts_nothing_twice(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    db = _copy(seeded[0], tmp_path / "a.db")
    file = _workload(tmp_path / "day.csv", seeded[1], 300)
    _run(db, "txn", "process", str(file), "--out", str(tmp_path / "1.jsonl"))
    before = _state(db)
    code, out, _ = _run(db, "--json", "txn", "process", str(file), "--out", str(tmp_path / "2.jsonl"))
    assert _state(db) == before
    assert (tmp_path / "1.jsonl").read_text() == (tmp_path / "2.jsonl").read_text()
    assert json.loads(out)["replayed"] == 270


def test_same_as_row_by_row(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    """The chunked path gives exactly the ledger, fees and audit chain of
    submitting the rows one by one."""
    file = _workload(tmp_path / "day.csv", seeded[1], 500)
    chunked = _copy(seeded[0], tmp_path / "chunked.db")
    _run(chunked, "txn", "process", str(file), "--chunk-size", "170")
    single = _copy(seeded[0], tmp_path / "single.db")
    svc = build(f"sqlite:///{single}")
    with file.open() as handle:
        for _line, request in read_rows(handle, "csv", "northwind", "ops"):
            if isinstance(request, Exception):
                continue
            try:
                svc.submit(request)
            except BankError:
                pass
    svc.engine.dispose()
    a, b = _state(chunked), _state(single)
    assert a["txn"] and a == b


def test_dry_run_writes_nothing_and_predicts(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    file = _workload(tmp_path / "day.csv", seeded[1], 300)
    db = _copy(seeded[0], tmp_path / "a.db")
    before = _state(db)
    code, out, _ = _run(db, "--json", "txn", "process", str(file), "--dry-run", "--out", str(tmp_path / "dry.jsonl"))
    assert json.loads(out)["dry_run"] is True
    assert _state(db) == before
    _run(db, "txn", "process", str(file), "--out", str(tmp_path / "real.jsonl"))
    assert (tmp_path / "dry.jsonl").read_text() == (tmp_path / "real.jsonl").read_text()


def test_jsonl_and_bad_rows(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    db = _copy(seeded[0], tmp_path / "a.db")
    a, b = seeded[1][:2]
    rows = [
        {"ref": "j1", "type": "deposit", "to": a, "amount": "10.00"},
        {"ref": "j2", "type": "deposit", "to": a, "amount": 10},
        "not json",
        {"ref": "j3", "type": "transfer", "from": a, "to": b, "amount": "1.00", "currency": "EUR"},
        {"ref": "j4", "type": "withdrawal", "from": a, "amount": "1.00", "colour": "red"},
        {"type": "deposit", "to": a, "amount": "1.00"},
        {"ref": "j1", "type": "deposit", "to": a, "amount": "11.00"},
        {"ref": "j5", "type": "deposit", "to": a, "amount": "2.00", "at": "yesterday"},
        {"ref": "j6", "type": "transfer", "from": a, "to": b, "amount": "1.00"},
    ]
    file = tmp_path / "in.jsonl"
    file.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    code, out, err = _run(db, "txn", "process", str(file), "--out", str(tmp_path / "r.jsonl"))
    results = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    status = {r["line"]: (r["status"], r["error"]) for r in results}
    assert code == 5
    assert status[1][0] == "posted" and status[9][0] == "posted"
    assert "amount" in status[2][1] and "must be text" in status[2][1]
    assert "not valid JSON" in status[3][1]
    assert "currency: EUR" in status[4][1]
    assert "unknown field 'colour'" in status[5][1]
    assert "ref: missing" in status[6][1]
    assert "already used for a different request" in status[7][1]
    assert "at: 'yesterday'" in status[8][1]
    assert "Traceback" not in err


def test_bad_header_is_one_line(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    db = _copy(seeded[0], tmp_path / "a.db")
    file = tmp_path / "x.csv"
    file.write_text("ref,kind,amount\nr1,deposit,1.00\n")
    code, out, err = _run(db, "txn", "process", str(file))
    assert code == 5
    assert err.strip().splitlines() == ["error: line 1: unknown column 'kind'; columns are "
                                        "ref, type, from, to, amount, currency, channel, memo, at"]


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM txn WHERE idempotency_key LIKE 'r%'").fetchone()[0]
    except sqlite3.OperationalError:
        return -1


def test_kill_9_and_rerun_equals_one_run(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    """Kill a running `bank txn process` at several points, run it again to
    the end: ledger, audit chain and results equal one uninterrupted run."""
    rows = 2400
    file = _workload(tmp_path / "day.csv", seeded[1], rows)
    valid = rows - 2 * (rows // 20)
    whole = _copy(seeded[0], tmp_path / "whole.db")
    _run(whole, "txn", "process", str(file), "--out", str(tmp_path / "whole.jsonl"), "--chunk-size", "100")
    killed = _copy(seeded[0], tmp_path / "killed.db")
    args = [BANK, "--db", f"sqlite:///{killed}", "--profile", "northwind", "--actor", "ops", "txn",
            "process", str(file), "--out", str(tmp_path / "killed.jsonl"), "--chunk-size", "100"]
    landed = []
    for threshold in (1, valid // 3, (2 * valid) // 3):
        child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while _count(killed) < threshold and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        landed.append(_count(killed))
    assert any(0 < n < valid for n in landed), f"no kill landed mid-run: {landed}"
    assert not (tmp_path / "killed.jsonl").exists()  # no half-written results
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 5, done.stderr
    assert _state(killed) == _state(whole)
    assert (tmp_path / "killed.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()
    verify = subprocess.run([BANK, "--db", f"sqlite:///{killed}", "--profile", "northwind", "audit",
                             "verify"], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr


def test_spreadsheet_bom_and_missing_out_directory(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    db = _copy(seeded[0], tmp_path / "a.db")
    file = tmp_path / "excel.csv"
    file.write_bytes("\ufeffref,type,to,amount\r\nb1,deposit,{},5.00\r\n".format(seeded[1][0]).encode("utf-8"))
    code, out, err = _run(db, "--json", "txn", "process", str(file))
    assert code == 0, err
    assert json.loads(out)["posted"] == 1
    code, out, err = _run(db, "txn", "process", str(file), "--out", str(tmp_path / "nope" / "r.jsonl"))
    assert code == 5 and err.strip().startswith("error: --out: directory") and "does not exist" in err


def test_the_summary_reports_the_writers_memory_beside_its_own(tmp_path: Path,
                                                                seeded: tuple[Path, list[str]]) -> None:
    """``children_peak_rss_mb``: the write-ahead writer's peak memory (a real
    `bank` process, so the figure is this command's children only); null when
    the file fits one chunk and no writer was forked."""
    file = _workload(tmp_path / "day.csv", seeded[1], 300)

    def summary(chunk_size: str) -> dict:
        db = _copy(seeded[0], tmp_path / f"{chunk_size}.db")
        done = subprocess.run([BANK, "--db", f"sqlite:///{db}", "--profile", "northwind", "--actor", "ops", "--json",
                               "txn", "process", str(file), "--chunk-size", chunk_size],
                              capture_output=True, text=True)
        assert done.returncode == 5, done.stderr  # the workload's malformed rows
        return json.loads(done.stdout)

    chunked, whole = summary("100"), summary("1000")
    assert whole["children_peak_rss_mb"] is None
    assert isinstance(chunked["children_peak_rss_mb"], float) and chunked["children_peak_rss_mb"] > 1.0
    assert chunked["peak_rss_mb"] > 1.0
