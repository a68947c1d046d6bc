"""``bank profile simulate``: what a candidate profile would have done to the
institution's past traffic (registered on the ``bank profile`` group)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from bank_cli.outfile import CompletedFile
from bank_cli.profiles import app
from bank_cli.state import EXIT_INVALID, batch_gc, command, emit, fail, out, state, table
from bank_cli.txns import time_bound

# The window and changes file of `profile simulate` and `profile shadow report`.
FROM_TIME = typer.Option(None, "--from", metavar="TIME",
                         help="From this day (institution's timezone) or time (default: the first request).")
TO_TIME = typer.Option(None, "--to", metavar="TIME",
                       help="To this day (inclusive) or time (exclusive; default: now).")
CHANGES_OUT = typer.Option(None, "--out", metavar="CHANGES.jsonl",
                           help="One JSON line per row whose outcome or fees changed.")


@app.command("simulate")
@command
def simulate(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE"),
    date_from: str = FROM_TIME,
    date_to: str = TO_TIME,
    out_path: Path = CHANGES_OUT,
) -> None:
    """Replay past requests through a candidate profile; nothing live is written.

    Every request the institution received in the window is decided again, in
    its original order and at its original time, through the candidate, on a
    scratch copy of the ledger as it stood at the window's start; approvals,
    rejections, expiries and reversals are replayed where they still apply.
    Prints the outcome matrix, fees before and after (total, by rule), how
    often each rule fired, and the ten accounts whose fees changed most.

    Example: bank --profile northwind profile simulate candidate.toml --from 2026-11-01 --to 2026-11-30 --out changes.jsonl
    """
    from bank_core.errors import InvalidRequest
    from bank_core.profile import read_toml
    from bank_core.simulate import simulate as run

    st = state(ctx)
    inst = st.institution
    document = read_toml(file)
    if isinstance(document.get("id"), str) and document["id"] != inst:
        raise InvalidRequest(f"{file}: is the profile of {document['id']!r}, not of {inst!r}")
    tz_name = st.service.read(lambda conn: st.service.institution(conn, inst)).timezone
    start = time_bound(date_from, "--from", tz_name, end=False)
    end = time_bound(date_to, "--to", tz_name, end=True)
    changes = Changes(out_path)
    batch_gc()
    started = time.perf_counter()
    complete = False
    try:
        if sys.stderr.isatty() and not st.json:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), transient=True) as bar:
                task = bar.add_task("simulating", total=None)
                sim = run(st.service, document, start=start, end=end, on_change=changes.add,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))
        else:
            sim = run(st.service, document, start=start, end=end, on_change=changes.add)
        complete = True
    finally:
        changes.close(complete)
    report = sim.report()
    elapsed = time.perf_counter() - started
    report["elapsed_s"] = round(elapsed, 3)
    report["rows_per_s"] = int(report["rows"] / elapsed) if elapsed > 0 else None
    report["out"] = str(out_path) if out_path else None
    emit(st, report, lambda: print_report(report, "replayed"))


class Changes:
    """The --out file: one JSON line per changed row, in place only when the run completes."""

    def __init__(self, path: Path | None) -> None:
        if path is not None and (path.is_dir() or not path.resolve().parent.is_dir()):
            fail(EXIT_INVALID, f"--out: {path} is a directory or in a directory that does not exist")
        try:
            self.file = CompletedFile(path)
        except OSError as exc:
            fail(EXIT_INVALID, f"--out: cannot write {path}: {exc.strerror}")

    def add(self, change: dict[str, Any]) -> None:
        self.file.write(json.dumps(change, ensure_ascii=False, separators=(",", ":")) + "\n")

    def close(self, complete: bool) -> None:
        self.file.close(complete, discard=True)


def print_report(report: dict[str, Any], done: str) -> None:
    """The report of ``profile simulate`` (``done``: "replayed") and of
    ``profile shadow report`` ("shadowed")."""
    window = f"{report['from'] or 'the beginning'} to {report['to'] or 'now'}"
    speed = (f"; {report['elapsed_s']:.2f} s, {report['rows_per_s']} rows/s"
             if "elapsed_s" in report else "")
    out.print(f"{report['institution']}: {report['rows']} rows {done} ({window}), "
              f"{report['changed']} changed{speed}", highlight=False)
    matrix = report["outcomes"]
    afters = list(next(iter(matrix.values())))
    out.print(table("Outcomes (before \u2193, after \u2192)", ["Before", *afters],
                    [[b, *row.values()] for b, row in matrix.items()]))
    fees = [["total", f["currency"], f["before"], f["after"], f["change"]] for f in report["fees"]]
    fees += [[f["rule"], f["currency"], f["before"], f["after"], f["change"]] for f in report["fees_by_rule"]]
    out.print(table("Fees", ["Rule", "Currency", "Before", "After", "Change"], fees))
    out.print(table("Rules fired", ["Rule", "Before", "After"],
                    [[r["rule"], r["before"], r["after"]] for r in report["rules_fired"]]))
    if report["accounts"]:
        out.print(table("Accounts whose fees changed most", ["Account", "Currency", "Before", "After", "Change"],
                        [[a["account"], a["currency"], a["before"], a["after"], a["change"]]
                         for a in report["accounts"]]))
    actions = report.get("actions")
    if actions is None:
        return
    out.print(f"people's actions replayed: {actions['applied']}; no longer apply: {len(actions['not_applied'])}",
              highlight=False)
    for item in actions["not_applied"]:
        out.print(f"  {item['action']} {item['txn_id']} at {item['at']} by {item['actor']}: {item['reason']}",
                  markup=False, highlight=False)
