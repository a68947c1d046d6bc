"""What every command shares: global options, the service, output and the
mapping of errors to one line on stderr and a documented exit code."""

from __future__ import annotations

import functools
import gc
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

from bank_core import limits
from bank_core.actors import actor_name
from bank_core.errors import BankError, Conflict, IntegrityError, InvalidRequest, NotFound, ProfileError, Refused
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


class ConfigFileError(InvalidRequest):
    """The configuration file cannot be read; names the file."""


def read_config() -> dict[str, Any]:
    path = config_path()
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"configuration file {path} cannot be read ({one_line(str(exc))}); "
                              "fix or delete it (`bank profile use ID` writes a new one)") from None
    profile = values.get("profile")
    if profile is not None and not limits.is_institution_id(profile):
        raise ConfigFileError(f"configuration file {path}: profile = {limits.shown(profile)} is not "
                              "an institution id; fix or delete it")
    return values


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

    creating: bool = False  # ``bank init``: the one command that may create the database
    _institution: str | None = field(default=None, repr=False)

    @property
    def chosen(self) -> str | None:
        """The institution the person chose: ``--profile``, else ``BANK_PROFILE``,
        else ``bank profile use``; None if they chose none."""
        chosen = self.profile or os.environ.get(ENV_PROFILE)
        if chosen is not None and not limits.is_institution_id(chosen):
            fail(EXIT_USAGE, f"--profile: {limits.shown(chosen)} is not an institution id "
                             "(1-64 characters of a-z, 0-9, '_' or '-')")
        return chosen or read_config().get("profile")

    @property
    def institution(self) -> str:
        """The chosen institution; if none was chosen, the database's only
        one. With several and none chosen, no command guesses: exit 2 listing them."""
        if self._institution is None:
            chosen = self.chosen
            if chosen is None:
                ids = [row["id"] for row in self.service.institutions()]
                if len(ids) != 1:
                    where = self.database_name
                    fail(EXIT_USAGE, f"no institution chosen and {where} has "
                         + (f"{len(ids)}: {', '.join(ids)}; choose one with --profile ID, "
                            "BANK_PROFILE=ID or `bank profile use ID`" if ids else
                            "none yet; create one with `bank profile apply PROFILE.toml`"))
                chosen = ids[0]
            self._institution = chosen
        return self._institution

    def own(self, requested: str, *, existing_only: bool = False) -> str:
        """``requested`` if the person may act on it: acting as one
        institution (``--profile``, ``BANK_PROFILE``, ``bank profile use``),
        another's configuration is not found, exactly like its accounts.
        ``existing_only``: an institution that does not exist yet may be named
        (``profile apply`` creating a new one)."""
        chosen = self.chosen
        if chosen is None or requested == chosen:
            return requested
        if existing_only and requested not in {row["id"] for row in self.service.institutions()}:
            return requested
        raise NotFound(f"institution {requested!r} not found (acting as {chosen}); nothing was changed")

    def close(self) -> None:
        """Give the database connections back (a command is one unit of use)."""
        if self._service is not None:
            self._service.close()  # its policy servers, if any
            self._service.engine.dispose()

    @property
    def db_known(self) -> bool:
        return self._service is not None

    @property
    def database_name(self) -> str:
        from bank_core.storage.locate import shown_path

        return shown_path(self.url)

    @property
    def who(self) -> str:
        """``--actor``, else ``BANK_ACTOR``, else the OS user."""
        actor = self.actor or os.environ.get(ENV_ACTOR) or getpass.getuser()
        try:
            return actor_name(actor, "--actor")  # normalised once (bank_core.actors)
        except InvalidRequest as exc:
            fail(EXIT_USAGE, str(exc))

    @property
    def url(self) -> str:
        """The database URL ``--db`` names (a path or a URL); exit 2 if unusable."""
        from bank_core.storage.locate import BadDatabaseUrl, as_url

        try:
            return as_url(self.db)
        except BadDatabaseUrl as exc:
            fail(EXIT_USAGE, str(exc))

    def existing_url(self) -> str:
        """The URL of a bank database that exists (exit 5 otherwise; nothing is created)."""
        from bank_core.storage.locate import NoDatabase, require_bank_database

        url = self.url
        try:
            require_bank_database(url, self.db)
        except NoDatabase as exc:
            fail(EXIT_INVALID, str(exc))
        return url

    @property
    def service(self) -> Any:
        if self._service is None:
            from bank_wiring import build

            if self.creating:
                from bank_core.storage.locate import NoDatabase, prepare_new

                url = self.url
                try:
                    prepare_new(url)
                except NoDatabase as exc:
                    fail(EXIT_INVALID, str(exc))
            else:
                url = self.existing_url()
            self._service = build(url)
        return self._service


def batch_gc() -> None:
    """Garbage collection for a command that decides many rows: what start-up
    loaded is never garbage, so keep it out of full collections; a chunk's
    rows are freed by reference counting (no cycles), so collect the young
    generation every 1,000,000 allocations instead of every 700: each
    collection walks every live row of the chunk being decided, so the
    collector's cost grows with the chunk and falls with the interval (100k
    rows in chunks of 10,000, every 100,000 allocations: 0.9 s of
    collections, against 0.08 s in chunks of 2,500; 1M rows in chunks of
    10,000: the deciding process 89 processor seconds every 100,000, 69
    every 1,000,000). Garbage cycles a driver makes are still collected."""
    import gc

    gc.freeze()
    gc.set_threshold(1_000_000, 10, 10)


def state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State)


def one_line(message: str) -> str:
    """An error message as one line (driver, database and library messages
    may span several; SQLAlchemy appends a "Background on this error" link)."""
    lines = [line.strip() for line in message.splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("(Background on this error"))


# Set by the root callback: under --json an error is also one JSON document on stdout.
JSON_ERRORS = {"enabled": False}
ERROR_CODES = {EXIT_INTEGRITY: "integrity", EXIT_USAGE: "usage", EXIT_REJECTED: "refused", EXIT_INVALID: "invalid",
               EXIT_CONFLICT: "conflict", EXIT_SYSTEM: "system"}


def fail(code: int, message: str, name: str | None = None, *, lines: list[str] | None = None) -> NoReturn:
    """One ``error:`` line on stderr (several for a profile's problems) and the
    exit code; under --json also ``{"error": {code, message, exit_code}}`` on stdout."""
    shown = [one_line(line) for line in (lines or [message])]
    for line in shown:
        err.print(f"error: {line}", markup=False, highlight=False)
    if JSON_ERRORS["enabled"]:
        document = {"error": {"code": name or ERROR_CODES.get(code, "error"),
                              "message": "; ".join(shown), "exit_code": code}}
        if lines:
            document["error"]["problems"] = shown
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
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
    if isinstance(exc, IntegrityError):
        return EXIT_INTEGRITY  # a record edited behind the kernel's back: writes refused
    return EXIT_SYSTEM


def command(fn: F) -> F:
    """Wrap a command: domain errors become one stderr line and an exit code;
    anything else is a system error, with a traceback only under --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx") or next((a for a in args if isinstance(a, typer.Context)), None)
        debug = bool(ctx and state(ctx).debug)
        if not gc.isenabled():  # off while the command started (``bank_cli.main.main``)
            gc.freeze()  # what start-up made stays: never walked again
            gc.enable()
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException, SystemExit):
            raise  # TyperException: click's usage errors (BadParameter...) keep their exit 2
        except ProfileError as exc:
            if debug:
                traceback.print_exc()
            fail(EXIT_INVALID, str(exc), exc.code, lines=exc.problems or [str(exc)])
        except (BankError, DriverLoadError) as exc:
            if debug:
                traceback.print_exc()
            message = str(exc)
            if isinstance(exc, NotFound) and ctx is not None and state(ctx).db_known:
                message += f" (database {state(ctx).database_name})"  # where it looked
            fail(exit_code_for(exc), message, getattr(exc, "code", None))
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if debug:
                traceback.print_exc()
            fail(EXIT_SYSTEM, f"{type(exc).__name__}: {one_line(str(exc))} (run with --debug for details)")
        finally:
            if ctx is not None:
                state(ctx).close()

    return wrapper  # type: ignore[return-value]


def emit(st: State, document: Any, human: Callable[[], None]) -> None:
    """One JSON document under --json, else the human rendering."""
    if st.json:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        human()


# Columns whose cells are never cut or wrapped (ids, amounts, times): a
# person copies them. Every other column folds onto more lines instead.
WHOLE_COLUMNS = {"id", "txn", "account", "from", "to", "amount", "fee", "fees", "posted", "available",
                 "held", "balance", "debit", "credit", "at", "posted at", "opening", "closing", "threshold",
                 "observed", "ref", "net", "total"}
RIGHT_COLUMNS = {"amount", "posted", "available", "held", "fee", "fees", "balance", "debit", "credit",
                 "net", "total", "count"}
FOLDED_MIN_WIDTH = 12
VALUE_MIN_WIDTH = 48  # a Field/Value table's values: any id or amount fits whole


class WholeTable:
    """A rich table that is never squeezed below the width its whole
    columns need: on a narrow terminal its lines are longer than the
    terminal (which wraps them) rather than an id or amount being cut."""

    def __init__(self, tbl: Table, needed: int) -> None:
        self.table = tbl
        self.needed = needed

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield from console.render(self.table, options.update(width=max(options.max_width, self.needed)))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> WholeTable:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    tbl = Table(title=title, show_lines=False)
    needed = 1
    for index, name in enumerate(columns):
        longest = max([len(name), *(len(line) for row in cells for line in row[index].splitlines() or [""])])
        whole = name.lower() in WHOLE_COLUMNS
        floor = VALUE_MIN_WIDTH if name.lower() == "value" else max(len(name), FOLDED_MIN_WIDTH)
        width = longest if whole else min(longest, floor)
        tbl.add_column(name, justify="right" if name.lower() in RIGHT_COLUMNS else "left",
                       no_wrap=whole, overflow="fold", min_width=width)
        needed += width + 3
    for row in cells:
        tbl.add_row(*row)
    return WholeTable(tbl, needed)
