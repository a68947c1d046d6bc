"""Running the adapter: uvicorn on one loopback (or given) address."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from bank_http.app import create_app

# SQLite serialises writers anyway and PostgreSQL writers of one institution
# queue on its advisory lock; this many threads keep every core busy while
# requests wait for the database, and bound the connections one server holds.
WORKER_THREADS = 32


def serve(service: Any, host: str, port: int, *, access_log: bool = True,
          log_level: str = "info") -> None:
    """Serve until interrupted (SIGINT/SIGTERM end it cleanly)."""
    app = create_app(service, threads=WORKER_THREADS)
    logging.getLogger("bank_http").setLevel(logging.INFO)
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, log_level=log_level,
                            http="httptools", server_header=False, proxy_headers=False)
    uvicorn.Server(config).run()
