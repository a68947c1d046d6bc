"""``bank profile``: apply, list, show and choose institutions' profiles."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bank_cli.state import command, emit, out, read_config, state, table, write_config

app = typer.Typer(help="Bank profiles: which policy drivers an institution runs.\n\n"
                       "Example: bank profile apply policies/harbor/harbor_policies/profile.toml",
                  no_args_is_help=True)


@app.command("apply")
@command
def apply(ctx: typer.Context, file: Path = typer.Argument(..., metavar="FILE")) -> None:
    """Validate a profile TOML whole, then create the institution or add a version.

    Nothing is applied if any problem is found; every problem is listed with its place.

    Example: bank profile apply policies/northwind/northwind_policies/profile.toml
    """
    from bank_core.profile import read_toml

    st = state(ctx)
    profile, version = st.service.apply_profile(read_toml(file), st.who)
    emit(st, {"institution": profile.id, "version": version},
         lambda: out.print(f"applied {profile.id} profile version {version}", highlight=False))


@app.command("list")
@command
def list_profiles(ctx: typer.Context) -> None:
    """List institutions and their active profile versions.

    Example: bank profile list
    """
    st = state(ctx)
    rows = st.service.institutions()
    active = st.chosen or (rows[0]["id"] if len(rows) == 1 else None)
    emit(st, {"active": active, "institutions": rows}, lambda: out.print(table(
        "Institutions", ["Active", "Id", "Name", "Currency", "Timezone", "Profile version"],
        [["*" if r["id"] == active else "", r["id"], r["name"], r["currency"], r["timezone"],
          r["profile_version"]] for r in rows])))


@app.command("show")
@command
def show(ctx: typer.Context, institution: str = typer.Argument(None, metavar="[ID]")) -> None:
    """Show an institution's active profile (default: the active institution).

    Example: bank profile show northwind
    """
    st = state(ctx)
    inst = institution or st.institution
    profile = st.service.read(lambda conn: st.service.profile(conn, inst))
    doc = json.loads(profile.document())
    emit(st, doc, lambda: out.print_json(data=doc))


@app.command("use")
@command
def use(ctx: typer.Context, institution: str = typer.Argument(..., metavar="ID")) -> None:
    """Make ID the active institution (stored in your configuration).

    --profile and BANK_PROFILE still override it for one command.

    Example: bank profile use harbor
    """
    st = state(ctx)
    st.service.read(lambda conn: st.service.institution(conn, institution))  # must exist
    config = read_config()
    config["profile"] = institution
    path = write_config(config)
    emit(st, {"active": institution, "config": str(path)},
         lambda: out.print(f"active institution: {institution} (saved in {path})", highlight=False))
