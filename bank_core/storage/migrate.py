"""Applying the alembic revisions in ``migrations/bank_migrations``.

The scripts are found by an absolute path from the installed package; the
live connection is handed to ``env.py`` through ``config.attributes``.
Alembic is imported only when there is something to do: a database already
at ``bank_migrations.HEAD`` is recognised with one query.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

MIGRATIONS_PACKAGE = "bank_migrations"


def alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files(MIGRATIONS_PACKAGE)))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def known_head() -> str:
    from bank_migrations import HEAD

    return HEAD


def stored_revision(engine: Engine) -> str | None:
    """The revision recorded in the database (one query; None if none)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return None  # no alembic_version table yet
    return rows[0] if len(rows) == 1 else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def ensure_schema(engine: Engine) -> bool:
    """Upgrade to head if the database is behind; True if anything ran."""
    if stored_revision(engine) == known_head():
        return False
    if current_revision(engine) == head_revision():
        return False
    upgrade(engine)
    return True
