"""``bank balance`` and ``bank statement``."""

from __future__ import annotations

import json
import sys
from datetime import date

import typer

from bank_cli.accounts import account_doc
from bank_cli.state import EXIT_INVALID, command, emit, fail, out, state, table


@command
def balance(ctx: typer.Context, account: str = typer.Argument(..., metavar="ACCOUNT")) -> None:
    """Show an account's posted and available balance (read in O(1), never from history).

    Example: bank balance acc_1a2b3c4d5e6f
    """
    st = state(ctx)
    doc = account_doc(*st.service.account(st.institution, account, internal_ok=True))
    short = {k: doc[k] for k in ("id", "currency", "posted", "available", "held", "status")}
    emit(st, short, lambda: out.print(
        f"{doc['id']}: posted {doc['posted']} {doc['currency']}, available {doc['available']} "
        f"{doc['currency']}, held {doc['held']} {doc['currency']}", highlight=False))


def _date(value: str | None, name: str) -> date | None:
    from bank_core.limits import parse_date

    return None if value is None else parse_date(value, name)


@command
def statement(
    ctx: typer.Context,
    account: str = typer.Argument(..., metavar="ACCOUNT"),
    date_from: str = typer.Option(None, "--from", help="First day, YYYY-MM-DD (institution's timezone)."),
    date_to: str = typer.Option(None, "--to", help="Last day, YYYY-MM-DD (inclusive)."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
) -> None:
    """Postings of an account with running balance.

    Example: bank statement acc_1a2b3c4d5e6f --from 2026-11-01 --to 2026-11-30 --format csv
    """
    st = state(ctx)
    if fmt not in ("table", "csv", "json"):
        fail(EXIT_INVALID, f"--format: {fmt!r} is not one of table, csv, json")
    first, last = _date(date_from, "--from"), _date(date_to, "--to")
    if first is not None and last is not None and first > last:
        fail(EXIT_INVALID, f"--from {first} is after --to {last}")
    doc = st.service.statement(st.institution, account, first, last)
    if st.json or fmt == "json":
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif fmt == "csv":
        from bank_core.reports import statement_csv

        sys.stdout.write(statement_csv(doc))
    else:
        out.print(table(f"Statement of {account} at {st.institution} ({doc['currency']}, times in "
                        f"{doc['timezone']})",
                        ["Posted at", "Txn", "Ref", "Rule", "Counterparty", "Memo", "Amount", "Balance"],
                        [[l["posted_at"], l["txn_id"], l["ref"], l["rule"], l["counterparty"], l["memo"],
                          l["amount"], l["balance"]] for l in doc["lines"]]))
        out.print(f"opening {doc['opening']}  closing {doc['closing']} {doc['currency']}",
                  highlight=False)
