"""Helpers of the HTTP adapter's tests (tests/test_http_*.py).

``Bank`` is one real database (SQLite file or PostgreSQL) with Northwind
and Harbor applied from their installed profiles, and one real API key per
role in each (plus a second supervisor), created through ``KeyStore`` as
``bank apikey create`` creates them. ``Bank.client`` is the in-process test
client of the real app; ``served`` starts a real ``bank serve`` subprocess on
a free loopback port.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from bank_core.profile import read_toml
from bank_http.app import create_app
from bank_http.keys import KeyStore
from bank_wiring import build
from cli_support import BANK_VARS, bank_executable, profile_file

NW, HB = "northwind", "harbor"
ROLES = ("teller", "supervisor", "auditor", "admin")
PROBLEM_JSON = "application/problem+json"


@dataclass
class Bank:
    url: str
    service: Any = None
    keys: KeyStore | None = None
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)
    key_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    client: TestClient | None = None

    def setup(self) -> Bank:
        self.service = build(self.url)
        for package in ("northwind_policies", "harbor_policies"):
            self.service.apply_profile(read_toml(profile_file(package)), "setup")
        self.keys = KeyStore(self.service)
        for inst in (NW, HB):
            for role in ROLES:
                self.add_key(inst, role, f"{inst}-{role}")
            self.add_key(inst, "supervisor", f"{inst}-supervisor-2", label="supervisor2")
        self.client = TestClient(create_app(self.service, self.keys), raise_server_exceptions=False)
        return self

    def add_key(self, inst: str, role: str, name: str, label: str | None = None) -> str:
        assert self.keys is not None
        doc, secret = self.keys.create(inst, role=role, name=name, actor="setup")
        self.secrets[(inst, label or role)] = secret
        self.key_ids[(inst, label or role)] = doc["id"]
        return secret

    def close(self) -> None:
        if self.client is not None:
            committer = getattr(self.client.app.state, "committer", None)
            if committer is not None:  # its threads end here (the client never ran the app's lifespan)
                committer.close()
            self.client.close()
        if self.service is not None:
            self.service.engine.dispose()

    def auth(self, inst: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[(inst, role)]}"}

    def call(self, inst: str, role: str, method: str, path: str, *, key: str | None = None,
             headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        assert self.client is not None
        full = {**self.auth(inst, role), **({"Idempotency-Key": key} if key else {}), **(headers or {})}
        return self.client.request(method, path, headers=full, **kw)

    # Small builders through the API ------------------------------------------------

    def open(self, inst: str, holder: str = "Ada", **body: Any) -> str:
        r = self.call(inst, "teller", "POST", "/v1/accounts", json={"holder": holder, **body})
        assert r.status_code == 201, r.text
        return r.json()["id"]  # type: ignore[no-any-return]

    def submit(self, inst: str, key: str, role: str = "teller", expect: int | None = None,
               **body: Any) -> httpx.Response:
        r = self.call(inst, role, "POST", "/v1/transactions", key=key, json=body)
        if expect is not None:
            assert r.status_code == expect, r.text
        return r

    def deposit(self, inst: str, account: str, amount: str, key: str) -> dict[str, Any]:
        return self.submit(inst, key, expect=201, type="deposit", to=account, amount=amount).json()  # type: ignore[no-any-return]


@contextmanager
def bank_on(url: str) -> Iterator[Bank]:
    bank = Bank(url).setup()
    try:
        yield bank
    finally:
        bank.close()


def assert_problem(response: httpx.Response, status: int, code: str, *words: str) -> dict[str, Any]:
    """A problem document (RFC 9457) with this status and code, no traceback or SQL."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    doc = response.json()
    assert doc["status"] == status and doc["code"] == code, doc
    assert {"type", "title", "detail", "exit_code"} <= set(doc), doc
    text = response.text
    for banned in ("Traceback", "File \"", "SELECT ", "INSERT ", "sqlalchemy", "psycopg", "sqlite3"):
        assert banned not in text, f"{banned!r} leaked: {text}"
    for word in words:
        assert word in doc["detail"], f"{word!r} not in {doc['detail']!r}"
    return doc  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    base: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def served(db_url: str, workdir: Path, *extra: str) -> Iterator[Served]:
    """A real ``bank serve`` on a free loopback port, stopped afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in BANK_VARS}
    env["BANK_CONFIG_DIR"] = str(workdir / "config")
    log_path = workdir / f"serve-{port}.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen([bank_executable(), "--db", db_url, "serve", "--port", str(port), *extra],
                                   stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    server = Served(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(server.base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, f"bank serve exited:\n{server.log()}"
            assert time.monotonic() < deadline, f"bank serve did not start:\n{server.log()}"
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def lines_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
