"""A second process for one long read on SQLite: forked *before* the read
opens its connection, so that it inherits no SQLite state, then given one
job on its own connection reading the same snapshot.

``bank audit verify`` checks a chain and a ledger whose every entry and row
is Python work (a SHA-256, a parse, a comparison); one process holds one
core, and the machine has more. A forked process has every module already
imported (a fresh interpreter would spend a good part of the budget
importing them) and shares nothing with its parent after the fork but what
the two send each other through pipes (pickles).

SQLite forbids carrying an open connection across ``fork()``: the child
would share the parent's file locks and lock bookkeeping. So the helper is
forked only when this process holds no connection to the database: the
engine's pool is emptied first (``dispose``), and nothing is forked while
any connection is checked out or another thread runs (a server process;
then the caller reads alone, as before). The child never closes what it
inherited (it ends with ``os._exit``).

Snapshot: both processes open their own read transaction; the job is run
only when the child's ``fingerprint`` (the audit head: every committed
write moves it) equals the one the parent sends; else the child answers
``None`` and the caller does the work itself.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from bank_core.storage.engine import make_engine

Job = Callable[[Connection, Any], Any]


class Helper:
    """The parent's handle on the forked process: ``submit`` one request,
    then ``result``."""

    def __init__(self, pid: int, to_child: int, from_child: int) -> None:
        self.pid = pid
        self.to_child = os.fdopen(to_child, "wb")
        self.from_child = os.fdopen(from_child, "rb")
        self.answered = False

    def submit(self, request: Any) -> None:
        pickle.dump(request, self.to_child, protocol=pickle.HIGHEST_PROTOCOL)
        self.to_child.close()

    def result(self) -> Any:
        """The job's answer; None when there is none (the child's snapshot
        differs, or it failed: the caller then does the work itself, and
        meets the same failure where it has a cause to show)."""
        try:
            kind, value = pickle.load(self.from_child)
        except (EOFError, pickle.UnpicklingError):
            return None
        self.answered = True
        return value if kind == "ok" else None

    def stop(self) -> None:
        for stream in (self.to_child, self.from_child):
            if not stream.closed:
                stream.close()
        try:
            if not self.answered and os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                os.kill(self.pid, signal.SIGKILL)  # still working for a caller that went on
            os.waitpid(self.pid, 0)  # an answered child is ending on its own
        except ChildProcessError:
            pass


def forkable(engine: Engine, idle: tuple[str, ...] = ()) -> bool:
    """Whether a process may be forked to work on ``engine``'s SQLite
    file (``quiet``)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return False
    return quiet(engine, idle)


def quiet(engine: Engine, idle: tuple[str, ...] = ()) -> bool:
    """Whether this process may fork a child that opens its own
    connections to ``engine``'s database: no connection checked out
    (``dispose`` then closes them all), and no other thread but those
    named in ``idle`` (threads that never hold a lock the child could
    need, such as the hang watchdog, ``bank_core.decide``)."""
    if not hasattr(os, "fork"):
        return False
    if any(t is not threading.current_thread() and t.name not in idle for t in threading.enumerate()):
        return False  # forking a process with other threads (a server) is not safe
    checkedout = getattr(engine.pool, "checkedout", None)
    return checkedout is not None and checkedout() == 0


@contextmanager
def forked_helper(engine: Engine, job: Job,
                  fingerprint: Callable[[Connection], Any]) -> Iterator[Helper | None]:
    """A forked process waiting to run ``job(conn, request)`` on its own
    read transaction of ``engine``'s SQLite database, or None where that
    is not possible (not a SQLite file, threads, connections in use, no
    ``fork``). ``request`` must carry ``"fingerprint"``: the parent's
    ``fingerprint(conn)``; the child answers None when its own differs."""
    if not forkable(engine):
        yield None
        return
    url = engine.url.render_as_string(hide_password=False)
    pid, down_w, up_r = fork_child(engine, lambda down, up: _serve(url, job, fingerprint, down, up))
    helper = Helper(pid, down_w, up_r)
    try:
        yield helper
    finally:
        helper.stop()


PIPE_BYTES = 1 << 20  # Linux's limit for a process without privileges (/proc/sys/fs/pipe-max-size)


def _widen(fd: int) -> None:
    """A pipe of ``PIPE_BYTES`` instead of 64 KiB where the system allows
    it: a write-ahead chunk (~650 KB for 1,000 rows) then crosses in a
    couple of writes instead of ten turns of each process waiting for the
    other (0.19 s of a 100k-row file)."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        pass  # not Linux, or a lower limit: the default size works, a little slower


def fork_child(engine: Engine, serve: Callable[[int, int], Any]) -> tuple[int, int, int]:
    """Fork a child that runs ``serve(requests_fd, answers_fd)`` and never
    returns (it ends with ``os._exit``); ``engine``'s pool is emptied first,
    so no connection of this process crosses the fork. Returns (pid, the
    fd to write requests to, the fd to read answers from)."""
    engine.dispose()
    down_r, down_w = os.pipe()
    up_r, up_w = os.pipe()
    for fd in (down_w, up_w):
        _widen(fd)
    pid = os.fork()
    if pid == 0:  # the child
        os.close(down_w)
        os.close(up_r)
        serve(down_r, up_w)
        os._exit(1)  # (serve ends the process itself)
    os.close(down_r)
    os.close(up_w)
    return pid, down_w, up_r


def _serve(url: str, job: Job, fingerprint: Callable[[Connection], Any], down: int, up: int) -> None:
    code = 0
    try:
        with os.fdopen(down, "rb") as requests, os.fdopen(up, "wb") as answers:
            try:
                engine = make_engine(url)  # its own pool: nothing inherited is used
                with engine.connect() as conn:
                    conn = conn.execution_options(bank_read_only=True)
                    with conn.begin():  # opened while the parent opens its own
                        own = fingerprint(conn)
                        request = pickle.load(requests)
                        if own != request["fingerprint"]:
                            answer = None  # a commit came in between: the parent works alone
                        else:
                            answer = job(conn, request)
                engine.dispose()
                pickle.dump(("ok", answer), answers, protocol=pickle.HIGHEST_PROTOCOL)
            except EOFError:
                pass  # the parent went on without us
            except BaseException as exc:  # noqa: BLE001 - handed to the parent as one line
                try:
                    pickle.dump(("error", f"{type(exc).__name__}: {exc}"), answers)
                except Exception:  # noqa: BLE001 - the parent is gone
                    code = 1
    except BaseException:  # noqa: BLE001
        code = 1
    finally:
        os._exit(code)
