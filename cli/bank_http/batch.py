"""``POST /v1/transactions:batch``: a JSONL or CSV body, processed like
``bank txn process``.

The same readers (``bank_core.batchfile.read_rows``), the same service call
(``submit_batch``, a database transaction per chunk), the same result line
per input row (``result_line``), written the way ``bank txn process --out``
writes them: the response body is byte for byte that results file. Every
row carries its own ``ref``, so a retried batch posts nothing twice.
"""

from __future__ import annotations

import io
import json
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bank_core.batchfile import FileFormatError, RowError, read_rows, result_line
from bank_core.messages import TxnRequest
from bank_http.auth import allowed
from bank_http.keys import Caller
from bank_http.problems import Problem

router = APIRouter(tags=["transactions"])

NDJSON = "application/x-ndjson"
MEDIA_FORMATS = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl",
                 "application/x-jsonlines": "jsonl", "application/jsonlines": "jsonl"}


def result_lines(service: Any, institution: str, rows: Iterator[tuple[int, TxnRequest | RowError]],
                 dry_run: bool) -> Iterator[dict[str, Any]]:
    """Result documents in input order: row errors interleaved with outcomes
    (as ``bank txn process`` interleaves them)."""
    pending: deque[tuple[int, TxnRequest | RowError]] = deque()

    def requests() -> Iterator[TxnRequest]:
        for line, item in rows:
            pending.append((line, item))
            if isinstance(item, TxnRequest):
                yield item

    for outcome in service.submit_batch(institution, requests(), dry_run=dry_run):
        while True:
            line, item = pending.popleft()
            if isinstance(item, RowError):
                yield result_line(line, item.ref, None, item)
                continue
            yield result_line(line, item.ref, outcome, None)
            break
    while pending:
        line, item = pending.popleft()
        yield result_line(line, getattr(item, "ref", None), None, item if isinstance(item, RowError) else None)


def body_format(request: Request, given: str | None) -> str:
    if given is not None:
        return given
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in MEDIA_FORMATS:
        return MEDIA_FORMATS[media]
    raise Problem(415, "usage", f"header.Content-Type: {media or 'none'!r} is not text/csv or "
                  "application/x-ndjson (or pass ?format=csv|jsonl)", field="header.Content-Type")


@router.post("/v1/transactions:batch", summary="Process a JSONL or CSV body like `bank txn process`",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-ndjson": {"schema": {"type": "string"}},
                 "text/csv": {"schema": {"type": "string"}}}}},
             responses={200: {"description": "one JSON result line per input row",
                              "content": {NDJSON: {}}}})
async def batch(request: Request,
                fmt: str | None = Query(None, alias="format", pattern="^(csv|jsonl)$"),
                dry_run: bool = Query(False, description="evaluate every row as if posted; write nothing"),
                who: Caller = Depends(allowed("submit"))) -> Response:
    kind = body_format(request, fmt)
    raw = await request.body()  # bounded by the body limit (bank_http.limits)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Problem(400, "invalid", f"body: not UTF-8 text ({exc.reason} at byte {exc.start})",
                      field="body") from None
    body, counts = await run_in_threadpool(_process, request.app.state.service, who, text, kind, dry_run)
    headers = {f"Bank-Rows-{status.title()}": str(counts.get(status, 0))
               for status in ("posted", "held", "rejected", "invalid")}
    return Response(body, media_type=NDJSON, headers=headers)


def _process(service: Any, who: Caller, text: str, kind: str, dry_run: bool) -> tuple[str, Counter[str]]:
    handle = io.StringIO(text, newline="")  # as `bank txn process` opens its file
    counts: Counter[str] = Counter()
    out = []
    try:
        for doc in result_lines(service, who.institution, read_rows(handle, kind, who.institution, who.name),
                                dry_run):
            counts[doc["status"]] += 1
            out.append(json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n")
    except FileFormatError as exc:
        raise Problem(400, "invalid", str(exc), field="body") from None
    return "".join(out), counts
