"""``bank serve``: the HTTP adapter (the multi-user surface).

The web framework is imported inside the command, so ``bank --help`` and
every other command start without loading it.
"""

from __future__ import annotations

import typer

from bank_cli.state import command, err, state


@command
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="TCP port to listen on."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log",
                                    help="Log one line per request (never headers or bodies)."),
    group_commit: bool = typer.Option(True, "--group-commit/--no-group-commit",
                                      help="Decide concurrent transactions of an institution together, "
                                           "as one chunk (same outcomes, far more per second)."),
    workers: int = typer.Option(1, "--workers", min=1, max=16,
                                help="Server processes on the one socket (each with its own connections)."),
) -> None:
    """Serve the JSON API (routes under /v1, OpenAPI at /openapi.json, docs at /docs).

    Every request needs an API key (bank apikey create); the key's name is the acting
    person, so --actor means nothing here. Uses the global --db.

    Example: bank --db sqlite:///bank.db serve --port 8080
    """
    from bank_http.server import serve as run

    st = state(ctx)
    service = st.service  # connect and migrate before listening
    err.print(f"bank serve: http://{host}:{port} (database "
              f"{service.engine.url.render_as_string(hide_password=True)})", markup=False, highlight=False)
    run(service, host, port, access_log=access_log, group_commit=group_commit, workers=workers)
