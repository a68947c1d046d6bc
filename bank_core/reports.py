"""Institution-wide reads for clients: transactions by filter, the trial
balance and the daily summary. Read-only, one institution at a time
(tenancy is in every query), amounts exact (integer minor units, formatted
only on the way out). They read history, so they cost what they read; a
balance is still never computed from history (see ``BankService.account``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from bank_core.messages import as_utc
from bank_core.money import format_minor
from bank_core.pipeline import zone
from bank_core.storage.models import Posting, Txn

if TYPE_CHECKING:
    from bank_core.service import BankService

KINDS = ("deposit", "withdrawal", "transfer", "reversal")
STATUSES = ("posted", "held", "rejected", "released", "expired")
MAX_LIST = 100_000


def local_day(tz_name: str, day: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC of a calendar day in the institution's timezone."""
    tz = zone(tz_name)
    start = datetime.combine(day, time.min, tz)
    return as_utc(start), as_utc(datetime.combine(day + timedelta(days=1), time.min, tz))


def find_txns(svc: BankService, institution_id: str, *, account: str | None = None,
              status: str | None = None, kind: str | None = None, ref: str | None = None,
              start: datetime | None = None, end: datetime | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
    """Transactions, newest first, whose ``at`` is in [start, end)."""
    from bank_core.service import txn_view

    def work(conn: Connection) -> list[dict[str, Any]]:
        svc.institution(conn, institution_id)
        query = select(Txn).where(Txn.institution_id == institution_id)
        if account is not None:
            svc.account_record(conn, institution_id, account)
            query = query.where((Txn.source_account_id == account) | (Txn.dest_account_id == account))
        for column, value in ((Txn.status, status), (Txn.kind, kind), (Txn.idempotency_key, ref)):
            if value is not None:
                query = query.where(column == value)
        if start is not None:
            query = query.where(Txn.at >= as_utc(start))
        if end is not None:
            query = query.where(Txn.at < as_utc(end))
        rows = conn.execute(query.order_by(Txn.at.desc(), Txn.id).limit(min(limit, MAX_LIST)))
        return [txn_view(r) for r in rows]
    return svc.read(work)


def trial_balance(svc: BankService, institution_id: str, as_of: datetime | None = None) -> dict[str, Any]:
    """Every account's posted balance per currency (customers and the
    institution's own), from the postings up to ``as_of``; each currency's
    balances sum to zero, which ``balanced`` states."""
    def work(conn: Connection) -> dict[str, Any]:
        svc.institution(conn, institution_id)
        query = select(Posting.account_id, Posting.currency, func.sum(Posting.amount_minor)).where(
            Posting.institution_id == institution_id)
        if as_of is not None:
            query = query.where(Posting.posted_at <= as_utc(as_of))
        sums = {(acc, cur): int(total) for acc, cur, total in
                conn.execute(query.group_by(Posting.account_id, Posting.currency))}
        records = {r.id: r for r in svc.accounts.list(conn, institution_id, include_internal=True)}
        currencies: dict[str, dict[str, Any]] = {}
        for record in sorted(records.values(), key=lambda r: (r.currency, r.role == "customer", r.id)):
            total = sums.get((record.id, record.currency), 0)
            entry = currencies.setdefault(record.currency, {"accounts": [], "_debit": 0, "_credit": 0})
            entry["_debit" if total < 0 else "_credit"] += abs(total)
            entry["accounts"].append({
                "account": record.id, "role": record.role, "holder": record.holder,
                "debit": format_minor(-total if total < 0 else 0, record.currency),
                "credit": format_minor(total if total > 0 else 0, record.currency),
                "balance": format_minor(total, record.currency)})
        for cur, entry in currencies.items():
            debit, credit = entry.pop("_debit"), entry.pop("_credit")
            entry.update(debit=format_minor(debit, cur), credit=format_minor(credit, cur),
                         net=format_minor(credit - debit, cur), balanced=credit == debit)
        return {"institution": institution_id,
                "as_of": as_utc(as_of).isoformat() if as_of else None,
                "balanced": all(e["balanced"] for e in currencies.values()),
                "currencies": currencies}
    return svc.read(work)


def daily(svc: BankService, institution_id: str, day: date | None = None) -> dict[str, Any]:
    """One local day (the institution's timezone; default today): counts and
    amounts of transactions by kind and status (by their ``at``), and the
    fees posted that day by rule."""
    def work(conn: Connection) -> dict[str, Any]:
        inst = svc.institution(conn, institution_id)
        chosen = day or datetime.now(zone(inst.timezone)).date()
        start, end = local_day(inst.timezone, chosen)
        groups = conn.execute(
            select(Txn.kind, Txn.status, Txn.currency, func.count(), func.sum(Txn.amount_minor),
                   func.sum(Txn.fee_minor))
            .where(Txn.institution_id == institution_id, Txn.at >= start, Txn.at < end)
            .group_by(Txn.kind, Txn.status, Txn.currency).order_by(Txn.kind, Txn.status, Txn.currency))
        rows = [{"kind": kind, "status": status, "currency": cur, "count": int(count),
                 "amount": format_minor(int(amount), cur), "fees": format_minor(int(fees), cur)}
                for kind, status, cur, count, amount, fees in groups]
        fee_income = {r.id for r in svc.accounts.list(conn, institution_id, include_internal=True)
                      if r.role == "fee_income"}
        fees: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        if fee_income:
            for rule, cur, amount in conn.execute(
                    select(Posting.rule, Posting.currency, Posting.amount_minor).where(
                        Posting.institution_id == institution_id, Posting.account_id.in_(sorted(fee_income)),
                        Posting.posted_at >= start, Posting.posted_at < end)):
                fees[(rule, cur)][0] += amount
                fees[(rule, cur)][1] += 1
        return {"institution": institution_id, "date": chosen.isoformat(), "timezone": inst.timezone,
                "from": start.isoformat(), "to": end.isoformat(), "transactions": rows,
                "fees": [{"rule": rule, "currency": cur, "count": n, "amount": format_minor(total, cur)}
                         for (rule, cur), (total, n) in sorted(fees.items())]}
    return svc.read(work)


STATEMENT_COLUMNS = ("posted_at", "txn_id", "rule", "amount", "balance", "currency", "ref", "memo",
                     "counterparty")


def statement_csv(doc: dict[str, Any]) -> str:
    """A statement (``BankService.statement``) as CSV, the same for every client."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(STATEMENT_COLUMNS)
    for line in doc["lines"]:
        writer.writerow([line["posted_at"], line["txn_id"], line["rule"], line["amount"],
                         line["balance"], doc["currency"], line["ref"], line["memo"],
                         line["counterparty"]])
    return buffer.getvalue()
