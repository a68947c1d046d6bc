"""The transaction pipeline, one chunk of requests per database transaction.

Every request, alone (``submit``) or in a file of millions (``process``),
goes through this one code path, so both have exactly the same semantics:

1. load, set-based, what the chunk's rows touch: accounts (locked), balances
   (locked), earlier results for their idempotency keys, usage counters and
   recent outgoing times;
2. decide each row in order against that state held in memory: validate,
   idempotency, policy context, drivers (fees, limits, approvals), the
   kernel's own balance check; apply the row's effect to the in-memory state
   so the next row sees it;
3. write everything with set-based statements: transactions, postings,
   balance increments, usage increments and the audit chain.

A row that is invalid (bad amount, unknown account, a reused key with another
body) is that row's error and writes nothing; a rejected row is recorded as
rejected. Neither disturbs its neighbours.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, func, select

from bank_core.contract import (
    AccountStatus,
    Kind,
    Money,
    PolicyContext,
    Request,
    Tally,
    UsageCounters,
)
from bank_core.decide import Reason, Verdict
from bank_core.errors import BankError, Conflict, InvalidRequest, NotFound
from bank_core.ledger import (
    BalanceRow,
    Line,
    apply_deltas,
    bump_usage_many,
    check_balanced,
    deltas_for,
    lines_to_json,
    load_balances,
    period_keys,
)
from bank_core.limits import check_at_window, check_choice
from bank_core.messages import TxnRequest, as_utc, txn_id_for
from bank_core.money import MoneyError, format_minor, parse_minor
from bank_core.pipeline import KERNEL, ACCOUNT_CLOSED, InstitutionView, Pipeline, snapshot, zone
from bank_core.ports import ROLE_CUSTOMER, AccountRecord
from bank_core.storage.bulk import bulk_insert
from bank_core.storage.models import Posting, Txn

OUTGOING = (Kind.WITHDRAWAL, Kind.TRANSFER)
RECENT_WINDOW = timedelta(hours=24)
RECENT_LIMIT = UsageCounters.RECENT_OUT_LIMIT


def canonical(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class Outcome:
    """One request's outcome: its result (as a JSON-ready dict and its
    canonical JSON), or the error it raised. ``replayed`` means the result
    is that of an earlier request with the same key and body."""

    index: int
    request: TxnRequest
    result: dict[str, Any] | None = None
    result_json: str | None = None
    error: BankError | None = None
    replayed: bool = False


class Chunk:
    """The state of one chunk: loaded once, updated per row, written once."""

    def __init__(self, pipeline: Pipeline, conn: Connection, inst: InstitutionView,
                 now: datetime) -> None:
        self.p = pipeline
        self.conn = conn
        self.inst = inst
        self.now = now
        self.records: dict[str, AccountRecord] = {}
        self.balances: dict[str, BalanceRow] = {}
        self.internal: dict[tuple[str, str], str] = {}
        self.seen: dict[str, tuple[str, str]] = {}  # ref -> (body hash, result json)
        self.usage: dict[tuple[str, str], dict[tuple[Kind, str], list[int]]] = {}
        self.recent: dict[str, list[datetime]] = {}
        self.recent_truncated: set[str] = set()
        # what the chunk will write
        self.txn_rows: list[dict[str, Any]] = []
        self.posting_rows: list[dict[str, Any]] = []
        self.deltas: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        self.usage_deltas: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.audit: list[tuple[str, str, str, str, datetime]] = []

    # ------------------------------------------------------------------ load

    def load(self, requests: list[TxnRequest], kinds: list[Kind | None]) -> None:
        conn, inst = self.conn, self.inst
        ids = {a for r, k in zip(requests, kinds) if k is not None for a in (r.source, r.dest) if a}
        self.records = self.p.accounts.get_many(conn, inst.id, sorted(ids), for_update=True) if ids else {}
        for cur in sorted({r.currency for r in self.records.values()}):
            for role in ("cash", "fee_income"):
                found = self.p.accounts.internal(conn, inst.id, role, cur)
                if found is not None:
                    self.internal[(role, cur)] = found.id
        self.balances = load_balances(conn, inst.id, sorted(ids | set(self.internal.values())),
                                      for_update=True)
        refs = [r.ref for r, k in zip(requests, kinds) if k is not None]
        for start in range(0, len(refs), 500):
            rows = conn.execute(select(Txn.idempotency_key, Txn.request_hash, Txn.result).where(
                Txn.institution_id == inst.id, Txn.idempotency_key.in_(refs[start:start + 500])))
            self.seen.update({row[0]: (row[1], row[2]) for row in rows})
        self._load_usage(requests, kinds)

    def _load_usage(self, requests: list[TxnRequest], kinds: list[Kind | None]) -> None:
        sources: set[str] = set()
        periods: set[str] = set()
        times: list[datetime] = []
        tz = zone(self.inst.timezone)
        for request, kind in zip(requests, kinds):
            if kind in OUTGOING and request.source in self.records:
                at = self.at(request)
                sources.add(request.source)  # type: ignore[arg-type]
                periods.update(period_keys(at.astimezone(tz).date()))
                times.append(at)
        if not sources:
            return
        from bank_core.storage.models import UsageCounter as U

        rows = self.conn.execute(select(U.account_id, U.period, U.kind, U.channel, U.amount_minor,
                                        U.fee_minor, U.count).where(
            U.institution_id == self.inst.id, U.account_id.in_(sorted(sources)),
            U.period.in_(sorted(periods))))
        for acc, period, kind, channel, amount, fee, count in rows:
            self.usage.setdefault((acc, period), {})[(Kind(kind), channel)] = [amount, fee, count]
        ranked = (select(Txn.source_account_id.label("acc"), Txn.at.label("at"),
                         func.row_number().over(partition_by=Txn.source_account_id,
                                                order_by=Txn.at.desc()).label("rn"))
                  .where(Txn.institution_id == self.inst.id,
                         Txn.source_account_id.in_(sorted(sources)),
                         Txn.status.in_(("posted", "held")),
                         Txn.kind.in_([str(k) for k in OUTGOING]),
                         Txn.at > min(times) - RECENT_WINDOW, Txn.at <= max(times))
                  .subquery())
        for acc, at, _rn in self.conn.execute(select(ranked).where(ranked.c.rn <= RECENT_LIMIT)):
            self.recent.setdefault(acc, []).append(as_utc(at))
        for acc, found in self.recent.items():
            found.sort()
            if len(found) >= RECENT_LIMIT:
                self.recent_truncated.add(acc)

    def at(self, request: TxnRequest) -> datetime:
        return as_utc(request.at) if request.at is not None else self.now

    # ---------------------------------------------------------------- decide

    def decide(self, index: int, request: TxnRequest, kind: Kind) -> Outcome:
        inst = self.inst
        for label, acc in (("from", request.source), ("to", request.dest)):
            if acc and (acc not in self.records or self.records[acc].role != ROLE_CUSTOMER):
                raise NotFound(f"{label}: account {acc!r} not found")
        customer_ids = [a for a in (request.source, request.dest) if a]
        currencies = {self.records[a].currency for a in customer_ids}
        if len(currencies) != 1:
            raise InvalidRequest(f"to: accounts are in different currencies ({', '.join(sorted(currencies))})")
        (currency,) = currencies
        if request.currency is not None and request.currency != currency:
            raise InvalidRequest(f"currency: {request.currency} does not match the account currency {currency}")
        try:
            amount_minor = parse_minor(request.amount, currency)
        except MoneyError as exc:
            raise InvalidRequest(str(exc)) from None
        body = request.body_hash(currency, amount_minor)
        earlier = self.seen.get(request.ref)
        if earlier is not None:
            if earlier[0] != body:
                raise Conflict(f"ref: {request.ref!r} was already used for a different request")
            return Outcome(index, request, json.loads(earlier[1]), earlier[1], replayed=True)
        cash = self.internal.get(("cash", currency))
        fee_income = self.internal.get(("fee_income", currency))
        if cash is None or fee_income is None:
            raise InvalidRequest(f"currency: institution {inst.id} has no internal accounts in {currency}")
        at = self.at(request)
        for acc in customer_ids:  # (limits.check_at_window has bounded at already)
            if at < as_utc(self.records[acc].opened_at):
                raise InvalidRequest(f"at: {at.isoformat()} is before account {acc} was opened "
                                     f"({as_utc(self.records[acc].opened_at).isoformat()})")
        local_date = at.astimezone(zone(inst.timezone)).date()
        snaps = {a: snapshot(self.records[a], self.balances[a]) for a in customer_ids}
        usage = (self.usage_view(request.source, local_date, at)
                 if kind in OUTGOING and request.source else UsageCounters())
        closed = [a for a in customer_ids if self.records[a].status == AccountStatus.CLOSED]
        if closed:
            verdict = Verdict("rejected", [Reason(KERNEL, KERNEL, None, ACCOUNT_CLOSED, "reject",
                                                  f"account {closed[0]} is closed",
                                                  code=ACCOUNT_CLOSED)], [], ACCOUNT_CLOSED)
        else:
            ctx = PolicyContext(Request(inst.id, kind, Money(amount_minor, currency), request.source,
                                        request.dest, request.channel, request.memo, at),
                                snaps.get(request.source or ""), snaps.get(request.dest or ""),
                                usage, inst.timezone, local_date, Money(0, currency))
            verdict = self.p.evaluator.evaluate(inst.drivers, ctx)
        return self.record(index, request, kind, verdict, body, amount_minor, currency, at,
                           local_date, customer_ids, cash, fee_income)

    def usage_view(self, account: str, local_date: date, at: datetime) -> UsageCounters:
        day_key, month_key = period_keys(local_date)

        def window(key: str) -> MappingProxyType[tuple[Kind, str], Tally]:
            found = self.usage.get((account, key), {})
            return MappingProxyType({k: Tally(v[0], v[1], v[2]) for k, v in found.items()})

        times = self.recent.get(account, [])
        low = bisect.bisect_right(times, at - RECENT_WINDOW)
        high = bisect.bisect_right(times, at)
        recent = times[max(low, high - RECENT_LIMIT):high]
        if account in self.recent_truncated and len(recent) < RECENT_LIMIT and (
                not times or times[0] > at - RECENT_WINDOW):
            recent = self._recent_exact(account, at)  # loaded list may miss older times
        return UsageCounters(window(day_key), window(month_key), tuple(recent))

    def _recent_exact(self, account: str, at: datetime) -> list[datetime]:
        rows = self.conn.execute(
            select(Txn.at).where(Txn.institution_id == self.inst.id, Txn.source_account_id == account,
                                 Txn.status.in_(("posted", "held")),
                                 Txn.kind.in_([str(k) for k in OUTGOING]),
                                 Txn.at > at - RECENT_WINDOW, Txn.at <= at)
            .order_by(Txn.at.desc()).limit(RECENT_LIMIT)).scalars().all()
        merged = sorted({as_utc(t) for t in rows} | {
            t for t in self.recent.get(account, []) if at - RECENT_WINDOW < t <= at})
        return merged[-RECENT_LIMIT:]

    # ---------------------------------------------------------------- record

    def record(self, index: int, request: TxnRequest, kind: Kind, verdict: Verdict, body: str,
               amount_minor: int, currency: str, at: datetime, local_date: date,
               customer_ids: list[str], cash: str, fee_income: str) -> Outcome:
        inst = self.inst
        lines = plan_lines(kind, amount_minor, request.source, request.dest, cash, fee_income, verdict)
        check_balanced(lines, {a: self.balances[a].currency for a in {l.account_id for l in lines}})
        txn_id = txn_id_for(inst.id, request.ref)
        status = verdict.status
        fee_minor = verdict.fee_minor if status != "rejected" else 0
        if status in ("posted", "held"):
            stage = "post" if status == "posted" else "hold"
            for acc, d in deltas_for(lines, stage).items():
                row, total = self.balances[acc], self.deltas[acc]
                row.debits_posted += d[0]
                row.credits_posted += d[1]
                row.debits_pending += d[2]
                row.credits_pending += d[3]
                for i in range(4):
                    total[i] += d[i]
        result = {
            "txn_id": txn_id, "institution": inst.id, "ref": request.ref, "kind": str(kind),
            "status": status, "code": verdict.code, "amount": format_minor(amount_minor, currency),
            "currency": currency, "fee_total": format_minor(fee_minor, currency),
            "fees": [{"driver": d, "rule": f.rule, "amount": f.amount.format(), "currency": currency,
                      "memo": f.memo} for d, f in verdict.fee_lines] if status != "rejected" else [],
            "reasons": [r.to_dict() for r in verdict.reasons], "source": request.source,
            "dest": request.dest, "channel": request.channel, "memo": request.memo,
            "at": at.isoformat(), "profile_version": inst.profile_version,
            "balances": [balance_doc(a, self.balances[a]) for a in customer_ids],
        }
        result_json = canonical(result)
        self.txn_rows.append({
            "id": txn_id, "institution_id": inst.id, "idempotency_key": request.ref,
            "request_hash": body, "kind": str(kind), "status": status, "amount_minor": amount_minor,
            "fee_minor": fee_minor, "currency": currency, "source_account_id": request.source,
            "dest_account_id": request.dest, "channel": request.channel, "memo": request.memo,
            "at": at, "decided_at": self.now, "initiator": request.actor,
            "profile_version": inst.profile_version, "reverses_txn_id": None,
            "lines": lines_to_json(lines) if status == "held" else "[]", "result": result_json,
            "resolved_at": None, "resolved_by": None, "resolution": None})
        if status == "posted":
            self.posting_rows.extend(
                {"txn_id": txn_id, "institution_id": inst.id, "account_id": l.account_id,
                 "amount_minor": l.amount_minor, "currency": currency, "rule": l.rule,
                 "posted_at": self.now} for l in lines)
        if status != "rejected" and kind in OUTGOING:
            self._count(request.source, local_date, kind, request.channel, amount_minor, fee_minor, at)  # type: ignore[arg-type]
        self.seen[request.ref] = (body, result_json)
        self.audit.append((request.actor, f"txn.{status}", txn_id, result_json, self.now))
        return Outcome(index, request, result, result_json)

    def _count(self, account: str, local_date: date, kind: Kind, channel: str, amount_minor: int,
               fee_minor: int, at: datetime) -> None:
        for key in period_keys(local_date):
            window = self.usage.setdefault((account, key), {})
            tally = window.setdefault((kind, channel), [0, 0, 0])
            tally[0] += amount_minor
            tally[1] += fee_minor
            tally[2] += 1
            delta = self.usage_deltas[(account, key, str(kind), channel)]
            delta[0] += amount_minor
            delta[1] += fee_minor
            delta[2] += 1
        bisect.insort(self.recent.setdefault(account, []), at)

    # ----------------------------------------------------------------- write

    def flush(self) -> None:
        conn, inst = self.conn, self.inst
        bulk_insert(conn, Txn.__table__, self.txn_rows)
        bulk_insert(conn, Posting.__table__, self.posting_rows)
        apply_deltas(conn, inst.id, {a: d for a, d in self.deltas.items() if any(d)})
        bump_usage_many(conn, inst.id, self.usage_deltas)
        self.p.audit.append_many(conn, inst.id, self.audit)


def balance_doc(account: str, b: BalanceRow) -> dict[str, str]:
    return {"account": account, "posted": format_minor(b.posted, b.currency),
            "available": format_minor(b.available, b.currency),
            "held_out": format_minor(b.debits_pending, b.currency), "currency": b.currency}


def plan_lines(kind: Kind, amount_minor: int, source: str | None, dest: str | None,
               cash: str, fee_income: str, verdict: Verdict) -> list[Line]:
    """Balanced postings: principal between the accounts (or the cash
    account for deposits and withdrawals), each fee from payer to fee income."""
    lines = [Line(source or cash, -amount_minor, str(kind)), Line(dest or cash, amount_minor, str(kind))]
    payer = source or dest
    for _driver, fee in verdict.fee_lines:
        lines.append(Line(payer, -fee.amount.amount_minor, fee.rule))  # type: ignore[arg-type]
        lines.append(Line(fee_income, fee.amount.amount_minor, fee.rule))
    return lines


def process_chunk(pipeline: Pipeline, conn: Connection, inst: InstitutionView,
                  requests: list[TxnRequest], now: datetime, first_index: int = 0) -> list[Outcome]:
    """Decide and write one chunk inside the caller's database transaction."""
    kinds: list[Kind | None] = []
    outcomes: list[Outcome | None] = []
    for offset, request in enumerate(requests):
        try:
            if request.institution != inst.id:
                raise InvalidRequest(f"institution: {request.institution!r} is not this batch's institution {inst.id!r}")
            kind = request.check_shape()
            check_at_window(request.at, now, *inst.at_window)  # before any time arithmetic
            check_choice("channel", request.channel, inst.channels, inst.id)
            kinds.append(kind)
            outcomes.append(None)
        except BankError as exc:
            kinds.append(None)
            outcomes.append(Outcome(first_index + offset, request, error=exc))
    chunk = Chunk(pipeline, conn, inst, now)
    chunk.load(requests, kinds)
    for offset, (request, kind) in enumerate(zip(requests, kinds)):
        if kind is None:
            continue
        try:
            outcomes[offset] = chunk.decide(first_index + offset, request, kind)
        except BankError as exc:
            outcomes[offset] = Outcome(first_index + offset, request, error=exc)
    chunk.flush()
    return outcomes  # type: ignore[return-value]
