"""Policy servers (issue 9): an institution's drivers in a process of its own.

Everything runs through the real ``bank`` command in subprocesses, on real
SQLite files, with drivers loaded by stevedore from installed distributions
(Northwind's package, the contract-v1 copies, and the deliberately faulty
``bank-server-faults``), in real child processes that the tests kill.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from bank_core.profile import DEFAULT_PROFILE
from bank_wiring import build
from cli_support import assert_one_error_line, bank_executable
from test_contract_v1 import _profile as v1_profile
from test_process import _copy, _seed, _state, _workload

FAULTS_DIST = f"bank-server-faults {metadata.version('bank-server-faults')}"
GRACE_S = 1.0  # bank_core.decide.HANG_GRACE_MS


def bank(db: Path, *args: str, run_dir: Path, profile: str = "northwind", timeout: float = 120,
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANK_")}
    env.update(BANK_RUN_DIR=str(run_dir), BANK_CONFIG_DIR=str(run_dir / "config"), BANK_ACTOR="ops")
    return subprocess.run([bank_executable(), "--db", f"sqlite:///{db}", "--profile", profile, *args],
                          capture_output=True, text=True, env=env, timeout=timeout, check=False)


def bank_popen(db: Path, *args: str, run_dir: Path, profile: str = "northwind") -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANK_")}
    env.update(BANK_RUN_DIR=str(run_dir), BANK_CONFIG_DIR=str(run_dir / "config"), BANK_ACTOR="ops")
    return subprocess.Popen([bank_executable(), "--db", f"sqlite:///{db}", "--profile", profile, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def apply(db: Path, document: dict[str, Any], tmp_path: Path) -> None:
    svc = build(f"sqlite:///{db}")
    svc.apply_profile(document, "ops")
    svc.engine.dispose()


def northwind(isolation: str) -> dict[str, Any]:
    document = v1_profile("northwind_policies", v1=False)
    document["max_backdate"] = "7d"
    document["name"] = "Northwind (a new version in both modes)"
    document["isolation"] = isolation
    return document


def results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def status(db: Path, run_dir: Path, *extra: str) -> list[dict[str, Any]]:
    done = bank(db, "--json", "plugins", "status", *extra, run_dir=run_dir)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["servers"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    base = tmp_path_factory.mktemp("seed") / "seed.db"
    return base, _seed(base)


# --------------------------------------------------------------------------
# Same decisions in both modes
# --------------------------------------------------------------------------

@pytest.mark.parametrize("package", ["northwind", "v1", "shadowed"])
def test_inline_and_process_give_identical_ledgers_results_and_audit(
        tmp_path: Path, seeded: tuple[Path, list[str]], package: str) -> None:
    """The same file through the same profile, inline and in a policy
    server: ledger, transactions, decision records in the audit chain and
    the results file are identical (the profile.applied entry differs by
    its isolation key, so the chains' hashes do). ``v1``: the contract-v1
    copies of Northwind's drivers, unchanged, in both modes. ``shadowed``:
    with a shadow profile running (evaluated inline in both modes, on the
    context's objects), and its decisions identical too."""
    file = _workload(tmp_path / "day.csv", seeded[1], 900)
    outputs = {}
    for isolation in ("inline", "process"):
        db = _copy(seeded[0], tmp_path / f"{isolation}.db")
        document = northwind(isolation)
        if package == "v1":
            for slot in ("fee", "limit", "approval"):
                for ref in document.get(slot, []):
                    ref["driver"] = "v1" + ref["driver"]
        apply(db, document, tmp_path)
        if package == "shadowed":
            from bank_core import shadow

            candidate = northwind("inline")
            candidate["limit"] = [{**ref, "params": {"max": "2000.00"}} if ref["driver"] == "northwind.single_transaction"
                                  else ref for ref in candidate["limit"]]
            svc = build(f"sqlite:///{db}")
            shadow.install(svc, candidate, "ops")
            svc.engine.dispose()
        done = bank(db, "txn", "process", str(file), "--out", str(tmp_path / f"{isolation}.jsonl"),
                    "--chunk-size", "250", run_dir=tmp_path / "run")
        assert done.returncode == 5, done.stderr  # the workload has malformed rows
        with sqlite3.connect(db) as conn:
            shadowed = conn.execute("SELECT txn_id, shadow, status, code, fee_minor, record FROM shadow_decision "
                                    "ORDER BY txn_id").fetchall()
        assert bool(shadowed) == (package == "shadowed")
        outputs[isolation] = (_state(db), (tmp_path / f"{isolation}.jsonl").read_text(), shadowed)
    inline, process = outputs["inline"], outputs["process"]
    assert inline[0]["txn"] and inline[0]["audit"]
    statuses = {r["status"] for r in results(tmp_path / "inline.jsonl")}
    assert statuses >= {"posted", "held", "rejected", "invalid"}, statuses
    assert process[0] == inline[0]
    assert process[1] == inline[1]
    assert process[2] == inline[2]


# --------------------------------------------------------------------------
# One test per fault kind
# --------------------------------------------------------------------------

def faulty(driver: str, isolation: str = "process") -> dict[str, Any]:
    document = {**DEFAULT_PROFILE, "id": "northwind", "name": "Northwind (faulty)",
                "approval": [*DEFAULT_PROFILE["approval"], {"driver": driver}], "isolation": isolation}
    return document


def two_rows(tmp_path: Path, a: str, b: str) -> Path:
    at = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    path = tmp_path / "two.csv"
    path.write_text("ref,type,from,to,amount,currency,channel,memo,at\n"
                    f"f1,transfer,{a},{b},10.00,USD,online,boom,{at}\n"
                    f"f2,transfer,{a},{b},11.00,USD,online,fine,{at}\n")
    return path


# (driver, code, restarts of the server the fault costs)
FAULTS = [
    ("servfault.raises", "driver_raised", 0),
    ("servfault.garbage", "driver_bad_answer", 0),
    ("servfault.c_loop", "driver_timeout", 1),  # stuck in C: killed and restarted
    ("servfault.regex", "driver_timeout", 1),  # holds the GIL: the watchdog thread never runs; killed
    ("servfault.sys_exit", "driver_crashed", 0),  # SystemExit is caught where the driver runs
    ("servfault.os_exit", "driver_crashed", 2),  # dies, restarted, dies again alone: the driver's doing
    ("servfault.segfault", "driver_crashed", 2),
    ("servfault.memory", "driver_crashed", 2),  # RLIMIT_AS: MemoryError, the server exits
    ("servfault.open_file", "driver_forbidden", 0),
    ("servfault.socket", "driver_forbidden", 0),
    ("servfault.subprocess", "driver_forbidden", 0),
]


@pytest.mark.parametrize(("driver", "code", "restarts"), FAULTS, ids=[f[0].split(".")[1] for f in FAULTS])
def test_fault_is_contained_in_the_policy_server(tmp_path: Path, seeded: tuple[Path, list[str]],
                                                  driver: str, code: str, restarts: int) -> None:
    db = _copy(seeded[0], tmp_path / "a.db")
    apply(db, faulty(driver), tmp_path)
    a, b = seeded[1][:2]
    run_dir = tmp_path / "run"
    assert bank(db, "txn", "deposit", a, "100.00", run_dir=run_dir).returncode == 0
    started = time.monotonic()
    done = bank(db, "txn", "process", str(two_rows(tmp_path, a, b)), "--out", str(tmp_path / "r.jsonl"),
                run_dir=run_dir)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr  # a rejected row is an outcome, not an error
    assert "Traceback" not in done.stderr
    first, second = results(tmp_path / "r.jsonl")
    assert (first["ref"], first["status"], first["code"]) == ("f1", "rejected", code)
    fault = [r for r in first["reasons"] if r["outcome"] == "fault"]
    assert len(fault) == 1 and fault[0]["driver"] == driver and fault[0]["distribution"] == FAULTS_DIST
    assert (second["ref"], second["status"]) == ("f2", "posted")
    # within the budgets plus the grace periods, plus the command's start-up
    budget_s = (50 * 4) / 1000 + 2 * GRACE_S
    assert elapsed < budget_s + 8, f"{elapsed:.1f} s"
    # the fault is in the audit chain with the driver and its distribution
    with sqlite3.connect(db) as conn:
        (payload,) = conn.execute("SELECT payload FROM audit_entry WHERE action = 'txn.rejected' "
                                  "ORDER BY seq DESC LIMIT 1").fetchone()
        texts = [t for (t,) in conn.execute("SELECT text FROM decision_term")]
    assert f'"{code}"' in payload
    assert any(driver in t and FAULTS_DIST in t for t in texts)
    # nothing half-posted: one posted transfer of 11.00, the rejected one charged nothing
    assert bank(db, "--json", "balance", a, run_dir=run_dir).stdout.count('"89.00"') >= 1
    (last,) = status(db, run_dir, "--all")[-1:]
    assert last["restarts"] == restarts and last["institution"] == "northwind"
    assert last["rows"] >= 1 and last["running"] is False


def test_sys_exit_is_contained_inline_too(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    db = _copy(seeded[0], tmp_path / "a.db")
    apply(db, faulty("servfault.sys_exit", isolation="inline"), tmp_path)
    a, b = seeded[1][:2]
    run_dir = tmp_path / "run"
    assert bank(db, "txn", "deposit", a, "100.00", run_dir=run_dir).returncode == 0
    done = bank(db, "txn", "process", str(two_rows(tmp_path, a, b)), "--out", str(tmp_path / "r.jsonl"),
                run_dir=run_dir)
    assert done.returncode == 0, done.stderr
    first, second = results(tmp_path / "r.jsonl")
    assert (first["status"], first["code"]) == ("rejected", "driver_crashed")
    assert "SystemExit" in first["reasons"][-1]["message"]
    assert second["status"] == "posted"
    assert status(db, run_dir, "--all") == []  # inline: no server


def test_a_server_that_keeps_crashing_is_marked_down(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    """Every call kills the server: after the allowed restarts the
    institution's requests are refused with one line, exit 7, and nothing
    of the chunk is written."""
    db = _copy(seeded[0], tmp_path / "a.db")
    apply(db, faulty("servfault.always_exits"), tmp_path)
    a, b = seeded[1][:2]
    run_dir = tmp_path / "run"
    file = two_rows(tmp_path, a, b)
    file.write_text(file.read_text() * 1 + "".join(
        f"d{n},deposit,,{a},1.00,USD,online,fine,\n" for n in range(6)))
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT COUNT(*) FROM txn").fetchone()[0]
    done = bank(db, "txn", "process", str(file), "--out", str(tmp_path / "r.jsonl"), run_dir=run_dir)
    line = assert_one_error_line(done, 7, "northwind", "refused", "policy server")
    assert "exited with status 9" in line
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM txn").fetchone()[0] == before
    assert not (tmp_path / "r.jsonl").exists()
    deposit = bank(db, "txn", "deposit", a, "1.00", run_dir=run_dir)  # another process: still down
    assert_one_error_line(deposit, 7, "refused")
    (last,) = status(db, run_dir, "--all")[-1:]
    assert last["down"] is True and last["restarts"] == 6


# --------------------------------------------------------------------------
# kill -9 of the server mid-file; status while it runs
# --------------------------------------------------------------------------

def test_kill_9_of_the_server_mid_file_loses_nothing(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    document = northwind("process")
    document["approval"] = [*document["approval"], {"driver": "servfault.sleepy", "params": {"ms": 4}}]
    file = _workload(tmp_path / "day.csv", seeded[1], 2400)
    whole = _copy(seeded[0], tmp_path / "whole.db")
    apply(whole, document, tmp_path)
    assert bank(whole, "txn", "process", str(file), "--out", str(tmp_path / "whole.jsonl"),
                "--chunk-size", "100", run_dir=tmp_path / "run1").returncode == 5

    killed = _copy(seeded[0], tmp_path / "killed.db")
    apply(killed, document, tmp_path)
    run_dir = tmp_path / "run2"
    child = bank_popen(killed, "txn", "process", str(file), "--out", str(tmp_path / "killed.jsonl"),
                       "--chunk-size", "100", run_dir=run_dir)
    deadline = time.monotonic() + 60
    killed_pid = None
    misses: list[Any] = []
    while killed_pid is None and time.monotonic() < deadline and child.poll() is None:
        running = [s for s in status(killed, run_dir) if s["rows"] > 300]
        if not running:
            time.sleep(0.2)
            continue
        (server,) = running
        # status of a running server: honest figures
        assert server["institution"] == "northwind" and server["running"] is True
        assert server["restarts"] == 0
        assert server["messages"] > 0 and 0 < server["p50_us"] <= server["p99_us"]
        assert server["rss_kb"] > 1000
        try:
            os.kill(server["pid"], signal.SIGKILL)
            killed_pid = server["pid"]
        except ProcessLookupError:  # it stopped between the status and the kill: look again
            misses.append(server)
            continue
    if killed_pid is None:
        child.kill()
        raise AssertionError(f"the server was never seen serving: {misses} {child.communicate()[0]}")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 5, err
    assert _state(killed) == _state(whole)
    assert (tmp_path / "killed.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()
    (last,) = status(killed, run_dir, "--all")
    assert last["restarts"] == 1 and last["pid"] != killed_pid
    # and running the file again equals one uninterrupted run
    again = bank(killed, "txn", "process", str(file), "--out", str(tmp_path / "again.jsonl"),
                 "--chunk-size", "100", run_dir=run_dir)
    assert again.returncode == 5
    assert _state(killed) == _state(whole)
    assert (tmp_path / "again.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()


# --------------------------------------------------------------------------
# Profile, check and status
# --------------------------------------------------------------------------

def test_a_bad_isolation_is_one_clear_line(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    db = _copy(seeded[0], tmp_path / "a.db")
    path = tmp_path / "p.toml"
    path.write_text('id = "northwind"\nname = "N"\ncurrency = "USD"\ntimezone = "UTC"\nisolation = "thread"\n')
    done = bank(db, "profile", "apply", str(path), run_dir=tmp_path / "run")
    line = assert_one_error_line(done, 5, "isolation", "'thread'", '"process"')
    assert "inline" in line


def test_plugins_check_probes_the_server(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    db = _copy(seeded[0], tmp_path / "a.db")
    apply(db, northwind("process"), tmp_path)
    done = bank(db, "--json", "plugins", "check", run_dir=tmp_path / "run")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    server = [d for d in report["drivers"] if d["driver"] == "policy server"]
    assert len(server) == 1 and server[0]["status"] == "ok"
    assert server[0]["elapsed_us"] < server[0]["budget_ms"] * 1000
    assert len(report["drivers"]) == 1 + sum(len(northwind("process").get(s, [])) for s in
                                             ("fee", "limit", "approval"))


def test_plugins_check_reports_a_crashing_driver_in_process_mode(tmp_path: Path,
                                                                 seeded: tuple[Path, list[str]]) -> None:
    db = _copy(seeded[0], tmp_path / "a.db")
    apply(db, faulty("servfault.always_exits"), tmp_path)
    done = bank(db, "--json", "plugins", "check", run_dir=tmp_path / "run")
    assert done.returncode in (4, 7), done.stdout + done.stderr
    if done.returncode == 4:
        report = json.loads(done.stdout)
        bad = {d["driver"]: d["status"] for d in report["drivers"] if not d["ok"]}
        assert bad.get("servfault.always_exits") == "crashed" or bad.get("policy server") == "server_down"


def test_holds_and_reversals_are_decided_by_the_server(tmp_path: Path, seeded: tuple[Path, list[str]]) -> None:
    """Approving a hold re-runs the limit and approval slots, and a reversal
    runs them too: in process mode both go to the policy server (a crashing
    approval driver there rejects the approval; here the drivers pass)."""
    db = _copy(seeded[0], tmp_path / "a.db")
    apply(db, northwind("process"), tmp_path)
    a, b = seeded[1][:2]
    run_dir = tmp_path / "run"
    assert bank(db, "txn", "deposit", a, "9000.00", run_dir=run_dir).returncode == 0
    held = bank(db, "--json", "txn", "transfer", a, b, "6000.00", run_dir=run_dir)
    assert held.returncode == 3, held.stdout + held.stderr  # over Northwind's review threshold
    txn = json.loads(held.stdout)["txn_id"]
    env_bank = bank  # a second person approves
    done = subprocess.run([bank_executable(), "--db", f"sqlite:///{db}", "--profile", "northwind",
                           "--actor", "supervisor", "--json", "txn", "approve", txn],
                          capture_output=True, text=True, timeout=60,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("BANK_")},
                               "BANK_RUN_DIR": str(run_dir), "BANK_CONFIG_DIR": str(run_dir / "config")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["status"] == "posted"
    reversed_ = env_bank(db, "--json", "txn", "reverse", txn, "--memo", "undo", run_dir=run_dir)
    assert reversed_.returncode == 0, reversed_.stdout + reversed_.stderr
    assert [s["rows"] for s in status(db, run_dir, "--all")] == [1, 1, 1, 1]


@pytest.mark.postgres
def test_process_mode_on_postgresql(tmp_path: Path, fresh_pg_url: str) -> None:
    """The same containment on PostgreSQL: a driver that kills its server
    fails its transaction closed, the next one posts, the ledger balances."""
    svc = build(fresh_pg_url)
    svc.apply_profile(faulty("servfault.os_exit"), "ops")
    opened = datetime.now(timezone.utc) - timedelta(days=1)
    a, b = (svc.open_account("northwind", holder=h, actor="ops", opened_at=opened).id for h in ("Ann", "Bob"))
    svc.close()
    svc.engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANK_")}
    env.update(BANK_RUN_DIR=str(tmp_path / "run"), BANK_CONFIG_DIR=str(tmp_path / "config"), BANK_ACTOR="ops")

    def pg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([bank_executable(), "--db", fresh_pg_url, "--profile", "northwind", *args],
                              capture_output=True, text=True, env=env, timeout=120, check=False)

    assert pg("txn", "deposit", a, "100.00").returncode == 0
    done = pg("txn", "process", str(two_rows(tmp_path, a, b)), "--out", str(tmp_path / "r.jsonl"))
    assert done.returncode == 0, done.stderr
    first, second = results(tmp_path / "r.jsonl")
    assert (first["status"], first["code"]) == ("rejected", "driver_crashed")
    assert second["status"] == "posted"
    assert json.loads(pg("--json", "balance", a).stdout)["posted"] == "89.00"
    assert pg("audit", "verify").returncode == 0
