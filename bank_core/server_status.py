"""Where policy servers' state lives between short-lived commands.

Each supervisor (``bank_core.supervisor``) writes one small JSON file per
policy server into :func:`status_dir` (one folder per database): at every
start, restart, down and stop, and at most once a second while it serves.
``bank plugins status`` reads them here, never the database: it lists only
servers whose process is alive now (and is a policy server: not a zombie,
not a reused pid), with their memory read from ``/proc`` at that moment.
A server marked down is refused by every kernel process on the machine
until its down time is over (:func:`down_elsewhere`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

KEEP_STOPPED_S = 24 * 3600  # a stopped server's last state, for `bank plugins status --all`
ENV_RUN_DIR = "BANK_RUN_DIR"
SERVER_MODULE = "bank_core.policy_server"


def database_key(url: str) -> str:
    """What names a database in :func:`status_dir`: its resolved URL, password hidden."""
    from sqlalchemy.engine import make_url

    from bank_core.storage.engine import resolve_url

    return make_url(resolve_url(url)).render_as_string(hide_password=True)


def status_dir(database_url: str) -> Path:
    """Where the policy servers of one database write their state:
    ``$BANK_RUN_DIR`` or ``$XDG_RUNTIME_DIR/bank`` (else the temp dir), then
    ``policy-servers/<hash of the database URL>``."""
    base = os.environ.get(ENV_RUN_DIR) or os.path.join(
        os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir(), f"bank-{os.getuid()}")
    return Path(base) / "policy-servers" / hashlib.sha256(database_url.encode()).hexdigest()[:16]


def down_elsewhere(where: Path, institution: str) -> tuple[str, float] | None:
    """(reason, monotonic deadline) if a server of ``institution`` was
    marked down by any kernel process less than :data:`DOWN_S` ago: its
    requests are refused here too until then (then one new start is tried)."""
    now = time.time()
    for path in where.glob(f"{institution}-*.json"):
        try:
            state = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        until = state.get("down_until") or 0
        if state.get("institution") == institution and state.get("down") and until > now:
            return state.get("down_reason") or "its policy server keeps crashing", time.monotonic() + until - now
    return None


def read_status(database_url: str, include_stopped: bool = False) -> list[dict[str, Any]]:
    """The policy servers of ``database_url`` running now on this machine:
    each status file whose server process is alive (and is a policy server),
    with its memory (resident set) read from the OS; with ``include_stopped``
    also those stopped (or whose kernel died) in the last
    :data:`KEEP_STOPPED_S`. Older files are removed."""
    where = status_dir(database_url)
    found: list[dict[str, Any]] = []
    now = time.time()
    for path in sorted(where.glob("*.json")) if where.is_dir() else []:
        try:
            state = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        pid = state.get("pid")
        memory_kb = _alive_server_memory_kb(pid) if isinstance(pid, int) and not state.get("stopped_at") else None
        state["rss_kb"] = memory_kb
        state["running"] = memory_kb is not None
        if not state["running"]:
            if now - (state.get("stopped_at") or state.get("written_at") or 0) > KEEP_STOPPED_S and \
                    not _alive(state.get("kernel_pid")):
                for stale in (path, path.with_suffix(".progress"), path.with_suffix(".log")):
                    try:
                        stale.unlink()
                    except OSError:
                        pass
                continue
            if not include_stopped and not state.get("down"):
                continue
        found.append(state)
    return sorted(found, key=lambda state: state.get("first_started_at") or 0)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive_server_memory_kb(pid: int) -> int | None:
    """The resident set of process ``pid`` in KiB if it is a running policy
    server (not a zombie, not a reused pid), else None."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    if SERVER_MODULE.encode() not in cmdline:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("State", "").strip().startswith("Z"):
        return None
    rss = fields.get("VmRSS", "").split()
    return int(rss[0]) if rss else None
