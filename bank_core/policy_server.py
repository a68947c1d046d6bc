"""A policy server: one institution's drivers in a process of their own.

Started by the kernel's supervisor (``bank_core.supervisor``) as
``python -m bank_core.policy_server FD PROGRESS MEMORY_MB`` with one end of
a Unix socket pair as file descriptor ``FD``. It loads the drivers the load
message names through the same registry (stevedore, the same three steps and
errors) the kernel uses inline, then answers evaluation messages with the
kernel's own evaluator (``bank_core.decide``): the same CPU budgets, the same
in-process watchdog for a driver that sleeps or loops in Python, the same
answer checks and the same runtime I/O guard, here in production. The wire
protocol is ``bank_core.wire``.

What only a process of its own can contain is left to the kernel: a driver
stuck in C code (the kernel kills the server), one that calls ``os._exit``,
segfaults or is killed (the kernel sees the socket close). So that the kernel
knows which row and driver was running, the server writes both into a small
shared file (``PROGRESS``, three 64-bit slots: messages started, row, driver)
before every row and every driver call: no system call, a few nanoseconds.

The address space is limited (``RLIMIT_AS``) to ``MEMORY_MB``: a driver that
allocates past it gets ``MemoryError``; the server then exits with
:data:`EXIT_MEMORY` (a heap that ran out is not trusted further) and the
kernel reports ``driver_crashed``.
"""

from __future__ import annotations

import gc
import mmap
import os
import resource
import socket
import sys
from typing import Any

EXIT_MEMORY = 86  # a driver ran out of the server's address space
EXIT_PROTOCOL = 87  # the kernel spoke a protocol this server does not
PROGRESS_BYTES = 24


class _Tracked:
    """A driver instance that marks itself running before each call."""

    __slots__ = ("real", "index", "mark")

    def __init__(self, real: Any, index: int, mark: Any) -> None:
        self.real, self.index, self.mark = real, index, mark

    @property
    def contract_version(self) -> int:  # (the kernel checks it before it takes a data answer)
        return self.real.contract_version  # type: ignore[no-any-return]

    def fees(self, ctx: Any) -> Any:
        self.mark[2] = self.index
        return self.real.fees(ctx)

    def check(self, ctx: Any) -> Any:
        self.mark[2] = self.index
        return self.real.check(ctx)

    def decide(self, ctx: Any) -> Any:
        self.mark[2] = self.index
        return self.real.decide(ctx)


def _load(message: dict[str, Any], mark: Any) -> tuple[list[Any], dict[str, Any]]:
    from bank_core.contract import READS, Slot
    from bank_core.registry import BoundDriver, DriverLoadError, Registry
    from bank_core.wire import PROTOCOL

    registry = Registry()
    bounds: list[Any] = []
    described: list[Any] = []
    try:
        for index, (slot_name, name, params) in enumerate(message["drivers"]):
            bound = registry.bind(Slot(slot_name), name, params)
            cls = type(bound.driver)
            reads = sorted(READS if cls.contract_version < 2 else set(cls.reads) & READS)
            bounds.append(BoundDriver(bound.slot, bound.name, bound.distribution,
                                      _Tracked(bound.driver, index, mark), bound.budget_ms))  # type: ignore[arg-type]
            described.append([slot_name, name, bound.distribution, bound.budget_ms, cls.contract_version, reads])
    except DriverLoadError as exc:
        return [], {"protocol": PROTOCOL, "ok": False, "error": {
            "slot": exc.slot, "name": exc.name, "cause": exc.cause, "distribution": exc.distribution,
            "stage": exc.stage}}
    return bounds, {"protocol": PROTOCOL, "ok": True, "pid": os.getpid(), "drivers": described}


def serve(sock: socket.socket, mark: Any, memory_mb: int) -> int:
    import orjson

    from bank_core import guard
    from bank_core.contract import Slot
    from bank_core.decide import Evaluator
    from bank_core.wire import LETTER_SLOTS, PROTOCOL, WireTexts, decode_context, encode_verdict

    reader = sock.makefile("rb", buffering=1 << 16)
    line = reader.readline()
    if not line:
        return 0
    hello = orjson.loads(line)
    if type(hello) is not dict or hello.get("protocol") != PROTOCOL:  # the handshake: one version both ends
        theirs = hello.get("protocol") if type(hello) is dict else None
        sock.sendall(orjson.dumps({"protocol": PROTOCOL, "ok": False, "error": {
            "slot": "", "name": "", "cause": f"the kernel speaks wire protocol {theirs!r}, this policy server "
                                             f"{PROTOCOL}", "distribution": None, "stage": "load"}}) + b"\n")
        return EXIT_PROTOCOL
    bounds, reply = _load(hello, mark)
    sock.sendall(orjson.dumps(reply) + b"\n")
    if not reply["ok"]:
        return 0
    institution, timezone = hello["institution"], hello["timezone"]
    index = {id(b): i for i, b in enumerate(bounds)}
    texts = WireTexts(hello.get("texts") or [])  # the kernel's table so far (it outlives a restart)
    every = {slot: [b for b in bounds if b.slot is slot] for slot in Slot}
    runs: dict[Any, tuple[Any, tuple[Any, ...], bool]] = {}
    evaluator = Evaluator()
    guard.install()
    # As `bank txn process` does: what start-up loaded is never garbage, and
    # a message's contexts and answers die young (freed by reference counts):
    # collect the young generation every 100,000 allocations, not every 700.
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        line = reader.readline()
        if not line:
            return 0  # the kernel closed its end: done
        op, contexts = orjson.loads(line)
        if op != "e":
            return EXIT_PROTOCOL
        mark[0] += 1
        answers = []
        for row, w in enumerate(contexts):
            mark[1] = row
            mark[2] = -1
            run = w[0]
            if run is None:
                drivers, slots, skip = every, (Slot.FEE, Slot.LIMIT, Slot.APPROVAL), False
            else:
                key = (run[0], run[1], tuple(run[2]) if run[2] is not None else None)
                found = runs.get(key)
                if found is None:
                    chosen = bounds if run[2] is None else [bounds[i] for i in run[2]]
                    found = runs[key] = ({s: [b for b in chosen if b.slot is s] for s in Slot},
                                         tuple(LETTER_SLOTS[c] for c in run[1]), run[0])
                drivers, slots, skip = found
            ctx = decode_context(w, institution, timezone)
            verdict = evaluator.evaluate(drivers, ctx, skip_fees=skip, slots=slots)
            if verdict.fault is not None and isinstance(verdict.fault.__cause__, MemoryError):
                os._exit(EXIT_MEMORY)
            try:
                answers.append(encode_verdict(verdict, index, w[3], texts))
            except UnicodeError:
                answers.append(_unsendable(verdict, index))
        fresh = texts.take()
        try:
            payload = orjson.dumps(["a", answers, fresh])
        except (TypeError, orjson.JSONEncodeError):
            payload = orjson.dumps(["a", [_safe(a) for a in answers], fresh])
        sock.sendall(payload + b"\n")


UNSENDABLE = "the answer cannot be sent to the kernel (an integer past 64 bits or text that is not Unicode)"


def _safe(answer: list[Any]) -> list[Any]:
    """An answer that cannot go on the wire (an int past 64 bits, text that
    is not Unicode) is the driver's bad answer."""
    import orjson

    try:
        orjson.dumps(answer)
        return answer
    except (TypeError, orjson.JSONEncodeError):
        driver = answer[2][-1][0] if answer[2] else 0
        return ["rejected", "driver_bad_answer", [], [driver, "driver_bad_answer", UNSENDABLE]]


def _unsendable(verdict: Any, index: dict[int, int]) -> list[Any]:
    """The verdict one of whose texts (a rule, a template, a fee memo) is
    not Unicode: the bad answer of the first driver that gave such a text."""
    def sendable(text: Any) -> bool:
        try:
            str(text).encode()
            return True
        except UnicodeError:
            return False

    driver = 0
    for bound, answer in verdict.answers:
        if type(answer) is tuple:  # a data answer (contract version 3)
            from bank_core.contract import read_answer
            answer = read_answer(answer, verdict.currency)
        texts = [answer.rule, getattr(answer.message, "template", "")]
        texts += [t for line in getattr(answer, "lines", ()) for t in (line.rule, line.memo)]
        if not all(sendable(t) for t in texts):
            driver = index[id(bound)]
            break
    return ["rejected", "driver_bad_answer", [], [driver, "driver_bad_answer", UNSENDABLE]]


def main(argv: list[str]) -> int:
    fd, progress, memory_mb = int(argv[1]), argv[2], int(argv[3])
    sock = socket.socket(fileno=fd)
    with open(progress, "r+b") as handle:
        shared = mmap.mmap(handle.fileno(), PROGRESS_BYTES)
    mark = memoryview(shared).cast("q")
    try:
        return serve(sock, mark, memory_mb)
    except (BrokenPipeError, ConnectionResetError):
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
