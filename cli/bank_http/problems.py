"""Errors as ``application/problem+json`` (RFC 9457), one stable ``code`` each.

Every ``code`` is one of the ``bank`` command's exit-code categories (the
README's "Exit codes"), and the document carries that ``exit_code`` too, so
a script that understands one client understands the other:

=============== ========= ===================================================
code            exit code HTTP status
=============== ========= ===================================================
integrity       1         409 (the audit chain does not verify)
usage           2         400 (not JSON, wrong type, unknown or missing field,
                          bad query parameter or header), 404 (no such route),
                          405, 413 (body too large), 415 (body type)
rejected        4         422 (rejected or refused by policy: limits,
                          approval, four-eyes, approve into an overdraft,
                          close with a balance)
invalid         5         400 (a value the kernel refuses: bad amount,
                          currency, profile) or 404 (no such account,
                          transaction or key *in the caller's institution*)
                          or 503 (the institution's drivers do not load)
conflict        6         409 (idempotency key reused with another body,
                          reversing twice, a hold no longer held)
system          7         500 (database unreachable, a bug), 503 (not ready)
unauthenticated none      401 (no, unknown, wrong or revoked API key)
forbidden       none      403 (the key's role may not do this)
=============== ========= ===================================================

(The CLI has no authentication, so the last two have no exit code.) A
problem never carries a traceback, SQL or a secret: an unexpected error is
logged on the server with an id, and the client gets that id.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bank_core.errors import BankError, Conflict, InvalidRequest, NotFound, ProfileError, Refused
from bank_core.registry import DriverLoadError

PROBLEM_JSON = "application/problem+json"
EXIT_CODES: dict[str, int | None] = {
    "integrity": 1, "usage": 2, "rejected": 4, "invalid": 5, "conflict": 6, "system": 7,
    "unauthenticated": None, "forbidden": None,
}
TITLES = {
    "integrity": "The audit chain does not verify",
    "usage": "The request does not fit the API",
    "rejected": "Rejected by policy",
    "invalid": "Not found or invalid input",
    "conflict": "Conflict with the current state",
    "system": "System error",
    "unauthenticated": "Authentication required",
    "forbidden": "Not allowed for this role",
}
# The kernel names the field first ("amount: '10.505' is not ..."); its
# idempotency key is the ``ref`` field, which over HTTP is a header.
_FIELD_PREFIX = re.compile(r"\A([A-Za-z_][A-Za-z0-9_.-]{0,40}): ")
_KERNEL_FIELDS = {"ref": "header.Idempotency-Key", "--reason": "reason", "--as-of": "as_of"}

log = logging.getLogger("bank_http")


class Problem(Exception):
    """An error the adapter answers with on purpose."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field, self.extra = status, code, detail, field, extra


def problem_document(status: int, code: str, detail: str, *, field: str | None = None,
                     **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": f"urn:bank:problem:{code}", "title": TITLES[code], "status": status,
                           "code": code, "exit_code": EXIT_CODES[code], "detail": detail}
    if field is not None:
        doc["field"] = field
    doc.update(extra)
    return doc


def problem_response(status: int, code: str, detail: str, *, field: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(problem_document(status, code, detail, field=field, **extra),
                        status_code=status, media_type=PROBLEM_JSON, headers=headers)


def kernel_field(message: str) -> str | None:
    match = _FIELD_PREFIX.match(message)
    if match is None:
        return None
    return _KERNEL_FIELDS.get(match.group(1), match.group(1))


def from_bank_error(exc: BankError | DriverLoadError) -> JSONResponse:
    message = " ".join(str(exc).split())
    if isinstance(exc, NotFound):
        return problem_response(404, "invalid", message)
    if isinstance(exc, ProfileError):
        return problem_response(400, "invalid", message, problems=exc.problems)
    if isinstance(exc, DriverLoadError):  # the CLI's exit 5 too; but no request of the client's can fix it
        return problem_response(503, "invalid", message)
    if isinstance(exc, InvalidRequest):
        return problem_response(400, "invalid", message, field=kernel_field(message))
    if isinstance(exc, Conflict):
        return problem_response(409, "conflict", message)
    if isinstance(exc, Refused):
        return problem_response(422, "rejected", message)
    return problem_response(500, "system", "unexpected domain error")


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "amount")`` -> ``amount``; ``("query", "limit")`` -> ``query.limit``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation(exc: RequestValidationError) -> JSONResponse:
    errors = []
    for error in exc.errors():
        kind = error.get("type", "")
        field = "body" if kind == "json_invalid" else _field_path(error.get("loc", ()))
        message = "not valid JSON" if kind == "json_invalid" else error.get("msg", "invalid")
        if kind == "extra_forbidden":
            message = "unknown field"
        errors.append({"field": field, "detail": message})
    first = errors[0] if errors else {"field": "body", "detail": "invalid"}
    return problem_response(400, "usage", f"{first['field']}: {first['detail']}", field=first["field"],
                            errors=errors)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, field=exc.field, **exc.extra)

    @app.exception_handler(BankError)
    async def _bank(_request: Request, exc: BankError) -> JSONResponse:
        return from_bank_error(exc)

    @app.exception_handler(DriverLoadError)
    async def _driver(_request: Request, exc: DriverLoadError) -> JSONResponse:
        return from_bank_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request not accepted"
        code = {401: "unauthenticated", 403: "forbidden"}.get(exc.status_code,
                                                              "usage" if exc.status_code < 500 else "system")
        return problem_response(exc.status_code, code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = secrets.token_hex(6)
        log.error("incident %s: %s %s failed", incident, request.method, request.url.path, exc_info=exc)
        return problem_response(500, "system", f"internal error; the server logged it as incident {incident}",
                                incident=incident)
