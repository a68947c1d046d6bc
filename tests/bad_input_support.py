"""Helpers of the bad-input tests (tests/test_bad_*.py): a ``bank`` on which
``init`` ran, on SQLite or PostgreSQL, and a count of every row the engine
writes, to prove that a refused input wrote nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bank_core.storage.locate import as_url
from cli_support import Cli

TABLES = ("institution", "profile_version", "account", "balance", "txn", "posting",
          "usage_counter", "audit_entry")


def written(db_url: str) -> dict[str, int]:
    """How many rows each of the engine's tables holds."""
    engine = create_engine(as_url(db_url))
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
    finally:
        engine.dispose()


@pytest.fixture
def bank(db_url: str, tmp_path: Path) -> Cli:
    """``bank`` on a database where ``bank init`` ran (a fresh SQLite file,
    or this module's PostgreSQL database), acting as the teller."""
    cli = Cli(db_url, tmp_path / "config")
    cli("init", "--default-institution", expect=0)
    cli("profile", "use", "default", expect=0)  # tests of a module share a PostgreSQL database
    return cli


def funded(cli: Cli, amount: str = "1000.00", **kw: Any) -> str:
    """A new account of the default institution holding ``amount``."""
    acc = cli.open("Funded Holder", **kw)
    cli.deposit(acc, amount)
    return acc
