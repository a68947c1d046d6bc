"""The ``bank`` command: a thin joiner of command groups (one module each).

Command groups are imported only when they run (``LazyGroup``): ``bank
--help`` loads typer and nothing of the engine (no SQLAlchemy, pydantic,
stevedore or alembic), and a command loads only its own module.
"""

from __future__ import annotations

import gc

# Start-up allocates a few hundred thousand objects (modules, classes,
# SQLAlchemy's tables) that are never garbage; the collector walked them
# dozens of times while a command started (~7% of its imports). ``main``
# keeps it off until the command runs (``bank_cli.state.command``); this
# module's own imports run without it too, as imported by anyone.
_COLLECTING = gc.isenabled()
gc.disable()

import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import typer  # noqa: E402
from typer import _click  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

if _COLLECTING:
    gc.enable()

# name -> (module, attribute, is a group, one-line help shown by `bank --help`)
COMMANDS: dict[str, tuple[str, str, bool, str]] = {
    "account": ("bank_cli.accounts", "app", True, "Customer accounts of the active institution."),
    "apikey": ("bank_cli.apikeys", "app", True, "API keys for `bank serve`: create, list, revoke."),
    "audit": ("bank_cli.audit", "app", True, "The append-only, hash-chained audit log."),
    "balance": ("bank_cli.reports", "balance", False, "Show an account's posted and available balance."),
    "db": ("bank_cli.db", "app", True, "Database schema (alembic migrations)."),
    "demo": ("bank_cli.demo", "demo", False, "Run a scripted day at two institutions on a fresh SQLite file."),
    "init": ("bank_cli.db", "init", False, "Create or upgrade the database (a default institution on request)."),
    "plugins": ("bank_cli.plugins", "app", True, "Policy plug-ins: list the installed drivers, check a profile's."),
    "policy": ("bank_cli.scaffold", "app", True, "Policy packages: start a new institution's drivers."),
    "profile": ("bank_cli.profiles", "app", True, "Bank profiles: which policy drivers an institution runs."),
    "report": ("bank_cli.summaries", "app", True, "Institution-wide reports: trial balance, daily summary."),
    "serve": ("bank_cli.serve", "serve", False, "Serve the JSON API over HTTP (FastAPI on uvicorn)."),
    "statement": ("bank_cli.reports", "statement", False, "Postings of an account with running balance."),
    "txn": ("bank_cli.txns", "app", True, "Transactions: deposit, withdraw, transfer, holds, reversals."),
}


class LazyGroup(TyperGroup):
    """The root group: commands are built from their modules on first use.
    Under --json a usage error (click's, exit 2) is one JSON document on
    stdout too, like every other error (see ``bank_cli.state.fail``)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode or "--json" not in argv:
            return super().main(args=argv, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=standalone_mode, **extra)
        try:
            code = super().main(args=argv, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=False, **extra)
        except _click.exceptions.ClickException as exc:
            exc.show()
            sys.stdout.write(json.dumps({"error": {"code": "usage", "message": exc.format_message(),
                                                   "exit_code": exc.exit_code}}, indent=2) + "\n")
            sys.exit(exc.exit_code)
        except _click.exceptions.Abort:
            sys.stderr.write("Aborted!\n")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module, attribute, is_group, _help = spec
        target: Any = getattr(importlib.import_module(module), attribute)
        if is_group:
            command = typer.main.get_group(target)
        else:
            single = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                                 rich_markup_mode=None)
            single.command(cmd_name)(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, spec[3]) for name, spec in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="bank",
    cls=LazyGroup,
    help="Run a bank's day on the bank engine: accounts, transactions, holds, audit, profiles.\n\n"
         "Example: bank --profile northwind txn deposit acc_1a2b3c 100.00",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def root(
    ctx: typer.Context,
    profile: str = typer.Option(None, "--profile", envvar="BANK_PROFILE",
                                help="Institution to act as (default: `bank profile use`, else 'default')."),
    db_url: str = typer.Option(None, "--db", envvar="BANK_DATABASE_URL",
                               help="SQLAlchemy database URL (default: an embedded SQLite file)."),
    actor: str = typer.Option(None, "--actor", envvar="BANK_ACTOR",
                              help="Who is acting, for the audit log and four-eyes (default: OS user)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document for scripts."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    from bank_cli.state import JSON_ERRORS, State

    JSON_ERRORS["enabled"] = json_out
    ctx.obj = State(profile=profile, db=db_url, actor=actor, json=json_out, debug=debug)


def main() -> None:
    gc.disable()  # until the command's body runs: see ``bank_cli.state.command``
    app()


if __name__ == "__main__":
    main()
