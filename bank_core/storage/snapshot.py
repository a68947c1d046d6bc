"""More connections reading the snapshot a read transaction already reads,
so that a long check can run its queries side by side (``bank audit
verify``: the database assembles rows and aggregates on other connections
while Python walks the chain: in worker threads (the drivers release the
GIL while the database works), and on SQLite the big row query in a child
process, ``rows_in_process``, since a reader thread there waits for the GIL
before every row).

PostgreSQL shares the snapshot itself (``pg_export_snapshot`` / ``SET
TRANSACTION SNAPSHOT``). SQLite cannot pin one, so each new connection opens
its read transaction and must read the same ``fingerprint`` (the caller's
audit head: every write the engine commits moves it) as the first
connection; if a write came in between, there are no twins and the caller
reads everything on its own connection, as before.
"""

from __future__ import annotations

import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from bank_core.storage.engine import StorageError

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


class Beside:
    """Worker threads reading on twin connections (``twins``) while the
    caller's thread works; leaving the block stops and joins them."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(workers)
        self.cancel = threading.Event()

    def __enter__(self) -> Beside:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cancel.set()  # a reader nobody reads any more stops
        self.pool.shutdown(wait=True)

    def submit(self, work: Callable[..., Any], *args: Any) -> Future[Any]:
        return self.pool.submit(work, *args)

    def rows(self, conn: Connection, sql: str, params: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` (driver parameter style) read on ``conn`` by
        a worker in batches, handed over through a bounded queue."""
        handed: queue.Queue[Any] = queue.Queue(maxsize=QUEUED_BATCHES)
        done = threading.Event()

        def hand(item: Any) -> bool:
            while not (done.is_set() or self.cancel.is_set()):
                try:
                    handed.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    pass
            return False

        def produce() -> None:
            try:
                raw = conn.connection.driver_connection
                named = {"name": f"bank_beside_{id(handed)}"} if conn.dialect.name == "postgresql" else {}
                cursor = raw.cursor(**named)  # type: ignore[union-attr]
                try:
                    cursor.execute(sql, params)
                    while hand(batch := cursor.fetchmany(BATCH_ROWS)) and batch:
                        pass
                finally:
                    cursor.close()
            except BaseException as exc:  # raised in the reading thread
                hand(exc)

        self.pool.submit(produce)
        try:
            while True:
                batch = handed.get()
                if isinstance(batch, BaseException):
                    raise batch
                if not batch:
                    return
                yield from batch
        finally:
            done.set()


def rows_in_process(conn: Connection, sql: str, params: tuple[Any, ...],
                    fingerprint: tuple[str, tuple[Any, ...]]) -> Iterator[tuple[Any, ...]] | None:
    """SQLite: the rows of ``sql`` read by a child process on its own
    connection (``_rows_child.py``) and streamed back in pickled batches,
    or None when the child's snapshot is not ``conn``'s (the ``fingerprint``
    query, run on both, differs) or it cannot start. Closing the iterator
    early stops the child."""
    database = conn.engine.url.database
    if conn.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return None
    check_sql, check_params = fingerprint
    expected = [tuple(row) for row in conn.exec_driver_sql(check_sql, check_params)]
    try:
        child = subprocess.Popen([sys.executable, "-I", "-S", str(Path(__file__).with_name("_rows_child.py"))],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:  # no interpreter to start (embedded): the caller reads alone
        return None
    try:
        pickle.dump({"path": database, "fingerprint": (check_sql, check_params, expected), "sql": sql,
                     "params": params, "batch": BATCH_ROWS}, child.stdin)  # type: ignore[arg-type]
        child.stdin.close()  # type: ignore[union-attr]
        answer, _ = _message(child)
    except BaseException:
        _stop(child)
        raise
    if answer != "same":
        _stop(child)
        return None
    return _streamed(child)


def _message(child: subprocess.Popen[bytes]) -> tuple[str, Any]:
    try:
        kind, value = pickle.load(child.stdout)  # type: ignore[arg-type]
    except EOFError:
        raise StorageError("the row reader of `audit verify` ended without an answer") from None
    if kind == "error":
        raise StorageError(f"the row reader of `audit verify` failed: {value}")
    return kind, value


def _streamed(child: subprocess.Popen[bytes]) -> Iterator[tuple[Any, ...]]:
    try:
        while True:
            kind, batch = _message(child)
            if kind == "end":
                return
            yield from batch
    finally:
        _stop(child)


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.kill()
    child.wait()
    if child.stdout is not None:
        child.stdout.close()
