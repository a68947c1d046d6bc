"""Benchmark: `bank txn process` against a floor measured in the same run.

For each size (default 100k and 1M rows) and each database (a fresh SQLite
file; PostgreSQL when --postgres URL or BANK_TEST_POSTGRES_URL is given):

1. open 1,000 accounts split across Northwind and Harbor, write each
   institution's file (bench/workload.py), and run the real `bank txn process`
   command on it in a subprocess: rows/s end to end and the peak RSS of that
   process (from wait4);
2. the floor: the very postings, balance updates and audit rows that run
   produced, inserted into a fresh database with the bare driver (sqlite3 or
   psycopg `executemany`, batches of 1,000, one commit per batch, no
   policies): rows/s over the same number of input rows, and our ratio to it;
3. the plug-in layer's cost: the same files with the institutions' profiles
   replaced by the kernel's built-in drivers.

Run it with `python3 dev.py bench` (add `--sizes 100000` for a quick run).
Figures are printed, never asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import floor  # noqa: E402
import workload  # noqa: E402

BUILTIN = {"fee": [{"driver": "core.no_fee"}], "limit": [{"driver": "core.no_overdraft"}],
           "approval": [{"driver": "core.frozen_reject"}, {"driver": "core.auto_approve"}]}


@dataclass
class Run:
    engine: str
    rows: int
    drivers: str
    seconds: float
    peak_rss_mb: float
    counts: dict[str, int]

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def bank_bin() -> str:
    candidate = Path(sys.executable).with_name("bank")
    return str(candidate) if candidate.exists() else "bank"


def profile_document(package: str, builtin: bool) -> dict:
    from importlib import resources

    from bank_core.profile import read_toml

    with resources.as_file(resources.files(package) / "profile.toml") as path:
        document = read_toml(Path(path))
    if builtin:
        document.update(BUILTIN)
    return document


def run_process(url: str, institution: str, file: Path, out: Path) -> tuple[float, float, dict]:
    """Run `bank txn process` in a child; (seconds, its peak RSS MB, summary).

    The peak is the one the child reports (VmHWM): wait4's maxrss would also
    count the memory of this parent it was forked from."""
    args = [bank_bin(), "--db", url, "--profile", institution, "--actor", "bench", "--json",
            "txn", "process", str(file), "--out", str(out)]
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stdout = child.stdout.read()  # type: ignore[union-attr]
    code = child.wait()
    seconds = time.perf_counter() - started
    if code not in (0, 5):  # 5: some rows were invalid, as the workload intends
        raise SystemExit(f"bank txn process failed with exit {code}")
    summary = json.loads(stdout)
    return seconds, summary["peak_rss_mb"], summary


def one_run(engine: str, url: str, rows: int, builtin: bool, work: Path, seed: int) -> tuple[Run, str]:
    from bank_wiring import build

    svc = build(url)
    files = []
    for package in ("northwind_policies", "harbor_policies"):
        profile, _ = svc.apply_profile(profile_document(package, builtin), "bench")
        accounts = workload.open_accounts(svc, profile.id, 500)
        path = work / f"{profile.id}-{rows}.csv"
        workload.write_file(path, workload.Plan(profile.id, accounts), rows // 2, seed)
        files.append((profile.id, path))
    svc.engine.dispose()
    seconds, peak, counts = 0.0, 0.0, {"posted": 0, "held": 0, "rejected": 0, "invalid": 0}
    for institution, path in files:
        s, p, summary = run_process(url, institution, path, path.with_suffix(".results.jsonl"))
        seconds += s
        peak = max(peak, p)
        for key in counts:
            counts[key] += summary[key]
    return Run(engine, rows, "built-in" if builtin else "profiles", seconds, peak, counts), url


def sqlite_url(work: Path) -> str:
    return f"sqlite:///{work / (uuid.uuid4().hex + '.db')}"


CREATED: list[tuple[str, str]] = []  # (admin url, database) to drop at the end


def _admin(admin_url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def postgres_url(admin_url: str) -> str:
    name = "bench_" + uuid.uuid4().hex[:10]
    with _admin(admin_url) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    CREATED.append((admin_url, name))
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_created() -> None:
    for admin_url, name in CREATED:
        with _admin(admin_url) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    CREATED.clear()


def measure_one(engine: str, admin: str | None, rows: int, builtin: bool, work: Path, seed: int) -> Run:
    url = sqlite_url(work) if engine == "sqlite" else postgres_url(admin)  # type: ignore[arg-type]
    run, url = one_run(engine, url, rows, builtin, work, seed)
    line = (f"{engine:10} {rows:>9,} rows  {run.drivers:9}  {run.rate:>8,.0f} rows/s  "
            f"peak RSS {run.peak_rss_mb:6.1f} MB  {run.counts}")
    if not builtin:
        floor_rate = rows / floor.measure(engine, url, work, lambda: postgres_url(admin))  # type: ignore[arg-type]
        line += f"\n{'':10} floor {floor_rate:>10,.0f} rows/s  ours/floor {run.rate / floor_rate:.2f}"
    print(line, flush=True)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--postgres", default=os.environ.get("BANK_TEST_POSTGRES_URL"),
                        help="PostgreSQL admin URL (a fresh database is created per run)")
    parser.add_argument("--no-builtin", action="store_true", help="skip the built-in drivers comparison")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--engines", default="sqlite,postgresql",
                        help="which of sqlite,postgresql to run (postgresql needs --postgres)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = set(args.engines.split(","))
    engines = ([("sqlite", None)] if "sqlite" in wanted else []) + (
        [("postgresql", args.postgres)] if args.postgres and "postgresql" in wanted else [])
    print(f"bench: sizes {sizes}, engines {[e for e, _ in engines]}, {os.cpu_count()} cores", flush=True)
    results: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bank-bench-") as tmp:
        try:
            for rows in sizes:
                for engine, admin in engines:
                    variants = [False] if args.no_builtin or rows > min(sizes) else [False, True]
                    for builtin in variants:
                        results.append(measure_one(engine, admin, rows, builtin, Path(tmp), args.seed))
        finally:
            drop_created()
    by = {(r.engine, r.rows, r.drivers): r for r in results}
    for engine, _ in engines:
        p, b = by.get((engine, min(sizes), "profiles")), by.get((engine, min(sizes), "built-in"))
        if p and b:
            print(f"{engine}: plug-in layer, profiles' drivers vs built-in: {p.rate / b.rate:.2f}x the rate")
        big = by.get((engine, max(sizes), "profiles"))
        if p and big and big is not p:
            print(f"{engine}: {max(sizes):,} rows run at {big.rate / p.rate:.2f}x the {min(sizes):,}-row rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
