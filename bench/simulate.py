"""Benchmark: `bank profile simulate` against `bank txn process` on the same rows.

Both institutions' shipped profiles (500 accounts and half the rows each, the
workload of bench/run.py) on a fresh SQLite file (and PostgreSQL with
--postgres URL or BANK_TEST_POSTGRES_URL): each file is run by the real
`bank txn process`, then the real `bank profile simulate` replays the same
rows through the same profile (so every row must come out unchanged) and
through a changed fee. Whole commands in a subprocess, start-up included.

    .venv/bin/python bench/simulate.py --rows 20000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/run.py: the workload and the `bank txn process` runner)

from bank_core.profile_history import to_toml  # noqa: E402


def simulate(url: str, institution: str, profile: Path) -> tuple[float, dict]:
    """(wall seconds, report); the report gains ``cpu_s``, the command's processor seconds."""
    args = [run.bank_bin(), "--db", url, "--profile", institution, "--json", "profile", "simulate", str(profile)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        raise SystemExit(f"bank profile simulate failed: {child.stderr}")
    report = json.loads(child.stdout)
    report["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, report


def setup(description: str) -> tuple[argparse.Namespace, list[tuple[str, str | None]], list[dict]]:
    """(options, engines, both institutions' shipped profiles) of this bench
    and bench/shadow.py: --rows, --postgres URL, --seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--postgres", default=os.environ.get("BANK_TEST_POSTGRES_URL"))
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    engines = [("sqlite", None)] + ([("postgresql", options.postgres)] if options.postgres else [])
    documents = [run.profile_document("northwind_policies", False), run.profile_document("harbor_policies", False)]
    return options, engines, documents


def main() -> int:
    options, engines, documents = setup(__doc__.splitlines()[0])
    try:
        with tempfile.TemporaryDirectory(prefix="bank-bench-simulate-") as tmp:
            work = Path(tmp)
            for engine, admin in engines:
                url = run.new_url(engine, admin, work)
                files, _ = run._prepare(url, documents, 500, options.rows // 2, work, options.seed)
                for (institution, path, _accounts), document in zip(files, documents):
                    process_s, _peak, summary = run.run_process(url, institution, path, path.with_suffix(".out"))
                    rows = sum(summary[k] for k in ("posted", "held", "rejected"))
                    same = work / f"{institution}-same.toml"
                    same.write_text(to_toml(document))
                    changed = dict(document, fee=[{"driver": "core.no_fee", "params": {}}])
                    other = work / f"{institution}-fee.toml"
                    other.write_text(to_toml(changed))
                    same_s, same_report = simulate(url, institution, same)
                    other_s, other_report = simulate(url, institution, other)
                    assert same_report["changed"] == 0 and same_report["rows"] == rows, same_report
                    print(f"{engine:10} {institution:9} {rows:>7} decided rows: txn process {rows / process_s:7,.0f} rows/s "
                          f"({rows / summary['cpu_s']:,.0f} per CPU-s); simulate same profile {rows / same_s:7,.0f} "
                          f"rows/s ({rows / same_report['cpu_s']:,.0f} per CPU-s, 0 changed); no fees "
                          f"{rows / other_s:7,.0f} rows/s ({rows / other_report['cpu_s']:,.0f} per CPU-s, "
                          f"{other_report['changed']} changed); load {run.load_per_core()}", flush=True)
    finally:
        run.drop_created()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
