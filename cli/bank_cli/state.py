"""What every command shares: global options, the service, output and the
mapping of errors to one line on stderr and a documented exit code."""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from bank_core.errors import BankError, Conflict, InvalidRequest, NotFound, ProfileError, Refused
from bank_core.registry import DriverLoadError

# Exit codes (documented in the README; scripts rely on them).
EXIT_OK = 0           # posted / done
EXIT_INTEGRITY = 1    # the audit chain does not verify
EXIT_USAGE = 2        # bad command line (typer/click)
EXIT_HELD = 3         # held for review
EXIT_REJECTED = 4     # rejected or refused by policy
EXIT_INVALID = 5      # not found or invalid input
EXIT_CONFLICT = 6     # idempotency conflict, wrong state
EXIT_SYSTEM = 7       # anything unexpected (database down, a broken plug-in, bug)

ENV_PROFILE = "BANK_PROFILE"
ENV_ACTOR = "BANK_ACTOR"
ENV_CONFIG_DIR = "BANK_CONFIG_DIR"
DEFAULT_INSTITUTION = "default"

F = TypeVar("F", bound=Callable[..., Any])

# Off a terminal (pipes, CI logs) rich would assume 80 columns and squeeze
# tables; give them room instead.
_WIDTH = None if sys.stdout.isatty() else 200
out = Console(soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, soft_wrap=True, width=_WIDTH)


def config_path() -> Path:
    base = os.environ.get(ENV_CONFIG_DIR)
    if base:
        return Path(base) / "config.toml"
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(xdg) / "bank" / "config.toml"


def read_config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        return tomllib.load(handle)


def write_config(values: dict[str, Any]) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} = {json.dumps(value)}" for key, value in sorted(values.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class State:
    profile: str | None = None
    db: str | None = None
    actor: str | None = None
    json: bool = False
    debug: bool = False
    _service: Any = field(default=None, repr=False)

    @property
    def institution(self) -> str:
        """``--profile``, else ``BANK_PROFILE``, else ``bank profile use``, else default."""
        return (self.profile or os.environ.get(ENV_PROFILE) or read_config().get("profile")
                or DEFAULT_INSTITUTION)

    @property
    def who(self) -> str:
        """``--actor``, else ``BANK_ACTOR``, else the OS user."""
        return self.actor or os.environ.get(ENV_ACTOR) or getpass.getuser()

    @property
    def service(self) -> Any:
        if self._service is None:
            from bank_wiring import build

            self._service = build(self.db)
        return self._service


def state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State)


def one_line(message: str) -> str:
    """An error message as one line (driver, database and library messages
    may span several; SQLAlchemy appends a "Background on this error" link)."""
    lines = [line.strip() for line in message.splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("(Background on this error"))


def fail(code: int, message: str) -> NoReturn:
    err.print(f"error: {one_line(message)}", markup=False, highlight=False)
    raise typer.Exit(code)


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, DriverLoadError):
        return EXIT_SYSTEM  # a plug-in broke under an applied profile: the system, not the input (issue 13)
    if isinstance(exc, (NotFound, InvalidRequest, ProfileError)):
        return EXIT_INVALID
    if isinstance(exc, Conflict):
        return EXIT_CONFLICT
    if isinstance(exc, Refused):
        return EXIT_REJECTED
    return EXIT_SYSTEM


def command(fn: F) -> F:
    """Wrap a command: domain errors become one stderr line and an exit code;
    anything else is a system error, with a traceback only under --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx") or next((a for a in args if isinstance(a, typer.Context)), None)
        debug = bool(ctx and state(ctx).debug)
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException, SystemExit):
            raise  # TyperException: click's usage errors (BadParameter...) keep their exit 2
        except ProfileError as exc:
            if debug:
                traceback.print_exc()
            for problem in exc.problems:
                err.print(f"error: {one_line(problem)}", markup=False, highlight=False)
            raise typer.Exit(EXIT_INVALID) from None
        except (BankError, DriverLoadError) as exc:
            if debug:
                traceback.print_exc()
            fail(exit_code_for(exc), str(exc))
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if debug:
                traceback.print_exc()
            fail(EXIT_SYSTEM, f"{type(exc).__name__}: {one_line(str(exc))} (run with --debug for details)")

    return wrapper  # type: ignore[return-value]


def emit(st: State, document: Any, human: Callable[[], None]) -> None:
    """One JSON document under --json, else the human rendering."""
    if st.json:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        human()


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    tbl = Table(title=title, show_lines=False)
    for name in columns:
        justify = "right" if name.lower() in {"amount", "posted", "available", "held", "fee", "fees",
                                              "balance", "debit", "credit"} else "left"
        tbl.add_column(name, justify=justify)
    for row in rows:
        tbl.add_row(*["" if v is None else str(v) for v in row])
    return tbl
