"""Start-up stays light: ``bank --help`` loads none of the engine's heavy
dependencies, and a command on a database at head does not load alembic."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sqlalchemy", "pydantic", "stevedore", "alembic", "psycopg", "rich.progress")

_PROBE = """
import json, sys
sys.argv = ["bank", *json.loads(sys.argv[1])]
from bank_cli.main import app
try:
    app()
except SystemExit as exit:
    code = exit.code
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _run(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(list(args))],
                          capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_help_loads_none_of_the_engine() -> None:
    found = _run("--help")
    assert found["code"] == 0
    assert [h for h in HEAVY if _loaded(found["modules"], h)] == []


def test_a_command_at_head_does_not_load_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    assert _run("--db", url, "init")["code"] == 0
    found = _run("--db", url, "profile", "list")
    assert found["code"] == 0
    assert _loaded(found["modules"], "sqlalchemy")  # it did reach the database
    assert not _loaded(found["modules"], "alembic")


def test_a_transaction_on_sqlite_loads_no_postgresql_code_nor_the_orm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The models name PostgreSQL's partial-index option only where
    PostgreSQL is used (``with_postgresql_options``): naming it in the class
    body imported that dialect into every command (~6% of a deposit's
    start-up)."""
    from bank_wiring import build

    from institution_support import shipped_profile

    url = f"sqlite:///{tmp_path / 'bank.db'}"
    svc = build(url)
    profile, _ = svc.apply_profile(shipped_profile("northwind"), "setup")
    account = svc.open_account(profile.id, holder="start-up").id
    svc.engine.dispose()
    found = _run("--db", url, "--profile", profile.id, "txn", "deposit", account, "1.00")
    assert found["code"] == 0  # posted
    assert _loaded(found["modules"], "sqlalchemy.dialects.sqlite")
    assert not _loaded(found["modules"], "sqlalchemy.dialects.postgresql")
    assert not _loaded(found["modules"], "psycopg")
    # Tables are read into Core tables by bank_core.storage.base: no ORM.
    assert not _loaded(found["modules"], "sqlalchemy.orm")


def test_postgresql_ddl_keeps_the_partial_indexes() -> None:
    """What ``with_postgresql_options`` adds: the same WHERE as SQLite's."""
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex

    from bank_core.storage.models import Txn, with_postgresql_options

    with_postgresql_options()
    partial = {i.name: i for i in Txn.__table__.indexes if i.dialect_options["sqlite"]["where"] is not None}
    assert set(partial) == {"ix_txn_held", "uq_txn_reverses_txn_id", "ix_txn_legacy_id"}
    for index in partial.values():
        on_pg = str(CreateIndex(index).compile(dialect=postgresql.dialect()))
        on_sqlite = str(CreateIndex(index).compile(dialect=sqlite.dialect()))
        assert " WHERE " in on_pg and on_pg.split(" WHERE ")[1] == on_sqlite.split(" WHERE ")[1]


def test_table_classes_are_core_tables_with_the_declared_columns() -> None:
    """What ``Base`` makes of a declaration: the column types, NULL-ability
    and keys as declared (a foreign key's column takes its target's type),
    ``Cls.name`` the column, ``select(Cls)`` the table's rows."""
    from sqlalchemy import BigInteger, DateTime, Integer, String, select

    from bank_core.storage.models import Balance, Institution, Txn

    t = Txn.__table__.c
    assert Txn.status is t.status and Txn.__table__.name == "txn"
    assert isinstance(t.amount_minor.type, BigInteger) and t.amount_minor.nullable is False
    assert isinstance(t.code.type, String) and t.code.type.length == 200 and t.code.nullable is True
    assert t.id.primary_key and t.id.nullable is False
    assert isinstance(t.institution_id.type, String) and t.institution_id.type.length == 64  # from institution.id
    assert isinstance(Institution.__table__.c.created_at.type, DateTime)
    assert Institution.__table__.c.created_at.type.timezone is True
    assert isinstance(Institution.__table__.c.shadow.type, Integer) and Institution.shadow.nullable
    assert Balance.__table__.c.institution_id.index is True
    assert [c.name for c in select(Balance).selected_columns] == [c.name for c in Balance.__table__.c]
