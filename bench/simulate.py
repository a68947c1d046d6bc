"""Benchmark: `bank profile simulate` against `bank txn process` on the same rows.

Both institutions' shipped profiles (500 accounts and half the rows each, the
workload of bench/run.py) on a fresh SQLite file (and PostgreSQL with
--postgres URL or BANK_TEST_POSTGRES_URL): each file is run by the real
`bank txn process`, then the real `bank profile simulate` replays the same
rows through the same profile (so every row must come out unchanged) and
through a changed fee. Whole commands in a subprocess, start-up included.
On SQLite each pair runs --repeat times (default 3), alternating, each time
on a fresh copy of the prepared database, and the medians are compared: on
a shared 2-core machine one run of each says more about the load than
about either command.

    .venv/bin/python bench/simulate.py --rows 20000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/run.py: the workload and the `bank txn process` runner)

from bank_core.profile_history import to_toml  # noqa: E402


def simulate(url: str, institution: str, profile: Path) -> tuple[float, dict]:
    """(wall seconds, report); the report gains ``cpu_s``, the command's processor seconds."""
    seconds, cpu, report = run.timed_json([run.bank_bin(), "--db", url, "--profile", institution, "--json",
                                           "profile", "simulate", str(profile)])
    report["cpu_s"] = cpu
    return seconds, report


def setup(description: str) -> tuple[argparse.Namespace, list[tuple[str, str | None]], list[dict]]:
    """(options, engines, both institutions' shipped profiles) of this bench
    and bench/shadow.py: --rows, --postgres URL, --seed, --repeat."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--postgres", default=os.environ.get("BANK_TEST_POSTGRES_URL"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3,
                        help="SQLite: runs of each command, alternating, each on a fresh copy (default 3)")
    options = parser.parse_args()
    engines = [("sqlite", None)] + ([("postgresql", options.postgres)] if options.postgres else [])
    documents = [run.profile_document("northwind_policies", False), run.profile_document("harbor_policies", False)]
    return options, engines, documents


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    options, engines, documents = setup(__doc__.splitlines()[0])
    try:
        with tempfile.TemporaryDirectory(prefix="bank-bench-simulate-") as tmp:
            work = Path(tmp)
            for engine, admin in engines:
                url = run.new_url(engine, admin, work)
                files, _ = run._prepare(url, documents, 500, options.rows // 2, work, options.seed)
                repeat = max(1, options.repeat) if engine == "sqlite" else 1  # a PostgreSQL copy is a new database
                pristine = work / "pristine.db"
                if engine == "sqlite":
                    shutil.copy(url.removeprefix("sqlite:///"), pristine)
                found: dict[str, dict[str, list[tuple[float, float]]]] = {}
                for attempt in range(repeat):
                    if engine == "sqlite" and attempt:
                        shutil.copy(pristine, url.removeprefix("sqlite:///"))
                    for (institution, path, _accounts), document in zip(files, documents):
                        times = found.setdefault(institution, {"process": [], "same": [], "fee": []})
                        process_s, _peak, summary = run.run_process(url, institution, path, path.with_suffix(".out"))
                        rows = sum(summary[k] for k in ("posted", "held", "rejected"))
                        times["process"].append((process_s, summary["cpu_s"]))
                        same = work / f"{institution}-same.toml"
                        same.write_text(to_toml(document))
                        changed = dict(document, fee=[{"driver": "core.no_fee", "params": {}}])
                        other = work / f"{institution}-fee.toml"
                        other.write_text(to_toml(changed))
                        same_s, same_report = simulate(url, institution, same)
                        other_s, other_report = simulate(url, institution, other)
                        assert same_report["changed"] == 0 and same_report["rows"] == rows, same_report
                        times["same"].append((same_s, same_report["cpu_s"]))
                        times["fee"].append((other_s, other_report["cpu_s"]))
                        times["rows"] = rows  # type: ignore[assignment]
                        times["changed"] = other_report["changed"]  # type: ignore[assignment]
                for institution, times in found.items():
                    rows = times["rows"]  # type: ignore[assignment]

                    def rate(kind: str) -> str:
                        wall = _median([w for w, _c in times[kind]])
                        cpu = _median([c for _w, c in times[kind]])
                        return f"{rows / wall:7,.0f} rows/s ({rows / cpu:,.0f} per CPU-s)"

                    ratio = _median([w for w, _c in times["process"]]) / _median([w for w, _c in times["same"]])
                    cpu_ratio = _median([c for _w, c in times["process"]]) / _median([c for _w, c in times["same"]])
                    print(f"{engine:10} {institution:9} {rows:>7} decided rows, median of {repeat}: txn process "
                          f"{rate('process')}; simulate same profile {rate('same')}, 0 changed = "
                          f"{ratio:.2f}x txn process ({cpu_ratio:.2f}x per CPU-s); no fees {rate('fee')}, "
                          f"{times['changed']} changed; load {run.load_per_core()}", flush=True)
    finally:
        run.drop_created()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
