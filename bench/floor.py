"""The floor: what the bare driver needs to write the same rows.

It reads the postings, the net balance updates and the audit rows a run of
`bank txn process` produced, then writes them into a fresh database with the
same schema using only the driver (sqlite3 or psycopg) and ``executemany`` in
batches of 1,000 rows, one commit per batch, with no policies and no
validation. Only the writing is timed.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

BATCH = 1000


def _rows(url: str) -> tuple[list[tuple], list[tuple], dict[str, tuple[int, int]]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if url.startswith("postgresql://") else url)
    with engine.connect() as conn:
        postings = [tuple(r) for r in conn.execute(text(
            "SELECT txn_id, institution_id, account_id, amount_minor, currency, rule, posted_at "
            "FROM posting ORDER BY id"))]
        audit = [tuple(r) for r in conn.execute(text(
            "SELECT institution_id, seq, at, actor, action, subject, payload, prev_hash, hash "
            "FROM audit_entry ORDER BY institution_id, seq"))]
        accounts = {r[0]: (r[1], r[2]) for r in conn.execute(text(
            "SELECT account_id, 0, 0 FROM balance"))}
    engine.dispose()
    return postings, audit, accounts


def _fresh_schema(url: str) -> None:
    from bank_wiring import build

    build(url).engine.dispose()  # alembic upgrade to head: same tables and indexes


def measure(engine: str, url: str, work: Path, new_postgres_url: Any = None) -> float:
    """Seconds the bare driver takes to write what the run at ``url`` wrote;
    ``new_postgres_url()`` creates the fresh PostgreSQL database to write to."""
    postings, audit, _ = _rows(url)
    if engine == "sqlite":
        target = work / f"floor-{uuid.uuid4().hex}.db"
        _fresh_schema(f"sqlite:///{target}")
        return _sqlite(target, postings, audit)
    target_url = new_postgres_url()
    _fresh_schema(target_url)
    return _postgres(target_url, postings, audit)


def _prepare_sqlite(target: Path, postings: list[tuple], audit: list[tuple]) -> sqlite3.Connection:
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=16000")  # the engine's own settings
    conn.execute("PRAGMA foreign_keys=OFF")  # the floor has no txn rows to point at
    # Balance and institution rows must exist for the updates to touch them.
    accounts = sorted({(p[1], p[2], p[4]) for p in postings})
    conn.execute("BEGIN")
    for inst in sorted({a[0] for a in accounts} | {a[0] for a in audit}):
        conn.execute("INSERT INTO institution VALUES (?, ?, 'USD', 'UTC', 72, 1, '2026-01-01 00:00:00.000000')",
                     (inst, inst))
    conn.executemany("INSERT INTO balance VALUES (?, ?, ?, 0, 0, 0, 0)",
                     [(acc, inst, cur) for inst, acc, cur in accounts])
    conn.execute("COMMIT")
    return conn


def _batches(postings: list[tuple], audit: list[tuple], rows: int) -> Any:
    """Split postings and audit rows into batches of about BATCH input rows."""
    steps = max(1, len(audit) // BATCH)
    for n in range(steps):
        lo_a, hi_a = n * len(audit) // steps, (n + 1) * len(audit) // steps
        lo_p, hi_p = n * len(postings) // steps, (n + 1) * len(postings) // steps
        yield postings[lo_p:hi_p], audit[lo_a:hi_a]


def _balance_updates(postings: list[tuple]) -> list[tuple]:
    deltas: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in postings:
        if p[3] < 0:
            deltas[p[2]][0] -= p[3]
        else:
            deltas[p[2]][1] += p[3]
    return [(d[0], d[1], acc) for acc, d in deltas.items()]


def _sqlite(target: Path, postings: list[tuple], audit: list[tuple]) -> float:
    conn = _prepare_sqlite(target, postings, audit)
    started = time.perf_counter()
    for batch_postings, batch_audit in _batches(postings, audit, len(audit)):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO posting (txn_id, institution_id, account_id, amount_minor, "
                         "currency, rule, posted_at) VALUES (?, ?, ?, ?, ?, ?, ?)", batch_postings)
        conn.executemany("UPDATE balance SET debits_posted = debits_posted + ?, "
                         "credits_posted = credits_posted + ? WHERE account_id = ?",
                         _balance_updates(batch_postings))
        conn.executemany("INSERT INTO audit_entry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch_audit)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def _postgres(url: str, postings: list[tuple], audit: list[tuple]) -> float:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        accounts = sorted({(p[1], p[2], p[4]) for p in postings})
        for inst in sorted({a[0] for a in accounts} | {a[0] for a in audit}):
            conn.execute("INSERT INTO institution VALUES (%s, %s, 'USD', 'UTC', 72, 1, now())", (inst, inst))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO balance VALUES (%s, %s, %s, 0, 0, 0, 0)",
                            [(acc, inst, c) for inst, acc, c in accounts])
        conn.execute("ALTER TABLE posting DROP CONSTRAINT fk_posting_txn_id_txn")
        conn.commit()
        started = time.perf_counter()
        for batch_postings, batch_audit in _batches(postings, audit, len(audit)):
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO posting (txn_id, institution_id, account_id, amount_minor, "
                                "currency, rule, posted_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                                batch_postings)
                cur.executemany("UPDATE balance SET debits_posted = debits_posted + %s, "
                                "credits_posted = credits_posted + %s WHERE account_id = %s",
                                _balance_updates(batch_postings))
                cur.executemany("INSERT INTO audit_entry VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                                batch_audit)
            conn.commit()
        return time.perf_counter() - started
