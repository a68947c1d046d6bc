"""``bank txn``: move money, inspect decisions, approve or reject holds."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import typer

from bank_cli.state import (
    EXIT_HELD,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_REJECTED,
    command,
    emit,
    fail,
    out,
    state,
    table,
)
from bank_core.messages import as_utc

app = typer.Typer(help="Transactions: deposit, withdraw, transfer, holds, reversals.\n\n"
                       "Example: bank txn transfer acc_1a2b3c4d5e6f acc_6f5e4d3c2b1a 75.50",
                  no_args_is_help=True)

STATUS_EXIT = {"posted": EXIT_OK, "held": EXIT_HELD, "rejected": EXIT_REJECTED}

REF_HELP = "Idempotency key; sending the same ref again returns the first result (default: generated)."
CHANNEL_HELP = "Channel, e.g. branch, atm, online, mobile."
# A negative amount ("-5") must reach the strict amount parser (exit 5, "amount:
# '-5' ...") instead of being taken for an unknown option (exit 2, "No such
# option: -5"). Unknown words become arguments; a real typo still fails as
# "unexpected extra argument".
MONEY_COMMAND = {"ignore_unknown_options": True}


def parse_at(value: str | None, option: str = "--at") -> datetime | None:
    """ISO-8601 with a timezone, inside the range every database holds
    (the institution's own window is checked by the kernel)."""
    from bank_core.limits import parse_time

    return None if value is None else parse_time(value, option)


def reasons_rows(reasons: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["slot"], r["driver"], r["rule"], r["outcome"], r.get("threshold"), r.get("observed"),
             r["message"]] for r in reasons]


def reasons_table(title: str, reasons: list[dict[str, Any]]) -> Any:
    return table(title, ["Slot", "Driver", "Rule", "Outcome", "Threshold", "Observed", "Message"],
                 reasons_rows(reasons))


def _submit(ctx: typer.Context, kind: str, amount: str, source: str | None, dest: str | None,
            ref: str | None, channel: str, memo: str, currency: str | None, at: str | None) -> None:
    from bank_core.messages import TxnRequest

    st = state(ctx)
    generated = ref is None
    ref = ref or "cli-" + secrets.token_hex(8)
    result = st.service.submit(TxnRequest(
        institution=st.institution, ref=ref, kind=kind, amount=amount, source=source, dest=dest,
        currency=currency, channel=channel, memo=memo, at=parse_at(at), actor=st.who))
    doc = result.model_dump(mode="json")

    def human() -> None:
        if generated:
            out.print(f"ref: {ref}", highlight=False)
        out.print(f"{result.status} {result.txn_id}: {result.kind} {result.amount} {result.currency}"
                  f" (fee {result.fee_total} {result.currency}) at {result.institution}", highlight=False)
        if result.status != "posted":
            out.print(f"reason: {result.code}", highlight=False)
            shown = [r for r in result.reasons if r["outcome"] in ("fail", "reject", "review", "fault")]
            out.print(reasons_table("Why", shown))
        for bal in result.balances:
            out.print(f"{bal.account}: posted {bal.posted} available {bal.available} {bal.currency}",
                      highlight=False)

    emit(st, doc, human)
    raise typer.Exit(STATUS_EXIT[result.status])


@app.command("deposit", context_settings=MONEY_COMMAND)
@command
def deposit(
    ctx: typer.Context,
    account: str = typer.Argument(..., metavar="ACCOUNT"),
    amount: str = typer.Argument(..., metavar="AMOUNT", help="Major units as text, e.g. 100.00"),
    ref: str = typer.Option(None, "--ref", help=REF_HELP),
    channel: str = typer.Option("branch", "--channel", help=CHANNEL_HELP),
    memo: str = typer.Option("", "--memo"),
    currency: str = typer.Option(None, "--currency", help="Must match the account's currency."),
    at: str = typer.Option(None, "--at", help="Transaction time, ISO-8601 with timezone (default: now)."),
) -> None:
    """Deposit cash into an account. Exit 0 posted, 3 held, 4 rejected.

    Example: bank txn deposit acc_1a2b3c4d5e6f 250.00 --ref dep-0001
    """
    _submit(ctx, "deposit", amount, None, account, ref, channel, memo, currency, at)


@app.command("withdraw", context_settings=MONEY_COMMAND)
@command
def withdraw(
    ctx: typer.Context,
    account: str = typer.Argument(..., metavar="ACCOUNT"),
    amount: str = typer.Argument(..., metavar="AMOUNT", help="Major units as text, e.g. 40.00"),
    ref: str = typer.Option(None, "--ref", help=REF_HELP),
    channel: str = typer.Option("branch", "--channel", help=CHANNEL_HELP),
    memo: str = typer.Option("", "--memo"),
    currency: str = typer.Option(None, "--currency", help="Must match the account's currency."),
    at: str = typer.Option(None, "--at", help="Transaction time, ISO-8601 with timezone (default: now)."),
) -> None:
    """Withdraw cash from an account. Exit 0 posted, 3 held, 4 rejected.

    Example: bank txn withdraw acc_1a2b3c4d5e6f 40.00 --channel atm
    """
    _submit(ctx, "withdrawal", amount, account, None, ref, channel, memo, currency, at)


@app.command("transfer", context_settings=MONEY_COMMAND)
@command
def transfer(
    ctx: typer.Context,
    source: str = typer.Argument(..., metavar="FROM"),
    dest: str = typer.Argument(..., metavar="TO"),
    amount: str = typer.Argument(..., metavar="AMOUNT", help="Major units as text, e.g. 75.50"),
    ref: str = typer.Option(None, "--ref", help=REF_HELP),
    channel: str = typer.Option("branch", "--channel", help=CHANNEL_HELP),
    memo: str = typer.Option("", "--memo"),
    currency: str = typer.Option(None, "--currency", help="Must match both accounts' currency."),
    at: str = typer.Option(None, "--at", help="Transaction time, ISO-8601 with timezone (default: now)."),
) -> None:
    """Transfer between two accounts of the institution. Exit 0 posted, 3 held, 4 rejected.

    Example: bank txn transfer acc_1a2b3c4d5e6f acc_6f5e4d3c2b1a 75.50 --memo rent
    """
    _submit(ctx, "transfer", amount, source, dest, ref, channel, memo, currency, at)


@app.command("show")
@command
def show(ctx: typer.Context, txn_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Show a transaction as it stands now.

    Example: bank txn show txn_0123456789abcdef0123
    """
    st = state(ctx)
    doc = st.service.txn(st.institution, txn_id)
    plain = {k: v for k, v in doc.items() if k not in ("reasons", "fees")}
    emit(st, doc, lambda: out.print(table(None, ["Field", "Value"], [[k, v] for k, v in plain.items()])))


TXN_COLUMNS = ["txn_id", "ref", "kind", "status", "amount", "currency", "fee_total", "source", "dest",
               "channel", "memo", "code", "at", "decided_at"]


def time_bound(value: str | None, option: str, tz_name: str, end: bool) -> datetime | None:
    """--from/--to: a date (the institution's local day; --to inclusive) or an ISO-8601 time."""
    from bank_core.limits import parse_date, parse_time
    from bank_core.reports import local_day

    if value is None:
        return None
    if "T" in value or " " in value.strip():
        return parse_time(value, option)
    day = parse_date(value, option)
    return local_day(tz_name, day)[1 if end else 0]


@app.command("list")
@command
def list_txns(
    ctx: typer.Context,
    account: str = typer.Option(None, "--account", help="Only this account's transactions."),
    status: str = typer.Option(None, "--status", help="posted, held, rejected, released or expired."),
    kind: str = typer.Option(None, "--kind", help="deposit, withdrawal, transfer or reversal."),
    ref: str = typer.Option(None, "--ref", help="Only the transaction with this idempotency key."),
    date_from: str = typer.Option(None, "--from", help="From this day (institution's timezone) or time."),
    date_to: str = typer.Option(None, "--to", help="To this day (inclusive) or time (exclusive)."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    limit: int = typer.Option(100, "--limit", min=1, max=100_000),
) -> None:
    """List transactions, newest first (an institution-wide export with --format csv).

    Example: bank txn list --status held --from 2026-11-01 --to 2026-11-30 --format csv
    """
    import csv
    import io
    import json
    import sys

    from bank_core.reports import KINDS, STATUSES, find_txns

    st = state(ctx)
    for option, value, allowed in (("--status", status, STATUSES), ("--kind", kind, KINDS),
                                   ("--format", fmt, ("table", "csv", "json"))):
        if value is not None and value not in allowed:
            fail(EXIT_INVALID, f"{option}: {value!r} is not one of {', '.join(allowed)}")
    tz_name = (st.service.read(lambda conn: st.service.institution(conn, st.institution)).timezone
               if date_from or date_to else "UTC")
    start = time_bound(date_from, "--from", tz_name, end=False)
    end = time_bound(date_to, "--to", tz_name, end=True)
    if start is not None and end is not None and start >= end:
        fail(EXIT_INVALID, f"--from {date_from} is not before --to {date_to}")
    docs = find_txns(st.service, st.institution, account=account, status=status, kind=kind, ref=ref,
                     start=start, end=end, limit=limit)
    if st.json or fmt == "json":
        sys.stdout.write(json.dumps({"institution": st.institution, "transactions": docs}, indent=2) + "\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(TXN_COLUMNS)
        writer.writerows([[d[c] for c in TXN_COLUMNS] for d in docs])
        sys.stdout.write(buffer.getvalue())
    else:
        out.print(table(f"Transactions of {st.institution}",
                        ["Id", "Kind", "Status", "Amount", "Fee", "From", "To", "Code", "At"],
                        [[d["txn_id"], d["kind"], d["status"], f"{d['amount']} {d['currency']}", d["fee_total"],
                          d["source"], d["dest"], d["code"], d["at"]] for d in docs]))


@app.command("explain")
@command
def explain(ctx: typer.Context, txn_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Every driver's answer for a transaction: rule, threshold, observed value.

    Example: bank txn explain txn_0123456789abcdef0123
    """
    st = state(ctx)
    doc = st.service.txn(st.institution, txn_id)
    trail = [{"seq": e.seq, "at": as_utc(e.at).isoformat(), "actor": e.actor, "action": e.action}
             for e in st.service.audit_log(st.institution, subject=txn_id, limit=None)]
    document = {"txn_id": txn_id, "status": doc["status"], "code": doc["code"],
                "profile_version": doc["profile_version"], "reasons": doc["reasons"],
                "fees": doc["fees"], "audit": trail}

    def human() -> None:
        out.print(f"{txn_id}: {doc['status']} (decided by profile version {doc['profile_version']}, "
                  f"code {doc['code']})", highlight=False)
        out.print(reasons_table("Driver answers", doc["reasons"]))
        for entry in trail:
            out.print(f"audit #{entry['seq']} {entry['at']} {entry['actor']}: {entry['action']}",
                      highlight=False)

    emit(st, document, human)


@app.command("approve")
@command
def approve(ctx: typer.Context, txn_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Approve a held transaction (four-eyes: not by its initiator).

    Limits and rejecting approval rules (a frozen account) are re-checked at this moment;
    a hold past the profile's hold_expiry_hours is released instead.

    Example: BANK_ACTOR=bob bank txn approve txn_0123456789abcdef0123
    """
    st = state(ctx)
    outcome = st.service.holds.approve(st.institution, txn_id, st.who)
    emit(st, {"txn_id": outcome.txn_id, "status": outcome.status, "message": outcome.message},
         lambda: out.print(f"{outcome.message} (at {st.institution})", highlight=False))


@app.command("reject")
@command
def reject(
    ctx: typer.Context,
    txn_id: str = typer.Argument(..., metavar="ID"),
    reason: str = typer.Option(..., "--reason", help="Why; recorded in the audit log."),
) -> None:
    """Reject a held transaction and release its funds.

    Example: bank txn reject txn_0123456789abcdef0123 --reason "customer did not confirm"
    """
    st = state(ctx)
    outcome = st.service.holds.reject(st.institution, txn_id, st.who, reason)
    emit(st, {"txn_id": outcome.txn_id, "status": outcome.status, "message": outcome.message},
         lambda: out.print(f"{outcome.message} (at {st.institution})", highlight=False))


@app.command("reverse")
@command
def reverse(
    ctx: typer.Context,
    txn_id: str = typer.Argument(..., metavar="ID"),
    memo: str = typer.Option("", "--memo"),
) -> None:
    """Reverse a posted transaction with a new, linked transaction (once only).

    Example: bank txn reverse txn_0123456789abcdef0123 --memo "duplicate charge"
    """
    st = state(ctx)
    view = st.service.holds.reverse(st.institution, txn_id, st.who, memo)
    emit(st, view, lambda: out.print(f"{view['txn_id']} reverses {txn_id} at {st.institution}", highlight=False))


@app.command("expire")
@command
def expire(
    ctx: typer.Context,
    as_of: str = typer.Option(None, "--as-of", help="Treat this ISO-8601 time as now (default: now)."),
) -> None:
    """Release holds older than the profile's hold_expiry_hours.

    Example: bank txn expire
    """
    st = state(ctx)
    released = st.service.holds.expire(st.institution, st.who, parse_at(as_of, "--as-of"))
    emit(st, {"expired": released},
         lambda: out.print(f"expired {len(released)} hold(s) at {st.institution}"
                           + (": " + ", ".join(released) if released else ""), highlight=False))


from bank_cli.process import process  # noqa: E402 - registered after the group exists

app.command("process")(process)
