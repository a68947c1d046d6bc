"""``bank account``: open, list, show, freeze, unfreeze, close."""

from __future__ import annotations

from typing import Any

import typer

from bank_cli.state import command, emit, err, out, state, table
from bank_core.messages import as_utc
from bank_core.money import format_minor

app = typer.Typer(help="Customer accounts of the active institution.\n\n"
                       "Example: bank account open --holder \"Ada Lovelace\"",
                  no_args_is_help=True)


def account_doc(record: Any, balance: Any) -> dict[str, Any]:
    cur = balance.currency
    return {"id": record.id, "institution": record.institution_id, "holder": record.holder,
            "product": record.product, "currency": record.currency, "status": record.status,
            "opened_at": as_utc(record.opened_at).isoformat(),
            "posted": format_minor(balance.posted, cur),
            "available": format_minor(balance.available, cur),
            "held": format_minor(balance.debits_pending, cur)}


@app.command("open")
@command
def open_account(
    ctx: typer.Context,
    holder: str = typer.Option(..., "--holder", help="The account holder's name."),
    product: str = typer.Option("standard", "--product", help="Product code, e.g. checking-plus."),
    currency: str = typer.Option(None, "--currency", help="ISO 4217 code (default: the institution's)."),
) -> None:
    """Open an account and print its id.

    Example: bank account open --holder "Ada Lovelace" --product checking-plus --currency USD
    """
    st = state(ctx)
    record = st.service.open_account(st.institution, holder=holder, product=product,
                                     currency=currency, actor=st.who)
    emit(st, {"id": record.id, "holder": record.holder, "product": record.product,
              "currency": record.currency, "status": record.status,
              "institution": record.institution_id},
         lambda: (out.print(record.id, highlight=False),  # stdout: just the id, for scripts
                  err.print(f"opened {record.id} at {record.institution_id} ({record.currency})",
                            highlight=False)))


@app.command("list")
@command
def list_accounts(
    ctx: typer.Context,
    internal: bool = typer.Option(False, "--internal", help="Also the institution's own accounts "
                                                            "(cash, fee income, suspense)."),
) -> None:
    """List the institution's customer accounts with balances.

    Example: bank --profile harbor account list --internal
    """
    st = state(ctx)
    docs = [{**account_doc(r, b), "role": r.role}
            for r, b in st.service.list_accounts(st.institution, include_internal=internal)]
    emit(st, {"institution": st.institution, "accounts": docs}, lambda: out.print(table(
        f"Accounts of {st.institution}",
        ["Id", "Role", "Holder", "Product", "Status", "Currency", "Posted", "Available"],
        [[d["id"], d["role"], d["holder"], d["product"], d["status"], d["currency"], d["posted"],
          d["available"]] for d in docs])))


@app.command("show")
@command
def show(ctx: typer.Context, account_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Show one account (a customer's, or the institution's own: see account list --internal).

    Example: bank account show acc_1a2b3c4d5e6f
    """
    st = state(ctx)
    record, balance = st.service.account(st.institution, account_id, internal_ok=True)
    doc = {**account_doc(record, balance), "role": record.role}
    emit(st, doc, lambda: out.print(table(None, ["Field", "Value"], [[k, v] for k, v in doc.items()])))


def _status(ctx: typer.Context, account_id: str, status: str, verb: str) -> None:
    st = state(ctx)
    record = st.service.set_account_status(st.institution, account_id, status, st.who)
    emit(st, {"id": record.id, "status": record.status},
         lambda: out.print(f"{record.id} {verb} at {record.institution_id}", highlight=False))


@app.command("freeze")
@command
def freeze(ctx: typer.Context, account_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Freeze an account (policies decide what a frozen account may do).

    Example: bank account freeze acc_1a2b3c4d5e6f
    """
    _status(ctx, account_id, "frozen", "frozen")


@app.command("unfreeze")
@command
def unfreeze(ctx: typer.Context, account_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Unfreeze a frozen account.

    Example: bank account unfreeze acc_1a2b3c4d5e6f
    """
    _status(ctx, account_id, "open", "unfrozen")


@app.command("close")
@command
def close(ctx: typer.Context, account_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Close an account; only at zero balance with no holds.

    Example: bank account close acc_1a2b3c4d5e6f
    """
    _status(ctx, account_id, "closed", "closed")
