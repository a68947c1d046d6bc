"""Engines and the retrying unit of work.

SQLite (the embedded default): WAL, foreign keys on, a busy timeout, and every
writing transaction opened with ``BEGIN IMMEDIATE`` so two writers never
deadlock upgrading a read lock. PostgreSQL: SERIALIZABLE isolation, so the
same code is correct on PostgreSQL-compatible distributed engines; a
serialization failure or deadlock is retried a bounded number of times.

Every write of an institution touches its audit-chain head, so two concurrent
writers of one institution can never both commit under SERIALIZABLE: without
more, four busy clients spend most of their time aborting and retrying, and
some requests exhaust their attempts. On PostgreSQL a writer therefore first
takes a session-level advisory lock on its institution, *before* its
transaction begins (a lock taken inside it would come after the snapshot and
not help): writers of one institution queue instead of aborting, writers of
different institutions still run in parallel. The lock is an optimisation
only; correctness still rests on SERIALIZABLE and the retries (a lost lock
only costs retries). It is taken only for the ``postgresql`` dialect, and
not at all when ``BANK_PG_ADVISORY_LOCKS=0`` (for PostgreSQL-compatible
engines without advisory locks, such as CockroachDB): then concurrent writers
of one institution rely on SERIALIZABLE and the retries alone.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bank_core.actors import Actor
from bank_core.errors import Busy, InvalidRequest

T = TypeVar("T")

ENV_DATABASE_URL = "BANK_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 60_000
# SQLite's page cache per connection, in MiB (its default is 2 MiB). A chunk
# of a file touches a few thousand pages of the account-keyed indexes; with
# 2 MiB every one was read back from the OS for every chunk (100k rows:
# 475,000 preads -> 65,000 at 64 MiB). Pages are allocated as they are read,
# so a small ledger never holds it all.
ENV_SQLITE_CACHE_MIB = "BANK_SQLITE_CACHE_MIB"
SQLITE_CACHE_MIB = 64
# Retrying a unit of work that lost a serialization race: exponential
# backoff with full jitter (a random sleep up to a ceiling that doubles from
# RETRY_BASE_SLEEP_MS to RETRY_MAX_SLEEP_MS), for up to MAX_TXN_ATTEMPTS
# attempts or RETRY_BUDGET_S seconds, whichever comes first. Only past that
# documented limit does the person see one "busy, try again" line (exit 7).
MAX_TXN_ATTEMPTS = 400
RETRY_BUDGET_S = 120.0
RETRY_BASE_SLEEP_MS = 2
RETRY_MAX_SLEEP_MS = 500
# serialization_failure, deadlock_detected, and a unique key a concurrent
# writer took first (the retry then sees its row: an idempotent replay).
_RETRY_SQLSTATES = frozenset({"40001", "40P01", "23505"})


def _null(_value: None) -> None:
    return None


# sqlite3 binds an exact int, float, str or bytes itself; any other value
# (None, a str subclass such as Actor) first goes through its adapter
# registry, and a miss there fails two attribute lookups, formatting an
# AttributeError for each: ~3,600 instructions a value, four to five values
# a row in the writer of a file (8% of its work). These bind exactly what
# the miss binds (NULL, the text), without the detour. Process-wide, as the
# registry is; both adapters keep the value as it is.
sqlite3.register_adapter(type(None), _null)
sqlite3.register_adapter(Actor, str)


class StorageError(Exception):
    """The database could not be reached or kept failing."""


def default_sqlite_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "bank" / "bank.db"


def resolve_url(url: str | None = None) -> str:
    """The database URL: the argument, else ``BANK_DATABASE_URL``, else the
    embedded SQLite file under the user's data directory."""
    url = url or os.environ.get(ENV_DATABASE_URL)
    if not url:
        path = default_sqlite_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str | None = None) -> Engine:
    url = resolve_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        from bank_core.storage.models import with_postgresql_options

        with_postgresql_options()  # the models' partial indexes, as PostgreSQL holds them
        # No server-side prepared statements: a generic plan cached while the
        # txn table was small (a sequential scan) stays cached as it grows when
        # nothing runs ANALYZE (autovacuum off), and the idempotency lookup of
        # a chunk then took seconds at 200k rows. Custom plans use the index.
        return create_engine(url, isolation_level="SERIALIZABLE", pool_pre_ping=True,
                             connect_args={"prepare_threshold": None})
    return create_engine(url)


def _cache_mib() -> int:
    text = os.environ.get(ENV_SQLITE_CACHE_MIB, "").strip()
    if not text:
        return SQLITE_CACHE_MIB
    if not text.isdigit() or not 1 <= int(text) <= 65_536:
        raise InvalidRequest(f"{ENV_SQLITE_CACHE_MIB}: {text!r} is not a whole number of MiB from 1 to 65536")
    return int(text)


def _configure_sqlite(engine: Engine) -> None:
    cache_pages = -1024 * _cache_mib()  # negative: KiB

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint the WAL every ~128 MB instead of every 4 MB: a chunk of a
        # file writes several MB, and a checkpoint on every commit doubled
        # the cost of committing it. A checkpoint copies each page once
        # however often the log rewrote it, so a longer log copies fewer
        # pages per row: at 1M rows 64 MB -> 128 MB took the file from
        # 82.1-87.4 s to 79.3-80.0 s, no change at 100k (256 MB: 75 s at 1M
        # but 0.2-0.5 s more at 100k, the whole log copied at the end).
        cursor.execute("PRAGMA wal_autocheckpoint=32768")
        # Statement journals in memory, not in a temporary file: a
        # multi-row INSERT (bulk.py) keeps the original of every page it
        # changes until it completes, and on disk that was 70% of a file's
        # write calls (20k rows: 129,000 pwrite -> 37,000; 100k rows: 4.1 ->
        # 1.5 s of system time). Temporary tables and sorts live in memory
        # too.
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute(f"PRAGMA cache_size={cache_pages}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get("bank_read_only") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def dry_run_engine(engine: Engine) -> Iterator[Engine]:
    """The engine a dry run writes to: on SQLite a consistent copy of the
    database (the backup API reads it as one WAL reader, so writers are
    never blocked), deleted afterwards; elsewhere ``engine`` itself."""
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        yield engine
        return
    with tempfile.TemporaryDirectory(prefix="bank-dry-run-") as directory:
        copy_path = Path(directory) / "snapshot.db"
        with engine.connect() as conn:
            source = conn.connection.driver_connection
            target = sqlite3.connect(copy_path)
            try:
                source.backup(target)  # type: ignore[union-attr]
            finally:
                target.close()
        copy = make_engine(f"sqlite:///{copy_path}")
        try:
            yield copy
        finally:
            copy.dispose()


def is_retryable(exc: BaseException) -> bool:
    """A serialization failure, deadlock or busy database, whether it comes
    wrapped by SQLAlchemy or straight from the driver (``COPY``)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(exc, DBAPIError) and getattr(orig, "sqlstate", None) is None:
        return False
    if getattr(orig, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    return "database is locked" in str(orig)


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` (an institution id)."""
    digest = hashlib.sha256(f"bank-engine:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


ENV_ADVISORY_LOCKS = "BANK_PG_ADVISORY_LOCKS"


def _session_lock_key(conn: Connection, name: str | None) -> int | None:
    if name is None or conn.dialect.name != "postgresql":
        return None
    if os.environ.get(ENV_ADVISORY_LOCKS, "1") == "0":
        return None
    return lock_key(name)


def _lock_session(conn: Connection, key: int | None) -> None:
    """Wait for the session advisory lock ``key``; the tiny transaction that
    takes it commits at once, so the caller's own transaction gets a
    snapshot taken after the previous holder committed."""
    if key is None:
        return
    conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
    conn.commit()


def _unlock_session(conn: Connection, key: int | None) -> None:
    if key is None:
        return
    try:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        conn.commit()
    except DBAPIError:
        # Never hand a connection that may still hold the lock back to the
        # pool: dropping it makes the server release the lock.
        conn.invalidate()


_AFTER_COMMIT = "bank_after_commit"


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the unit of work ``conn`` belongs to has
    committed (never if it rolls back or is retried)."""
    conn.info.setdefault(_AFTER_COMMIT, []).append(callback)


def discard_after_commit(conn: Connection) -> None:
    conn.info.pop(_AFTER_COMMIT, None)


def _committed(conn: Connection) -> None:
    for callback in conn.info.pop(_AFTER_COMMIT, ()):
        callback()


# SQLite has one writer at a time. Threads of one process that all ask for
# it at once would each sleep in SQLite's busy handler (backing off up to
# 100 ms) and be woken in no order: under 32 threads (``bank serve``) that
# made p99 seconds. They queue on this lock instead; other processes still
# meet the busy timeout.
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_SQLITE_WRITERS_GUARD = threading.Lock()


def _writer_turn(engine: Engine, read_only: bool) -> threading.RLock | nullcontext[None]:
    if read_only or engine.dialect.name != "sqlite":
        return nullcontext()
    with _SQLITE_WRITERS_GUARD:
        return _SQLITE_WRITERS.setdefault(engine, threading.RLock())


def run_in_transaction(engine: Engine, work: Callable[[Connection], T], *,
                       read_only: bool = False, lock: str | None = None) -> T:
    """Run ``work(conn)`` in one database transaction, committed on return.

    Serialization failures and deadlocks are retried with jittered
    exponential backoff up to ``MAX_TXN_ATTEMPTS`` times within
    ``RETRY_BUDGET_S`` seconds, then ``Busy`` is raised (nothing was
    written); ``work`` must therefore have no effect outside the database.
    ``lock`` names the institution a write belongs to: on PostgreSQL,
    writers of one institution take turns (see the module docstring).
    """
    deadline = time.monotonic() + RETRY_BUDGET_S
    for attempt in range(1, MAX_TXN_ATTEMPTS + 1):
        try:
            with _writer_turn(engine, read_only), engine.connect() as conn:
                if read_only:
                    conn = conn.execution_options(bank_read_only=True)
                key = None if read_only else _session_lock_key(conn, lock)
                try:
                    _lock_session(conn, key)
                    discard_after_commit(conn)
                    with conn.begin():
                        result = work(conn)
                    _committed(conn)
                    return result
                finally:
                    discard_after_commit(conn)
                    _unlock_session(conn, key)
        except Exception as exc:
            if not is_retryable(exc):
                raise
            ceiling = min(RETRY_MAX_SLEEP_MS, RETRY_BASE_SLEEP_MS * 2 ** min(attempt, 16))
            pause = random.uniform(0, ceiling) / 1000
            if attempt == MAX_TXN_ATTEMPTS or time.monotonic() + pause > deadline:
                raise Busy(f"busy, try again: other writers kept conflicting with this one "
                           f"({attempt} attempts in {RETRY_BUDGET_S - (deadline - time.monotonic()):.0f} s); "
                           "nothing was written") from None
            time.sleep(pause)
    raise StorageError("unreachable")  # pragma: no cover
