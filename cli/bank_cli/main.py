"""The ``bank`` command: a thin joiner of command groups (one module each)."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from typer import _click
from typer.core import TyperGroup

from bank_cli import accounts, audit, db, demo, plugins, profiles, reports, scaffold, summaries, txns
from bank_cli.state import ENV_ACTOR, ENV_PROFILE, JSON_ERRORS, State

class BankGroup(TyperGroup):
    """Under --json a usage error (click's, exit 2) is one JSON document on
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


app = typer.Typer(
    name="bank",
    cls=BankGroup,
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
    profile: str = typer.Option(None, "--profile", envvar=ENV_PROFILE,
                                help="Institution to act as (default: `bank profile use`, else 'default')."),
    db_url: str = typer.Option(None, "--db", envvar="BANK_DATABASE_URL",
                               help="SQLAlchemy database URL (default: an embedded SQLite file)."),
    actor: str = typer.Option(None, "--actor", envvar=ENV_ACTOR,
                              help="Who is acting, for the audit log and four-eyes (default: OS user)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document for scripts."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    JSON_ERRORS["enabled"] = json_out
    ctx.obj = State(profile=profile, db=db_url, actor=actor, json=json_out, debug=debug)


app.add_typer(accounts.app, name="account")
app.add_typer(txns.app, name="txn")
app.add_typer(audit.app, name="audit")
app.add_typer(profiles.app, name="profile")
app.add_typer(db.app, name="db")
app.add_typer(plugins.app, name="plugins")
app.add_typer(scaffold.app, name="policy")
app.add_typer(summaries.app, name="report")
app.command("init")(db.init)
app.command("balance")(reports.balance)
app.command("statement")(reports.statement)
app.command("demo")(demo.demo)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
