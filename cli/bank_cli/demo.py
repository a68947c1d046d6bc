"""``bank demo``: a scripted day at Northwind Bank and Harbor Credit Union.

Both institutions' profiles are applied to a fresh SQLite file, and a script
hits every rule of both on both sides of its threshold. Each step states the
outcome it expects; the demo prints what happened and fails loudly if the
engine disagrees with the script.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer

from bank_cli.state import EXIT_SYSTEM, command, err, out, state, table

TELLER = "demo-teller"
SUPERVISOR = "demo-supervisor"


@dataclass
class Step:
    bank: str
    what: str
    expect: str
    got: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.expect == self.got


@dataclass
class Day:
    """One institution's scripted day: requests at increasing local times."""

    svc: Any
    bank: str
    tz: str
    steps: list[Step]
    minute: int = 0
    sent: int = 0
    accounts: dict[str, str] = field(default_factory=dict)
    txns: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        local_yesterday = datetime.now(ZoneInfo(self.tz)).date() - timedelta(days=1)
        self.start = datetime.combine(local_yesterday, time(9, 0), ZoneInfo(self.tz))

    def at(self, minutes: int | None = None) -> datetime:
        self.minute = self.minute + 1 if minutes is None else minutes
        return self.start + timedelta(minutes=self.minute)

    def open(self, name: str, product: str = "standard", age_days: int = 30) -> str:
        opened = self.start - timedelta(days=age_days)
        record = self.svc.open_account(self.bank, holder=name, product=product, actor=TELLER,
                                       opened_at=opened)
        self.accounts[name] = record.id
        return record.id

    def txn(self, label: str, kind: str, amount: str, expect: str, *, src: str | None = None,
            dst: str | None = None, channel: str = "branch", minute: int | None = None) -> Any:
        from bank_core.messages import TxnRequest

        self.sent += 1
        request = TxnRequest(self.bank, f"demo-{self.bank}-{self.sent}", kind, amount,
                             source=self.accounts.get(src or ""), dest=self.accounts.get(dst or ""),
                             channel=channel, at=self.at(minute), actor=TELLER)
        result = self.svc.submit(request)
        self.txns[label] = result.txn_id
        detail = f"fee {result.fee_total}" if result.status != "rejected" else ""
        if result.code:
            detail = f"{result.code}; {detail}".rstrip("; ")
        who = " -> ".join(x for x in (src, dst) if x)
        self.steps.append(Step(self.bank, f"{label}: {kind} {amount} ({who}, {channel})", expect,
                               result.status, detail))
        return result

    def act(self, what: str, expect: str, action: Any) -> None:
        from bank_core.errors import BankError

        try:
            got, detail = action()
        except BankError as exc:
            got, detail = "refused", str(exc)
        self.steps.append(Step(self.bank, what, expect, got, detail))


def _northwind(d: Day) -> None:
    h = d.svc.holds
    d.open("ann"); d.open("ben"); d.open("cat")
    d.txn("single limit, at", "deposit", "10000.00", "posted", dst="ann")
    d.txn("single limit, over", "deposit", "10000.01", "rejected", dst="ann")
    d.txn("top-up", "deposit", "10000.00", "posted", dst="ann")
    d.txn("top-up", "deposit", "3000.00", "posted", dst="ben")
    d.txn("transfer fee, minimum 0.25", "transfer", "10.00", "posted", src="ann", dst="ben")
    d.txn("transfer fee, 0.5%", "transfer", "1000.00", "posted", src="ann", dst="ben")
    d.txn("review threshold, under; fee maximum 25.00", "transfer", "4999.99", "posted", src="ann", dst="ben")
    d.txn("review threshold, at", "transfer", "5000.00", "held", src="ann", dst="ben")
    held = d.txns["review threshold, at"]
    d.act(f"four-eyes: {TELLER} approves own hold", "refused",
          lambda: (h.approve(d.bank, held, TELLER).status, ""))
    d.act(f"{SUPERVISOR} approves the hold", "posted",
          lambda: (h.approve(d.bank, held, SUPERVISOR).status, "second person"))
    for n in range(1, 6):
        d.txn(f"ATM withdrawal {n} this month", "withdrawal", "20.00", "posted", src="ben", channel="atm")
    d.txn("daily withdrawals incl. fees, at 2500.00", "withdrawal", "2398.00", "posted", src="ben")
    d.txn("daily withdrawals, over", "withdrawal", "0.01", "rejected", src="ben")
    d.txn("top-up", "deposit", "50.00", "posted", dst="cat")
    d.txn("no overdraft, over", "withdrawal", "50.01", "rejected", src="cat")
    d.txn("no overdraft, exact", "withdrawal", "50.00", "posted", src="cat")
    d.act("freeze cat", "frozen", lambda: (d.svc.set_account_status(
        d.bank, d.accounts["cat"], "frozen", TELLER).status, ""))
    d.txn("frozen account", "deposit", "10.00", "rejected", dst="cat")
    d.act("unfreeze cat", "open", lambda: (d.svc.set_account_status(
        d.bank, d.accounts["cat"], "open", TELLER).status, ""))
    d.txn("unfrozen account", "deposit", "10.00", "posted", dst="cat")
    first = d.txns["transfer fee, minimum 0.25"]
    d.act("reverse the 10.00 transfer (fee refunded)", "posted",
          lambda: (h.reverse(d.bank, first, SUPERVISOR)["status"], "reversal"))
    d.act("reverse it again", "refused", lambda: (h.reverse(d.bank, first, SUPERVISOR)["status"], ""))


def _harbor(d: Day) -> None:
    h = d.svc.holds
    d.open("dan", "checking-plus"); d.open("eve"); d.open("gus", "checking-plus")
    d.open("hal"); d.open("fay", age_days=1)
    d.txn("top-up", "deposit", "100.00", "posted", dst="dan")
    d.txn("overdraft fee, balance stays at zero", "withdrawal", "100.00", "posted", src="dan")
    d.txn("checking-plus overdraft to -500.00 incl. 15.00 fee", "withdrawal", "485.00", "posted", src="dan")
    d.txn("checking-plus overdraft, over", "withdrawal", "0.01", "rejected", src="dan")
    d.txn("top-up", "deposit", "100.00", "posted", dst="eve")
    d.txn("standard product, no overdraft", "withdrawal", "100.01", "rejected", src="eve")
    d.txn("top-up", "deposit", "25000.00", "posted", dst="gus")
    d.txn("monthly outgoing", "transfer", "10000.00", "posted", src="gus", dst="hal", minute=100)
    d.txn("monthly outgoing", "transfer", "9999.99", "posted", src="gus", dst="hal", minute=170)
    d.txn("monthly outgoing, at 20000.00", "transfer", "0.01", "posted", src="gus", dst="hal", minute=240)
    d.txn("monthly outgoing, over", "transfer", "0.01", "rejected", src="gus", dst="hal", minute=310)
    d.txn("top-up", "deposit", "1000.00", "posted", dst="eve", minute=320)
    for n in range(1, 7):
        d.txn(f"velocity: outgoing {n} within 60 minutes", "transfer", "10.00",
              "held" if n == 6 else "posted", src="eve", dst="dan", minute=320 + 5 * n)
    sixth = d.txns["velocity: outgoing 6 within 60 minutes"]
    d.act(f"{SUPERVISOR} rejects the velocity hold", "rejected",
          lambda: (h.reject(d.bank, sixth, SUPERVISOR, "customer did not confirm").status, ""))
    d.txn("old account, large withdrawal", "withdrawal", "1500.00", "posted", src="hal", minute=400)
    d.txn("top-up", "deposit", "3000.00", "posted", dst="fay", minute=401)
    d.txn("new account, withdrawal at 1000.00", "withdrawal", "1000.00", "posted", src="fay", minute=402)
    d.txn("new account, withdrawal over 1000.00", "withdrawal", "1000.01", "held", src="fay", minute=403)
    late = d.txns["new account, withdrawal over 1000.00"]
    later = datetime.now(ZoneInfo("UTC")) + timedelta(hours=49)
    d.act("expire holds older than 48 hours (clock moved on)", "expired",
          lambda: ("expired" if late in h.expire(d.bank, SUPERVISOR, later) else "still held", ""))
    d.act("approve the expired hold", "refused",
          lambda: (h.approve(d.bank, late, SUPERVISOR, later).status, ""))


def _same_stream(northwind: Day, harbor: Day) -> None:
    """One stream of requests, two institutions, different outcomes."""
    for d, expect in ((northwind, ("posted", "held", "rejected")), (harbor, ("posted", "posted", "posted"))):
        d.open("same-1", "checking-plus"); d.open("same-2", "checking-plus")
        d.txn("same stream: deposit", "deposit", "6000.00", expect[0], dst="same-1", minute=600)
        d.txn("same stream: transfer", "transfer", "5500.00", expect[1], src="same-1", dst="same-2", minute=601)
        d.txn("same stream: withdrawal", "withdrawal", "600.00", expect[2], src="same-1", minute=602)


def _profile_file(package: str) -> dict[str, Any]:
    from bank_core.profile import read_toml

    with resources.as_file(resources.files(package) / "profile.toml") as path:
        return read_toml(Path(path))


@command
def demo(
    ctx: typer.Context,
    db_file: Path = typer.Option(None, "--db-file", help="SQLite file to create (default: a temporary one)."),
) -> None:
    """Run a scripted day at two institutions on a fresh SQLite file.

    Every rule of Northwind Bank and Harbor Credit Union is hit on both sides of its
    threshold; balances, fees earned, holds, rejections with reasons, an approval by a
    second person and the audit verification are printed.

    Example: bank demo --db-file /tmp/demo.db
    """
    from bank_wiring import build

    st = state(ctx)
    if db_file is None:
        db_file = Path(tempfile.mkdtemp(prefix="bank-demo-")) / "demo.db"
    if db_file.exists():
        raise typer.BadParameter(f"{db_file} exists; the demo needs a fresh file", param_hint="--db-file")
    svc = build(f"sqlite:///{db_file}")
    steps: list[Step] = []
    days = {}
    for package in ("northwind_policies", "harbor_policies"):
        profile, _version = svc.apply_profile(_profile_file(package), TELLER)
        days[profile.id] = Day(svc, profile.id, profile.timezone, steps)
    _northwind(days["northwind"])
    _harbor(days["harbor"])
    _same_stream(days["northwind"], days["harbor"])
    _report(st, svc, db_file, steps, list(days))


def _report(st: Any, svc: Any, db_file: Path, steps: list[Step], banks: list[str]) -> None:
    import json
    import sys

    summary: dict[str, Any] = {"database": str(db_file), "steps": [s.__dict__ | {"ok": s.ok} for s in steps],
                               "institutions": {}}
    for bank in banks:
        rows = svc.list_accounts(bank, include_internal=True)
        verdict = svc.audit_verify(bank)
        summary["institutions"][bank] = {
            "balances": [{"account": r.id, "holder": r.holder, "product": r.product,
                          "posted": _fmt(b.posted, b.currency), "available": _fmt(b.available, b.currency)}
                         for r, b in rows],
            "fees_earned": next(_fmt(b.posted, b.currency) for r, b in rows if r.role == "fee_income"),
            "held": [t["txn_id"] for t in svc.txns(bank, status="held")],
            "audit_ok": verdict.ok, "audit_entries": verdict.entries}
    mismatches = [s for s in steps if not s.ok]
    if st.json:
        sys.stdout.write(json.dumps(summary | {"ok": not mismatches}, indent=2) + "\n")
    else:
        out.print(table(f"A scripted day (database {db_file})", ["Bank", "Step", "Expected", "Got", "Detail"],
                        [[s.bank, s.what, s.expect, s.got + ("" if s.ok else "  <-- MISMATCH"), s.detail]
                         for s in steps]))
        for bank, info in summary["institutions"].items():
            out.print(table(f"{bank}: balances", ["Account", "Holder", "Product", "Posted", "Available"],
                            [[b["account"], b["holder"], b["product"], b["posted"], b["available"]]
                             for b in info["balances"]]))
            out.print(f"{bank}: fees earned {info['fees_earned']}; audit chain "
                      f"{'OK' if info['audit_ok'] else 'BROKEN'} ({info['audit_entries']} entries)",
                      highlight=False)
    if mismatches:
        err.print(f"error: {len(mismatches)} step(s) did not go as scripted", markup=False)
        raise typer.Exit(EXIT_SYSTEM)


def _fmt(minor: int, currency: str) -> str:
    from bank_core.money import format_minor

    return f"{format_minor(minor, currency)} {currency}"
