"""A bound on every request body: 413 ``usage`` past it, before it is read whole.

A declared ``Content-Length`` over the limit is refused at once; a body
without one (chunked) is counted as it arrives and refused as soon as it
passes the limit. The batch route has a larger bound than the JSON routes.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bank_http.problems import PROBLEM_JSON, problem_document

MAX_JSON_BODY_BYTES = 64 * 1024
MAX_BATCH_BODY_BYTES = 8 * 1024 * 1024
BATCH_SUFFIX = ":batch"


def limit_for(path: str) -> int:
    return MAX_BATCH_BODY_BYTES if path.endswith(BATCH_SUFFIX) else MAX_JSON_BODY_BYTES


def _too_large(limit: int) -> str:
    return f"body: larger than this route's limit of {limit} bytes"


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counted, send)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = json.dumps(problem_document(413, "usage", _too_large(limit), field="body")).encode()
        headers: list[Any] = [(b"content-type", PROBLEM_JSON.encode()),
                              (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
