"""``bank demo``: a scripted day at two institutions (filled in with issue 3)."""

from __future__ import annotations

import typer

from bank_cli.state import command


@command
def demo(ctx: typer.Context) -> None:
    """Run a scripted day on a fresh SQLite file."""
    raise NotImplementedError("demo comes next")
