"""The composition root: the one place that wires the kernel to the internal
servers. Clients (the CLI today, an HTTP server tomorrow) call ``build``."""

from __future__ import annotations

from sqlalchemy import Engine

import bank_accounts
import bank_audit
from bank_core.registry import Registry
from bank_core.service import BankService
from bank_core.storage import migrate
from bank_core.storage.base import Base
from bank_core.storage.engine import make_engine

__all__ = ["build", "metadata"]


def metadata():  # type: ignore[no-untyped-def]
    """Every table of the engine (kernel and internal servers)."""
    from bank_core.storage.models import with_postgresql_options
    from bank_http.keys import ApiKey  # the HTTP adapter's own table (SQLAlchemy only)

    with_postgresql_options()

    assert bank_accounts.Account.__table__ is not None and bank_audit.AuditHead.__table__ is not None
    assert ApiKey.__table__ is not None
    return Base.metadata


def build(url: str | None = None, *, engine: Engine | None = None, upgrade: bool = True,
          registry: Registry | None = None) -> BankService:
    """A service on ``url`` (or ``BANK_DATABASE_URL``, or the embedded SQLite
    file), with the schema upgraded to head unless ``upgrade`` is false."""
    engine = engine or make_engine(url)
    if upgrade:
        migrate.ensure_schema(engine)
    return BankService(engine, bank_accounts.AccountsServer(), bank_audit.AuditServer(),
                       registry=registry)
