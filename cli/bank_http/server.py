"""Running the adapter: uvicorn on one loopback (or given) address.

One process by default. ``workers`` > 1 starts that many server processes on
the same socket (uvicorn's supervisor); each builds its own service from
``BANK_DATABASE_URL``. On PostgreSQL the institution's advisory lock already
makes their writers take turns; on SQLite they meet the busy timeout.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

from bank_http.app import create_app

# Worker threads for the synchronous service calls (key lookups, reads,
# holds; transactions wait for their chunk without one). Few: every thread
# more competes for the GIL with the one deciding a chunk, and 8 measured
# better than 32 under 32 clients (bench/http_load.py).
WORKER_THREADS = 8
SWITCH_INTERVAL_S = 0.0005
ENV_GROUP_COMMIT = "BANK_HTTP_GROUP_COMMIT"


def _tune() -> None:
    # The thread deciding a chunk waits on the database a dozen times per
    # chunk; each time, getting the GIL back from the threads parsing
    # requests took up to the default 5 ms switch interval.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    logging.getLogger("bank_http").setLevel(logging.INFO)


def app_from_environment() -> FastAPI:
    """The app of one worker process (``workers`` > 1): its own service."""
    from bank_wiring import build

    _tune()
    service = build(os.environ.get("BANK_DATABASE_URL"), upgrade=False)
    return create_app(service, threads=WORKER_THREADS,
                      group_commit=os.environ.get(ENV_GROUP_COMMIT, "1") == "1")


def serve(service: Any, host: str, port: int, *, access_log: bool = True, group_commit: bool = True,
          workers: int = 1, log_level: str = "info") -> None:
    """Serve until interrupted (SIGINT/SIGTERM end it cleanly)."""
    options: dict[str, Any] = {"host": host, "port": port, "access_log": access_log, "log_level": log_level,
                               "http": "httptools", "server_header": False, "proxy_headers": False}
    if workers > 1:
        os.environ["BANK_DATABASE_URL"] = service.engine.url.render_as_string(hide_password=False)
        os.environ[ENV_GROUP_COMMIT] = "1" if group_commit else "0"
        service.engine.dispose()
        uvicorn.run("bank_http.server:app_from_environment", factory=True, workers=workers, **options)
        return
    _tune()
    app = create_app(service, threads=WORKER_THREADS, group_commit=group_commit)
    uvicorn.Server(uvicorn.Config(app, **options)).run()
