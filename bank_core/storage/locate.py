"""Which database a client means, and whether it is a bank database.

``--db`` (or ``BANK_DATABASE_URL``) is a plain file path or a SQLAlchemy URL.
A plain path is an embedded SQLite file. Only ``bank init`` creates a
database: every other command first checks that the database exists and
carries the schema, and refuses otherwise, so a mistyped path (or a URL with
one slash too few, ``sqlite:///tmp/x.db``, which names ``./tmp/x.db``)
never becomes a new, empty bank. A URL that cannot be parsed or whose driver
is not installed is a usage error with an example of a good one.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from bank_core.storage.engine import ENV_DATABASE_URL, default_sqlite_path, resolve_url

URL_EXAMPLES = ("sqlite:////var/lib/bank/bank.db (or a plain path, /var/lib/bank/bank.db) or "
                "postgresql://user@host:5432/bank")
SCHEMA_TABLE = "alembic_version"


class BadDatabaseUrl(ValueError):
    """The URL cannot be used at all (a usage error)."""


class NoDatabase(LookupError):
    """The database does not exist or holds no bank schema."""


def as_url(given: str | None) -> str:
    """The URL for ``given`` (a path or URL; None: the environment, then the
    default file), refused with an example when it cannot be used."""
    if given is not None and given.strip() == "":
        raise BadDatabaseUrl(f"--db: empty; give a path or a URL such as {URL_EXAMPLES}")
    given = given or os.environ.get(ENV_DATABASE_URL) or None
    if given is None:
        return URL.create("sqlite", database=str(default_sqlite_path())).render_as_string()
    if given is not None and "://" not in given:
        if "\x00" in given:
            raise BadDatabaseUrl(f"--db: {given!r} is not a file path")
        return URL.create("sqlite", database=str(Path(given).expanduser().absolute())).render_as_string()
    url = resolve_url(given)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadDatabaseUrl(f"--db: {given!r} is not a database URL; use one such as {URL_EXAMPLES}") from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise BadDatabaseUrl(f"--db: no database driver for {parsed.drivername!r}; "
                             f"supported are SQLite and PostgreSQL, e.g. {URL_EXAMPLES}") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise BadDatabaseUrl(f"--db: {parsed.get_backend_name()} is not supported; use SQLite or "
                             f"PostgreSQL, e.g. {URL_EXAMPLES}")
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as exc:
        raise BadDatabaseUrl(f"--db: the driver for {parsed.drivername} is not installed ({exc.name}); "
                             f"e.g. {URL_EXAMPLES}") from None
    return url


def shown_path(url: str) -> str:
    """What to call the database in a message: the file's path, or the URL without password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return str(Path(parsed.database).absolute())
    return parsed.render_as_string(hide_password=True)


def _missing(url: str, given: str | None) -> NoDatabase:
    name = given if given and "://" not in given else shown_path(url)
    return NoDatabase(f"no bank database at {name}; create it with `bank init --db {name}`")


def require_bank_database(url: str, given: str | None = None) -> None:
    """Refuse a database that does not exist or has no schema, creating nothing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or not Path(database).is_file():
            raise _missing(url, given)
        with closing(sqlite3.connect(Path(database).resolve().as_uri() + "?mode=ro", uri=True)) as conn:
            try:
                found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                     (SCHEMA_TABLE,)).fetchone()
            except sqlite3.DatabaseError:
                raise NoDatabase(f"{database} is not a SQLite database") from None
        if found is None:
            raise _missing(url, given)
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            has = inspect(conn).has_table(SCHEMA_TABLE)
    finally:
        engine.dispose()
    if not has:
        raise _missing(url, given)


def prepare_new(url: str) -> None:
    """Before ``bank init``: a SQLite file's directory must exist (only the
    default location's is created), so a typo does not grow directories."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    directory = Path(parsed.database).parent  # type: ignore[arg-type]
    if Path(parsed.database) == default_sqlite_path():  # type: ignore[arg-type]
        directory.mkdir(parents=True, exist_ok=True)
    elif not directory.is_dir():
        raise NoDatabase(f"--db: directory {directory} does not exist; create it first")
