"""A real ``bank serve`` on a free loopback port, with keys made by the real
``bank apikey`` command: health, readiness, OpenAPI and docs, a day's work
with four-eyes between two keys, a key revoked by another process, problems
over a real socket, and no secret in the server's log. On SQLite and on
PostgreSQL. Also: readiness fails for a schema behind head and for drivers
that no longer load; ``bank --help`` does not load the web framework."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from bank_core.profile import DEFAULT_PROFILE
from bank_core.storage.models import Institution, ProfileVersion
from cli_support import profile_file, run_bank
from http_support import NW, assert_problem, bank_on, served


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bank.db'}"
    return request.getfixturevalue("fresh_pg_url")  # type: ignore[no-any-return]


def bank_cmd(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = run_bank(["--db", url, *args], tmp_path / "config", env={"BANK_ACTOR": "operator"})
    assert done.returncode == 0, done.stderr
    return done


def new_key(url: str, tmp_path: Path, role: str, name: str) -> str:
    return bank_cmd(url, tmp_path, "apikey", "create", "--institution", NW, "--role", role, "--name", name).stdout.strip()


@pytest.fixture
def server(url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], object]]:
    bank_cmd(url, tmp_path, "init")
    bank_cmd(url, tmp_path, "profile", "apply", str(profile_file("northwind_policies")))
    keys = {role: new_key(url, tmp_path, role, f"{role}-person")
            for role in ("teller", "supervisor", "auditor", "admin")}
    keys["supervisor2"] = new_key(url, tmp_path, "supervisor", "second-supervisor")
    with served(url, tmp_path) as srv:
        yield srv.base, keys, srv


def test_a_real_server(server: tuple[str, dict[str, str], object], url: str, tmp_path: Path) -> None:
    base, keys, srv = server
    http = httpx.Client(base_url=base, timeout=30)

    def as_(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[role]}"}

    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["drivers"] == {NW: "ok"}
    spec = http.get("/openapi.json").json()
    assert {"/v1/accounts", "/v1/transactions", "/v1/transactions:batch", "/v1/audit/verify"} <= set(spec["paths"])
    assert http.get("/docs").status_code == 200

    a = http.post("/v1/accounts", json={"holder": "Ada"}, headers=as_("teller")).json()["id"]
    b = http.post("/v1/accounts", json={"holder": "Bo"}, headers=as_("teller")).json()["id"]
    dep = http.post("/v1/transactions", json={"type": "deposit", "to": a, "amount": "9000.00"},
                    headers={**as_("teller"), "Idempotency-Key": "d-1"})
    assert dep.status_code == 201 and dep.json()["balances"][0]["posted"] == "9000.00"
    held = http.post("/v1/transactions", json={"type": "transfer", "from": a, "to": b, "amount": "6000.00"},
                     headers={**as_("supervisor"), "Idempotency-Key": "t-1"})
    assert held.status_code == 202
    txn = held.json()["txn_id"]
    assert_problem(http.post(f"/v1/transactions/{txn}:approve", headers=as_("supervisor")), 422, "rejected", "four-eyes")
    assert_problem(http.post(f"/v1/transactions/{txn}:approve", headers=as_("teller")), 403, "forbidden")
    ok = http.post(f"/v1/transactions/{txn}:approve", headers=as_("supervisor2"))
    assert ok.status_code == 200 and ok.json()["status"] == "posted"
    shown = http.get(f"/v1/transactions/{txn}", headers=as_("auditor")).json()
    assert (shown["initiator"], shown["resolved_by"]) == ("supervisor-person", "second-supervisor")
    verify = http.get("/v1/audit/verify", headers=as_("auditor"))
    assert verify.status_code == 200 and verify.json()["ok"] is True
    csv_text = http.get(f"/v1/accounts/{b}/statement", headers={**as_("teller"), "Accept": "text/csv"}).text
    assert ",6000.00,6000.00,USD," in csv_text.splitlines()[1]  # amount, balance, currency, ref...

    # problems over the real socket
    assert_problem(http.post("/v1/accounts", content=b"{", headers={**as_("teller"), "Content-Type": "application/json"}),
                   400, "usage")
    big = http.post("/v1/accounts", content=b"x" * 100_000, headers={**as_("teller"), "Content-Type": "application/json"})
    assert_problem(big, 413, "usage")
    streamed = httpx.Client(base_url=base, timeout=30).post(
        "/v1/accounts", content=(b"x" * 8192 for _ in range(20)),
        headers={**as_("teller"), "Content-Type": "application/json"})
    assert_problem(streamed, 413, "usage")

    # a key revoked by another process is refused at once
    key_id = keys["supervisor2"].split(".")[0]
    bank_cmd(url, tmp_path, "apikey", "revoke", key_id)
    assert_problem(http.get("/v1/accounts", headers=as_("supervisor2")), 401, "unauthenticated")
    assert http.get("/v1/accounts", headers=as_("teller")).status_code == 200

    log = srv.log()  # type: ignore[attr-defined]
    assert "GET /v1/accounts" in log  # the access log is on
    for secret in keys.values():
        assert secret not in log and secret.split(".")[1] not in log
    assert "Traceback" not in log


def test_readiness_fails_for_a_schema_behind_head_and_drivers_that_do_not_load(tmp_path: Path) -> None:
    from alembic import command

    from bank_core.storage import migrate

    with bank_on(f"sqlite:///{tmp_path / 'bank.db'}") as bank:
        client = bank.client
        assert client is not None and client.get("/readyz").status_code == 200
        # a profile whose driver's package is gone (uninstalled after it was applied)
        document = {**DEFAULT_PROFILE, "id": NW, "name": "Northwind",
                    "approval": [{"driver": "gone.review", "params": {}}]}

        def work(conn: object) -> None:
            conn.execute(ProfileVersion.__table__.insert().values(  # type: ignore[attr-defined]
                institution_id=NW, version=99, document=json.dumps(document), applied_at=datetime(2026, 12, 1, tzinfo=timezone.utc),
                applied_by="test"))
            conn.execute(update(Institution).where(Institution.id == NW).values(profile_version=99))  # type: ignore[attr-defined]

        bank.service.write(work)
        doc = client.get("/readyz")
        assert doc.status_code == 503
        assert doc.json()["checks"]["drivers"]["harbor"] == "ok"
        assert "gone.review" in doc.json()["checks"]["drivers"][NW]
        acc = bank.service.open_account("harbor", holder="Ada").id  # harbor still works
        assert bank.call("harbor", "teller", "GET", f"/v1/accounts/{acc}").status_code == 200
        r = bank.call(NW, "teller", "POST", "/v1/accounts", json={"holder": "Ada"})
        assert assert_problem(r, 503, "invalid", "gone.review")["exit_code"] == 5

        config = migrate.alembic_config()
        with bank.service.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.stamp(config, "0001")
        doc = client.get("/readyz")
        assert doc.status_code == 503 and doc.json()["checks"]["schema"].startswith("at 0001")


def test_bank_help_does_not_load_the_web_framework() -> None:
    code = ("import sys\nfrom bank_cli.main import app\nfrom typer.testing import CliRunner\n"
            "for argv in (['--help'], ['apikey', '--help'], ['serve', '--help']):\n"
            "    assert CliRunner().invoke(app, argv).exit_code == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'uvicorn', 'starlette')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_serve_help_names_its_options(tmp_path: Path) -> None:
    done = run_bank(["serve", "--help"], tmp_path / "config")
    assert done.returncode == 0 and "--host" in done.stdout and "--port" in done.stdout



def test_several_server_processes_share_one_socket(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    bank_cmd(url, tmp_path, "init")
    bank_cmd(url, tmp_path, "profile", "apply", str(profile_file("northwind_policies")))
    teller = new_key(url, tmp_path, "teller", "t")
    with served(url, tmp_path, "--workers", "2") as srv:
        http = httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {teller}"}, timeout=30)
        assert http.get("/readyz").status_code == 200
        acc = http.post("/v1/accounts", json={"holder": "Ada"}).json()["id"]
        for n in range(6):  # spread over both processes by the kernel's accept queue
            r = http.post("/v1/transactions", json={"type": "deposit", "to": acc, "amount": "1.00"},
                          headers={"Idempotency-Key": f"w-{n % 3}"})
            assert r.status_code == 201, r.text
        assert http.get(f"/v1/accounts/{acc}/balance").json()["posted"] == "3.00"
        bank_cmd(url, tmp_path, "apikey", "revoke", teller.split(".")[0])
        for _ in range(4):
            assert_problem(http.get("/v1/accounts"), 401, "unauthenticated")
