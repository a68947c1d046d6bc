"""Helpers of the ``bank`` command's tests (tests/test_cli*.py).

``Cli`` drives the real typer app in-process with ``typer.testing.CliRunner``
(stdout and stderr are captured separately: ``result.stdout``,
``result.stderr``; this typer vendors its own click, whose runner has no
``mix_stderr``). ``run_bank`` drives the installed ``bank`` entry point in a
subprocess. Both run with a private configuration directory and none of the
``BANK_*`` variables of the developer's shell, so a test only ever sees the
SQLite file it was handed.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import closing
from importlib import resources
from pathlib import Path
from typing import Any
from unittest.mock import patch

import typer.main
import typer.testing
from typer.testing import CliRunner, Result

import bank_wiring
from bank_cli.main import app
from bank_core.registry import Registry

TELLER = "teller"
SUPERVISOR = "supervisor"
BANK_VARS = ("BANK_PROFILE", "BANK_DATABASE_URL", "BANK_ACTOR", "BANK_CONFIG_DIR")


def profile_file(package: str) -> Path:
    """The profile TOML an installed policy package ships."""
    with resources.as_file(resources.files(package) / "profile.toml") as path:
        return Path(path)  # a package installed from a directory: a real, lasting file


def bank_executable() -> str:
    """The installed ``bank`` entry point next to this interpreter."""
    beside = Path(sys.executable).parent / "bank"
    if beside.exists():
        return str(beside)
    found = shutil.which("bank")
    assert found, "the bank entry point is not installed (pip install -e .)"
    return found


def describe(result: Any) -> str:
    out = getattr(result, "stdout", "")
    err = getattr(result, "stderr", "")
    code = getattr(result, "exit_code", getattr(result, "returncode", None))
    return f"exit {code}\n--- stdout\n{out}\n--- stderr\n{err}"


def assert_one_error_line(result: Any, code: int, *words: str) -> str:
    """Exit ``code``; stderr is exactly one line starting ``error:`` that
    contains every word; no traceback anywhere."""
    got = getattr(result, "exit_code", getattr(result, "returncode", None))
    assert got == code, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith("error: "), describe(result)
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


# In-process speed-ups, both equivalent to what one long-lived process does
# (the subprocess tests run the real thing): CliRunner rebuilds the click
# command tree from the typer app on every invoke, and every command builds a
# service with a new driver registry that discovers its entry points again.
_COMMAND = typer.main.get_command(app)
_REGISTRY = Registry()
_real_build = bank_wiring.build


def _build_sharing_registry(url: str | None = None, **kw: Any) -> Any:
    kw.setdefault("registry", _REGISTRY)
    return _real_build(url, **kw)


class Cli:
    """``bank`` in-process on one database, as one configured user."""

    def __init__(self, db_url: str, config_dir: Path, actor: str | None = TELLER) -> None:
        self.db_url = db_url
        self.config_dir = config_dir
        self.actor = actor
        self.runner = CliRunner()

    def env(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
        env: dict[str, str | None] = {name: None for name in BANK_VARS}
        env["BANK_CONFIG_DIR"] = str(self.config_dir)
        if self.actor is not None:
            env["BANK_ACTOR"] = self.actor
        env.update(extra or {})
        return env

    def __call__(self, *args: str, profile: str | None = None, actor: str | None = None,
                 json_out: bool = False, debug: bool = False, db: str | None = "default",
                 env: Mapping[str, str | None] | None = None, expect: int | None = None) -> Result:
        argv: list[str] = []
        if db is not None:
            argv += ["--db", self.db_url if db == "default" else db]
        if profile is not None:
            argv += ["--profile", profile]
        if actor is not None:
            argv += ["--actor", actor]
        if json_out:
            argv.append("--json")
        if debug:
            argv.append("--debug")
        argv += list(args)
        with patch.object(typer.testing, "_get_command", lambda _app: _COMMAND), \
                patch.object(bank_wiring, "build", _build_sharing_registry):
            result = self.runner.invoke(app, argv, env=self.env(env))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"bank {' '.join(argv)} raised {result.exception!r}\n{describe(result)}")
        if expect is not None:
            assert result.exit_code == expect, f"bank {' '.join(argv)}\n{describe(result)}"
        return result

    def json(self, *args: str, expect: int | None = 0, **kw: Any) -> Any:
        """Run with ``--json``; stdout must be exactly one JSON document."""
        result = self(*args, json_out=True, expect=expect, **kw)
        return json.loads(result.stdout)

    # Small builders ----------------------------------------------------------

    def open(self, holder: str = "Ada Lovelace", *, profile: str | None = None,
             product: str = "standard") -> str:
        result = self("account", "open", "--holder", holder, "--product", product,
                      profile=profile, expect=0)
        return result.stdout.strip()

    def apply(self, package: str) -> None:
        self("profile", "apply", str(profile_file(package)), expect=0)

    def deposit(self, account: str, amount: str, profile: str | None = None, ref: str | None = None,
                **kw: Any) -> dict[str, Any]:
        extra = ["--ref", ref] if ref is not None else []
        return self.json("txn", "deposit", account, amount, *extra, profile=profile, **kw)

    def balance(self, account: str, profile: str | None = None) -> dict[str, Any]:
        return self.json("balance", account, profile=profile)


def fresh_copy(template: Path, sqlite_url: str) -> str:
    """A fresh database file for one test: a copy of one that ``bank init``
    migrated once per session (running the migrations costs most of a second)."""
    target = Path(sqlite_url.removeprefix("sqlite:///"))
    assert not target.exists()
    # The engine runs SQLite in WAL mode: copy through the backup API, which
    # includes what still sits in the -wal file.
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return sqlite_url


def init_template(directory: Path) -> Path:
    """A database file on which ``bank init`` has run."""
    path = directory / "template.db"
    Cli(f"sqlite:///{path}", directory / "config")("init", "--default-institution", expect=0)
    return path


def run_bank(args: Sequence[str], config_dir: Path, *, env: Mapping[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed entry point, in a subprocess, with a clean BANK_* environment."""
    full = {k: v for k, v in os.environ.items() if k not in BANK_VARS}
    full["BANK_CONFIG_DIR"] = str(config_dir)
    full["BANK_ACTOR"] = TELLER
    full.update(env or {})
    return subprocess.run([bank_executable(), *args], capture_output=True, text=True,
                          env=full, timeout=timeout, check=False)
