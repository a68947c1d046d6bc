"""The transaction pipeline: one request, inside the caller's unit of work.

validate -> resolve institution and accounts -> idempotency -> policy context
-> drivers (fees, limits, approvals) -> the kernel's own balance check ->
post, hold or reject, with the audit record, in the same database
transaction. Nothing is written before every check that can raise has run.
"""

from __future__ import annotations

import json
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection, insert, select

from bank_core.contract import (
    AccountSnapshot,
    AccountStatus,
    Kind,
    Money,
    PolicyContext,
    Request,
    Slot,
    UsageCounters,
)
from bank_core.decide import Drivers, Evaluator, Reason, Verdict
from bank_core.errors import Conflict, InvalidRequest, NotFound
from bank_core.ledger import (
    BalanceRow,
    Line,
    apply_deltas,
    bump_usage,
    check_balanced,
    deltas_for,
    insert_postings,
    lines_to_json,
    load_balances,
    load_usage,
)
from bank_core.messages import BalanceOut, FeeOut, TxnRequest, TxnResult, as_utc, txn_id_for
from bank_core.money import MoneyError, format_minor, parse_minor
from bank_core.ports import ROLE_CUSTOMER, AccountRecord, AccountsPort, AuditPort
from bank_core.storage.models import Txn

KERNEL = "kernel"
ACCOUNT_CLOSED = "account_closed"


@lru_cache(maxsize=64)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class InstitutionView:
    id: str
    currency: str
    timezone: str
    hold_expiry_hours: int
    profile_version: int
    drivers: Drivers


def snapshot(record: AccountRecord, balance: BalanceRow, exclude_hold: list[int] | None = None
             ) -> AccountSnapshot:
    """The driver's read-only view; ``exclude_hold`` removes one hold's own
    pending counters (used when re-checking a hold at approval)."""
    dpend, cpend = balance.debits_pending, balance.credits_pending
    if exclude_hold is not None:
        dpend -= exclude_hold[2]
        cpend -= exclude_hold[3]
    cur = balance.currency
    return AccountSnapshot(record.id, record.currency, AccountStatus(record.status),
                           record.product, as_utc(record.opened_at),
                           Money(balance.posted, cur), Money(dpend, cur), Money(cpend, cur))


def plan_lines(kind: Kind, amount_minor: int, source: str | None, dest: str | None,
               cash: str, fee_income: str, verdict: Verdict) -> list[Line]:
    """Balanced postings: principal between the accounts (or the cash
    account for deposits and withdrawals), each fee from payer to fee income."""
    debit_from = source if source is not None else cash
    credit_to = dest if dest is not None else cash
    lines = [Line(debit_from, -amount_minor, str(kind)), Line(credit_to, amount_minor, str(kind))]
    payer = source if source is not None else dest
    for _driver, fee in verdict.fee_lines:
        lines.append(Line(payer, -fee.amount.amount_minor, fee.rule))  # type: ignore[arg-type]
        lines.append(Line(fee_income, fee.amount.amount_minor, fee.rule))
    return lines


def balances_out(ids: list[str], balances: dict[str, BalanceRow]) -> list[BalanceOut]:
    out = []
    for acc in ids:
        b = balances[acc]
        out.append(BalanceOut(account=acc, posted=format_minor(b.posted, b.currency),
                              available=format_minor(b.available, b.currency),
                              held_out=format_minor(b.debits_pending, b.currency),
                              currency=b.currency))
    return out


class Pipeline:
    def __init__(self, accounts: AccountsPort, audit: AuditPort, evaluator: Evaluator) -> None:
        self.accounts = accounts
        self.audit = audit
        self.evaluator = evaluator

    def resolve_accounts(self, conn: Connection, inst: InstitutionView, req: TxnRequest
                         ) -> dict[str, AccountRecord]:
        ids = [a for a in (req.source, req.dest) if a]
        found = self.accounts.get_many(conn, inst.id, ids, for_update=True)
        for label, acc in (("from", req.source), ("to", req.dest)):
            if acc and (acc not in found or found[acc].role != ROLE_CUSTOMER):
                raise NotFound(f"{label}: account {acc!r} not found")
        return found

    def submit(self, conn: Connection, inst: InstitutionView, req: TxnRequest,
               now: datetime) -> TxnResult:
        kind = req.check_shape()
        found = self.resolve_accounts(conn, inst, req)
        currencies = {found[a].currency for a in found}
        if len(currencies) != 1:
            raise InvalidRequest(f"to: accounts are in different currencies ({', '.join(sorted(currencies))})")
        (currency,) = currencies
        if req.currency is not None and req.currency != currency:
            raise InvalidRequest(f"currency: {req.currency} does not match the account currency {currency}")
        try:
            amount_minor = parse_minor(req.amount, currency)
        except MoneyError as exc:
            raise InvalidRequest(str(exc)) from None
        body = req.body_hash(currency, amount_minor)
        existing = conn.execute(select(Txn.request_hash, Txn.result).where(
            Txn.institution_id == inst.id, Txn.idempotency_key == req.ref)).first()
        if existing is not None:
            if existing.request_hash != body:
                raise Conflict(f"ref: {req.ref!r} was already used for a different request")
            return TxnResult.model_validate_json(existing.result)
        cash = self.accounts.internal(conn, inst.id, "cash", currency)
        fee_income = self.accounts.internal(conn, inst.id, "fee_income", currency)
        if cash is None or fee_income is None:
            raise InvalidRequest(f"currency: institution {inst.id} has no internal accounts in {currency}")
        at = as_utc(req.at) if req.at is not None else now
        local_date = at.astimezone(zone(inst.timezone)).date()
        customer_ids = [a for a in (req.source, req.dest) if a]
        balances = load_balances(conn, inst.id, [*customer_ids, cash.id, fee_income.id],
                                 for_update=True)
        snaps = {a: snapshot(found[a], balances[a]) for a in customer_ids}
        usage = (load_usage(conn, inst.id, req.source, local_date, at) if req.source
                 else UsageCounters())
        request = Request(inst.id, kind, Money(amount_minor, currency), req.source, req.dest,
                          req.channel, req.memo, at)
        closed = [a for a in customer_ids if found[a].status == AccountStatus.CLOSED]
        if closed:
            verdict = Verdict("rejected", [Reason(KERNEL, KERNEL, None, ACCOUNT_CLOSED, "reject",
                                                  f"account {closed[0]} is closed",
                                                  code=ACCOUNT_CLOSED)], [], ACCOUNT_CLOSED)
        else:
            ctx = PolicyContext(request, snaps.get(req.source or ""), snaps.get(req.dest or ""),
                                usage, inst.timezone, local_date, Money(0, currency))
            verdict = self.evaluator.evaluate(inst.drivers, ctx)
        lines = plan_lines(kind, amount_minor, req.source, req.dest, cash.id, fee_income.id, verdict)
        account_currency = {acc: balances[acc].currency for acc in balances}
        check_balanced(lines, account_currency)
        txn_id = txn_id_for(inst.id, req.ref)
        fee_minor = verdict.fee_minor if verdict.status != "rejected" else 0
        if verdict.status == "posted":
            apply_deltas(conn, inst.id, deltas_for(lines, "post"), balances)
        elif verdict.status == "held":
            apply_deltas(conn, inst.id, deltas_for(lines, "hold"), balances)
        result = TxnResult(
            txn_id=txn_id, institution=inst.id, ref=req.ref, kind=str(kind), status=verdict.status,
            code=verdict.code, amount=format_minor(amount_minor, currency), currency=currency,
            fee_total=format_minor(fee_minor, currency),
            fees=[FeeOut(driver=d, rule=f.rule, amount=f.amount.format(), currency=currency,
                         memo=f.memo) for d, f in verdict.fee_lines] if verdict.status != "rejected" else [],
            reasons=[r.to_dict() for r in verdict.reasons], source=req.source, dest=req.dest,
            channel=req.channel, memo=req.memo, at=at.isoformat(),
            profile_version=inst.profile_version, balances=balances_out(customer_ids, balances))
        result_json = result.to_json()
        conn.execute(insert(Txn).values(
            id=txn_id, institution_id=inst.id, idempotency_key=req.ref, request_hash=body,
            kind=str(kind), status=verdict.status, amount_minor=amount_minor, fee_minor=fee_minor,
            currency=currency, source_account_id=req.source, dest_account_id=req.dest,
            channel=req.channel, memo=req.memo, at=at, decided_at=now, initiator=req.actor,
            profile_version=inst.profile_version, reverses_txn_id=None,
            lines=lines_to_json(lines if verdict.status == "held" else []), result=result_json))
        if verdict.status == "posted":
            insert_postings(conn, inst.id, txn_id, lines, account_currency, now)
        if verdict.status != "rejected" and kind in (Kind.WITHDRAWAL, Kind.TRANSFER):
            bump_usage(conn, inst.id, req.source, local_date, str(kind), req.channel,  # type: ignore[arg-type]
                       amount_minor, fee_minor, 1)
        self.audit.append(conn, inst.id, actor=req.actor, action=f"txn.{verdict.status}",
                          subject=txn_id, payload=json.loads(result_json), at=now)
        return result
