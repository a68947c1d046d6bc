"""Policy servers, kernel side: start, talk to, watch and restart them.

A profile with ``isolation = "process"`` has its drivers run in a policy
server (``bank_core.policy_server``), a child process of the kernel process
that uses it (``bank txn process``, each ``bank serve`` worker), one per
institution. This module owns those children:

* **Evaluation.** :class:`RemoteEvaluator` has the evaluator's
  ``evaluate`` (one context: holds, reversals, probes) and ``evaluate_many``
  (a batch of independent contexts in one message, see
  ``bank_core.chunk``), and answers with the same ``Verdict`` an inline call
  gives, attributed to the same drivers and distributions.
* **Containment.** While it waits for an answer the kernel watches the
  server's progress file. A row that makes no progress for its drivers'
  budgets plus twice the grace period (the server's own watchdog, which
  interrupts Python code, gets the first grace period) is stuck in C code:
  the server is killed (SIGKILL) and restarted, and that row fails closed
  with ``driver_timeout``. A server that dies (``os._exit``, a segfault,
  SIGKILL from anyone, the memory limit) is restarted and the row it was on
  is run again alone: if the fresh server dies on it too, the driver did it
  (``driver_crashed``); if not, the server was killed from outside and
  nothing is lost. Every other row of the message is sent again (drivers
  are pure: same answers).
* **Supervision.** Restarts back off (0, 50, 100, 200 ms ... at most 1 s);
  more than :data:`MAX_CRASHES` in :data:`CRASH_WINDOW_S` marks the server
  down: every request of that institution is then refused with
  :class:`PolicyServerDown` (exit 7, nothing of the chunk written) until
  :data:`DOWN_S` have passed, when one new start is tried.
* **Health.** Each server's state (pid, start, restarts, messages and rows
  served, latency p50/p99 of the last messages) is written, at most once a
  second and at every start, restart and stop, to a small JSON file per
  server (``bank_core.server_status``, which ``bank plugins status`` reads).
"""

from __future__ import annotations

import atexit
import mmap
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from bank_core.contract import Slot
from bank_core.decide import (
    DRIVER_CRASHED,
    DRIVER_TIMEOUT,
    HANG_GRACE_MS,
    DriverFault,
    Verdict,
)
from bank_core.errors import BankError
from bank_core.registry import BoundDriver, DriverLoadError
from bank_core.server_status import SERVER_MODULE, down_elsewhere, status_dir
from bank_core.wire import ALL_SLOTS, PROTOCOL, decode_verdict, decode_verdict_for_record, encode_context, run_of

MAX_CRASHES = 5  # restarts allowed in CRASH_WINDOW_S; one more marks the server down
CRASH_WINDOW_S = 60.0
DOWN_S = 30.0  # how long a down server's institution is refused before one new start
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 1.0
TICK_S = 0.05  # how often a waiting kernel looks at the server's progress
START_TIMEOUT_S = 60.0  # loading the drivers (imports) on a busy machine
STATUS_EVERY_S = 1.0
LATENCY_WINDOW = 1000  # messages kept for p50/p99
DEFAULT_MEMORY_MB = 1024  # the server's address-space limit (RLIMIT_AS)
ENV_MEMORY_MB = "BANK_POLICY_SERVER_MEMORY_MB"
EXIT_MEMORY = 86  # bank_core.policy_server.EXIT_MEMORY (not imported: the kernel never loads it)


class PolicyServerDown(BankError):
    """An institution's policy server keeps crashing: its requests are refused."""

    code = "policy_server_down"


class _Remote:
    """Stands in, in the kernel, for a driver that lives in a policy server:
    what its class declares, never an instance."""

    __slots__ = ("contract_version", "reads")

    def __init__(self, contract_version: int, reads: frozenset[str]) -> None:
        self.contract_version, self.reads = contract_version, reads


class _Died(Exception):
    def __init__(self, row: int, driver: int) -> None:
        self.row, self.driver = row, driver


class _Hung(_Died):
    pass


def _how(returncode: int | None, memory_mb: int) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    if returncode == EXIT_MEMORY:
        return f"ran out of its memory limit ({memory_mb} MB)"
    return f"exited with status {returncode}"


class PolicyServer:
    """One institution's supervised policy server (see the module doc)."""

    def __init__(self, institution: str, timezone: str, version: int,
                 refs: list[tuple[str, str, dict[str, Any]]], where: Path,
                 bounds: list[BoundDriver]) -> None:
        self.institution, self.timezone, self.version, self.refs = institution, timezone, version, refs
        self.where = where
        self.memory_mb = int(os.environ.get(ENV_MEMORY_MB) or DEFAULT_MEMORY_MB)
        self.lock = threading.RLock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.texts: list[str] = []  # the wire's text table (bank_core.wire): numbers stay valid across restarts
        self.mark: Any = None
        self.bounds = bounds  # the kernel's view of the drivers (from their classes: never called here)
        self.index = {id(b): i for i, b in enumerate(bounds)}
        self.reads = frozenset(r for b in bounds for r in b.driver.reads)  # type: ignore[attr-defined]
        self.row_limit_s = (sum(b.budget_ms for b in bounds) + 2 * HANG_GRACE_MS) / 1000
        self.started = False
        self.crashes: deque[float] = deque()
        self.restarts = 0
        self.messages = 0
        self.rows = 0
        self.latencies_us: deque[int] = deque(maxlen=LATENCY_WINDOW)
        self.started_at = 0.0
        self.first_started_at = time.time()
        self.down_until = 0.0
        self.down_reason = ""
        self.down_until_wall = 0.0
        self.last_status = 0.0
        self.last_fault = ""
        self.stopped_at: float | None = None
        stem = f"{institution}-{os.getpid()}"
        self.status_path = where / f"{stem}.json"
        self.progress_path = where / f"{stem}.progress"
        self.log_path = where / f"{stem}.log"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the server and load the profile's drivers (raises
        ``DriverLoadError`` as inline loading would). Called by the first
        evaluation: a command that decides nothing starts no server."""
        self.where.mkdir(parents=True, exist_ok=True)
        refused = down_elsewhere(self.where, self.institution)
        if refused is not None:  # another kernel process found it keeps crashing
            self.down_reason, self.down_until = refused
            raise self._down()
        self.progress_path.write_bytes(b"\0" * 24)
        with open(self.progress_path, "r+b") as handle:
            self.mark = memoryview(mmap.mmap(handle.fileno(), 24)).cast("q")
        self.started = True
        try:
            self._spawn()
        except BaseException:
            self.started = False  # the next request tries again (and meets the same error)
            raise

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.mark[0] = self.mark[1] = 0
        self.mark[2] = -1
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", SERVER_MODULE, str(theirs.fileno()), str(self.progress_path),
                 str(self.memory_mb)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)  # a Ctrl-C for the kernel is the kernel's to handle
        theirs.close()
        self.sock, self.buffer = ours, bytearray()
        self.started_at = time.time()
        ours.sendall(orjson.dumps({"op": "load", "protocol": PROTOCOL, "institution": self.institution,
                                   "timezone": self.timezone,
                                   "drivers": [list(r) for r in self.refs], "texts": self.texts}) + b"\n")
        try:
            reply = orjson.loads(self._line(START_TIMEOUT_S, watch=False))
        except _Died:
            self._reap()
            raise PolicyServerDown(f"the policy server of {self.institution} did not start "
                                   f"({_how(self.proc.returncode if self.proc else None, self.memory_mb)}; "
                                   f"see {self.log_path})") from None
        if type(reply) is not dict or reply.get("protocol") != PROTOCOL:  # the handshake
            self._kill()
            theirs = reply.get("protocol") if type(reply) is dict else None
            raise PolicyServerDown(f"the policy server of {self.institution} speaks wire protocol {theirs!r}, "
                                   f"this kernel {PROTOCOL}: is the same bank-engine installed for both?")
        if not reply.get("ok"):
            self._reap()
            e = reply["error"]
            raise DriverLoadError(e["slot"], e["name"], e["cause"], e["distribution"], e["stage"])
        self._adopt(reply["drivers"])
        self._status(force=True)

    def _adopt(self, described: list[list[Any]]) -> None:
        """The server must have loaded the drivers the kernel expects (the
        same distributions, budgets and contract versions)."""
        expected = [[str(b.slot), b.name, b.distribution, b.budget_ms, b.driver.contract_version,  # type: ignore[attr-defined]
                     sorted(b.driver.reads)] for b in self.bounds]  # type: ignore[attr-defined]
        if described != expected:
            self._kill()
            raise PolicyServerDown(f"the policy server of {self.institution} loaded other drivers than "
                                   f"the kernel expects ({described} != {expected}): is the same "
                                   "environment installed for both?")

    def drivers(self) -> dict[Slot, list[BoundDriver]]:
        return {slot: [b for b in self.bounds if b.slot is slot] for slot in Slot}

    def _reap(self) -> int | None:
        proc = self.proc
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if proc is None:
            return None
        try:
            return proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def stop(self) -> None:
        with self.lock:
            if not self.started:
                return
            if self.sock is not None:
                self.sock.close()  # the server reads EOF and exits
                self.sock = None
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.stopped_at = time.time()
            self._status(force=True)  # kept a while for `bank plugins status --all`
            try:
                self.progress_path.unlink()
            except FileNotFoundError:
                pass
            try:
                if self.log_path.stat().st_size == 0:
                    self.log_path.unlink()  # a log is kept only when a server said something
            except FileNotFoundError:
                pass

    def _restart(self, what: str) -> None:
        """Count a crash, back off, start again; or mark the server down."""
        now = time.monotonic()
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > CRASH_WINDOW_S:
            self.crashes.popleft()
        self.restarts += 1
        self.last_fault = what
        if len(self.crashes) > MAX_CRASHES:
            self.down_until = now + DOWN_S
            self.down_until_wall = time.time() + DOWN_S
            self.down_reason = (f"its policy server failed {len(self.crashes)} times in "
                                f"{int(CRASH_WINDOW_S)} s (last: {what})")
            self._status(force=True)
            raise self._down()
        if len(self.crashes) > 1:
            time.sleep(min(BACKOFF_FIRST_S * 2 ** (len(self.crashes) - 2), BACKOFF_MAX_S))
        self._spawn()

    def _down(self) -> PolicyServerDown:
        return PolicyServerDown(f"transactions of {self.institution} are refused: {self.down_reason}; "
                                f"nothing of this request was written; retry in "
                                f"{max(1, int(self.down_until - time.monotonic()) + 1)} s")

    # ------------------------------------------------------------ the wire

    def _line(self, timeout_s: float, watch: bool = True) -> bytes:
        """The next line from the server; ``_Died`` if it closed, ``_Hung``
        if a row made no progress for ``row_limit_s``."""
        sock, buffer, mark = self.sock, self.buffer, self.mark
        assert sock is not None
        seen, since = (mark[0], mark[1], mark[2]), time.monotonic()
        while True:
            end = buffer.find(b"\n")
            if end >= 0:
                line = bytes(buffer[:end])
                del buffer[:end + 1]
                return line
            ready, _, _ = select.select([sock], [], [], TICK_S)
            if ready:
                try:
                    got = sock.recv(1 << 20)
                except OSError:
                    got = b""
                if not got:
                    raise _Died(mark[1], mark[2])
                buffer += got
                continue
            now = time.monotonic()
            progress = (mark[0], mark[1], mark[2])
            if progress != seen:
                seen, since = progress, now
            elif now - since > (timeout_s if not watch else self.row_limit_s):
                if self.proc is not None and self.proc.poll() is not None:
                    raise _Died(mark[1], mark[2])
                raise _Hung(mark[1], mark[2])

    def _call(self, contexts: list[Any]) -> list[Any]:
        sock = self.sock
        if sock is None:
            raise _Died(0, -1)
        started = time.perf_counter_ns()
        self.mark[1], self.mark[2] = 0, -1  # until the server reads it, a death is on row 0
        try:
            sock.sendall(orjson.dumps(["e", contexts]) + b"\n")
        except OSError:
            raise _Died(0, -1) from None
        reply = orjson.loads(self._line(0.0))
        if reply[2]:
            self.texts += reply[2]
        self.messages += 1
        self.rows += len(contexts)
        self.latencies_us.append((time.perf_counter_ns() - started) // 1000)
        self._status()
        return reply[1]

    # ------------------------------------------------------------ evaluation

    def evaluate(self, contexts: list[Any], first_drivers: list[int]) -> list[Any]:
        """Wire verdicts for ``contexts`` (wire contexts), or a kernel-made
        :class:`Verdict` for a row that hung or crashed the server.
        ``first_drivers[i]``: the driver a row's fault is put on when the
        server could not say which one ran."""
        with self.lock:
            if self.down_until:
                if time.monotonic() < self.down_until:
                    raise self._down()
                self.down_until, self.crashes = 0.0, deque()
                self._spawn()  # one new start: the half-open try
            elif not self.started:
                self.start()
            results: list[Any] = [None] * len(contexts)
            todo = list(range(len(contexts)))
            while todo:
                try:
                    for row, answer in zip(todo, self._call([contexts[i] for i in todo])):
                        results[row] = answer
                    break
                except _Hung as hung:
                    row = todo[hung.row] if hung.row < len(todo) else todo[0]
                    self._kill()
                    driver = hung.driver if hung.driver >= 0 else first_drivers[row]
                    results[row] = self._fault(DRIVER_TIMEOUT, driver,
                                               f"did not return within {int(self.row_limit_s * 1000)} ms "
                                               "(stuck outside Python: the policy server was killed and restarted)")
                    self._restart(f"{self.bounds[driver].name} stuck; killed")
                    todo.remove(row)
                except _Died as died:
                    row = todo[died.row] if died.row < len(todo) else todo[0]
                    how = _how(self._reap(), self.memory_mb)
                    self._restart(f"{how}")
                    results[row] = self._alone(contexts[row], first_drivers[row])
                    todo.remove(row)
            return results

    def _alone(self, context: Any, first_driver: int) -> Any:
        """Run once more, alone, the row a server died on: a second death is
        the driver's (``driver_crashed``); an answer means it was killed from outside."""
        try:
            return self._call([context])[0]
        except _Hung as hung:
            self._kill()
            driver = hung.driver if hung.driver >= 0 else first_driver
            self._restart(f"{self.bounds[driver].name} stuck; killed")
            return self._fault(DRIVER_TIMEOUT, driver, f"did not return within {int(self.row_limit_s * 1000)} ms "
                                                       "(the policy server was killed and restarted)")
        except _Died as died:
            how = _how(self._reap(), self.memory_mb)
            driver = died.driver if died.driver >= 0 else first_driver
            verdict = self._fault(DRIVER_CRASHED, driver, f"crashed the policy server ({how}); "
                                                          "the server was restarted")
            self._restart(f"{self.bounds[driver].name} {how}")
            return verdict

    def _fault(self, code: str, driver: int, message: str) -> Verdict:
        bound = self.bounds[driver]
        return Verdict("rejected", code, fault=DriverFault(code, bound, f"{bound.name} {message}"))

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self._reap()

    # ------------------------------------------------------------ health

    def status(self) -> dict[str, Any]:
        lat = sorted(self.latencies_us)
        return {
            "institution": self.institution, "pid": self.proc.pid if self.proc else None,
            "kernel_pid": os.getpid(), "profile_version": self.version, "protocol": PROTOCOL,
            "started_at": self.started_at, "first_started_at": self.first_started_at,
            "restarts": self.restarts, "messages": self.messages, "rows": self.rows,
            "p50_us": lat[len(lat) // 2] if lat else None,
            "p99_us": lat[min(len(lat) - 1, len(lat) * 99 // 100)] if lat else None,
            "down": bool(self.down_until), "down_reason": self.down_reason or None,
            "down_until": self.down_until_wall or None,
            "last_fault": self.last_fault or None, "memory_limit_mb": self.memory_mb,
            "stopped_at": self.stopped_at,
            "written_at": time.time(),
        }

    def _status(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_status < STATUS_EVERY_S:
            return
        self.last_status = now
        try:
            temporary = self.status_path.with_suffix(".tmp")
            temporary.write_bytes(orjson.dumps(self.status()))
            os.replace(temporary, self.status_path)
        except OSError:
            pass  # health reporting never stops a transaction


class RemoteEvaluator:
    """The evaluator of a process-isolated institution (see the module doc)."""

    def __init__(self, server: PolicyServer) -> None:
        self.server = server
        self._first = {slot: next((i for i, b in enumerate(server.bounds) if b.slot is slot), 0)
                       for slot in Slot}

    def _run(self, drivers: Mapping[Slot, Sequence[BoundDriver]], skip_fees: bool,
             slots: Sequence[Slot]) -> tuple[Any, int]:
        index = self.server.index
        chosen = [index[id(b)] for s in Slot for b in drivers.get(s, ())]
        only = None if len(chosen) == len(index) else chosen
        first = next((index[id(b)] for s in slots for b in drivers.get(s, ())), 0)
        return run_of(skip_fees, slots, only), first

    def evaluate(self, drivers: Mapping[Slot, Sequence[BoundDriver]], ctx: Any, *,
                 skip_fees: bool = False, slots: Sequence[Slot] = ALL_SLOTS) -> Verdict:
        run, first = self._run(drivers, skip_fees, slots)
        (answer,) = self.server.evaluate([encode_context(ctx, run)], [first])
        return answer if type(answer) is Verdict else \
            decode_verdict(answer, self.server.bounds, ctx.request.amount.currency, self.server.texts)

    def evaluate_many(self, drivers: Mapping[Slot, Sequence[BoundDriver]], contexts: list[Any]) -> list[Verdict]:
        """Every slot for each of ``contexts`` (independent rows), in one
        message. For ``txn process``, which records them: their answers stay
        wire data until read (``bank_core.wire.WireVerdict``)."""
        if not contexts:
            return []
        run, first = self._run(drivers, False, ALL_SLOTS)
        answers = self.server.evaluate([encode_context(ctx, run) for ctx in contexts], [first] * len(contexts))
        bounds, texts = self.server.bounds, self.server.texts
        return [a if type(a) is Verdict else decode_verdict_for_record(a, bounds, ctx.request.amount.currency, texts)
                for a, ctx in zip(answers, contexts)]


    def evaluate_wire(self, drivers: Mapping[Slot, Sequence[BoundDriver]], contexts: list[list[Any]],
                      currencies: list[str]) -> list[Verdict]:
        """:meth:`evaluate_many` for contexts the kernel made as wire data
        (``bank_core.chunk.Chunk.wire_context``; their ``run`` is set here)."""
        if not contexts:
            return []
        run, first = self._run(drivers, False, ALL_SLOTS)
        if run is not None:
            for context in contexts:
                context[0] = run
        answers = self.server.evaluate(contexts, [first] * len(contexts))
        bounds, texts = self.server.bounds, self.server.texts
        return [a if type(a) is Verdict else decode_verdict_for_record(a, bounds, currency, texts)
                for a, currency in zip(answers, currencies)]


class Supervisor:
    """The policy servers of one kernel process, one per institution."""

    def __init__(self, database_url: str) -> None:
        self.where = status_dir(database_url)
        self.servers: dict[str, PolicyServer] = {}
        self.lock = threading.Lock()
        atexit.register(self.stop_all)

    def server(self, institution: str, timezone: str, version: int,
               refs: list[tuple[str, str, dict[str, Any]]], bounds: list[BoundDriver]) -> PolicyServer:
        """The server of ``institution`` for this profile version (a new
        version stops the old server; the new one starts when first asked)."""
        with self.lock:
            found = self.servers.get(institution)
            if found is not None and (found.version, found.refs, found.timezone) == (version, refs, timezone):
                return found
            if found is not None:
                found.stop()
            server = PolicyServer(institution, timezone, version, refs, self.where, bounds)
            self.servers[institution] = server
            return server

    def stop_all(self) -> None:
        with self.lock:
            for server in self.servers.values():
                server.stop()
            self.servers.clear()


def remote_bounds(registry: Any, refs: list[tuple[str, str, dict[str, Any]]]) -> list[BoundDriver]:
    """The kernel's view of a process-isolated profile's drivers: found,
    loaded and validated through the registry (the classes are imported, as
    ``profile apply`` does, to read their declared budget, contract version
    and reads), never instantiated or called in the kernel."""
    from bank_core.contract import READS

    bounds = []
    for slot_name, name, _params in refs:
        slot = Slot(slot_name)
        (loaded,) = registry.load(slot, [name])
        cls = loaded.cls
        reads = READS if cls.contract_version < 2 else frozenset(cls.reads) & READS
        bounds.append(BoundDriver(slot, name, loaded.distribution, _Remote(cls.contract_version, reads),  # type: ignore[arg-type]
                                  cls.budget_ms))
    return bounds
