"""Benchmark: `bank txn process` against floors measured in the same run.

For each size (default 100k and 1M rows) and each database (a fresh SQLite
file; PostgreSQL when --postgres URL or BANK_TEST_POSTGRES_URL is given):

1. the three-driver profile (0.5% fee, at least 0.25, on withdrawals and
   transfers; a 10,000.00 single-transaction limit; no overdraft) over one
   file on 1,000 accounts, run by the real `bank txn process` command in a
   subprocess: rows/s end to end (the whole command, start-up, parsing and
   results file included), its peak RSS and the database's bytes per row;
2. the lean floor on the very rows that run accepted (bench/floor.py: one
   txn row, its postings and balance updates, integer keys, batches of
   1,000, the bare driver), and the naive SQLAlchemy ORM loop of the same
   three rules (bench/orm_loop.py) as the low anchor, with our ratio to each;
3. both institutions' shipped profiles (Northwind and Harbor, 500 accounts
   and half the rows each), and at the smallest size the same files with the
   kernel's built-in drivers (the plug-in layer's cost).

Before that, start-up: `bank --help` and one `bank txn deposit` on an
existing SQLite database beside the import floor
(`python -c "import sqlalchemy, pydantic, typer, stevedore, rich"`).

`--isolation process` runs the same workloads with each profile's drivers in
a policy server (`isolation = "process"`, docs/policy-servers.md);
`--isolation both` runs inline then process and prints the ratio.

Run it with `python3 dev.py bench` (add `--sizes 100000` for a quick run).
`--repeat N` runs each workload, and the lean floor, N times on fresh
databases and prints the median with the spread: on a shared machine one
run can be 20% off the next.
Figures are printed, never asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import floor  # noqa: E402
import orm_loop  # noqa: E402
import workload  # noqa: E402

BUILTIN = {"fee": [{"driver": "core.no_fee"}], "limit": [{"driver": "core.no_overdraft"}],
           "approval": [{"driver": "core.frozen_reject"}, {"driver": "core.auto_approve"}]}
THREE = {
    "id": "three", "name": "Three-rule bank", "currency": "USD", "timezone": "UTC",
    "max_backdate": "3650d",
    "fee": [{"driver": "northwind.transfer_fee",
             "params": {"percent": "0.5", "min": "0.25", "max": "100000000.00",
                        "kinds": ["withdrawal", "transfer"]}}],
    "limit": [{"driver": "northwind.single_transaction", "params": {"max": "10000.00"}},
              {"driver": "core.no_overdraft"}],
    "approval": [],
}
ORM_ROWS = 20_000  # the ORM loop runs ~1,000 rows/s: its rate is taken on this many rows


@dataclass
class Run:
    engine: str
    rows: int
    drivers: str
    seconds: float
    peak_rss_mb: float
    counts: dict[str, int]
    bytes_per_row: float | None = None
    cpu_s: float = 0.0  # processor seconds of the command (its own, not the database server's)
    extra: dict[str, float] = field(default_factory=dict)
    rates: list[float] = field(default_factory=list)  # every repeat's rows/s (``--repeat``)
    children_rss_mb: float | None = None  # the largest of the command's child processes (its writer)
    files: list[tuple[str, int, float]] = field(default_factory=list)  # (institution, rows, seconds) a command

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
    # The workload is a fixed month (so a seed always gives the same file),
    # older than the default 7-day window for a request's `at`.
    document["max_backdate"] = "3650d"
    return document


def timed_json(args: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, float, Any]:
    """Run a `bank ... --json` command in a child: (wall seconds of the whole
    command, the processor seconds it used, its JSON document). On a shared
    machine the wall time also counts the time the command waited for a core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode not in ok:
        raise SystemExit(f"{' '.join(args[1:])} failed (exit {child.returncode}): {child.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, json.loads(child.stdout)


def run_process(url: str, institution: str, file: Path, out: Path) -> tuple[float, float, dict]:
    """Run `bank txn process` in a child: (wall seconds of the whole command,
    its peak RSS MB as it reports it (VmHWM), its summary with ``cpu_s``, the
    processor seconds the command used: on a shared machine the wall time
    also counts the time the command waited for a core)."""
    args = [bank_bin(), "--db", url, "--profile", institution, "--actor", "bench", "--json",
            "txn", "process", str(file), "--out", str(out)]
    seconds, cpu, summary = timed_json(args, ok=(0, 5))  # 5: invalid rows, as the workload intends
    summary["cpu_s"] = cpu
    return seconds, summary["peak_rss_mb"], summary


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
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_created() -> None:
    for admin_url, name in CREATED:
        with _admin(admin_url) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    CREATED.clear()


def new_url(engine: str, admin: str | None, work: Path) -> str:
    return sqlite_url(work) if engine == "sqlite" else postgres_url(admin)  # type: ignore[arg-type]


def database_bytes(url: str) -> int | None:
    """Bytes the SQLite database takes, indexes included, after a checkpoint."""
    if not url.startswith("sqlite:///"):
        return None
    import sqlite3

    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(path)


def _prepare(url: str, documents: list[dict], accounts_each: int, rows_each: int, work: Path,
             seed: int) -> tuple[list[tuple[str, Path, list[str]]], int]:
    from bank_wiring import build

    svc = build(url)
    files = []
    for document in documents:
        profile, _ = svc.apply_profile(document, "bench")
        accounts = workload.open_accounts(svc, profile.id, accounts_each)
        path = work / f"{profile.id}-{uuid.uuid4().hex[:6]}.csv"
        workload.write_file(path, workload.Plan(profile.id, accounts), rows_each, seed)
        files.append((profile.id, path, accounts))
    svc.engine.dispose()
    return files, database_bytes(url) or 0


def measure(engine: str, url: str, documents: list[dict], accounts_each: int, rows: int,
            label: str, work: Path, seed: int) -> tuple[Run, list[tuple[str, Path, list[str]]]]:
    files, before = _prepare(url, documents, accounts_each, rows // len(documents), work, seed)
    seconds, peak, counts = 0.0, 0.0, {"posted": 0, "held": 0, "rejected": 0, "invalid": 0}
    cpu, children, each = 0.0, None, []
    for institution, path, _accounts in files:
        s, p, summary = run_process(url, institution, path, path.with_suffix(".results.jsonl"))
        seconds, peak, cpu = seconds + s, max(peak, p), cpu + summary["cpu_s"]
        each.append((institution, summary["rows"], s))
        child = summary.get("children_peak_rss_mb")
        if child is not None:
            children = child if children is None else max(children, child)
        for key in counts:
            counts[key] += summary[key]
    after = database_bytes(url)
    per_row = (after - before) / rows if after is not None else None
    return Run(engine, rows, label, seconds, peak, counts, per_row, cpu_s=cpu, children_rss_mb=children,
               files=each), files


def repeated(runs: list[Run]) -> Run:
    """The median run (by time) of ``runs``, with every run's rate."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    median = ordered[len(ordered) // 2]
    median.rates = [r.rate for r in runs]
    return median


def spread(rates: list[float]) -> str:
    return f" [median of {len(rates)}: {min(rates):,.0f}-{max(rates):,.0f}]" if len(rates) > 1 else ""


def show(run: Run) -> None:
    disk = f"  {run.bytes_per_row:,.0f} B/row on disk" if run.bytes_per_row is not None else ""
    cpu = f" ({run.rows / run.cpu_s:,.0f} per CPU-second)" if run.cpu_s else ""
    writer = f" (largest child process {run.children_rss_mb:.1f} MB)" if run.children_rss_mb is not None else ""
    print(f"{run.engine:10} {run.rows:>9,} rows  {run.drivers:22} {run.rate:>8,.0f} rows/s{spread(run.rates)}{cpu}  "
          f"peak RSS {run.peak_rss_mb:6.1f} MB{writer}{disk}  {run.counts}  load {load_per_core()}", flush=True)
    if len(run.files) > 1:  # each command's own rate (each pays its own start-up and exit)
        print(f"{'':10} each: " + ", ".join(f"{name} {rows:,} rows in {s:.2f} s = {rows / s:,.0f} rows/s"
                                           for name, rows, s in run.files), flush=True)


def interpreter() -> str:
    """The interpreter the figures were measured on: its version, and
    whether it runs from a shared ``libpython``. The engine is Python from
    end to end, so its rate is the interpreter's: on this machine the same
    code ran 14-18% faster on Debian's python3.11 (statically linked) than
    on pyenv's 3.11 built with ``--enable-shared`` (calls into a shared
    library go through its symbol table)."""
    shared = "unknown"
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        pass
    else:
        shared = "shared libpython" if "libpython3" in maps else "static libpython"
    return f"{sys.version.split()[0]} at {sys.base_prefix} ({shared})"


def load_per_core() -> str:
    """The machine's 1-minute load average over its cores: above 1.0 the
    figures beside it were measured on a machine busy with other work."""
    return f"{os.getloadavg()[0] / (os.cpu_count() or 1):.2f}/core"


def isolated(document: dict, isolation: str) -> dict:
    """The profile with its drivers inline (as written) or in a policy server."""
    return document if isolation == "inline" else {**document, "isolation": isolation}


def label_of(label: str, isolation: str) -> str:
    return label if isolation == "inline" else f"{label}, process"


def three_driver(engine: str, admin: str | None, rows: int, work: Path, seed: int,
                 isolation: str = "inline", repeat: int = 1) -> Run:
    tries = []  # (run, its files, its database)
    for _ in range(repeat):
        url = new_url(engine, admin, work)
        run, files = measure(engine, url, [isolated(THREE, isolation)], 1000, rows,
                             label_of("three drivers", isolation), work, seed)
        tries.append((run, files, url))
    run = repeated([t[0] for t in tries])
    _run, files, url = next(t for t in tries if t[0] is run)
    show(run)
    if isolation != "inline":  # the anchors do not depend on where the drivers run
        return run
    accepted = floor.read_accepted(url, "three", rows)
    lean_rates = [rows / (floor.sqlite_seconds(work, accepted) if engine == "sqlite"
                          else floor.postgres_seconds(postgres_url(admin), accepted))  # type: ignore[arg-type]
                  for _ in range(repeat)]
    lean_rate = statistics.median(lean_rates)
    (_inst, path, accounts) = files[0]
    sample = min(rows, ORM_ROWS)
    orm_rate = sample / orm_loop.run(new_url(engine, admin, work), path, accounts, sample)
    run.extra = {"lean": lean_rate, "orm": orm_rate}
    print(f"{'':10} lean floor {lean_rate:>10,.0f} rows/s{spread(lean_rates)}   ours/floor {run.rate / lean_rate:.3f} "
          f"(1/{lean_rate / run.rate:.0f})", flush=True)
    print(f"{'':10} naive ORM  {orm_rate:>10,.0f} rows/s   ours/ORM {run.rate / orm_rate:.1f}x "
          f"(ORM rate on its first {sample:,} rows)", flush=True)
    return run


def institutions(engine: str, admin: str | None, rows: int, builtin: bool, work: Path, seed: int,
                 isolation: str = "inline", repeat: int = 1) -> Run:
    documents = [isolated(profile_document(p, builtin), isolation) for p in ("northwind_policies", "harbor_policies")]
    label = label_of("built-in drivers (4)" if builtin else "institutions' profiles", isolation)
    run = repeated([measure(engine, new_url(engine, admin, work), documents, 500, rows, label, work, seed)[0]
                    for _ in range(repeat)])
    show(run)
    return run


def _median_seconds(args: list[str], times: int = 5) -> float:
    found = []
    for _ in range(times):
        started = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        found.append(time.perf_counter() - started)
    return statistics.median(found)


def _one_row(url: str, institution: str, account: str, work: Path, n: int) -> float:
    """Seconds of `bank txn process` on a file of one deposit (a new ref each time)."""
    path = work / f"one-row-{n}.csv"
    path.write_text(f"ref,type,to,amount\nstart-up-{n},deposit,{account},1.00\n")
    started = time.perf_counter()
    subprocess.run([bank_bin(), "--db", url, "--profile", institution, "txn", "process", str(path)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def startup(work: Path) -> None:
    floor_s = _median_seconds([sys.executable, "-c", "import sqlalchemy, pydantic, typer, stevedore, rich"])
    help_s = _median_seconds([bank_bin(), "--help"])
    url = sqlite_url(work)
    from bank_wiring import build

    svc = build(url)
    profile, _ = svc.apply_profile(profile_document("northwind_policies", False), "bench")
    account = svc.open_account(profile.id, holder="start-up").id
    svc.engine.dispose()
    deposit_s = _median_seconds([bank_bin(), "--db", url, "--profile", profile.id, "txn", "deposit",
                                 account, "1.00"])
    process_s = statistics.median(_one_row(url, profile.id, account, work, n) for n in range(5))
    print(f"start-up (median of 5): import floor {floor_s:.2f} s; `bank --help` {help_s:.2f} s "
          f"({help_s / floor_s:.1f}x the floor); `bank txn deposit` on an existing SQLite database "
          f"{deposit_s:.2f} s; `bank txn process` of a one-row file {process_s:.2f} s (what every "
          f"file pays besides its rows: start-up, the profile, the close)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--postgres", default=os.environ.get("BANK_TEST_POSTGRES_URL"),
                        help="PostgreSQL admin URL (a fresh database is created per run)")
    parser.add_argument("--no-builtin", action="store_true", help="skip the built-in drivers comparison")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--engines", default="sqlite,postgresql",
                        help="which of sqlite,postgresql to run (postgresql needs --postgres)")
    parser.add_argument("--only", default="three,institutions",
                        help="which workloads: three (the three-driver profile), institutions")
    parser.add_argument("--isolation", default="inline", choices=("inline", "process", "both"),
                        help="where the drivers run: inline (in `bank txn process`), process (a policy "
                             "server per institution, docs/policy-servers.md), or both, one after the "
                             "other, with the ratio")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each workload and of the lean floor, on fresh databases; the "
                             "median is shown with the spread (default 1)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    modes = ["inline", "process"] if args.isolation == "both" else [args.isolation]
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted, only = set(args.engines.split(",")), set(args.only.split(","))
    engines = ([("sqlite", None)] if "sqlite" in wanted else []) + (
        [("postgresql", args.postgres)] if args.postgres and "postgresql" in wanted else [])
    print(f"bench: sizes {sizes}, engines {[e for e, _ in engines]}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}" + (f", median of {args.repeat} runs each" if args.repeat > 1 else ""),
          flush=True)
    print(f"python: {interpreter()}", flush=True)
    results: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bank-bench-") as tmp:
        work = Path(tmp)
        startup(work)
        try:
            for rows in sizes:
                for engine, admin in engines:
                    for mode in modes:
                        if "three" in only:
                            results.append(three_driver(engine, admin, rows, work, args.seed, mode, args.repeat))
                        if "institutions" in only:
                            results.append(institutions(engine, admin, rows, False, work, args.seed, mode, args.repeat))
                            if rows == min(sizes) and not args.no_builtin:
                                results.append(institutions(engine, admin, rows, True, work, args.seed, mode, args.repeat))
        finally:
            drop_created()
    _summary(results, engines, sizes)
    return 0


def _summary(results: list[Run], engines: list[tuple[str, str | None]], sizes: list[int]) -> None:
    by = {(r.engine, r.rows, r.drivers): r for r in results}
    for run in results:  # process isolation against inline, same engine, rows and workload
        inline = by.get((run.engine, run.rows, run.drivers.removesuffix(", process")))
        if run.drivers.endswith(", process") and inline is not None:
            cpu = (f", per CPU-second {(run.rows / run.cpu_s) / (inline.rows / inline.cpu_s):.2f}x"
                   if run.cpu_s and inline.cpu_s else "")
            print(f"{run.engine}: {run.rows:,} rows, {inline.drivers}: process isolation runs at "
                  f"{run.rate / inline.rate:.2f}x the inline rate ({run.rate:,.0f} vs {inline.rate:,.0f} "
                  f"rows/s{cpu})")
    for engine, _ in engines:
        p = by.get((engine, min(sizes), "institutions' profiles"))
        b = by.get((engine, min(sizes), "built-in drivers (4)"))
        if p and b:
            print(f"{engine}: plug-in layer, institutions' drivers vs built-in: {p.rate / b.rate:.2f}x the rate")
        for label in ("three drivers", "institutions' profiles"):
            small, big = by.get((engine, min(sizes), label)), by.get((engine, max(sizes), label))
            if small and big and big is not small:
                cpu = (f", per CPU-second {(big.rows / big.cpu_s) / (small.rows / small.cpu_s):.2f}x"
                       if big.cpu_s and small.cpu_s else "")
                print(f"{engine}: {label}: {max(sizes):,} rows run at {big.rate / small.rate:.2f}x "
                      f"the {min(sizes):,}-row rate{cpu} (compare at like loads: see each line's load)")


if __name__ == "__main__":
    sys.exit(main())
