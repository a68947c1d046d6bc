"""Running the adapter: uvicorn on one loopback (or given) address."""

from __future__ import annotations

import logging
import sys
from typing import Any

import uvicorn

from bank_http.app import create_app

# Worker threads for the synchronous service calls (key lookups, reads,
# holds; transactions wait for their chunk without one). Few: every thread
# more competes for the GIL with the one deciding a chunk, and 8 measured
# better than 32 under 32 clients (bench/http_load.py).
WORKER_THREADS = 8
SWITCH_INTERVAL_S = 0.0005


def serve(service: Any, host: str, port: int, *, access_log: bool = True, group_commit: bool = True,
          log_level: str = "info") -> None:
    """Serve until interrupted (SIGINT/SIGTERM end it cleanly)."""
    # The thread deciding a chunk waits on the database a dozen times per
    # chunk; each time, getting the GIL back from the threads parsing
    # requests took up to the default 5 ms switch interval.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    app = create_app(service, threads=WORKER_THREADS, group_commit=group_commit)
    logging.getLogger("bank_http").setLevel(logging.INFO)
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, log_level=log_level,
                            http="httptools", server_header=False, proxy_headers=False)
    uvicorn.Server(config).run()
