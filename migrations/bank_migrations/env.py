from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bank_core.storage.engine import make_engine


def _target_metadata():  # type: ignore[no-untyped-def]
    # Imported lazily: only autogenerate needs the models.
    from bank_wiring import metadata

    return metadata()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=_target_metadata(),
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


config = context.config
connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # the alembic command line: use -x url=... or BANK_DATABASE_URL
    url = context.get_x_argument(as_dictionary=True).get("url")
    with make_engine(url).begin() as conn:
        _run(conn)
