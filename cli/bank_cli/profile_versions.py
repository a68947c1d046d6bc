"""``bank profile history``, ``diff`` and ``rollback``: the versions of an
institution's profile (registered on the ``bank profile`` group)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from bank_cli.profiles import YES, app, apply_document
from bank_cli.state import command, emit, out, state, table


@app.command("history")
@command
def history(ctx: typer.Context) -> None:
    """List every version of the institution's profile.

    For each: when and by whom it was applied, its checksum, and how many
    transactions it decided.

    Example: bank --profile northwind profile history
    """
    from bank_core.profile_history import history as versions

    st = state(ctx)
    inst = st.institution
    rows = st.service.read(lambda conn: versions(conn, inst))
    emit(st, {"institution": inst, "versions": [r.to_dict() for r in rows]}, lambda: out.print(table(
        f"Profile versions of {inst}", ["Version", "Applied at", "By", "Checksum", "Decided", "Active"],
        [[r.version, r.applied_at.isoformat(), r.applied_by, r.checksum[:19], r.decided,
          "*" if r.active else ""] for r in rows])))


@app.command("diff")
@command
def diff(
    ctx: typer.Context,
    file: Path = typer.Argument(None, metavar="[FILE]"),
    version: int = typer.Option(None, "--version", metavar="N", help="A stored version to compare."),
) -> None:
    """Show what changes between two versions of the profile, slot by slot.

    Drivers added, removed and reordered and params changed: from the active
    version to FILE, from the active version to version N (--version N), or
    from version N to FILE (both).

    Example: bank profile diff candidate.toml
    """
    from bank_core.errors import InvalidRequest
    from bank_core.profile import read_toml
    from bank_core.profile_history import diff_lines, profile_diff, version_profile

    st = state(ctx)
    if file is None and version is None:
        raise InvalidRequest("name a profile FILE or --version N to compare with the active version")
    inst = st.institution
    if file is not None:
        candidate, _active = st.service.preview_profile(read_toml(file))
        if candidate.id != inst:
            raise InvalidRequest(f"{file}: is the profile of {candidate.id!r}, not of {inst!r}")
        new, new_name = json.loads(candidate.document()), str(file)
        old_version = version
    else:
        new = _document(st, inst, version)
        new_name, old_version = f"version {version}", None
    old = _document(st, inst, old_version)
    found = profile_diff(old, new)
    old_name = f"version {old_version}" if old_version is not None else "the active version"
    document = {"institution": inst, "from": old_name, "to": new_name, **found}

    def human() -> None:
        if not found["changed"]:
            out.print(f"no changes from {old_name} to {new_name}", highlight=False)
        for line in diff_lines(found):
            out.print(line, markup=False, highlight=False)

    emit(st, document, human)


def _document(st: Any, inst: str, version: int | None) -> dict[str, Any]:
    from bank_core.profile_history import version_profile

    profile = st.service.read(lambda conn: version_profile(st.service, conn, inst, version))
    return json.loads(profile.document())


@app.command("rollback")
@command
def rollback(
    ctx: typer.Context,
    version: int = typer.Argument(..., metavar="N"),
    yes: bool = YES,
) -> None:
    """Apply version N's content again, as a new version.

    History is never rewritten. Validated and confirmed exactly like
    `bank profile apply`.

    Example: bank --profile northwind profile rollback 2
    """
    st = state(ctx)
    apply_document(st, _document(st, st.institution, version), yes)
