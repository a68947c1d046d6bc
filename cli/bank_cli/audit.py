"""``bank audit``: verify the hash chain, read the log."""

from __future__ import annotations

import typer

from bank_cli.state import EXIT_INTEGRITY, command, emit, err, out, state, table
from bank_core.messages import as_utc

app = typer.Typer(help="The append-only, hash-chained audit log.\n\n"
                       "Example: bank --profile northwind audit verify",
                  no_args_is_help=True)


@app.command("verify")
@command
def verify(ctx: typer.Context) -> None:
    """Recompute the institution's audit chain; exit 1 naming the first bad entry.

    Example: bank --profile northwind audit verify
    """
    st = state(ctx)
    verdict = st.service.audit_verify(st.institution)
    doc = {"institution": st.institution, "ok": verdict.ok, "entries": verdict.entries,
           "first_bad_seq": verdict.first_bad_seq, "problem": verdict.problem}
    if verdict.ok:
        emit(st, doc, lambda: out.print(f"audit chain OK: {verdict.entries} entries", highlight=False))
        return
    emit(st, doc, lambda: None)
    err.print(f"error: audit chain broken at entry {verdict.first_bad_seq}: {verdict.problem}",
              markup=False, highlight=False)
    raise typer.Exit(EXIT_INTEGRITY)


@app.command("log")
@command
def log(
    ctx: typer.Context,
    txn: str = typer.Option(None, "--txn", help="Only entries about this transaction."),
    limit: int = typer.Option(50, "--limit", min=1, max=100_000, help="The newest N entries."),
) -> None:
    """Show the newest audit entries.

    Example: bank audit log --txn txn_0123456789abcdef0123
    """
    st = state(ctx)
    if txn is not None:
        st.service.txn(st.institution, txn)  # not found is an error, not an empty list
    entries = st.service.audit_log(st.institution, subject=txn, limit=limit)
    docs = [{"seq": e.seq, "at": as_utc(e.at).isoformat(), "actor": e.actor, "action": e.action,
             "subject": e.subject, "payload": e.payload, "hash": e.hash} for e in entries]
    emit(st, {"institution": st.institution, "entries": docs}, lambda: out.print(table(
        f"Audit log of {st.institution}", ["Seq", "At", "Actor", "Action", "Subject", "Hash"],
        [[d["seq"], d["at"], d["actor"], d["action"], d["subject"], d["hash"][:12]] for d in docs])))
