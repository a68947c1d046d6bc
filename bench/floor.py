"""The lean floor: the least a ledger has to write for the same rows.

For every accepted row of a run: one transaction row, its postings and the
balance updates, with integer keys and no secondary index, in batches of
1,000 input rows with one commit each. SQLite: the bare ``sqlite3`` module
with WAL and ``synchronous=NORMAL``; PostgreSQL: psycopg ``COPY`` for the
inserts. This is not the engine's schema written without the engine (that
would hide the engine's own schema costs): it is the job's minimum. Only the
writing is timed.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

BATCH = 1000

LEAN_SCHEMA = (
    "CREATE TABLE txn (id INTEGER PRIMARY KEY, src INTEGER, dst INTEGER, amount INTEGER, fee INTEGER)",
    "CREATE TABLE posting (id INTEGER PRIMARY KEY, txn_id INTEGER, account INTEGER, amount INTEGER)",
    "CREATE TABLE balance (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)",
)
PG_SCHEMA = (
    "CREATE TABLE txn (id BIGINT PRIMARY KEY, src BIGINT, dst BIGINT, amount BIGINT, fee BIGINT)",
    "CREATE TABLE posting (id BIGSERIAL PRIMARY KEY, txn_id BIGINT, account BIGINT, amount BIGINT)",
    "CREATE TABLE balance (id BIGINT PRIMARY KEY, amount BIGINT NOT NULL)",
)


class Accepted:
    """What a run posted, grouped into batches of ``BATCH`` input rows."""

    def __init__(self, batches: list[list[tuple[int, int, int, int, int, list[tuple[int, int]]]]],
                 accounts: int, rows: int) -> None:
        self.batches = batches
        self.accounts = accounts
        self.rows = rows


def read_accepted(url: str, institution: str, rows: int) -> Accepted:
    """Posted transactions of ``institution`` and their postings, in order."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if url.startswith("postgresql://") else url)
    numbers: dict[str, int] = {}

    def number(account: str | None) -> int | None:
        return None if account is None else numbers.setdefault(account, len(numbers) + 1)

    with engine.connect() as conn:
        txns = conn.execute(text(
            "SELECT id, idempotency_key, source_account_id, dest_account_id, amount_minor, fee_minor "
            "FROM txn WHERE institution_id = :i AND status = 'posted' ORDER BY id"), {"i": institution}).all()
        legs: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for txn_id, account, amount in conn.execute(text(
                "SELECT txn_id, account_id, amount_minor FROM posting WHERE institution_id = :i "
                "ORDER BY id"), {"i": institution}):
            legs[txn_id].append((number(account), amount))  # type: ignore[arg-type]
    engine.dispose()
    batches: list[list[Any]] = [[] for _ in range(max(1, -(-rows // BATCH)))]
    for txn_id, ref, src, dst, amount, fee in txns:
        line = int(ref.rsplit("-", 1)[1])  # the workload's refs end in the row number
        batches[min(line // BATCH, len(batches) - 1)].append(
            (txn_id, number(src), number(dst), amount, fee, legs[txn_id]))
    return Accepted(batches, len(numbers), rows)


def _balance_updates(batch: list[Any]) -> list[tuple[int, int]]:
    deltas: dict[int, int] = defaultdict(int)
    for *_head, legs in batch:
        for account, amount in legs:
            deltas[account] += amount
    return [(delta, account) for account, delta in deltas.items()]


def sqlite_seconds(work: Path, accepted: Accepted) -> float:
    path = work / f"lean-{time.monotonic_ns()}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in LEAN_SCHEMA:
        conn.execute(statement)
    conn.executemany("INSERT INTO balance VALUES (?, 0)", [(n,) for n in range(1, accepted.accounts + 1)])
    started = time.perf_counter()
    for batch in accepted.batches:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO txn VALUES (?, ?, ?, ?, ?)", [row[:5] for row in batch])
        conn.executemany("INSERT INTO posting (txn_id, account, amount) VALUES (?, ?, ?)",
                         [(row[0], account, amount) for row in batch for account, amount in row[5]])
        conn.executemany("UPDATE balance SET amount = amount + ? WHERE id = ?", _balance_updates(batch))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def postgres_seconds(url: str, accepted: Accepted) -> float:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for statement in PG_SCHEMA:
            conn.execute(statement)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO balance VALUES (%s, 0)", [(n,) for n in range(1, accepted.accounts + 1)])
        conn.commit()
        started = time.perf_counter()
        for batch in accepted.batches:
            with conn.cursor() as cur:
                with cur.copy("COPY txn (id, src, dst, amount, fee) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row[:5])
                with cur.copy("COPY posting (txn_id, account, amount) FROM STDIN") as copy:
                    for row in batch:
                        for account, amount in row[5]:
                            copy.write_row((row[0], account, amount))
                cur.executemany("UPDATE balance SET amount = amount + %s WHERE id = %s", _balance_updates(batch))
            conn.commit()
        return time.perf_counter() - started
