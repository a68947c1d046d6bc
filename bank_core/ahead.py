"""Write-ahead: a file's chunks on two threads (issue 8).

One chunk at a time, a file's time is the sum of deciding and writing. With
write-ahead a writer process writes and commits chunk N while this process
decides chunk N+1, so the two overlap on two cores. (A process, not a
thread: measured on the 100k bench, a writer thread and the deciding
thread took their turns at the GIL so often that both ran at about half
speed, and the file took longer than one chunk at a time.) Per chunk:

1. wait until chunk N-1 has committed, and yield its outcomes (as one list);
2. open a read snapshot (its first read fixes it: the database as chunk
   N-1 left it), then hand chunk N to the writer, whose commit therefore
   cannot show in the snapshot;
3. load chunk N+1 from the snapshot, which is without chunk N; the load
   adds chunk N's effects from memory (``Chunk.ahead``: its balances are
   carried, its usage increments, outgoing times, idempotency keys and
   largest transaction id are added), so chunk N+1 sees exactly what it
   would see after chunk N's commit;
4. decide chunk N+1 on that state, and seal it (``Chunk.seal``: what its
   balance update writes is fixed before the next chunk changes the rows;
   ``Chunk.writes``: the rows, as plain data, packed at once (``_packed``:
   marshalled, with what is not plain pickled around it) so that step 2 of
   the next round is only a copy into the pipe: the writer is idle from its
   commit until then).

The writer opens its write transaction, checks that the institution's
audit head is the one the previous chunk left (or, for the first, the one
the snapshot showed), writes the chunk (``Chunk.write``: statements only)
and commits. Every change to an institution's accounts, balances, profile
or transactions appends to its chain, so an unchanged head means nobody
else wrote since the state the chunk was decided on. When somebody did
(``Stale``), the chunk and the one decided on top of it are decided again,
one at a time on the database's state (``process_chunk``), and write-ahead
starts afresh with the next chunk. The outcomes, the ledger and the chain
are those of one chunk at a time (``tests/test_write_ahead.py`` compares
them).

A chunk's outcomes are yielded only after it commits. New decision terms
(``bank_core.terms``) are written in transactions of their own, since this
thread only reads.

The writer is forked (``bank_core.storage.forked``: every module already
imported, no connection inherited) when the file starts and ends with it;
a chunk it was given when this process died is committed whole or not at
all, like any chunk, and a re-run replays it. The head check and the
writes are one step: SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL the
institution's advisory lock and SERIALIZABLE (a concurrent writer's
commit is a serialization failure, retried, and then a moved head). The
snapshot on PostgreSQL is a REPEATABLE READ transaction that locks
nothing (``Chunk.lock_rows``). Write-ahead runs only where forking is safe
(no other threads but the kernel's own idle ones, no connection in use:
``bank txn process``, not a server); elsewhere, and for dry runs, chunks go
one at a time. ``BANK_WRITE_AHEAD=0`` turns it off.

The input is read one chunk ahead, so the last chunk is known before it is
decided: it is split in two (``_tapered``), and only half a chunk's write,
and the WAL pages of that last chunk, are left when the deciding ends.
"""


from __future__ import annotations

import itertools
import marshal
import os
import pickle
import signal
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event

from bank_core.decide import DRIVER_THREAD, WATCHDOG_THREAD
from bank_core.chunk import Carry, Chunk, Outcome, Writes, check_rows, decide_rows, write_chunk
from bank_core.errors import BankError, InvalidRequest
from bank_core.messages import TxnRequest, utc_now
from bank_core.storage.engine import StorageError, make_engine, run_in_transaction
from bank_core.storage.forked import fork_child, forkable, quiet

if TYPE_CHECKING:
    from bank_core.service import BankService

ENV_WRITE_AHEAD = "BANK_WRITE_AHEAD"
MIDDLE, NEXT_TO_LAST, LAST = 0, 1, 2  # where a chunk is in its file (``_tapered``)


def wanted(write_ahead: bool | None) -> bool:
    """``write_ahead`` as asked, or from ``BANK_WRITE_AHEAD`` (1, the
    default, or 0)."""
    if write_ahead is not None:
        return write_ahead
    text = os.environ.get(ENV_WRITE_AHEAD, "1")
    if text not in ("0", "1"):
        raise InvalidRequest(f"{ENV_WRITE_AHEAD}: {text!r} is not 1 (write a chunk while deciding the next, "
                             "the default) or 0 (one chunk at a time)")
    return text == "1"


def available(engine: Engine) -> bool:
    """A writer can be forked: a SQLite file, no connection in use, no
    other thread but the kernel's own around the drivers (the hang
    watchdog, and the driver thread, which runs a driver only while this
    thread waits for it: never while a batch forks)."""
    idle = (WATCHDOG_THREAD, DRIVER_THREAD)
    return forkable(engine, idle) or (engine.dialect.name == "postgresql" and quiet(engine, idle))


class Stale(Exception):
    """The institution's chain head is not where the chunk was decided:
    somebody else wrote in between."""


class _Carry(Carry):
    """Accounts and balances from chunk to chunk; whether they still hold
    is the writer's head check, not the load's."""

    __slots__ = ()
    by_head = False

    def begin(self, head: tuple[int, str] | None, profile_version: int) -> bool:
        usable = profile_version == self.profile_version
        self.keep(usable)
        self.profile_version = profile_version
        return usable


class _Decided:
    """A chunk decided and sealed, with what it needs to be yielded or
    decided again."""

    __slots__ = ("chunk", "requests", "first", "outcomes", "ending")

    def __init__(self, chunk: Chunk, requests: list[TxnRequest], first: int, outcomes: list[Any],
                 ending: int = MIDDLE) -> None:
        self.chunk, self.requests, self.first, self.outcomes = chunk, requests, first, outcomes
        self.ending = ending  # MIDDLE, NEXT_TO_LAST or LAST: what the writer does after it (``_tapered``)


class _Writer:
    """The forked writer: one job at a time, ``(expected head, ending)``
    and the writes in, ``("ok", new head)``, ``("stale", None)`` or
    ``("error", exc)`` out."""

    def __init__(self, engine: Engine, audit: Any) -> None:
        url = engine.url.render_as_string(hide_password=False)
        pid, down_w, up_r = fork_child(engine, lambda down, up: _serve(url, audit, down, up))
        self.pid = pid
        self.to_child = os.fdopen(down_w, "wb")
        self.from_child = os.fdopen(up_r, "rb")
        self.busy = False

    def submit(self, expected: tuple[int, str] | None, writes: bytes, ending: int = MIDDLE) -> None:
        """Hand over a chunk: ``writes`` is its ``Chunk.writes()`` already
        packed (``_packed``), ``expected`` the head the writer must find,
        ``ending`` where the chunk is in the file (its checkpoint after it)."""
        pickle.dump((expected, ending), self.to_child, protocol=pickle.HIGHEST_PROTOCOL)
        self.to_child.write(writes)
        self.to_child.flush()
        self.busy = True

    def result(self) -> tuple[int, str] | None:
        """The new head; raises ``Stale``, or the writer's error."""
        self.busy = False
        try:
            kind, value = pickle.load(self.from_child)
        except (EOFError, pickle.UnpicklingError):
            raise StorageError("the write-ahead writer stopped; the chunk it was writing was not committed, "
                               "run the file again") from None
        if kind == "ok":
            return value
        if kind == "stale":
            raise Stale()
        raise value

    def close(self) -> None:
        """Let it finish what it was given (committed whole or not at all) and end."""
        for stream in (self.to_child, self.from_child):
            if not stream.closed:
                stream.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def _serve(url: str, audit: Any, down: int, up: int) -> None:
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
        engine = make_engine(url)  # its own pool: nothing inherited is used
        checkpoints = _Checkpoints(engine) if engine.dialect.name == "sqlite" else None
        with os.fdopen(down, "rb") as jobs, os.fdopen(up, "wb") as answers:
            while True:
                try:
                    expected, ending = pickle.load(jobs)
                    writes = _unpacked(pickle.load(jobs))
                except EOFError:
                    break
                try:
                    answer: tuple[str, Any] = ("ok", _write(engine, audit, expected, writes))
                except Stale:
                    answer = ("stale", None)
                except BaseException as exc:  # noqa: BLE001 - handed to the parent
                    answer = ("error", _portable(exc))
                pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
                answers.flush()
                if checkpoints is not None and answer[0] == "ok":
                    checkpoints.written(len(writes[4][0]), ending)  # rows (while the parent goes on with the next chunk)
        engine.dispose()
    except BaseException:  # noqa: BLE001
        code = 1
    finally:
        os._exit(code)


CHECKPOINT_ROWS = (8_000, 64_000)  # transactions between two of the writer's WAL checkpoints: at first, at most


class _Checkpoints:
    """The writer's WAL checkpoints (SQLite), run after a chunk's answer is
    sent instead of inside a commit: SQLite's own auto-checkpoint runs in
    the commit that takes the log past its limit, and the deciding process
    waited for it (at 1M rows, 31 s of the writer's 64 s were commits,
    nearly all of them checkpoints syncing index pages spread over a 1.3 GB
    file). Here the parent has its answer and decides the next chunk while
    the writer checkpoints; the next job waits in the pipe. PASSIVE (it
    never waits for a reader; what it cannot copy yet, the next one
    copies), every quarter of what the writer wrote so far, at least 8,000
    and at most 64,000 transactions (``CHECKPOINT_ROWS``): a page the log
    rewrote many times is copied once, so a long file wants long intervals
    (1M rows: every 64,000 71.8 s, every 8,000 75.5 s), while what is left
    at the end is copied by the connection that closes last, after the
    file, so a short file wants short ones (two 50k files: 8,000 9.27 s,
    64,000 10.18 s, 64 MB auto-checkpoints 9.38-9.79 s). What is left at
    the end is therefore made small: after the next-to-last chunk (the last
    chunk's first half, ``_tapered``) the writer checkpoints whatever the
    schedule says, and after the last it leaves the rest to that close
    (100k rows: the close copied ~7,000 pages, 0.18 s; the deciding
    process's read snapshot, always open, holds every checkpoint to what
    it saw, so this one copies all but the last chunk). A commit is in the
    log before its answer is sent, checkpointed or not."""

    def __init__(self, engine: Engine) -> None:
        event.listen(engine, "connect", _no_auto_checkpoint)
        self.engine = engine
        self.rows = self.total = 0

    def written(self, rows: int, ending: int = MIDDLE) -> bool:
        """After a chunk of ``rows`` transactions (``ending``: where it is in
        its file) was committed and answered: checkpoint if it is time.
        Returns whether it checkpointed."""
        self.rows += rows
        self.total += rows
        first, most = CHECKPOINT_ROWS
        if ending == LAST or (ending == MIDDLE and self.rows < min(most, max(first, self.total // 4))):
            return False
        self.rows = 0
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]
        except sqlite3.Error:
            pass  # (busy: the next one copies it; a real fault fails the next commit, named)
        finally:
            raw.close()
        return True


def _no_auto_checkpoint(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def _portable(exc: BaseException) -> BaseException:
    """The error as the parent can raise it: the bank's own errors as they
    are, anything else as one line."""
    if isinstance(exc, BankError):
        try:
            return pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001
            pass
    return StorageError(f"{type(exc).__name__}: {exc}")


def _write(engine: Engine, audit: Any, expected: tuple[int, str] | None, writes: Writes) -> tuple[int, str] | None:
    """The writer's job: check the head, write, commit; the new head."""
    institution = writes[0]

    def work(conn: Connection) -> tuple[int, str] | None:
        head = audit.head(conn, institution)
        if head != expected:
            raise Stale()
        written = write_chunk(conn, audit, writes)
        return head if written is None else written
    return run_in_transaction(engine, work, lock=institution)


def process(service: BankService, institution_id: str, chunks: Iterator[list[TxnRequest]]
            ) -> Iterator[list[Outcome]]:
    """``submit_chunks`` with write-ahead (see the module docstring): each
    chunk's outcomes, as one list, once it has committed. A file
    of one chunk has nothing to overlap: it is decided and written here,
    as one chunk at a time would (no writer is forked for it)."""
    first = next(chunks, None)
    if first is None:
        return
    try:
        second = next(chunks, None)
    except Exception:  # the input failed after one chunk: that chunk lands first
        yield from _one(service, institution_id, first, 0)
        raise
    if second is None:
        yield from _one(service, institution_id, first, 0)
        return
    yield from _overlapped(service, institution_id, itertools.chain((first, second), chunks))


def _tapered(chunks: Iterator[list[TxnRequest]]) -> Iterator[tuple[list[TxnRequest], int]]:
    """The chunks, each with where it is in the file (``MIDDLE``,
    ``NEXT_TO_LAST``, ``LAST``), read one ahead, with the last one split in
    two halves.

    The last chunk's write is the one thing of a file nothing overlaps: the
    deciding process has nothing left to decide while the writer writes
    it. Split, its first half is written while the second is decided, and
    only half a chunk's write is left at the end. (Chunks are units of
    commit, not of meaning: a file's outcomes do not depend on where they
    are cut, ``tests/test_write_ahead.py``.) An error of the input after a
    chunk comes after that chunk, as without the read ahead."""
    current = next(chunks, None)
    while current is not None:
        try:
            following = next(chunks, None)
        except Exception:
            yield current, MIDDLE
            raise
        if following is None:
            if len(current) > 1:
                half = (len(current) + 1) // 2
                yield current[:half], NEXT_TO_LAST
                current = current[half:]
            yield current, LAST
            return
        yield current, MIDDLE
        current = following


def _overlapped(service: BankService, institution_id: str, chunks: Iterator[list[TxnRequest]]
                ) -> Iterator[list[Outcome]]:
    pieces = _tapered(chunks)
    engine = service.engine
    writer = _Writer(engine, service.audit)
    carry = _Carry()
    decided: _Decided | None = None  # decided, not yet with the writer
    sent: _Decided | None = None  # with the writer
    base: tuple[int, str] | None = None  # the head the writer must find for ``decided``
    packed = b""  # ``decided``'s writes, packed for the writer
    done = 0
    failed: Exception | None = None  # the input's own error: raised once what was read has landed

    def land() -> Iterator[list[Outcome]]:
        """The chunk with the writer committed: its outcomes; or, decided on
        a head that moved, it and the chunk decided on top of it again."""
        nonlocal sent, decided, base, carry
        if sent is None:
            return
        try:
            base = writer.result()
        except Stale:
            yield from _again(service, institution_id, [sent, decided])
            decided, carry = None, _Carry()
        else:
            yield sent.outcomes
        sent = None

    try:
        with engine.connect() as raw:
            # one snapshot per chunk: SQLite's read transaction; PostgreSQL's
            # REPEATABLE READ (not READ ONLY: the chunk's ids come from a sequence)
            reader = raw.execution_options(bank_read_only=True) if raw.dialect.name == "sqlite" else \
                raw.execution_options(isolation_level="REPEATABLE READ")
            while True:
                try:
                    requests, ending = next(pieces)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - the chunks read before it land first, as one at a time
                    failed = exc
                    break
                yield from land()
                with reader.begin():
                    # the snapshot starts with this first read: without ``decided``
                    inst = service.institution(reader, institution_id)
                    if decided is None:
                        base = service.audit.head(reader, inst.id)  # the snapshot's: where we start
                    else:  # handed over as soon as the snapshot is taken: its commit cannot show in it
                        writer.submit(base, packed, decided.ending)
                        sent = decided
                    now = utc_now()
                    kinds, outcomes = check_rows(inst, requests, now, done)
                    chunk = Chunk(service.pipeline, reader, inst, now, carry)
                    chunk.terms.engine = engine  # new terms: committed apart (this process only reads)
                    chunk.lock_rows = False  # the writer's head check stands for the locks
                    chunk.ahead = decided.chunk if decided is not None else None
                    chunk.load(requests, kinds)
                    decide_rows(chunk, requests, kinds, outcomes, done)
                    chunk.seal()
                    chunk.ahead = None  # (no chain of chunks kept alive)
                    decided = _Decided(chunk, requests, done, outcomes, ending)
                    packed = _packed(chunk)
                done += len(requests)
        yield from land()
        if decided is not None:  # the last chunk
            writer.submit(base, packed, decided.ending)
            sent, decided = decided, None
            yield from land()
        if failed is not None:
            raise failed
    except Exception:
        if sent is not None and writer.busy:  # this process failed while the writer wrote: let it land
            try:
                writer.result()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
            else:
                yield sent.outcomes
        raise
    finally:
        writer.close()


def _packed(chunk: Chunk) -> bytes:
    """A sealed chunk's writes as the writer reads them: packed as soon as
    it is decided, so that handing it over later is only a copy into the
    pipe (the writer waits for a chunk while this process hands it over).

    The rows, balance deltas, seals and usage are plain values, written with
    ``marshal`` (half of what pickling them cost: no memo of every list,
    no class lookups); the rest (the actors, a shadow's rows, the time) is
    pickled around them. A value ``marshal`` cannot write as it is (a
    subclass of ``str`` or ``int`` that a caller of the library passed in)
    sends the whole chunk pickled instead."""
    institution, now, actors, shadow_rows, plain = chunk.writes()
    try:
        body: Any = marshal.dumps(plain)
    except ValueError:
        body = plain
    return pickle.dumps((institution, now, actors, shadow_rows, body), protocol=pickle.HIGHEST_PROTOCOL)


def _unpacked(packed: tuple[Any, ...]) -> Writes:
    """:func:`_packed`'s chunk as ``write_chunk`` takes it."""
    body = packed[4]
    return (*packed[:4], marshal.loads(body) if type(body) is bytes else body)


def _again(service: BankService, institution_id: str, chunks: list[_Decided | None]) -> Iterator[list[Outcome]]:
    """Chunks decided on a state somebody else changed meanwhile: decided
    again, one at a time, on the database's state."""
    for decided in chunks:
        if decided is not None:
            yield from _one(service, institution_id, decided.requests, decided.first)


def _one(service: BankService, institution_id: str, requests: list[TxnRequest], first: int
         ) -> Iterator[list[Outcome]]:
    """One chunk decided and written in one transaction of this process."""
    yield service.write_chunk(institution_id, requests, first, Carry())
