"""``--db``: a plain path or a URL; only ``bank init`` creates a database.

Every other command refuses a database that does not exist or has no
schema, in one line naming it and the ``bank init`` that would create it
(exit 5), and creates nothing: no file, no directory, no table. A URL that
cannot be used is a usage error (exit 2) with an example of a good one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from cli_support import Cli, assert_one_error_line, run_bank


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli("unused", tmp_path / "config")


@pytest.mark.parametrize("form", [
    "notaurl",                           # a relative plain path
    "{tmp}/x.db",                        # an absolute plain path
    "sqlite:///{tmp}/typo.db",           # a URL
    "sqlite:///tmp/x.db",                # one slash too few: ./tmp/x.db
    "{tmp}/missing-dir/x.db",            # a directory that does not exist
    "sqlite:///{tmp}/missing-dir/x.db",
])
@pytest.mark.parametrize("args", [["account", "list"], ["txn", "deposit", "acc_x", "1.00"],
                                  ["profile", "list"], ["db", "current"], ["db", "upgrade"],
                                  ["audit", "verify"]])
def test_a_database_that_does_not_exist_is_refused_and_not_created(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str, args: list[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    url = form.replace("{tmp}", str(work))
    result = cli(*args, db=url)
    line = assert_one_error_line(result, 5, "no bank database at", "bank init --db")
    assert url.rsplit("/", 1)[-1] in line
    assert tree(work) == set()  # no file, no directory


def test_init_takes_a_plain_path_and_every_command_then_uses_it(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    created = cli.json("init", "--default-institution", db=str(path))
    assert created["database"].endswith(str(path))
    assert path.is_file()
    assert cli.json("account", "list", db=str(path))["accounts"] == []
    assert cli.json("account", "list", db=f"sqlite:///{path}")["accounts"] == []


def test_init_refuses_a_missing_directory(cli: Cli, tmp_path: Path) -> None:
    assert_one_error_line(cli("init", db=str(tmp_path / "nope" / "bank.db")), 5, "directory", "nope")
    assert tree(tmp_path) == set()


def test_a_file_that_is_not_a_bank_database_is_refused(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert_one_error_line(cli("account", "list", db=str(empty)), 5, "no bank database at", str(empty))
    assert empty.read_bytes() == b""
    text = tmp_path / "notes.db"
    text.write_text("just some text, not SQLite\n" * 100)
    assert_one_error_line(cli("account", "list", db=str(text)), 5, "not a SQLite database")


@pytest.mark.parametrize(("url", "words"), [
    ("mysql://user@localhost/bank", ["mysql", "postgresql://"]),
    ("nosuchdb://x/y", ["nosuchdb", "sqlite:///"]),
    ("postgresql+nosuchdriver://u@h/db", ["nosuchdriver", "postgresql://"]),
    ("", ["--db", "postgresql://"]),
])
def test_an_unusable_url_is_a_usage_error_with_an_example(cli: Cli, tmp_path: Path, url: str,
                                                           words: list[str]) -> None:
    assert_one_error_line(cli("account", "list", db=url), 2, *words)
    assert_one_error_line(cli("init", db=url), 2, *words)


@pytest.mark.postgres
def test_a_postgres_database_without_the_schema_is_refused_and_left_empty(cli: Cli, fresh_pg_url: str) -> None:
    line = assert_one_error_line(cli("account", "list", db=fresh_pg_url), 5, "no bank database at",
                                 "bank init --db")
    assert "bank_t_" in line
    engine = create_engine(fresh_pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        engine.dispose()
    assert cli.json("init", "--default-institution", db=fresh_pg_url)["default_institution_created"] is True
    assert cli.json("account", "list", db=fresh_pg_url)["accounts"] == []


def test_the_entry_point_refuses_a_typo_without_creating_it(tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    result = run_bank(["--db", f"sqlite:///{typo}", "account", "list"], tmp_path / "config")
    assert_one_error_line(result, 5, "no bank database at", str(typo))
    assert not typo.exists()


@pytest.mark.parametrize("content", [b"profile = \n", b"\xff\xfe\x00garbage", b'profile = "Not An Id!"\n'])
def test_a_corrupt_config_file_is_one_line_naming_it(tmp_path: Path, content: bytes) -> None:
    db = tmp_path / "bank.db"
    cli = Cli(str(db), tmp_path / "config")
    cli("init", "--default-institution", expect=0)
    (tmp_path / "config").mkdir(exist_ok=True)
    config = tmp_path / "config" / "config.toml"
    config.write_bytes(content)
    assert_one_error_line(cli("account", "list"), 5, str(config))
    # --profile does not need the file; `profile use` writes a good one again.
    assert cli.json("account", "list", profile="default")["accounts"] == []
