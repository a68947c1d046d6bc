"""More connections reading the snapshot a read transaction already reads,
so that a long check can run its queries side by side (``bank audit
verify``: the database assembles rows and aggregates on other connections,
in worker threads, while Python walks the chain; the drivers release the
GIL while the database works).

PostgreSQL shares the snapshot itself (``pg_export_snapshot`` / ``SET
TRANSACTION SNAPSHOT``). SQLite cannot pin one, so each new connection opens
its read transaction and must read the same ``fingerprint`` (the caller's
audit head: every write the engine commits moves it) as the first
connection; if a write came in between, there are no twins and the caller
reads everything on its own connection, as before.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

from sqlalchemy import Connection

QUEUED_BATCHES = 8  # a reader thread runs at most this many batches ahead
BATCH_ROWS = 4096


@contextmanager
def twins(conn: Connection, count: int,
          fingerprint: Callable[[Connection], Any]) -> Iterator[list[Connection] | None]:
    """``count`` more connections in read transactions on ``conn``'s
    snapshot (``conn`` must be inside its transaction), or None when that
    cannot be had (an in-memory database, or a commit in between:
    ``fingerprint(other)`` differs from ``fingerprint(conn)``)."""
    dialect = conn.dialect.name
    if dialect == "sqlite" and conn.engine.url.database in (None, "", ":memory:"):
        yield None
        return
    if dialect not in ("sqlite", "postgresql"):
        yield None
        return
    own = fingerprint(conn)
    exported = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar() if dialect == "postgresql" else None
    with ExitStack() as stack:
        found = []
        for _ in range(count):
            other = stack.enter_context(conn.engine.connect()).execution_options(bank_read_only=True)
            stack.enter_context(other.begin())
            if exported is not None:
                other.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{exported}'")
            if fingerprint(other) != own:
                break  # a commit came in between: no twins (the caller reads alone)
            found.append(other)
        yield found if len(found) == count else None


def read_beside(pool: ThreadPoolExecutor, conn: Connection, sql: str,
                params: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql`` (driver parameter style) read on ``conn`` by a
    worker thread of ``pool`` in batches, handed over through a bounded
    queue; closing the iterator early stops the worker."""
    handed: queue.Queue[Any] = queue.Queue(maxsize=QUEUED_BATCHES)
    stop = threading.Event()

    def produce() -> None:
        try:
            raw = conn.connection.driver_connection
            if conn.dialect.name == "postgresql":
                cursor = raw.cursor(name="bank_read_beside")  # type: ignore[union-attr]
            else:
                cursor = raw.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(sql, params)
                while not stop.is_set():
                    batch = cursor.fetchmany(BATCH_ROWS)
                    handed.put(batch)
                    if not batch:
                        break
            finally:
                cursor.close()
        except BaseException as exc:  # handed to the reading thread, raised there
            handed.put(exc)

    worker: Future[None] = pool.submit(produce)
    try:
        while True:
            batch = handed.get()
            if isinstance(batch, BaseException):
                raise batch
            if not batch:
                return
            yield from batch
    finally:
        stop.set()
        while not worker.done():  # unblock a worker waiting on a full queue
            try:
                handed.get(timeout=0.01)
            except queue.Empty:
                pass
