"""Applying the alembic revisions in ``migrations/bank_migrations``.

The scripts are found by an absolute path from the installed package; the
live connection is handed to ``env.py`` through ``config.attributes``.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_PACKAGE = "bank_migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files(MIGRATIONS_PACKAGE)))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def ensure_schema(engine: Engine) -> bool:
    """Upgrade to head if the database is behind; True if anything ran."""
    if current_revision(engine) == head_revision():
        return False
    upgrade(engine)
    return True
