"""``bank audit``: verify the hash chain, read the log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from bank_cli.state import EXIT_INTEGRITY, command, emit, err, out, state, table
from bank_core.errors import InvalidRequest
from bank_core.messages import as_utc

app = typer.Typer(help="The append-only, hash-chained audit log.\n\n"
                       "Example: bank --profile northwind audit verify",
                  no_args_is_help=True)


ENV_SIGNING_KEY = "BANK_AUDIT_SIGNING_KEY"
ENV_PUBLIC_KEY = "BANK_AUDIT_PUBLIC_KEY"
UNKEYED = ("without a public key (--public-key or BANK_AUDIT_PUBLIC_KEY) verify detects only changes "
           "made without recomputing hashes: a chain rewritten, renumbered, truncated or emptied with "
           "its hashes recomputed is caught only against signed checkpoints")


@app.command("verify")
@command
def verify(
    ctx: typer.Context,
    public_key: Path = typer.Option(None, "--public-key", envvar=ENV_PUBLIC_KEY,
                                    help="Ed25519 public key (PEM): check every stored checkpoint's "
                                         "signature and that the chain passes through it."),
    checkpoint: Path = typer.Option(None, "--checkpoint",
                                    help="A checkpoint file (`bank audit checkpoint --out`): check the "
                                         "database still contains that head."),
) -> None:
    """Verify the audit chain and the money it records; exit 1 naming what failed and where.

    Checks every entry's hash and link; every transaction's row and postings
    against its decision record in the chain; postings summing to zero and
    matching amount and fees; status against postings; every balance
    (posted and pending) against its postings and open holds; each
    currency's accounts summing to zero. Prints the rate.

    Example: bank --profile northwind audit verify --public-key keys/audit-public-key.pem
    """
    st = state(ctx)
    report = st.service.verify_integrity(st.institution, public_key=public_key, checkpoint=checkpoint)
    chain = report.chain
    doc = {"institution": st.institution, "ok": report.ok, "entries": chain.entries,
           "first_bad_seq": chain.first_bad_seq, "problem": report.verdict().problem,
           "transactions": report.txns, "seconds": round(report.seconds, 3),
           "transactions_per_second": round(report.rate), "processes": report.processes,
           "checkpoints": {"stored": report.stored_checkpoints, "anchors": report.anchors,
                           "public_key": report.keyed},
           "problems": [{"check": p.check, "where": p.where, "message": p.message}
                        for p in report.problems]}
    if report.ok:
        emit(st, doc, lambda: _print_ok(report, checkpoint is not None))
        return
    emit(st, doc, lambda: [out.print(f"{p.line()}", markup=False, highlight=False)
                           for p in report.problems[1:]])
    if not chain.ok:
        line = f"audit chain broken at entry {chain.first_bad_seq}: {chain.problem}"
    else:
        line = f"ledger does not verify: {report.problems[0].line()}"
    err.print(f"error: {line}", markup=False, highlight=False)
    raise typer.Exit(EXIT_INTEGRITY)


def _print_ok(report, exported: bool) -> None:  # type: ignore[no-untyped-def]
    out.print(f"audit chain OK: {report.chain.entries} entries", highlight=False)
    out.print(f"ledger OK: {report.txns} transactions, their postings, every balance and the "
              "institution's totals agree with the chain", highlight=False)
    out.print(f"verified {report.txns} transactions in {report.seconds:.3f} s "
              f"({report.rate:,.0f} transactions/s)", highlight=False)
    if report.keyed:
        out.print(f"signed checkpoints OK: {report.stored_checkpoints} stored"
                  + (", and the exported one" if exported else "")
                  + "; the chain passes through every signed head", highlight=False)
    else:
        if exported:
            out.print("the exported checkpoint's head is in the chain (its signature was not checked: "
                      "no public key)", highlight=False)
        out.print(f"note: {UNKEYED}", highlight=False)


@app.command("keygen")
@command
def keygen(ctx: typer.Context,
           directory: Path = typer.Option(..., "--dir", help="Where to write the key pair "
                                                             "(keep it outside the database).")) -> None:
    """Make an Ed25519 key pair for signed checkpoints.

    Writes audit-signing-key.pem (owner-only) and audit-public-key.pem;
    never overwrites a key.

    Example: bank audit keygen --dir /secure/bank-keys
    """
    from bank_audit.signing import keygen as make_keys

    st = state(ctx)
    private, public = make_keys(directory)
    emit(st, {"signing_key": str(private), "public_key": str(public)}, lambda: out.print(
        f"signing key: {private}\npublic key: {public}\n"
        f"export {ENV_SIGNING_KEY}={private} to sign, {ENV_PUBLIC_KEY}={public} to verify",
        highlight=False, markup=False))


@app.command("checkpoint")
@command
def checkpoint(ctx: typer.Context,
               out_file: Path = typer.Option(None, "--out", help="Also write the checkpoint to "
                                                                 "this file (keep it elsewhere).")) -> None:
    """Sign the chain's head (institution, sequence, hash, time) and store it.

    The key is the file BANK_AUDIT_SIGNING_KEY names.

    Example: BANK_AUDIT_SIGNING_KEY=keys/audit-signing-key.pem bank audit checkpoint --out head.json
    """
    st = state(ctx)
    doc = write_checkpoint(st, out_file, required=True)
    emit(st, doc, lambda: out.print(f"checkpoint of {doc['institution']} at entry {doc['seq']} "
                                    f"({doc['hash'][:12]}) signed by key {doc['key_id']}"
                                    + (f"; written to {out_file}" if out_file else ""), highlight=False))


def write_checkpoint(st, out_file: Path | None = None, *, required: bool = False):  # type: ignore[no-untyped-def]
    """Sign and store a checkpoint if a signing key is configured (``txn
    process`` calls this after every file); None when none is."""
    key = os.environ.get(ENV_SIGNING_KEY)
    if not key:
        if required:
            raise InvalidRequest(f"{ENV_SIGNING_KEY} must name the signing key file "
                                 "(make one with `bank audit keygen --dir DIR`)")
        return None
    doc = st.service.audit_checkpoint(st.institution, Path(key))
    if out_file is not None:
        out_file.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


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
