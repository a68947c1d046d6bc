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
