"""Process isolation against inline, alternating, on one prepared database.

    python bench/isolation_ab.py --rows 20000 --rounds 3 [--only three|institutions]

Prepares one SQLite database per mode (the same seed: the same accounts and
files; the second differs only by ``isolation = "process"`` in its
profiles), then runs the real ``bank txn process`` on fresh copies of them,
inline and process in turn, so that each pair meets the same load on a
shared machine. Prints each run (wall and processor seconds, the command's
and its policy server's together) and the medians' ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="institutions", choices=("three", "institutions"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", help="a folder to keep (and reuse) the prepared databases in")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bank-ab-"))
    work.mkdir(parents=True, exist_ok=True)
    prepared: dict[str, tuple[Path, list[tuple[str, Path]]]] = {}
    for mode in ("inline", "process"):
        if args.only == "three":
            documents, accounts = [bench.isolated(bench.THREE, mode)], 1000
        else:
            documents = [bench.isolated(bench.profile_document(p, False), mode)
                         for p in ("northwind_policies", "harbor_policies")]
            accounts = 500
        db = work / f"{args.only}-{mode}-{args.rows}.db"
        listing = work / f"{args.only}-{mode}-{args.rows}.files"
        if db.exists() and listing.exists():
            files = [(line.split("\t")[0], Path(line.split("\t")[1]))
                     for line in listing.read_text().splitlines()]
        else:
            found, _ = bench._prepare(f"sqlite:///{db}", documents, accounts, args.rows // len(documents),
                                      work, args.seed)
            files = [(inst, path) for inst, path, _a in found]
            listing.write_text("".join(f"{i}\t{p}\n" for i, p in files))
        prepared[mode] = (db, files)
    results: dict[str, list[tuple[float, float]]] = {"inline": [], "process": []}
    for n in range(args.rounds):
        for mode in ("inline", "process") if n % 2 == 0 else ("process", "inline"):
            db, files = prepared[mode]
            copy = work / f"run-{mode}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(copy) + suffix).unlink(missing_ok=True)
            shutil.copyfile(db, copy)
            wall = cpu = 0.0
            counts: dict[str, int] = {}
            for institution, path in files:
                s, _peak, summary = bench.run_process(f"sqlite:///{copy}", institution, path,
                                                      path.with_suffix(f".{mode}.results.jsonl"))
                wall += s
                cpu += summary["cpu_s"]
                for key in ("posted", "held", "rejected", "invalid"):
                    counts[key] = counts.get(key, 0) + summary[key]
            results[mode].append((wall, cpu))
            print(f"round {n} {mode:8} {args.rows / wall:8,.0f} rows/s  {args.rows / cpu:8,.0f} per CPU-s  "
                  f"{cpu / args.rows * 1e6:6.0f} us CPU a row  {counts}  load {os.getloadavg()[0]:.2f}",
                  flush=True)
    wi = statistics.median(w for w, _ in results["inline"])
    wp = statistics.median(w for w, _ in results["process"])
    ci = statistics.median(c for _, c in results["inline"])
    cp = statistics.median(c for _, c in results["process"])
    print(f"{args.only}, {args.rows:,} rows, medians of {args.rounds}: process/inline wall {wi / wp:.2f}x, "
          f"per CPU-second {ci / cp:.2f}x; extra CPU a row {(cp - ci) / args.rows * 1e6:.0f} us")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
