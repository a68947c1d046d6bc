"""Fixtures of the kernel's test suite.

Databases are real: a fresh SQLite file per test, and a fresh PostgreSQL
database per test module (created on the server named by
``BANK_TEST_POSTGRES_URL``, dropped afterwards). Every schema is built by the
real alembic migrations (``bank_wiring.build`` upgrades to head), and every
driver is loaded by the real registry through stevedore from installed entry
points: the test plug-ins live in their own distribution,
``tests/plugins/testkit`` (``pip install -e tests/plugins/testkit``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url

from bank_core.profile import DEFAULT_PROFILE
from bank_core.service import BankService
from bank_wiring import build

PG_ENV = "BANK_TEST_POSTGRES_URL"
PG_SKIP = "PostgreSQL tests need BANK_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test"

# Property tests drive a real database, so no per-example deadline, and a
# modest number of examples keeps the whole suite fast. HYPOTHESIS_PROFILE=thorough
# runs many more.
settings.register_profile(
    "bank", deadline=None, max_examples=25, derandomize=False, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough", parent=settings.get_profile("bank"), max_examples=300,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "bank"))


def pytest_configure(config: pytest.Config) -> None:
    try:
        metadata.distribution("bank-testkit-drivers")
    except metadata.PackageNotFoundError:
        raise pytest.UsageError(
            "the test plug-in distribution is not installed: "
            "pip install -e tests/plugins/testkit") from None


FIRST = ("test_write_ahead.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The write-ahead tests first. Write-ahead forks its writer only from a
    process with no threads but the kernel's own (``bank_core.ahead``), and
    those tests check that it ran in this process; tests of the HTTP adapter
    leave threads behind (AnyIO's idle workers, group-commit threads of apps
    whose lifespan a bare ``TestClient`` never ends), after which this
    process falls back, correctly, to one chunk at a time."""
    items.sort(key=lambda item: item.path.name not in FIRST)


# --------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------

@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A fresh SQLite file (created by the first connection)."""
    return f"sqlite:///{tmp_path / 'bank.db'}"


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------

class PgServer:
    """Creates and drops throw-away databases on the test server."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url.replace("postgres://", "postgresql://", 1))
        self.created: list[str] = []

    def _admin(self):  # type: ignore[no-untyped-def]
        import psycopg

        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(dsn, autocommit=True)

    def create(self) -> str:
        name = f"bank_t_{secrets.token_hex(6)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(PG_SKIP)
    server = PgServer(url)
    yield server
    for name in list(server.created):  # anything a failing test left behind
        server.drop(server.url.set(database=name).render_as_string(hide_password=False))


@pytest.fixture(scope="module")
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh PostgreSQL database for this test module."""
    url = pg_server.create()
    yield url
    pg_server.drop(url)


@pytest.fixture
def fresh_pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh PostgreSQL database for one test."""
    url = pg_server.create()
    yield url
    pg_server.drop(url)


# --------------------------------------------------------------------------
# Either database
# --------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_db_url(request: pytest.FixtureRequest) -> str:
    """Like ``db_url``, but a new database per test on PostgreSQL too."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("fresh_pg_url")


def new_institution_id(prefix: str = "t") -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


def profile_doc(inst: str, **changes: Any) -> dict[str, Any]:
    """The default profile as a new institution ``inst``, with ``changes``."""
    return {**DEFAULT_PROFILE, "id": inst, "name": f"Bank {inst}", **changes}


@pytest.fixture
def inst() -> str:
    """A unique institution id: tests sharing a PostgreSQL database (one per
    module) never see each other's data, which tenancy guarantees."""
    return new_institution_id()


@pytest.fixture
def make_service(db_url: str) -> Iterator[Callable[[], BankService]]:
    """Build further services (as separate clients would) on ``db_url``."""
    built: list[BankService] = []

    def make() -> BankService:
        svc = build(db_url)
        built.append(svc)
        return svc

    yield make
    for svc in built:
        svc.engine.dispose()


@pytest.fixture
def service(make_service: Callable[[], BankService], inst: str) -> BankService:
    """``build(db_url)`` with the default profile applied as institution ``inst``."""
    svc = make_service()
    svc.apply_profile(profile_doc(inst), "setup")
    return svc
