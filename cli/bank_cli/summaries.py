"""``bank report``: the institution-wide trial balance and daily summary."""

from __future__ import annotations

import typer

from bank_cli.state import command, emit, out, state, table

app = typer.Typer(help="Institution-wide reports.\n\nExample: bank --profile northwind report daily",
                  no_args_is_help=True)


@app.command("trial-balance")
@command
def trial_balance(
    ctx: typer.Context,
    as_of: str = typer.Option(None, "--as-of", help="Postings up to this ISO-8601 time (default: all)."),
) -> None:
    """Every account's balance per currency (customers and the bank's own); each currency sums to zero.

    Example: bank report trial-balance --as-of 2026-11-30T23:59:59-05:00
    """
    from bank_core.limits import parse_time
    from bank_core.reports import trial_balance as build

    st = state(ctx)
    doc = build(st.service, st.institution, parse_time(as_of, "--as-of") if as_of is not None else None)

    def human() -> None:
        for cur, entry in doc["currencies"].items():
            out.print(table(f"Trial balance of {st.institution} in {cur}"
                            + (f" as of {doc['as_of']}" if doc["as_of"] else ""),
                            ["Account", "Role", "Holder", "Debit", "Credit"],
                            [[a["account"], a["role"], a["holder"], a["debit"], a["credit"]]
                             for a in entry["accounts"]]))
            out.print(f"{cur}: debits {entry['debit']}, credits {entry['credit']}, "
                      f"{'balanced' if entry['balanced'] else 'NOT BALANCED'}", highlight=False)

    emit(st, doc, human)


@app.command("daily")
@command
def daily(
    ctx: typer.Context,
    day: str = typer.Option(None, "--date", help="The local day, YYYY-MM-DD (default: today there)."),
) -> None:
    """One day in the institution's timezone: counts and amounts by kind and status, fees by rule.

    Example: bank report daily --date 2026-11-22
    """
    from bank_core.limits import parse_date
    from bank_core.reports import daily as build

    st = state(ctx)
    doc = build(st.service, st.institution, parse_date(day, "--date") if day is not None else None)

    def human() -> None:
        out.print(table(f"{st.institution} on {doc['date']} ({doc['timezone']})",
                        ["Kind", "Status", "Count", "Amount", "Fees"],
                        [[r["kind"], r["status"], r["count"], f"{r['amount']} {r['currency']}",
                          r["fees"]] for r in doc["transactions"]]))
        out.print(table("Fees by rule", ["Rule", "Count", "Amount"],
                        [[f["rule"], f["count"], f"{f['amount']} {f['currency']}"] for f in doc["fees"]]))

    emit(st, doc, human)
