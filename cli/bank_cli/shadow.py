"""``bank profile shadow`` and ``bank profile promote``: a candidate profile
evaluated beside the live one on every new transaction, its report, and
making it live (registered on the ``bank profile`` group)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from bank_cli.profiles import YES, app, apply_document
from bank_cli.simulate import CHANGES_OUT, FROM_TIME, TO_TIME, Changes, print_report
from bank_cli.state import batch_gc, command, emit, out, state
from bank_cli.txns import time_bound

ACTIONS = ("report", "stop")


@app.command("shadow")
@command
def shadow(
    ctx: typer.Context,
    target: str = typer.Argument(None, metavar="[FILE|report|stop]"),
    date_from: str = FROM_TIME,  # --from, --to, --out: for `report` only
    date_to: str = TO_TIME,
    out_path: Path = CHANGES_OUT,
) -> None:
    """Run a candidate profile beside the live one, report on it, stop it.

    `shadow FILE` validates FILE like `profile apply` and installs it as the
    shadow (replacing a running one): every new transaction (commands, files,
    the HTTP API) is decided by the live profile, then by the shadow on the
    same context; the shadow's decision is stored and moves no money.
    `shadow report` prints the `profile simulate` report for the transactions
    the running (or last) shadow decided: live decision before, shadow after.
    `shadow stop` stops it; `shadow` alone shows it. (A file named like an
    action: write ./report.)

    Example: bank --profile northwind profile shadow candidate.toml
    """
    from bank_core import shadow as shadows
    from bank_core.errors import InvalidRequest

    st = state(ctx)
    inst = st.institution
    report_options = date_from is not None or date_to is not None or out_path is not None
    if report_options and target != "report":
        raise InvalidRequest("--from, --to and --out go with `bank profile shadow report`")
    if target == "report":
        _report(st, inst, date_from, date_to, out_path)
    elif target == "stop":
        number = shadows.stop(st.service, inst, st.who)
        emit(st, {"institution": inst, "shadow": number, "stopped": True},
             lambda: out.print(f"stopped shadow {number} of {inst}", highlight=False))
    elif target is None:
        found = shadows.status(st.service, inst)
        emit(st, found, lambda: out.print(
            f"shadow {found['shadow']} of {inst}: {'running' if found['running'] else 'stopped'}, "
            f"installed {found['installed_at']} by {found['installed_by']}, "
            f"{found['decided']} transactions decided", highlight=False))
    else:
        _install(st, inst, Path(target))


def _install(st: Any, inst: str, file: Path) -> None:
    from bank_core import shadow as shadows
    from bank_core.errors import InvalidRequest
    from bank_core.profile import read_toml

    document = read_toml(file)
    if isinstance(document.get("id"), str) and document["id"] != inst:
        raise InvalidRequest(f"{file}: is the profile of {document['id']!r}, not of {inst!r}")
    _profile, number, replaced = shadows.install(st.service, document, st.who)

    def human() -> None:
        if replaced is not None:
            out.print(f"stopped shadow {replaced}", highlight=False)
        out.print(f"installed {file} as shadow {number} of {inst}; "
                  "see `bank profile shadow report`", highlight=False)

    emit(st, {"institution": inst, "shadow": number, "replaced": replaced}, human)


def _report(st: Any, inst: str, date_from: str | None, date_to: str | None, out_path: Path | None) -> None:
    from bank_core import shadow as shadows

    tz_name = st.service.read(lambda conn: st.service.institution(conn, inst)).timezone
    start = time_bound(date_from, "--from", tz_name, end=False)
    end = time_bound(date_to, "--to", tz_name, end=True)
    changes = Changes(out_path)
    batch_gc()
    complete = False
    try:
        report = shadows.report(st.service, inst, start=start, end=end, on_change=changes.add)
        complete = True
    finally:
        changes.close(complete)
    report["out"] = str(out_path) if out_path else None
    emit(st, report, lambda: print_report(report, f"shadowed by shadow {report['shadow']}"))


@app.command("promote")
@command
def promote(ctx: typer.Context, yes: bool = YES) -> None:
    """Apply the running shadow profile as the new live version, and stop it.

    Validated and confirmed exactly like `bank profile apply` (a question on
    a terminal, --yes to skip it).

    Example: bank --profile northwind profile promote --yes
    """
    from bank_core import shadow as shadows

    st = state(ctx)
    apply_document(st, shadows.document(st.service, st.institution), yes, promote=True)
