"""Load on a real `bank serve`: 32 concurrent clients for 30 s, then checks.

For each database (a fresh SQLite file; PostgreSQL when --postgres URL or
BANK_TEST_POSTGRES_URL is given, in a fresh database dropped afterwards):

1. set up Northwind (its real profile: 7 drivers) with one hot account with
   limited funds, 20 ordinary accounts, and API keys (as `bank apikey create`);
2. start `bank serve` on a free port of 127.0.0.1 (loopback only) and run
   the clients for a bounded time, each on its own keep-alive connection:
   transfers out of the hot account (which runs dry: later ones are rejected
   by `core.no_overdraft`), transfers among the 20 accounts, and reads
   (balances and transactions). Every 10th write is sent twice with the same
   Idempotency-Key, as a client retrying after a lost answer would;
3. report requests/s and latency p50/p99 per kind, then check: no 5xx, no
   account below zero (Northwind forbids overdrafts), every balance equals
   the sum of its postings, the audit chain verifies, and no retried
   request was posted twice.

Run it with `python3 dev.py bench-http` (`--seconds 5` for a quick look).
Figures are printed, never asserted; a failed check exits 1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

LOOPBACK = "127.0.0.1"
MAX_SECONDS = 300
MAX_CLIENTS = 256
ACCOUNTS = 20
HOT_FUNDS = "500.00"     # the hot account runs dry after a few hundred transfers
ORDINARY_FUNDS = "9000.00"
RETRY_EVERY = 10
KINDS = ("hot transfer", "transfer", "read")


@dataclass
class Tally:
    latencies_us: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    retried: list[tuple[str, str]] = field(default_factory=list)   # (txn_id, dest account)
    replay_mismatches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def bank_bin() -> str:
    candidate = Path(sys.executable).with_name("bank")
    return str(candidate) if candidate.exists() else "bank"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def setup(url: str) -> dict[str, Any]:
    """The institution, its accounts and keys, through the service facade."""
    from bank_core.profile import read_toml
    from bank_http.keys import KeyStore
    from bank_wiring import build
    import northwind_policies

    service = build(url)
    profile = read_toml(Path(northwind_policies.__file__).with_name("profile.toml"))
    service.apply_profile(profile, "bench")
    inst = profile["id"]
    keys = KeyStore(service)
    _, teller = keys.create(inst, role="teller", name="bench-teller", actor="bench")
    _, auditor = keys.create(inst, role="auditor", name="bench-auditor", actor="bench")
    hot = service.open_account(inst, holder="Hot", actor="bench").id
    ordinary = [service.open_account(inst, holder=f"Holder {n}", actor="bench").id for n in range(ACCOUNTS)]
    from bank_core.messages import TxnRequest

    for n, acc in enumerate([hot, *ordinary]):
        amount = HOT_FUNDS if acc == hot else ORDINARY_FUNDS
        service.submit(TxnRequest(institution=inst, ref=f"fund-{n}", kind="deposit", amount=amount,
                                  dest=acc, actor="bench"))
    service.engine.dispose()
    return {"institution": inst, "teller": teller, "auditor": auditor, "hot": hot, "accounts": ordinary}


@contextmanager
def serving(url: str, workdir: Path, workers: int = 1) -> Iterator[int]:
    port = free_port()
    log = (workdir / "serve.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANK_")}
    proc = subprocess.Popen([bank_bin(), "--db", url, "serve", "--host", LOOPBACK, "--port", str(port),
                             "--no-access-log", "--workers", str(workers)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bank serve did not start; see {workdir / 'serve.log'}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def client(port: int, world: dict[str, Any], until: float, seed: int, tally: Tally) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    auth = {"Authorization": f"Bearer {world['teller']}", "Content-Type": "application/json"}
    accounts, hot = world["accounts"], world["hot"]
    writes = 0
    while time.monotonic() < until:
        pick = rng.random()
        if pick < 0.3:
            kind, path = "read", f"/v1/accounts/{rng.choice(accounts)}/balance"
            if pick < 0.1:
                path = f"/v1/transactions?account={rng.choice(accounts)}&limit=10"
            status, _ = call(conn, "GET", path, None, auth, kind, tally)
            continue
        source, dest = (hot, rng.choice(accounts)) if pick < 0.55 else rng.sample(accounts, 2)
        kind = "hot transfer" if source == hot else "transfer"
        cents = rng.randint(100, 500)  # integer minor units, written as text
        body = json.dumps({"type": "transfer", "from": source, "to": dest,
                           "amount": f"{cents // 100}.{cents % 100:02d}"})
        headers = {**auth, "Idempotency-Key": f"load-{seed}-{writes}"}
        status, doc = call(conn, "POST", "/v1/transactions", body, headers, kind, tally)
        writes += 1
        if writes % RETRY_EVERY == 0 and status in (201, 202):
            again_status, again = call(conn, "POST", "/v1/transactions", body, headers, kind, tally)
            with tally.lock:
                if again_status != status or again.get("txn_id") != doc.get("txn_id"):
                    tally.replay_mismatches += 1
                tally.retried.append((doc["txn_id"], dest))
    conn.close()


def call(conn: http.client.HTTPConnection, method: str, path: str, body: str | None,
         headers: dict[str, str], kind: str, tally: Tally) -> tuple[int, dict[str, Any]]:
    started = time.perf_counter_ns()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    elapsed_us = (time.perf_counter_ns() - started) // 1000
    with tally.lock:
        tally.latencies_us[kind].append(elapsed_us)
        tally.statuses[kind][response.status] += 1
    return response.status, json.loads(raw) if raw else {}


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000 if ordered else 0.0


def get(port: int, path: str, secret: str) -> Any:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=120)
    conn.request("GET", path, headers={"Authorization": f"Bearer {secret}"})
    response = conn.getresponse()
    doc = json.loads(response.read())
    conn.close()
    return response.status, doc


def checks(port: int, world: dict[str, Any], tally: Tally) -> dict[str, bool]:
    auditor = world["auditor"]
    five_xx = sum(n for counts in tally.statuses.values() for s, n in counts.items() if s >= 500)
    _, listing = get(port, "/v1/accounts", auditor)
    below_zero = [a["id"] for a in listing["accounts"] if a["posted"].startswith("-") or a["available"].startswith("-")]
    mismatched = []
    for acc in listing["accounts"]:
        _, statement = get(port, f"/v1/accounts/{acc['id']}/statement", auditor)
        if statement["closing"] != acc["posted"]:
            mismatched.append(acc["id"])
    status, verify = get(port, "/v1/audit/verify", auditor)
    twice = 0
    statements: dict[str, Any] = {}
    for txn_id, dest in tally.retried:
        if dest not in statements:
            statements[dest] = get(port, f"/v1/accounts/{dest}/statement", auditor)[1]
        twice += sum(1 for line in statements[dest]["lines"] if line["txn_id"] == txn_id) > 1
    return {"no 5xx": five_xx == 0, "no account below zero": not below_zero,
            "balances equal the sum of postings": not mismatched,
            "audit verify passes": status == 200 and verify.get("ok") is True,
            f"{len(tally.retried)} retried requests posted once, same answer": twice == 0 and tally.replay_mismatches == 0}


def run_engine(name: str, url: str, seconds: float, clients: int, workers: int = 1) -> bool:
    with tempfile.TemporaryDirectory(prefix="bank-http-load-") as tmp:
        world = setup(url)
        with serving(url, Path(tmp), workers) as port:
            tally = Tally()
            until = time.monotonic() + seconds
            threads = [threading.Thread(target=client, args=(port, world, until, n, tally), daemon=True)
                       for n in range(clients)]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=seconds + 120)
            elapsed = time.monotonic() - started
            report(f"{name} ({workers} server process{'es' if workers > 1 else ''})", tally, elapsed, clients)
            verdicts = checks(port, world, tally)
    for check, ok in verdicts.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {check}")
    return all(verdicts.values())


def report(name: str, tally: Tally, elapsed: float, clients: int) -> None:
    print(f"\n{name}: {clients} clients, {elapsed:.1f} s")
    print(f"  {'kind':<14} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    writes = 0
    for kind in KINDS:
        lat = tally.latencies_us.get(kind, [])
        if kind != "read":
            writes += len(lat)
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses[kind].items()))
        print(f"  {kind:<14} {len(lat):>9} {len(lat) / elapsed:>8.0f} {percentile(lat, 0.5):>8.1f} "
              f"{percentile(lat, 0.99):>8.1f}  {statuses}")
    print(f"  writes/s {writes / elapsed:.0f}")


@contextmanager
def pg_database(server_url: str) -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(server_url.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql")
    name = f"bank_http_load_{secrets.token_hex(4)}"
    admin = base.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--postgres", default=os.environ.get("BANK_TEST_POSTGRES_URL"),
                        help="a PostgreSQL server URL (a fresh database is created and dropped)")
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--workers", type=int, default=1, help="bank serve --workers")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= MAX_SECONDS or not 0 < args.clients <= MAX_CLIENTS:
        parser.error(f"--seconds must be 0..{MAX_SECONDS}, --clients 1..{MAX_CLIENTS}")
    engines = args.engines.split(",")
    ok = True
    if "sqlite" in engines:
        with tempfile.TemporaryDirectory(prefix="bank-http-db-") as tmp:
            ok &= run_engine("SQLite", f"sqlite:///{tmp}/bank.db", args.seconds, args.clients, args.workers)
    if "postgres" in engines:
        if not args.postgres:
            print("\nPostgreSQL: skipped (give --postgres URL or set BANK_TEST_POSTGRES_URL)")
        else:
            with pg_database(args.postgres) as url:
                ok &= run_engine("PostgreSQL", url, args.seconds, args.clients, args.workers)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
