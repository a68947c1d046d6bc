"""The I/O guard: a policy driver may not touch files, sockets or processes.

A driver is a pure function of its context (``bank_core.contract``). This
module enforces the part of that promise the interpreter can see: while a
driver call is in progress, every file open (imports and the timezone
database aside), socket, subprocess, shell, fork, file removal or rename,
database connection and HTTP request is **recorded and refused**.

How: one ``sys.addaudithook`` hook, installed the first time a guard is
entered (hooks cannot be removed), that does nothing unless a context
variable is set. The kernel's evaluator sets it around each driver call
(:func:`enter` / :func:`leave`), and so does the conformance kit. The hook
raises :class:`DriverForbidden` (a ``PermissionError``, so a driver sees
what the operating system would say) and records the attempt first, so a
driver that swallows the error is caught all the same: the caller reads the
record after the call and fails the transaction closed with
:data:`DRIVER_FORBIDDEN`.

Outside a driver call the hook costs one context-variable read per audited
event. It sees only Python-level operations: a C extension that calls the
operating system directly is not audited, and the import system's own
bytecode-cache writes are let through (so is code that calls its private
helpers on purpose); moving drivers out of process is the way to contain a
driver that means harm. This guard catches the honest mistake.
"""

from __future__ import annotations

import contextvars
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DRIVER_FORBIDDEN = "driver_forbidden"  # the stable fault code of a refused operation

_ACTIVE: contextvars.ContextVar[Attempts | None] = contextvars.ContextVar("bank_driver_guard", default=None)
_INSTALL_LOCK = threading.Lock()
_installed = False
_read_only_prefixes: tuple[str, ...] = ()
_IMPORT_SUFFIXES = (".py", ".pyc")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_FORBIDDEN = {
    "socket.__new__": "create a socket", "socket.connect": "connect a socket",
    "socket.bind": "bind a socket", "socket.getaddrinfo": "resolve a host name",
    "socket.sendto": "send on a socket", "subprocess.Popen": "start a process",
    "os.system": "run a shell command", "os.exec": "exec a program", "os.posix_spawn": "spawn a process",
    "os.spawn": "spawn a process", "os.fork": "fork", "os.forkpty": "fork",
    "os.remove": "remove a file", "os.rename": "rename a file", "os.mkdir": "make a directory",
    "os.rmdir": "remove a directory", "os.truncate": "truncate a file", "sqlite3.connect": "open a database",
    "urllib.Request": "make an HTTP request",
}


class DriverForbidden(PermissionError):
    """Raised inside a driver that tried a file, socket or process operation."""


class Attempts(list[str]):
    """What a driver tried during one guarded call (empty: nothing)."""

    __slots__ = ("_token",)


_IMPORT_SYSTEM = ("<frozen importlib._bootstrap_external>", "<frozen importlib._bootstrap>")


def _from_import_system(depth: int = 8) -> bool:
    """Whether the operation is the import system's own: a driver that
    imports a module lazily makes Python write ``__pycache__/x.pyc`` (through
    a temporary file it may remove); that is not the driver's I/O."""
    frame = sys._getframe(2)
    for _ in range(depth):
        if frame is None:
            return False
        if frame.f_code.co_filename in _IMPORT_SYSTEM:
            return True
        frame = frame.f_back
    return False


def forbidden(event: str, args: tuple[Any, ...]) -> str | None:
    """What a driver tried to do, in words, if ``event`` is refused."""
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (isinstance(flags, int) and flags & _WRITE_FLAGS)
        if not writes and isinstance(path, str) and (
                path.endswith(_IMPORT_SUFFIXES) or path.startswith(_read_only_prefixes)):
            return None  # an import, or the timezone database
        if _from_import_system():
            return None
        return f"open a file ({path!r}, mode {mode!r})"
    what = _FORBIDDEN.get(event)
    if what is None:
        return None
    if event in ("os.mkdir", "os.rename", "os.remove") and _from_import_system():
        return None
    if event in ("socket.connect", "socket.bind", "socket.sendto"):
        detail = args[1:2]
    elif event == "socket.getaddrinfo":
        detail = args[:2]
    elif event == "socket.__new__":
        detail = ()
    else:
        detail = args[:1]
    return f"{what} ({event}{' ' + ', '.join(map(repr, detail)) if detail else ''})"


def _audit(event: str, args: tuple[Any, ...]) -> None:
    attempts = _ACTIVE.get()
    if attempts is None:
        return
    what = forbidden(event, args)
    if what is not None:
        attempts.append(what)
        raise DriverForbidden(f"a policy driver may not {what}")


def install() -> None:
    """Install the audit hook (once per process; idempotent)."""
    global _installed, _read_only_prefixes
    if _installed:
        return
    with _INSTALL_LOCK:
        if _installed:
            return
        import zoneinfo

        prefixes = [os.path.join(p, "") for p in zoneinfo.TZPATH]
        spec = importlib.util.find_spec("tzdata")
        if spec is not None and spec.submodule_search_locations:
            prefixes += [os.path.join(p, "") for p in spec.submodule_search_locations]
        _read_only_prefixes = tuple(prefixes)
        sys.addaudithook(_audit)
        _installed = True


def enter() -> Attempts:
    """Start guarding the current thread's driver call; pass the result to
    :func:`leave` in a ``finally``. It fills with what the driver tried."""
    if not _installed:
        install()
    attempts = Attempts()
    attempts._token = _ACTIVE.set(attempts)
    return attempts


def leave(attempts: Attempts) -> None:
    _ACTIVE.reset(attempts._token)


@contextmanager
def guarded() -> Iterator[Attempts]:
    """``with guarded() as attempts:`` the same as :func:`enter`/:func:`leave`."""
    attempts = enter()
    try:
        yield attempts
    finally:
        leave(attempts)


def describe(driver: str, attempts: Attempts) -> str:
    """The fault message: the driver and the first things it tried."""
    tried = list(dict.fromkeys(attempts))
    more = f" and {len(tried) - 2} more" if len(tried) > 2 else ""
    return (f"{driver} tried to {'; '.join(tried[:2])}{more}: refused, a policy driver may not use "
            "files, sockets or processes")
