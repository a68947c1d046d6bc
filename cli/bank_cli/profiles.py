"""``bank profile``: apply, list, show and choose institutions' profiles."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from bank_cli.state import EXIT_OK, command, emit, out, read_config, state, table, write_config

app = typer.Typer(help="Bank profiles: which policy drivers an institution runs.\n\n"
                       "Example: bank profile apply policies/harbor/harbor_policies/profile.toml",
                  no_args_is_help=True)


def flatten(document: Any, prefix: str = "") -> dict[str, Any]:
    """``{"fee[0].params.max": "25.00", ...}``: every leaf of a profile by its place."""
    if isinstance(document, dict) and document:
        return {k: v for key, value in document.items()
                for k, v in flatten(value, f"{prefix}.{key}" if prefix else key).items()}
    if isinstance(document, list) and document:
        return {k: v for index, value in enumerate(document)
                for k, v in flatten(value, f"{prefix}[{index}]").items()}
    return {prefix: document} if prefix else {}


def profile_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[dict[str, Any]]:
    """What applying ``new`` changes against the active ``old`` (None: all new)."""
    before, after = flatten(old or {}), flatten(new)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if key not in before:
            changes.append({"change": "added", "key": key, "new": after[key]})
        elif key not in after:
            changes.append({"change": "removed", "key": key, "old": before[key]})
        elif before[key] != after[key]:
            changes.append({"change": "changed", "key": key, "old": before[key], "new": after[key]})
    return changes


def change_line(change: dict[str, Any]) -> str:
    mark = {"added": "+", "removed": "-", "changed": "~"}[change["change"]]
    if change["change"] == "changed":
        return f"{mark} {change['key']}: {json.dumps(change['old'])} -> {json.dumps(change['new'])}"
    return f"{mark} {change['key']}: {json.dumps(change.get('new', change.get('old')))}"


YES = typer.Option(False, "--yes", "-y", help="Apply without asking (on a terminal).")


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


@app.command("apply")
@command
def apply(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE"),
    yes: bool = YES,
) -> None:
    """Validate a profile TOML whole, then create the institution or add a version.

    Nothing is applied if any problem is found; every problem is listed with its place.
    On a terminal, the changes against the active version are shown and confirmed
    (--yes skips the question); elsewhere they are applied and printed. A file equal to
    the active version changes nothing ("unchanged").

    Example: bank profile apply policies/northwind/northwind_policies/profile.toml
    """
    from bank_core.profile import read_toml

    st = state(ctx)
    apply_document(st, read_toml(file), yes)


def apply_document(st: Any, document: dict[str, Any], yes: bool, promote: bool = False) -> None:
    """Validate ``document``, show what it changes, confirm on a terminal
    (unless ``yes``), apply it: ``profile apply``, ``rollback`` and
    ``promote`` (which also stops the running shadow, in the same transaction)."""
    profile, active = st.service.preview_profile(document)
    st.own(profile.id, existing_only=True)  # never another institution's rules
    new = json.loads(profile.document())
    old = json.loads(active.document()) if active is not None else None
    if old == new and promote:
        from bank_core.shadow import stop

        stop(st.service, profile.id, st.who)  # the shadow is the live profile already
    if old == new:
        current = st.service.read(lambda conn: st.service.institution(conn, profile.id)).profile_version
        emit(st, {"institution": profile.id, "version": current, "unchanged": True, "changes": []},
             lambda: out.print(f"{profile.id} profile unchanged (version {current})", highlight=False))
        return
    changes = profile_changes(old, new)
    lines = [change_line(c) for c in changes] if old is not None else [f"new institution {profile.id}"]
    if interactive() and not yes and not st.json:
        for line in lines:
            out.print(line, markup=False, highlight=False)
        if not typer.confirm(f"apply these changes to {profile.id}?", default=False):
            out.print("not applied", highlight=False)
            raise typer.Exit(EXIT_OK)
        lines = []
    _, version = st.service.apply_profile(new, st.who, promote=promote)

    def human() -> None:
        for line in lines:
            out.print(line, markup=False, highlight=False)
        out.print(f"applied {profile.id} profile version {version}", highlight=False)

    emit(st, {"institution": profile.id, "version": version, "unchanged": False, "changes": changes}, human)


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
def show(ctx: typer.Context, institution: str = typer.Argument(None, metavar="[ID]"),
         version: int = typer.Option(None, "--version", metavar="N",
                                     help="An earlier version (`bank profile history` lists them).")
         ) -> None:
    """Show an institution's active profile, or version N of it (default: the active institution).

    Example: bank profile show northwind --version 2
    """
    from bank_core.profile_history import version_profile

    st = state(ctx)
    inst = st.own(institution) if institution else st.institution
    profile = st.service.read(lambda conn: version_profile(st.service, conn, inst, version))
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


from bank_cli import profile_versions, shadow, simulate  # noqa: E402,F401  (history, diff, rollback, simulate, shadow: same group)
