"""API keys: ``bank apikey create/list/revoke``, secrets stored only as a slow
salted hash, and 401 for a missing, malformed, unknown, wrong or revoked key."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from bank_http.keys import hash_secret, secret_matches
from cli_support import Cli
from http_support import NW, Bank, assert_problem, bank_on


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[Bank]:
    with bank_on(f"sqlite:///{tmp_path / 'bank.db'}") as b:
        yield b


@pytest.fixture
def cli(bank: Bank, tmp_path: Path) -> Cli:
    return Cli(bank.url, tmp_path / "config", actor="operator")


def get_accounts(bank: Bank, authorization: str | None) -> object:
    headers = {} if authorization is None else {"Authorization": authorization}
    return bank.client.get("/v1/accounts", headers=headers)  # type: ignore[union-attr]


def test_without_a_good_key_every_route_is_401(bank: Bank) -> None:
    good = bank.secrets[(NW, "teller")]
    key_id, _, tail = good.partition(".")
    wrong_secret = f"{key_id}.{'A' * len(tail)}"
    for authorization in (None, "", f"Basic {good}", "Bearer", "Bearer not-a-key",
                          "Bearer key_00000000deadbeef.abcdef", f"Bearer {wrong_secret}", f"Bearer {good}x"):
        r = get_accounts(bank, authorization)
        doc = assert_problem(r, 401, "unauthenticated")  # type: ignore[arg-type]
        assert doc["exit_code"] is None
        assert r.headers["www-authenticate"].startswith("Bearer")  # type: ignore[attr-defined]
    assert get_accounts(bank, f"Bearer {good}").status_code == 200  # type: ignore[attr-defined]
    for method, path in (("POST", "/v1/transactions"), ("GET", "/v1/audit/verify"), ("PUT", "/v1/profile"),
                         ("POST", "/v1/transactions:batch"), ("POST", "/v1/apikeys")):
        assert_problem(bank.client.request(method, path), 401, "unauthenticated")  # type: ignore[union-attr]


def test_a_revoked_key_is_refused_at_once_even_after_it_was_verified(bank: Bank, cli: Cli) -> None:
    secret = bank.secrets[(NW, "teller")]
    assert get_accounts(bank, f"Bearer {secret}").status_code == 200  # type: ignore[attr-defined]
    key_id = bank.key_ids[(NW, "teller")]
    doc = cli.json("apikey", "revoke", key_id)  # another process would do the same: the server reads it
    assert doc["status"] == "revoked" and doc["revoked_by"] == "operator"
    assert_problem(get_accounts(bank, f"Bearer {secret}"), 401, "unauthenticated")  # type: ignore[arg-type]
    again = cli("apikey", "revoke", key_id)
    assert again.exit_code == 6 and "already revoked" in again.stderr


def test_cli_create_prints_the_secret_once_and_stores_only_a_scrypt_hash(bank: Bank, cli: Cli, tmp_path: Path) -> None:
    created = cli("apikey", "create", "--institution", NW, "--role", "auditor", "--name", "carol", expect=0)
    secret = created.stdout.strip()
    assert secret.startswith("key_") and "." in secret and len(created.stdout.splitlines()) == 1
    key_id = secret.split(".")[0]
    assert key_id in created.stderr and "only this once" in created.stderr
    r = bank.client.get("/v1/audit/verify", headers={"Authorization": f"Bearer {secret}"})  # type: ignore[union-attr]
    assert r.status_code == 200 and r.json()["ok"] is True
    listed = cli("apikey", "list", "--institution", NW, expect=0)
    assert key_id in listed.stdout and secret not in listed.stdout
    docs = cli.json("apikey", "list")["keys"]
    mine = next(d for d in docs if d["id"] == key_id)
    assert mine == {**mine, "role": "auditor", "name": "carol", "institution": NW, "status": "active",
                    "created_by": "operator"}
    assert not any("secret" in d or "secret_hash" in d for d in docs)
    db = Path(bank.url.removeprefix("sqlite:///"))
    with closing(sqlite3.connect(db)) as conn:
        stored = conn.execute("SELECT secret_hash FROM api_key WHERE id = ?", (key_id,)).fetchone()[0]
    assert stored.startswith("scrypt$16384$8$1$") and secret not in stored
    assert secret_matches(secret, stored) and not secret_matches(secret + "x", stored)
    raw = b"".join(p.read_bytes() for p in db.parent.glob("bank.db*"))
    assert secret.encode() not in raw and secret.split(".")[1].encode() not in raw
    # the audit chain records the key, never its secret
    log = bank.call(NW, "auditor", "GET", "/v1/audit/log", params={"limit": 200}).json()["entries"]
    entry = next(e for e in log if e["subject"] == key_id)
    assert entry["action"] == "apikey.created" and entry["actor"] == "operator"
    assert entry["payload"] == {"name": "carol", "role": "auditor"} and secret not in json.dumps(log)


def test_cli_refuses_bad_roles_names_and_institutions(cli: Cli) -> None:
    assert cli("apikey", "create", "--institution", NW, "--role", "root", "--name", "x").exit_code == 5
    assert cli("apikey", "create", "--institution", NW, "--role", "teller", "--name", " ").exit_code == 5
    missing = cli("apikey", "create", "--institution", "nobank", "--role", "teller", "--name", "x")
    assert missing.exit_code == 5 and "nobank" in missing.stderr
    assert cli("apikey", "revoke", "key_00000000deadbeef").exit_code == 5


def test_hashes_are_salted(bank: Bank) -> None:
    assert hash_secret("same") != hash_secret("same")


def test_an_admin_manages_its_institutions_keys_over_http(bank: Bank) -> None:
    r = bank.call(NW, "admin", "POST", "/v1/apikeys", json={"name": "dave", "role": "supervisor"})
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created.pop("secret")
    assert created["institution"] == NW and created["status"] == "active"
    ok = bank.client.get("/v1/accounts", headers={"Authorization": f"Bearer {secret}"})  # type: ignore[union-attr]
    assert ok.status_code == 200
    listed = bank.call(NW, "admin", "GET", "/v1/apikeys").json()["keys"]
    assert created["id"] in {k["id"] for k in listed} and secret not in json.dumps(listed)
    revoked = bank.call(NW, "admin", "POST", f"/v1/apikeys/{created['id']}:revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == f"{NW}-admin"
    gone = bank.client.get("/v1/accounts", headers={"Authorization": f"Bearer {secret}"})  # type: ignore[union-attr]
    assert_problem(gone, 401, "unauthenticated")
    bad = bank.call(NW, "admin", "POST", "/v1/apikeys", json={"name": "eve", "role": "root"})
    assert assert_problem(bad, 400, "invalid", "root")["field"] == "role"
