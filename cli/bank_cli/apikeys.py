"""``bank apikey``: the API keys of the HTTP adapter (``bank serve``)."""

from __future__ import annotations

import typer

from bank_cli.state import command, emit, err, out, state, table

app = typer.Typer(help="API keys for `bank serve`: one institution and one role each.\n\n"
                       "Example: bank apikey create --institution northwind --role teller --name alice",
                  no_args_is_help=True)


def _store(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from bank_http.keys import KeyStore

    return KeyStore(state(ctx).service)


@app.command("create")
@command
def create(
    ctx: typer.Context,
    institution: str = typer.Option(..., "--institution", help="The institution the key acts in."),
    role: str = typer.Option(..., "--role", help="teller, supervisor, auditor or admin."),
    name: str = typer.Option(..., "--name", help="The person: the actor of everything the key does."),
) -> None:
    """Create a key and print its secret, once (only a slow salted hash is stored).

    Example: bank apikey create --institution northwind --role supervisor --name bob
    """
    st = state(ctx)
    doc, secret = _store(ctx).create(institution, role=role, name=name, actor=st.who)

    def human() -> None:
        out.print(secret, highlight=False)
        err.print(f"created {doc['id']} ({doc['role']} {doc['name']!r} of {doc['institution']}); "
                  "the secret above is shown only this once", markup=False, highlight=False)

    emit(st, {**doc, "secret": secret}, human)


@app.command("list")
@command
def list_keys(
    ctx: typer.Context,
    institution: str = typer.Option(None, "--institution", help="Only this institution's keys."),
) -> None:
    """List keys (never their secrets).

    Example: bank apikey list --institution northwind
    """
    st = state(ctx)
    docs = _store(ctx).list(institution)
    emit(st, {"keys": docs}, lambda: out.print(table(
        "API keys", ["Id", "Institution", "Role", "Name", "Status", "Created"],
        [[d["id"], d["institution"], d["role"], d["name"], d["status"], d["created_at"]] for d in docs])))


@app.command("revoke")
@command
def revoke(ctx: typer.Context, key_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Revoke a key: every request with it answers 401 from now on.

    Example: bank apikey revoke key_0123456789abcdef
    """
    st = state(ctx)
    doc = _store(ctx).revoke(key_id, actor=st.who)
    emit(st, doc, lambda: out.print(f"{doc['id']} revoked", highlight=False))
