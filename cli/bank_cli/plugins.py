"""``bank plugins``: which policy drivers are installed, and are they healthy."""

from __future__ import annotations

from typing import Any

import typer

from bank_cli.state import EXIT_USAGE, command, emit, fail, out, state, table

# `plugins check` exit codes (also in its help): 0 every driver is ok; 4 at
# least one is not (failed to load, wrong contract version, bad params,
# raised, bad answer, too slow, forbidden operation); 5 an institution was
# not found.
EXIT_UNHEALTHY = 4

app = typer.Typer(help="Policy plug-ins: list the installed drivers, check a profile's drivers.\n\n"
                       "Example: bank plugins check --all",
                  no_args_is_help=True)

JSON_HELP = "Print one JSON document for scripts (same as the global --json)."


def _status(row: dict[str, Any]) -> str:
    if row["loads"]:
        return "ok"
    return {"contract": "wrong contract version", "validate": "not a valid driver"}.get(
        row.get("stage") or "", "failed to load")


def _ms(elapsed_us: int | None) -> str | None:
    """Microseconds as milliseconds with three decimals, in integer arithmetic."""
    return None if elapsed_us is None else f"{elapsed_us // 1000}.{elapsed_us % 1000:03d}"


@app.command("list")
@command
def list_plugins(ctx: typer.Context,
                 json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Every driver installed in the fee, limit and approval namespaces.

    Shows the slot, entry-point name, distribution and version, the contract
    version the driver declares, and whether it loads (with the error if
    not). Listing never fails because a driver is broken: exit 0.

    Example: bank plugins list --json
    """
    from bank_core.registry import list_installed

    st = state(ctx)
    st.json = st.json or json_out
    rows = [{**row, "status": _status(row)} for row in list_installed()]
    emit(st, {"drivers": rows}, lambda: out.print(table(
        "Installed policy drivers",
        ["Slot", "Entry point", "Distribution", "Version", "Contract", "Status", "Error"],
        [[r["slot"], r["name"], r["distribution"], r["version"], r["contract_version"], r["status"],
          r["error"]] for r in rows])))


@app.command("check")
@command
def check(
    ctx: typer.Context,
    profile: str = typer.Option(None, "--profile", metavar="ID",
                                help="Institution whose active profile to check "
                                     "(default: the active institution)."),
    all_institutions: bool = typer.Option(False, "--all", help="Check every institution's profile."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Load every driver a profile uses, validate its params and call it on a
    standard probe within its time budget.

    Reports per driver: ok, failed to load, wrong contract version, not a
    valid driver, bad params, raised, bad answer, too slow or forbidden
    operation (it tried a file, socket or process, which a real transaction
    refuses with driver_forbidden), with the time the slowest probe call took.
    A profile with isolation = "process" is probed in its policy server, and
    the server itself gets a row: ok when it answers the probes of the whole
    profile within its budget, else too slow or policy server down. Exit 0 if every driver is ok, 4 if any is
    not, 5 if an institution is not found.

    Example: bank plugins check --profile northwind
    """
    from bank_core.health import check_policy_server, check_profile
    from bank_core.registry import DriverLoadError

    st = state(ctx)
    st.json = st.json or json_out
    if profile and all_institutions:
        fail(EXIT_USAGE, "give --profile ID or --all, not both")
    service = st.service
    ids = [row["id"] for row in service.institutions()] if all_institutions else \
        [st.own(profile) if profile else st.institution]
    results = []
    for institution in ids:
        active = service.read(lambda conn, inst=institution: service.profile(conn, inst))
        if active.isolation == "process":  # probe the drivers in their policy server
            version = next((row["profile_version"] for row in service.institutions()
                            if row["id"] == institution), 0)
            try:
                results += check_policy_server(active, lambda p=active, v=version: service.policy_server(p, v))
                continue
            except DriverLoadError:
                pass  # reported driver by driver by the inline check below
        results += check_profile(active, service.registry, service.evaluator)
    healthy = all(r.ok for r in results)
    document = {"ok": healthy, "institutions": ids, "drivers": [r.to_dict() for r in results]}

    def human() -> None:
        out.print(table(
            "Policy driver health",
            ["Institution", "Slot", "Driver", "Distribution", "Status", "Time (ms)", "Budget (ms)",
             "Message"],
            [[r.institution, r.slot, r.driver, r.distribution, r.to_dict()["status_text"],
              _ms(r.elapsed_us), r.budget_ms, r.message]
             for r in results]))
        bad = sum(not r.ok for r in results)
        out.print(f"{len(results) - bad} of {len(results)} drivers ok" if results else
                  "no drivers to check", highlight=False)

    emit(st, document, human)
    if not healthy:
        raise typer.Exit(EXIT_UNHEALTHY)


def _age(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@app.command("status")
@command
def status(ctx: typer.Context,
           every: bool = typer.Option(False, "--all", help="Also servers stopped in the last 24 hours "
                                                            "(their last state)."),
           json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """The policy servers running now for this database (profiles with
    isolation = "process"), on this machine.

    One line per server: institution, pid, uptime, restarts, requests
    (messages) and rows served, latency p50/p99 of its last 1,000 messages
    as the kernel measured them, and memory (resident, read from the OS now).
    A server belongs to the kernel process that uses it (`bank txn process`,
    `bank serve`) and stops with it; this reads its supervisor's status
    file (docs/policy-servers.md), never the database; the figures are those its supervisor
    wrote last (at most a second old while it works). With --all, also the
    last state of servers stopped in the last 24 hours (a `bank txn process`
    that has finished: how many restarts it needed). Exit 0.

    Example: bank plugins status --json
    """
    import time

    from bank_core.server_status import database_key, read_status

    st = state(ctx)
    st.json = st.json or json_out
    # the status files only: no connection to a database that may be busy
    rows = read_status(database_key(st.url), include_stopped=every)
    now = time.time()
    for row in rows:
        row["uptime_s"] = int(now - row["started_at"]) if row["running"] else None
        row["updated_s_ago"] = int(now - row["written_at"])
    emit(st, {"servers": rows}, lambda: out.print(table(
        "Policy servers",
        ["Institution", "PID", "State", "Uptime", "Restarts", "Requests", "Rows", "p50 (ms)", "p99 (ms)",
         "Memory (MB)", "Updated", "Last fault"],
        [[r["institution"], r["pid"], "down" if r["down"] else "running" if r["running"] else "stopped",
          _age(r["uptime_s"]) if r["uptime_s"] is not None else "", r["restarts"], r["messages"], r["rows"],
          _ms(r["p50_us"]), _ms(r["p99_us"]),
          f"{r['rss_kb'] // 1024}.{r['rss_kb'] % 1024 * 10 // 1024}" if r["rss_kb"] is not None else "",
          f"{r['updated_s_ago']}s ago", r["last_fault"]] for r in rows])) if rows else
        out.print("no policy servers " + ("running or recently stopped" if every else "running")
                  + " for this database", highlight=False))
