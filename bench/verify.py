"""Benchmark: `bank audit verify` against a floor, on a ledger the engine built.

A fresh database gets the three-driver profile of bench/run.py, 1,000
accounts and a file of ``--rows`` rows (the bench workload: deposits,
withdrawals, transfers, some rejected, about 1% malformed), run by the real
`bank txn process`. Then the real `bank --json audit verify` is timed
(``--repeat`` times; its own rate, the whole command with start-up, and its
processor seconds are printed), and beside it the **floor**: the bare
driver (``sqlite3``) reading the same rows verify reads (every audit entry
of the institution, every transaction row with its postings, every
balance) and SHA-256 over each entry's hashed text: the least any
verification of this ledger must do, without a single comparison.

    .venv/bin/python bench/verify.py --rows 100000
    .venv/bin/python bench/verify.py --rows 100000 --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/verify.py --rows 100000 --keep /tmp/ledger   # build once, reuse after

``--keep DIR`` (SQLite only) keeps the ledger in DIR and reuses it when the
same ``--rows`` and ``--seed`` were built there before, so that a change
can be timed before and after on the very same file.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/run.py: the workload and the `bank txn process` runner)


def verify(url: str, institution: str) -> tuple[float, float, dict]:
    """(wall seconds of the whole command, its processor seconds, its JSON report)."""
    return run.timed_json([run.bank_bin(), "--db", url, "--profile", institution, "--json", "audit", "verify"])


def floor(path: str, institution: str) -> tuple[float, int, float]:
    """(seconds, transactions, processor seconds): read what verify reads and
    hash each entry, nothing else."""
    started, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(path)
    sha256 = hashlib.sha256
    prev = "0" * 64
    for seq, at, actor, action, subject, payload, _prev, _digest, typed in conn.execute(
            "SELECT seq, at, actor, action, subject, payload, prev_hash, hash, actor_typed "
            "FROM audit_entry WHERE institution_id = ? ORDER BY seq", (institution,)):
        material = "\x1f".join((institution, str(seq), str(at), actor, action, subject, payload, prev))
        prev = sha256(material.encode()).hexdigest()
    txns = 0
    for _row in conn.execute(
            "SELECT t.*, (SELECT group_concat(account_id || ':' || amount_minor || ':' || rule, char(30)) "
            "FROM posting p WHERE p.txn_id = t.id) FROM txn t WHERE t.institution_id = ? ORDER BY t.id",
            (institution,)):
        txns += 1
    conn.execute("SELECT * FROM balance WHERE institution_id = ?", (institution,)).fetchall()
    conn.close()
    return time.perf_counter() - started, txns, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="also on PostgreSQL (an admin URL)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None,
                        help="SQLite: build the ledger in this folder once and reuse it")
    options = parser.parse_args()
    if options.keep is not None:
        return kept(options)
    engines = [("sqlite", None)] + ([("postgresql", options.postgres)] if options.postgres else [])
    try:
        with tempfile.TemporaryDirectory(prefix="bank-bench-verify-") as tmp:
            work = Path(tmp)
            for engine, admin in engines:
                url = run.new_url(engine, admin, work)
                files, _ = run._prepare(url, [run.THREE], 1000, options.rows, work, options.seed)
                institution, path, _accounts = files[0]
                run.run_process(url, institution, path, path.with_suffix(".out"))
                measure(engine, url, institution, options.repeat)
    finally:
        run.drop_created()
    return 0


def measure(engine: str, url: str, institution: str, repeat: int) -> None:
    for _ in range(repeat):
        seconds, cpu, report = verify(url, institution)
        txns = report["transactions"]
        line = (f"{engine:10} {txns:>8,} transactions: verify's own rate "
                f"{report['transactions_per_second']:>8,} txn/s ({report['seconds']:.2f} s); "
                f"whole command {seconds:.2f} s ({txns / seconds:,.0f} txn/s, "
                f"{txns / cpu:,.0f} per CPU-s)")
        if engine == "sqlite":
            floor_s, floor_txns, floor_cpu = floor(url.removeprefix("sqlite:///"), institution)
            line += (f"; floor {floor_txns / floor_s:,.0f} txn/s ({floor_s:.2f} s, "
                     f"{floor_txns / floor_cpu:,.0f} per CPU-s)")
        print(f"{line}; load {run.load_per_core()}", flush=True)


def kept(options: argparse.Namespace) -> int:
    """``--keep DIR``: the SQLite ledger of these ``--rows`` and ``--seed``
    built in DIR once (its institution noted beside it), then measured."""
    work = options.keep
    work.mkdir(parents=True, exist_ok=True)
    stem = f"verify-{options.rows}-{options.seed}"
    database, note = work / f"{stem}.db", work / f"{stem}.institution"
    url = f"sqlite:///{database}"
    if not note.exists():
        database.unlink(missing_ok=True)
        files, _ = run._prepare(url, [run.THREE], 1000, options.rows, work, options.seed)
        institution, path, _accounts = files[0]
        run.run_process(url, institution, path, path.with_suffix(".out"))
        note.write_text(institution)
    measure("sqlite", url, note.read_text().strip(), options.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
