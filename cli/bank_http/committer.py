"""Group commit: concurrent single transactions of one institution decided
together, as one chunk of the kernel's batch pipeline.

Writes of one institution take turns anyway (SQLite has one writer;
PostgreSQL writers of an institution queue on its advisory lock), and the
kernel decides a chunk of many requests for little more than the price of
one: its set-based loads and writes, one commit. So while one chunk is being
decided, the requests that arrive meanwhile wait in the institution's queue,
and the next chunk takes all of them (up to ``MAX_GROUP``). Nobody waits for
a timer: a lone request is a chunk of one at once.

This changes no outcome. ``BankService.submit_batch`` has exactly the
semantics of ``submit`` (a rejection or an invalid request is that request's
own outcome and never rolls back its neighbours; later requests of a chunk
see earlier ones, as they would one after the other), and each waiting
request gets its own outcome or its own error back. Only a failure of the
chunk itself (the database gone) fails every request of it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any

from bank_core.messages import TxnRequest, TxnResult

MAX_GROUP = 128
STOP = None


class GroupCommit:
    def __init__(self, service: Any, max_group: int = MAX_GROUP) -> None:
        self.service = service
        self.max_group = max_group
        self._queues: dict[str, SimpleQueue[tuple[TxnRequest, Future[TxnResult]] | None]] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, request: TxnRequest) -> TxnResult:
        """Like ``BankService.submit``: the result, or the request's own error raised."""
        return self.enqueue(request).result()

    def enqueue(self, request: TxnRequest) -> Future[TxnResult]:
        """Queue a request for the next chunk; its future holds the result or its error."""
        request.check_shape()
        future: Future[TxnResult] = Future()
        self._queue_of(request.institution).put((request, future))
        return future

    def close(self, timeout: float = 10) -> None:
        """Finish what is queued, then stop the committers."""
        with self._lock:
            self._closed = True
            for queue in self._queues.values():
                queue.put(STOP)
        for thread in self._threads:
            thread.join(timeout)

    def _queue_of(self, institution: str) -> SimpleQueue[tuple[TxnRequest, Future[TxnResult]] | None]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            queue = self._queues.get(institution)
            if queue is None:
                queue = self._queues[institution] = SimpleQueue()
                thread = threading.Thread(target=self._commit_loop, args=(institution, queue),
                                          name=f"group-commit-{institution}", daemon=True)
                self._threads.append(thread)
                thread.start()
            return queue

    def _commit_loop(self, institution: str,
                     queue: SimpleQueue[tuple[TxnRequest, Future[TxnResult]] | None]) -> None:
        while True:
            first = queue.get()
            if first is STOP:
                return
            group, stopping = [first], False
            while len(group) < self.max_group:
                try:
                    item = queue.get_nowait()
                except Empty:
                    break
                if item is STOP:
                    stopping = True
                    break
                group.append(item)
            self._decide(institution, group)
            if stopping:
                return

    def _decide(self, institution: str, group: list[tuple[TxnRequest, Future[TxnResult]]]) -> None:
        try:
            outcomes = list(self.service.submit_batch(institution, [request for request, _ in group],
                                                      chunk_size=len(group)))
        except BaseException as exc:  # noqa: BLE001 - the chunk failed: every request of it did
            for _, future in group:
                future.set_exception(exc)
            return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if outcome.error is not None:
                future.set_exception(outcome.error)
            else:
                future.set_result(TxnResult.model_validate(outcome.result))
