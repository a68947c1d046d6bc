"""``bank init`` and ``bank db``: the schema and the default institution."""

from __future__ import annotations

import typer

from bank_cli.state import command, emit, out, state

app = typer.Typer(help="Database schema (alembic migrations).\n\n"
                       "Example: bank --db sqlite:///bank.db db current",
                  no_args_is_help=True)


@command
def init(
    ctx: typer.Context,
    default_institution: bool = typer.Option(
        False, "--default-institution",
        help="Also create the permissive 'default' institution (no fees, no limits but no "
             "overdraft, auto-approve): for trying the engine out, not for a real bank."),
) -> None:
    """Create or upgrade the database. Institutions come from `bank profile apply`.

    Example: bank init --db /var/lib/bank/bank.db
    """
    from bank_core.errors import NotFound
    from bank_core.profile import DEFAULT_PROFILE

    st = state(ctx)
    st.creating = True
    svc = st.service  # building it creates or upgrades the schema to head
    created = False
    if default_institution:
        try:
            svc.read(lambda conn: svc.institution(conn, DEFAULT_PROFILE["id"]))
        except NotFound:
            svc.apply_profile(DEFAULT_PROFILE, st.who)
            created = True
    url = svc.engine.url.render_as_string(hide_password=True)
    ids = [row["id"] for row in svc.institutions()]
    hint = "" if ids else "; next: bank profile apply PROFILE.toml"
    emit(st, {"database": url, "default_institution_created": created, "institutions": ids},
         lambda: out.print(f"database ready: {url}" + (" (default institution created)" if created else "")
                           + (f"; institutions: {', '.join(ids)}" if ids else hint), highlight=False))


@app.command("upgrade")
@command
def upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration (also done automatically on start).

    Example: bank --db postgresql://postgres@127.0.0.1/bank db upgrade
    """
    from bank_core.storage import migrate
    from bank_core.storage.engine import make_engine

    st = state(ctx)
    engine = make_engine(st.existing_url())
    migrate.upgrade(engine)
    revision = migrate.current_revision(engine)
    emit(st, {"revision": revision}, lambda: out.print(f"schema at revision {revision}"))


@app.command("current")
@command
def current(ctx: typer.Context) -> None:
    """Show the schema revision of the database and the newest one known.

    Example: bank db current
    """
    from bank_core.storage import migrate
    from bank_core.storage.engine import make_engine

    st = state(ctx)
    engine = make_engine(st.existing_url())
    doc = {"current": migrate.current_revision(engine), "head": migrate.head_revision()}
    emit(st, doc, lambda: out.print(f"current {doc['current']}, head {doc['head']}"))
