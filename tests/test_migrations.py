"""The alembic revisions build exactly the schema the models declare, on a
fresh SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bank_core.storage import migrate
from bank_core.storage.engine import make_engine
from bank_wiring import metadata


def test_fresh_database_upgrades_to_head_and_matches_the_models(fresh_db_url: str) -> None:
    engine = make_engine(fresh_db_url)
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        head = migrate.head_revision()
        assert head is not None
        assert migrate.current_revision(engine) == head

        tables = set(inspect(engine).get_table_names())
        assert set(metadata().tables) <= tables
        assert {"institution", "account", "balance", "txn", "posting", "audit_entry",
                "audit_head", "usage_counter", "profile_version"} <= tables

        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata())
        assert diff == [], f"models and migrations differ: {diff}"

        # Running again is a no-op.
        assert migrate.ensure_schema(engine) is False
        assert migrate.current_revision(engine) == head
    finally:
        engine.dispose()


def test_ensure_schema_upgrades_an_empty_database_once(fresh_db_url: str) -> None:
    engine = make_engine(fresh_db_url)
    try:
        assert migrate.ensure_schema(engine) is True
        assert migrate.ensure_schema(engine) is False
    finally:
        engine.dispose()


def test_the_known_head_is_the_scripts_head() -> None:
    """``bank_migrations.HEAD`` (how a command skips alembic at start-up)
    must name the newest revision script."""
    assert migrate.known_head() == migrate.head_revision()
