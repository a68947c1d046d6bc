"""The FastAPI application: routes, errors, body limits, health and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from bank_core.storage import migrate
from bank_http import accounts, batch, oversight, problems, transactions
from bank_http.committer import GroupCommit
from bank_http.keys import KeyStore
from bank_http.limits import BodyLimit

DESCRIPTION = """\
The bank engine's multi-user surface. Every request carries an API key
(`Authorization: Bearer <secret>`, from `bank apikey create`); the key's
institution scopes everything it sees, its role what it may do, and its
name is the acting person on every transaction and audit entry (there is no
`--actor` here). Errors are `application/problem+json` with a stable `code`.
"""


def create_app(service: Any, keys: KeyStore | None = None, *, threads: int | None = None,
               group_commit: bool = True) -> FastAPI:
    """The HTTP adapter over one ``BankService``; ``threads`` bounds the
    worker threads the (synchronous) service calls run in; ``group_commit``
    decides concurrent transactions of an institution together
    (``bank_http.committer``)."""
    committer = GroupCommit(service) if group_commit else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if threads is not None:
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield
        if committer is not None:
            committer.close()

    app = FastAPI(title="bank engine", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.service = service
    app.state.keys = keys or KeyStore(service)
    app.state.committer = committer
    problems.install(app)
    app.add_middleware(BodyLimit)
    for module in (accounts, transactions, batch, oversight):
        app.include_router(module.router)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"], summary="The process is up")
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["health"],
                      summary="Database reachable, schema at head, every institution's drivers load")
    return app


def healthz() -> dict[str, str]:
    return {"status": "ok"}


def readiness(service: Any) -> dict[str, Any]:
    """Each check's verdict; ready only if every one passed."""
    checks: dict[str, Any] = {}
    try:
        service.read(lambda conn: conn.execute(text("SELECT 1")).scalar())
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a probe reports, it never raises
        checks["database"] = f"unreachable ({type(exc).__name__})"
        return {"ready": False, "checks": checks}
    current, head = migrate.current_revision(service.engine), migrate.head_revision()
    checks["schema"] = "ok" if current == head else f"at {current}, head is {head}"
    drivers: dict[str, str] = {}
    for inst in service.institutions():
        try:
            service.read(lambda conn, i=inst["id"]: service.institution(conn, i))
            drivers[inst["id"]] = "ok"
        except Exception as exc:  # noqa: BLE001
            drivers[inst["id"]] = f"not loaded: {' '.join(str(exc).split())[:200]}"
    checks["drivers"] = drivers
    ready = checks["schema"] == "ok" and all(v == "ok" for v in drivers.values())
    return {"ready": ready, "checks": checks}


def readyz(request: Request) -> JSONResponse:
    doc = readiness(request.app.state.service)
    return JSONResponse(doc, status_code=200 if doc["ready"] else 503)
