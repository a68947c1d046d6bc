"""The transaction pipeline, one chunk of requests per database transaction.

Every request, alone (``submit``) or in a file of millions (``process``),
goes through this one code path, so both have exactly the same semantics:

1. load, set-based, what the chunk's rows touch: accounts (locked), balances
   (locked), earlier transactions with the same idempotency keys, and the
   usage counters and recent outgoing times only if a driver of the profile
   reads them;
2. decide each row in order against that state held in memory: validate,
   idempotency, policy context, drivers (fees, limits, approvals), the
   kernel's own balance check; apply the row's effect to the in-memory state
   so the next row sees it;
3. write everything with set-based statements: transactions, postings,
   balance increments, usage increments and the audit chain, whose entry per
   transaction carries its decision record (``bank_core.record``).

Decide in data: a row's outcome is its decision record (integers and term
ids); the result document and every message are rendered only when asked
(``Outcome.result``, ``Outcome.notable_reasons``).

A row that is invalid (bad amount, unknown account, a reused key with another
body) is that row's error and writes nothing; a rejected row is recorded as
rejected. Neither disturbs its neighbours.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, func, select

from bank_core.contract import (
    UNDECLARED_RECENT,
    UNDECLARED_USAGE,
    KINDS_BY_VALUE,
    AccountStatus,
    Kind,
    PolicyContext,
    Tally,
    UsageCounters,
    _tally,
)
from bank_core.decide import Verdict
from bank_core.fastmake import money, policy_context, usage_counters, with_fees
from bank_core.errors import BankError, Conflict, InvalidRequest, NotFound, require
from bank_core.ledger import (
    BalanceRow,
    any_of,
    apply_deltas,
    bump_usage_many,
    next_txn_ids,
    not_for_index,
    one_of,
    period_keys,
    seal_rows,
)
from bank_core.messages import TxnRequest, as_utc, public_txn_id
from bank_core.money import MoneyError, parse_minor
from bank_core.pipeline import ACCOUNT_CLOSED, InstitutionView, Pipeline, snapshot, zone
from bank_core.limits import check_at_window, check_choice
from bank_core.ports import ROLE_CUSTOMER, AccountRecord
from bank_core.record import FORMAT, Record, dumps, encode_answers, loads, record_terms
from bank_core.storage.bulk import insert_rows
from bank_core.storage.models import ShadowDecision, Txn, UsageCounter
from bank_core.terms import TermSession

OUTGOING = (Kind.WITHDRAWAL, Kind.TRANSFER)
_OUTGOING_TEXT = frozenset(str(k) for k in OUTGOING)
RECENT_WINDOW = timedelta(hours=24)
RECENT_LIMIT = UsageCounters.RECENT_OUT_LIMIT
# Rows per chunk (one database transaction) unless a caller says otherwise.
# SQLite's commit writes every page the chunk changed to the log, and the
# account-keyed indexes spread a chunk's rows over most of their leaf pages,
# so each commit rewrote nearly all of them: 2,500 rows a chunk instead of
# 1,000 took the 100k three-driver file from 9.6-10.5 s to 8.4-10.7 s (four
# alternating pairs, medians 10.1 -> 9.2 s; the writer's processor time
# 6.0-6.8 -> 5.3-6.0 s), at 86 MB peak RSS instead of 81. 5,000 since the
# young-generation collector runs every 1,000,000 allocations instead of
# every 100,000 (``bank_cli.state.batch_gc``): the writer's page writes per
# row fall further (a 1M file's ledger spreads each account over leaf pages
# of its own), and with the collector no longer walking a larger chunk's
# live rows ten times as often, the deciding process does not pay for it
# (1M three-driver file, before/after in one sitting: 94.5 / 86.6 s, the
# writer 76.9 -> 67.1 processor seconds; 100k files: no difference pairs
# could resolve; peak RSS 126-146 MB against 91-110).
DEFAULT_CHUNK_SIZE = 5000
MAX_CHUNK_SIZE = 10_000
CARRIED_WINDOWS = 200_000  # usage windows a file carries from chunk to chunk, at most (then it starts afresh)
DECISION_ACTIONS = ("txn.posted", "txn.held", "txn.rejected")
TXN_COLUMNS = ("id", "institution_id", "idempotency_key", "kind", "status", "amount_minor",
               "fee_minor", "currency", "source_account_id", "dest_account_id", "channel", "memo",
               "at", "decided_at", "initiator", "profile_version", "code", "lines")
POSTING_COLUMNS = ("txn_id", "institution_id", "account_id", "amount_minor", "currency", "rule",
                   "posted_at")
SHADOW_COLUMNS = ("institution_id", "txn_id", "shadow", "status", "code", "fee_minor", "record")
SHADOW_FAILED = "shadow_failed"  # a shadow verdict that could not be made or encoded
SHADOW_UNAVAILABLE = "shadow_unavailable"  # the shadow's drivers no longer load
_EMPTY_WINDOW: MappingProxyType[tuple[Kind, str], Tally] = MappingProxyType({})
_NO_TALLY = _tally(0, 0, 0)


class Outcome:
    """One request's outcome: its decision record, or the error it raised.
    ``replayed`` means the record is that of an earlier request with the
    same key and body. Text is made only when asked for."""

    __slots__ = ("index", "request", "txn_id", "institution", "record", "error", "replayed",
                 "_text", "_result", "_fee")

    def __init__(self, index: int, request: TxnRequest, *, txn_id: str | None = None,
                 institution: str = "", record: Any = None, error: BankError | None = None,
                 replayed: bool = False, text: Any = None, fee_minor: int | None = None) -> None:
        self.index = index
        self.request = request
        self.txn_id = txn_id
        self.institution = institution
        self.record = record  # list: a format-2 record; dict: a revision-0001 result
        self.error = _without_traceback(error) if error is not None else None
        self.replayed = replayed
        self._text = text
        self._result: dict[str, Any] | None = None
        self._fee = fee_minor

    @property
    def result(self) -> dict[str, Any] | None:
        """The full result document (``TxnResult`` fields), rendered once."""
        if self.record is None:
            return None
        if self._result is None:
            if isinstance(self.record, dict):
                self._result = self.record
            else:
                self._result = Record(self.record, self._text).result(self.txn_id, self.institution)  # type: ignore[arg-type]
        return self._result

    @property
    def status(self) -> str:
        return self.record["status"] if isinstance(self.record, dict) else self.record[11]

    @property
    def code(self) -> str | None:
        return self.record["code"] if isinstance(self.record, dict) else self.record[12]

    @property
    def currency(self) -> str:
        return self.record["currency"] if isinstance(self.record, dict) else self.record[6]

    def fee_minor(self) -> int:
        """The fees charged (0 when rejected), in minor units."""
        if self._fee is not None:
            return self._fee
        if isinstance(self.record, dict):
            return 0 if self.status == "rejected" else parse_minor(self.record["fee_total"], self.currency,
                                                                   allow_zero=True)
        return Record(self.record, self._text).fee_minor()

    def notable_reasons(self) -> list[dict[str, Any]]:
        """The reasons a results file lists: fails, rejections, reviews, faults."""
        if isinstance(self.record, dict):
            return [x for x in self.record["reasons"]
                    if x["outcome"] in ("fail", "reject", "review", "fault")]
        return [r.to_dict() for r in Record(self.record, self._text).reasons(notable_only=True)]


_new = object.__new__


def _decided(index: int, request: TxnRequest, txn_id: str, institution: str, record: list[Any], text: Any,
             fee_minor: int) -> Outcome:
    """``Outcome(index, request, txn_id=..., institution=..., record=...,
    text=..., fee_minor=...)``, a decided row's, without the keyword call
    (one a row of a file)."""
    o = _new(Outcome)
    o.index, o.request, o.txn_id, o.institution, o.record = index, request, txn_id, institution, record
    o.error, o.replayed, o._text, o._result, o._fee = None, False, text, None, fee_minor
    return o


class Carry:
    """What one chunk of a file hands on to the next: the account records and
    balances (as that chunk left them) of every account the file touched so
    far. The next chunk uses them instead of reading them again only while
    the institution's audit head is exactly where the last committed chunk
    left it: every change to an institution's accounts, balances or profile
    appends to its chain, so an unchanged head, read inside the next chunk's
    own write transaction, means nobody else changed anything in between.
    A chunk that did not commit (an error, a retried serialization failure)
    may have changed the balances in memory: the next load starts afresh."""

    __slots__ = ("head", "profile_version", "records", "balances", "in_flight", "usage", "views", "windows")
    by_head = True  # ``begin`` compares the head (read for it at each load)

    def __init__(self) -> None:
        self.head: tuple[int, str] | None = None
        self.profile_version = -1
        self.in_flight = False
        self.forget()

    def forget(self) -> None:
        """Carry nothing: the next load reads everything it needs."""
        self.records: dict[str, AccountRecord] = {}
        self.balances: dict[str, BalanceRow] = {}
        # usage counters: the windows ``(account, period)`` whose counters
        # ``usage`` holds exactly (loaded, plus every increment since), so a
        # chunk loads only the windows no earlier chunk of the file loaded
        self.usage: dict[tuple[str, str], dict[tuple[Kind, str], Tally]] = {}
        self.views: dict[tuple[str, str], MappingProxyType[tuple[Kind, str], Tally]] = {}
        self.windows: set[tuple[str, str]] = set()

    def begin(self, head: tuple[int, str] | None, profile_version: int) -> bool:
        """At a chunk's load: whether what is carried still holds."""
        usable = (not self.in_flight and head is not None and head == self.head
                  and profile_version == self.profile_version)
        self.keep(usable)
        self.head, self.profile_version, self.in_flight = head, profile_version, True
        return usable

    def keep(self, usable: bool) -> None:
        """Keep what is carried if it is ``usable`` and not past its bound."""
        if not usable or len(self.windows) > CARRIED_WINDOWS:
            self.forget()

    def committed(self) -> None:
        """The chunk's transaction committed: what it left is the database's."""
        self.in_flight = False


class Chunk:
    """The state of one chunk: loaded once, updated per row, written once."""

    def __init__(self, pipeline: Pipeline, conn: Connection, inst: InstitutionView,
                 now: datetime, carry: Carry | None = None) -> None:
        self.carry = carry
        self.p = pipeline
        self.conn = conn
        self.inst = inst
        self.now = now
        self.now_iso = now.isoformat()
        self.tz = zone(inst.timezone)
        self.terms: TermSession = pipeline.terms.session(conn)
        self.records: dict[str, AccountRecord] = {}
        self.balances: dict[str, BalanceRow] = {}
        self.internal: dict[tuple[str, str], str] = {}
        self.seen: dict[str, tuple[str, Any]] = {}  # ref -> (txn id, record)
        self.usage: dict[tuple[str, str], dict[tuple[Kind, str], Tally]] = {}
        # each window's read-only view as drivers get it (a copy, so a row's
        # view never changes after it), made once and dropped when the
        # window changes (``_count``), not made per row
        self.views: dict[tuple[str, str], MappingProxyType[tuple[Kind, str], Tally]] = {}
        self.windows: set[tuple[str, str]] = set()  # the (account, period) windows ``usage`` holds
        self.recent: dict[str, list[datetime]] = {}
        self.recent_truncated: set[str] = set()
        self.ids: list[int] = []
        # what the chunk will write: per decided row a ``ROW`` tuple (txn
        # number, fee_minor, actor (its place in ``actors``), lines (None
        # when rejected), the record's canonical text, then the record's
        # values the transaction's row takes), from which the writer makes
        # the transaction, its postings and its audit entry (``expand``: the
        # deciding process does not build rows it only hands on). Plain
        # values only, so that the write-ahead writer gets them marshalled
        # (``bank_core.ahead``); the record itself goes as its text, made
        # here while its values are fresh in the cache (the record stays in
        # ``seen`` for replays). Measured: marshalling the record's ~90
        # objects when the chunk was packed cost this process about what
        # ``dumps`` now costs it (packing -0.12 s, deciding +0.1-0.2 s on a
        # 50k Northwind file), and the writer, which dumped it before, does
        # 5-7% fewer instructions. The row's time is the record's text and
        # its actor (an ``Actor``, which carries what the person typed) is
        # kept once in ``actors``.
        self.rows: list[tuple[Any, ...]] = []
        self.actors: list[Any] = []
        self._actor: Any = None  # the last row's actor, ``actors[-1]``
        self.deltas: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        self.usage_deltas: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.shadow_rows: list[tuple[Any, ...]] = []  # the shadow profile's decisions, if one runs
        # write-ahead (bank_core.ahead): the chunk decided just before this
        # one, not yet committed, whose rows the load adds to what the
        # database shows (``rows``: a transaction and its audit entry each)
        self.ahead: Chunk | None = None
        self.lock_rows = True  # the load locks what it reads (not on a write-ahead snapshot)
        self.sealed: tuple[dict[str, list[int]], dict[str, str]] | None = None  # balance deltas, seals
        # what the chunk loads: the live profile's reads, and a shadow's
        self.reads = inst.reads if inst.shadow is None else inst.reads | inst.shadow.reads

    # ------------------------------------------------------------------ load

    def load(self, requests: list[TxnRequest], kinds: list[Kind | None]) -> None:
        conn, inst, carry = self.conn, self.inst, self.carry
        ids = {a for r, k in zip(requests, kinds) if k is not None for a in (r.source, r.dest) if a}
        if carry is not None and carry.begin(self.p.audit.head(conn, inst.id) if carry.by_head else None,
                                             inst.profile_version):
            self.records, self.balances = carry.records, carry.balances
            self.usage, self.views, self.windows = carry.usage, carry.views, carry.windows
        missing = sorted(ids - self.records.keys())
        if missing:
            self.records.update(self.p.accounts.get_many(conn, inst.id, missing, for_update=self.lock_rows))
        for cur in sorted({self.records[i].currency for i in ids if i in self.records}):
            for role in ("cash", "fee_income"):
                found = self.p.internal_account(conn, inst.id, role, cur)
                if found is not None:
                    self.internal[(role, cur)] = found
        missing = sorted((ids | set(self.internal.values())) - self.balances.keys())
        if missing:
            self.balances.update(self.p.load_balances(conn, inst.id, missing, self.lock_rows))
        if carry is not None:
            carry.records, carry.balances = self.records, self.balances
            carry.usage, carry.views, carry.windows = self.usage, self.views, self.windows
        refs = [r.ref for r, k in zip(requests, kinds) if k is not None]
        self._load_earlier(refs)
        ahead = self.ahead
        if ahead is not None:  # its rows as the database will hold them once it commits
            wanted = set(refs)
            for row in ahead.rows:
                ref = row[ROW_REF]
                if ref in wanted:
                    self.seen[ref] = ahead.seen[ref]  # (its txn id and record, as it decided them)
        if self.reads:
            self._load_usage(requests, kinds)

    def _load_earlier(self, refs: list[str]) -> None:
        conn, inst = self.conn, self.inst
        found: dict[str, str] = {}  # public id -> ref
        sql, values = any_of(conn, refs)
        mark = "?" if conn.dialect.name == "sqlite" else "%s"
        rows = conn.exec_driver_sql("SELECT idempotency_key, id, legacy_id FROM txn WHERE "
                                    f"institution_id = {mark} AND idempotency_key{sql}", (inst.id, values))
        for ref, txn_id, legacy in rows:
            found[public_txn_id(txn_id) if legacy is None else legacy] = ref
        if not found:
            return
        subjects = sorted(found)
        payloads: dict[str, str] = {}
        for start in range(0, len(subjects), 500):
            payloads.update(self.p.audit.decisions(conn, inst.id, subjects[start:start + 500],
                                                   DECISION_ACTIONS))
        term_ids = []
        for subject, payload in payloads.items():
            record = loads(payload)
            self.seen[found[subject]] = (subject, record)
            if isinstance(record, list):
                term_ids.extend(record_terms(record))
        self.terms.preload(term_ids)

    def _load_usage(self, requests: list[TxnRequest], kinds: list[Kind | None]) -> None:
        sources: set[str] = set()
        windows: set[tuple[str, str]] = set()
        times: list[datetime] = []
        for request, kind in zip(requests, kinds):
            if kind in OUTGOING and request.source in self.records:
                at = self.at(request)
                source = request.source
                sources.add(source)  # type: ignore[arg-type]
                for key in period_keys(at.astimezone(self.tz).date()):
                    windows.add((source, key))  # type: ignore[arg-type]
                times.append(at)
        if not sources:
            return
        if "usage" in self.reads:
            self._load_windows(windows - self.windows)
        if "recent" not in self.reads:
            return
        ranked = (select(Txn.source_account_id.label("acc"), Txn.at.label("at"),
                         func.row_number().over(partition_by=Txn.source_account_id,
                                                order_by=Txn.at.desc()).label("rn"))
                  .where(not_for_index(self.conn, Txn.institution_id) == self.inst.id,
                         one_of(self.conn, Txn.source_account_id, sorted(sources)),
                         Txn.status.in_(("posted", "held")),
                         Txn.kind.in_([str(k) for k in OUTGOING]),
                         Txn.at > min(times) - RECENT_WINDOW, Txn.at <= max(times))
                  .subquery())
        for acc, at, _rn in self.conn.execute(select(ranked).where(ranked.c.rn <= RECENT_LIMIT)).all():
            self.recent.setdefault(acc, []).append(as_utc(at))
        if self.ahead is not None:
            low, high = min(times) - RECENT_WINDOW, max(times)
            for acc, at in self.ahead.outgoing():
                if acc in sources and low < at <= high:
                    self.recent.setdefault(acc, []).append(at)
        for acc, found in self.recent.items():
            found.sort()
            if len(found) >= RECENT_LIMIT:
                self.recent_truncated.add(acc)
                del found[:-RECENT_LIMIT]  # the latest, as the query's ranking keeps them

    def _load_windows(self, missing: set[tuple[str, str]]) -> None:
        """The usage counters of windows no earlier chunk of the file loaded
        (those it did are carried, with every increment since)."""
        if not missing:
            return
        U, usage = UsageCounter, self.usage
        rows = self.conn.execute(select(U.account_id, U.period, U.kind, U.channel, U.amount_minor,
                                        U.fee_minor, U.count).where(
            U.institution_id == self.inst.id, one_of(self.conn, U.account_id, sorted({a for a, _ in missing})),
            U.period.in_(sorted({p for _, p in missing}))))
        for acc, period, kind, channel, amount, fee, count in rows.all():
            if (acc, period) in missing:
                usage.setdefault((acc, period), {})[(KINDS_BY_VALUE[kind], channel)] = _tally(amount, fee, count)
        if self.ahead is not None:  # the uncommitted chunk's increments, which the snapshot lacks
            for (acc, period, kind, channel), delta in self.ahead.usage_deltas.items():
                if (acc, period) in missing:
                    window, key = usage.setdefault((acc, period), {}), (KINDS_BY_VALUE[kind], channel)
                    old = window.get(key, _NO_TALLY)
                    window[key] = _tally(old.amount_minor + delta[0], old.fee_minor + delta[1],
                                         old.count + delta[2])
        for window in missing:
            self.views.pop(window, None)
        self.windows |= missing

    def at(self, request: TxnRequest) -> datetime:
        return as_utc(request.at) if request.at is not None else self.now

    # ---------------------------------------------------------------- decide

    def decide(self, index: int, request: TxnRequest, kind: Kind) -> Outcome:
        prepared = self.prepare(index, request, kind)
        if type(prepared) is Outcome:
            return prepared
        verdict = prepared[1]
        if verdict is None:
            verdict = self.p.evaluator.evaluate(self.inst.drivers, prepared[0])
        return self.finish(prepared, verdict)

    def prepare(self, index: int, request: TxnRequest, kind: Kind, wire: bool = False) -> Any:
        """Everything of a row before its drivers: the replay of an earlier
        request (an ``Outcome``), or ``(ctx, kernel verdict or None, ...)``
        for :meth:`finish`. Raises the row's ``BankError``. ``wire``: the
        drivers run in a policy server and no shadow runs, so ``ctx`` is the
        context as wire data (:meth:`wire_context`), never built as objects."""
        inst, records = self.inst, self.records
        source, dest = request.source, request.dest
        for label, acc in (("from", source), ("to", dest)):
            if acc and (acc not in records or records[acc].role != ROLE_CUSTOMER):
                raise NotFound(f"{label}: account {acc!r} not found")
        if source and dest and records[source].currency != records[dest].currency:
            raise InvalidRequest(f"to: accounts are in different currencies "
                                 f"({', '.join(sorted({records[source].currency, records[dest].currency}))})")
        currency = records[source or dest].currency  # type: ignore[index]
        if request.currency is not None and request.currency != currency:
            raise InvalidRequest(f"currency: {request.currency} does not match the account currency {currency}")
        try:
            amount_minor = parse_minor(request.amount, currency)
        except MoneyError as exc:
            raise InvalidRequest(str(exc)) from None
        at = self.at(request)
        at_iso = at.isoformat()
        body = (str(kind), source, dest, amount_minor, currency, request.channel, request.memo,
                at_iso if request.at is not None else None)
        earlier = self.seen.get(request.ref)
        if earlier is not None:
            return self._replay(index, request, body, earlier)
        cash = self.internal.get(("cash", currency))
        fee_income = self.internal.get(("fee_income", currency))
        if cash is None or fee_income is None:
            raise InvalidRequest(f"currency: institution {inst.id} has no internal accounts in {currency}")
        # (limits.check_at_window has bounded ``at`` already; an account record's
        # times are aware UTC, as the accounts server reads them)
        if source and at < records[source].opened_at or dest and at < records[dest].opened_at:
            acc = source if source and at < records[source].opened_at else dest
            raise InvalidRequest(f"at: {at_iso} is before account {acc} was opened "
                                 f"({records[acc].opened_at.isoformat()})")  # type: ignore[index]
        local_date = at.astimezone(self.tz).date()
        closed: Any = ()
        if source and records[source].status == _CLOSED or dest and records[dest].status == _CLOSED:
            closed = [a for a in (source, dest) if a and records[a].status == _CLOSED]
        if wire:
            verdict = Verdict("rejected", ACCOUNT_CLOSED, kernel=(ACCOUNT_CLOSED, f"account {closed[0]} is closed")
                              ) if closed else None
            ctx = None if closed else self.wire_context(body[0], amount_minor, currency, request, at, at_iso,
                                                        local_date)
            return (ctx, verdict, index, request, kind, body, amount_minor, currency, at, at_iso, local_date,
                    cash, fee_income, closed)
        src = snapshot(records[source], self.balances[source]) if source else None
        dst = snapshot(records[dest], self.balances[dest]) if dest else None
        if kind is Kind.DEPOSIT or not inst.reads:
            usage = _NO_USAGE if not inst.reads else UsageCounters()
        else:
            usage = self.usage_view(source, local_date, at)  # type: ignore[arg-type]
        ctx = verdict = None
        if closed:
            verdict = Verdict("rejected", ACCOUNT_CLOSED,
                              kernel=(ACCOUNT_CLOSED, f"account {closed[0]} is closed"))
        else:
            ctx = policy_context(inst.id, kind, money(amount_minor, currency), source, dest,
                                 request.channel, request.memo, at, src, dst, usage, inst.timezone,
                                 local_date, money(0, currency))
        return (ctx, verdict, index, request, kind, body, amount_minor, currency, at, at_iso, local_date,
                cash, fee_income, closed)

    def wire_context(self, kind: str, amount_minor: int, currency: str, request: TxnRequest,
                     at: datetime, at_iso: str, local_date: date) -> list[Any]:
        """The row's context as ``bank_core.wire.encode_context`` writes the
        ``PolicyContext`` that :meth:`prepare` builds inline (``run`` null),
        made from the chunk's state directly: in process mode the kernel
        never reads the context's objects, so it does not build them only to
        take them apart (``tests/test_wire.py`` holds the two equal)."""
        source, dest, reads = request.source, request.dest, self.inst.reads
        if not reads:
            usage: Any = 0
        elif kind == "deposit":
            usage = [[], [], []]  # UsageCounters(): empty windows, no recent times
        else:
            usage = self._wire_usage(source, local_date, at, reads)  # type: ignore[arg-type]
        day = period_keys(local_date)[0]  # the local date's text, kept per date
        return [None, kind, amount_minor, currency, source, dest, request.channel, request.memo, at_iso,
                self._wire_account(source) if source else None, self._wire_account(dest) if dest else None,
                usage, day, 0]

    def _wire_account(self, acc: str) -> list[Any]:
        r, b = self.records[acc], self.balances[acc]
        opened = _ISO.get(r.opened_at)
        if opened is None:
            opened = _iso(r.opened_at)
        return [r.id, r.currency, r.status, r.product, opened,
                b.credits_posted - b.debits_posted, b.debits_pending, b.credits_pending]

    def _wire_usage(self, account: str, local_date: date, at: datetime, reads: frozenset[str]) -> Any:
        """:meth:`usage_view` as wire data."""
        if "usage" in reads:
            day_key, month_key = period_keys(local_date)
            day, month = self._wire_window(account, day_key), self._wire_window(account, month_key)
        else:
            day = month = None
        if "recent" not in reads:
            return 0 if day is None else [day, month, None]
        return [day, month, [t.isoformat() for t in self._recent_times(account, at)]]

    def _wire_window(self, account: str, key: str) -> list[Any]:
        flat: list[Any] = []
        found = self.usage.get((account, key))
        if found:
            for (kind, channel), v in found.items():
                flat += (kind.value, channel, v.amount_minor, v.fee_minor, v.count)
        return flat

    def finish(self, prepared: Any, verdict: Verdict) -> Outcome:
        """Record a prepared row with its verdict (and a shadow's, if one runs)."""
        (ctx, _kernel, index, request, kind, body, amount_minor, currency, at, at_iso, local_date,
         cash, fee_income, closed) = prepared
        source = request.source
        if self.inst.shadow is None:
            return self.record(index, request, kind, verdict, body, amount_minor, currency, at,
                               at_iso, local_date, cash, fee_income)
        shadowed = verdict if closed else self._shadow_verdict(ctx, kind, source, local_date, at)
        outcome = self.record(index, request, kind, verdict, body, amount_minor, currency, at,
                              at_iso, local_date, cash, fee_income)
        self._shadow_record(shadowed, outcome.record, currency)
        return outcome

    # ---------------------------------------------------------------- shadow

    def _shadow_verdict(self, ctx: PolicyContext, kind: Kind, source: str | None,
                        local_date: date, at: datetime) -> Verdict:
        """The shadow profile's verdict on the context the live drivers just
        saw (before this row's own effect on usage). Never raises: whatever
        goes wrong is the shadow's verdict (``bank_core.shadow``)."""
        shadow = self.inst.shadow
        try:
            if shadow.drivers is None:
                return Verdict("rejected", SHADOW_UNAVAILABLE, kernel=(SHADOW_UNAVAILABLE, shadow.error))
            if shadow.reads != self.inst.reads:  # its drivers declare other reads: their own view
                usage = (UsageCounters() if shadow.reads else _NO_USAGE) if kind is Kind.DEPOSIT or \
                    not shadow.reads else self.usage_view(source, local_date, at, shadow.reads)  # type: ignore[arg-type]
                ctx = with_fees(ctx.request, ctx.source, ctx.dest, usage, ctx.timezone, ctx.local_date,
                                ctx.fees)
            return self.p.evaluator.evaluate(shadow.drivers, ctx)
        except Exception as exc:  # noqa: BLE001 - a shadow never reaches the live path
            return Verdict("rejected", SHADOW_FAILED, kernel=(SHADOW_FAILED, f"{type(exc).__name__}: {exc}"))

    def _shadow_record(self, verdict: Verdict, live: list[Any], currency: str) -> None:
        """Queue the shadow's compact decision: the live record's request
        fields, the shadow's status, code and answers, no balances."""
        try:
            answers, fault = encode_answers(verdict, currency, self.terms, self.terms.driver)
        except Exception as exc:  # noqa: BLE001
            verdict = Verdict("rejected", SHADOW_FAILED)
            answers, fault = [], [0, SHADOW_FAILED, f"{type(exc).__name__}: {exc}"]
        status = verdict.status
        record = [*live[:11], status, verdict.code, None, [], answers, fault]
        self.shadow_rows.append((self.inst.id, self.rows[-1][0], self.inst.shadow.number, status,
                                 verdict.code, verdict.fee_minor if status != "rejected" else 0,
                                 dumps(record)))

    def _replay(self, index: int, request: TxnRequest, body: tuple[Any, ...],
                earlier: tuple[str, Any]) -> Outcome:
        txn_id, record = earlier
        if isinstance(record, list):
            same = Record(record, self.terms.text).body() == body
        else:  # a revision-0001 result: compare what it kept of the request
            same = (record["kind"], record["source"], record["dest"], record["currency"],
                    record["channel"], record["memo"]) == (body[0], body[1], body[2], body[4],
                                                           body[5], body[6]) and \
                parse_minor(record["amount"], record["currency"]) == body[3] and \
                (body[7] is None or body[7] == record["at"])
        if not same:
            raise Conflict(f"ref: {request.ref!r} was already used for a different request")
        return Outcome(index, request, txn_id=txn_id, institution=self.inst.id, record=record,
                       replayed=True, text=self.terms.text)

    def usage_view(self, account: str, local_date: date, at: datetime,
                   reads: frozenset[str] | None = None) -> UsageCounters:
        if reads is None:
            reads = self.inst.reads
        if "usage" in reads:
            day_key, month_key = period_keys(local_date)
            day, month = self._window(account, day_key), self._window(account, month_key)
        else:
            day = month = UNDECLARED_USAGE  # type: ignore[assignment]
        if "recent" not in reads:
            return usage_counters(day, month, UNDECLARED_RECENT)
        return usage_counters(day, month, tuple(self._recent_times(account, at)))

    def _recent_times(self, account: str, at: datetime) -> list[datetime]:
        times = self.recent.get(account, [])
        low = bisect.bisect_right(times, at - RECENT_WINDOW)
        high = bisect.bisect_right(times, at)
        recent = times[max(low, high - RECENT_LIMIT):high]
        if account in self.recent_truncated and len(recent) < RECENT_LIMIT and (
                not times or times[0] > at - RECENT_WINDOW):
            recent = self._recent_exact(account, at)  # loaded list may miss older times
        return recent

    def _window(self, account: str, key: str) -> MappingProxyType[tuple[Kind, str], Tally]:
        view = self.views.get((account, key))
        if view is None:
            found = self.usage.get((account, key))
            view = MappingProxyType(found.copy()) if found else _EMPTY_WINDOW
            self.views[(account, key)] = view
        return view

    def _recent_exact(self, account: str, at: datetime) -> list[datetime]:
        rows = self.conn.execute(
            select(Txn.at).where(not_for_index(self.conn, Txn.institution_id) == self.inst.id,
                                 Txn.source_account_id == account,
                                 Txn.status.in_(("posted", "held")),
                                 Txn.kind.in_([str(k) for k in OUTGOING]),
                                 Txn.at > at - RECENT_WINDOW, Txn.at <= at)
            .order_by(Txn.at.desc()).limit(RECENT_LIMIT)).scalars().all()
        if self.ahead is not None:  # and the uncommitted chunk's, ranked with them
            rows = sorted([as_utc(t) for t in rows] + [t for a, t in self.ahead.outgoing() if a == account and
                                                       at - RECENT_WINDOW < t <= at])[-RECENT_LIMIT:]
        merged = sorted({as_utc(t) for t in rows} | {
            t for t in self.recent.get(account, []) if at - RECENT_WINDOW < t <= at})
        return merged[-RECENT_LIMIT:]

    # ---------------------------------------------------------------- record

    def record(self, index: int, request: TxnRequest, kind: Kind, verdict: Verdict,
               body: tuple[Any, ...], amount_minor: int, currency: str, at: datetime,
               at_iso: str, local_date: date, cash: str, fee_income: str) -> Outcome:
        inst, source, dest = self.inst, request.source, request.dest
        status = verdict.status
        lines = [(source or cash, -amount_minor, body[0]), (dest or cash, amount_minor, body[0])]
        payer = source or dest
        for _bound, fee in verdict.fee_lines:
            lines.append((payer, -fee.amount.amount_minor, fee.rule))
            lines.append((fee_income, fee.amount.amount_minor, fee.rule))
        balances = self.balances
        # The kernel's own check, after the drivers spoke (the message is
        # made only when it fails: formatting it costs more than the check).
        total = 0
        for acc, amount, _rule in lines:
            total += amount
            if balances[acc].currency != currency:
                total = None
                break
        if total != 0:
            require(False, f"unbalanced lines: {lines}")
        if not self.ids:  # once per chunk: one id for every row left to decide
            ahead = self.ahead.rows if self.ahead is not None else None
            self.ids = next_txn_ids(self.conn, self.remaining, ahead[-1][0] if ahead else 0)[::-1]
            self.remaining = 0
        txn_number = self.ids.pop()
        txn_id = public_txn_id(txn_number)
        fee_minor = verdict.fee_minor if status != "rejected" else 0
        if status != "rejected":
            pending = status == "held"
            deltas = self.deltas
            for acc, amount, _rule in lines:
                row, total = balances[acc], deltas[acc]
                if amount < 0:
                    if pending:
                        row.debits_pending -= amount
                        total[2] -= amount
                    else:
                        row.debits_posted -= amount
                        total[0] -= amount
                elif pending:
                    row.credits_pending += amount
                    total[3] += amount
                else:
                    row.credits_posted += amount
                    total[1] += amount
        snapshot_after: list[Any] = []
        for acc in (source, dest):
            if acc:
                b = balances[acc]
                snapshot_after += (acc, b.credits_posted - b.debits_posted, b.debits_pending)
        answers, fault = encode_answers(verdict, currency, self.terms, self.terms.driver)
        record = [FORMAT, request.ref, body[0], source, dest, amount_minor, currency,
                  request.channel, request.memo, body[7] is not None, at_iso, status, verdict.code,
                  inst.profile_version, snapshot_after, answers, fault]
        actor = request.actor
        if actor is not self._actor:  # (a file's rows share one)
            self._actor = actor
            self.actors.append(actor)
        self.rows.append((txn_number, fee_minor, len(self.actors) - 1, lines if status != "rejected" else None,
                          dumps(record), request.ref, body[0], status, amount_minor, currency, source, dest,
                          request.channel, request.memo, at_iso, inst.profile_version, verdict.code))
        if status != "rejected" and kind in OUTGOING:
            self._count(source, local_date, kind, request.channel, amount_minor, fee_minor, at)  # type: ignore[arg-type]
        self.seen[request.ref] = (txn_id, record)
        return _decided(index, request, txn_id, inst.id, record, self.terms.text, fee_minor)

    remaining = 1  # rows left to decide in this chunk (ids are allocated for them at once)

    def _count(self, account: str, local_date: date, kind: Kind, channel: str, amount_minor: int,
               fee_minor: int, at: datetime) -> None:
        kind_text = str(kind)
        read = "usage" in self.reads  # (the counters are written whatever the profile reads)
        for key in period_keys(local_date):
            if read:
                self.views.pop((account, key), None)
                window = self.usage.setdefault((account, key), {})
                old = window.get((kind, channel), _NO_TALLY)
                window[(kind, channel)] = _tally(old.amount_minor + amount_minor, old.fee_minor + fee_minor,
                                                 old.count + 1)
            delta = self.usage_deltas[(account, key, kind_text, channel)]
            delta[0] += amount_minor
            delta[1] += fee_minor
            delta[2] += 1
        if "recent" in self.reads:
            bisect.insort(self.recent.setdefault(account, []), at)

    def outgoing(self) -> list[tuple[str, datetime]]:
        """(source, at) of the outgoing rows this chunk posted or held: what
        the recent-times query will find of it once it commits."""
        return [(row[ROW_SOURCE], _from_iso(row[ROW_AT])) for row in self.rows
                if row[ROW_STATUS] != "rejected" and row[ROW_KIND] in _OUTGOING_TEXT]

    # ----------------------------------------------------------------- write

    def flush(self) -> None:
        self.seal()
        head = self.write(self.conn)
        if head is not None and self.carry is not None:
            self.carry.head = head

    def seal(self) -> None:
        """Fix what the balance update writes (the deltas and the rows'
        new seals) while the balances are as this chunk left them: a
        write-ahead writer writes it while the next chunk changes them."""
        deltas = {a: d for a, d in self.deltas.items() if any(d)}
        self.sealed = deltas, seal_rows(self.balances, deltas)

    def writes(self) -> Writes:
        """What the sealed chunk writes, as plain data (a write-ahead
        writer gets it through a pipe)."""
        deltas, seals = self.sealed  # type: ignore[misc]
        plain = (self.rows, deltas, seals, dict(self.usage_deltas))
        return self.inst.id, self.now, self.actors, self.shadow_rows, plain

    def write(self, conn: Connection) -> tuple[int, str] | None:
        """Write the sealed chunk on ``conn``; returns the audit chain's new head."""
        return write_chunk(conn, self.p.audit, self.writes())


# Chunk.writes(): institution, now, actors, shadow rows, (rows, deltas, seals, usage): the last
# part plain values only (ints, text, lists, tuples, dicts, None, booleans)
Writes = tuple[Any, ...]
# a row of ``Chunk.rows``: (txn number, fee_minor, actor, lines, record text, ref, kind, status,
# amount_minor, currency, source, dest, channel, memo, at (the record's text), profile version, code)
ROW_REF, ROW_KIND, ROW_STATUS, ROW_SOURCE, ROW_AT = 5, 6, 7, 10, 14
_ACTIONS = {status: f"txn.{status}" for status in ("posted", "held", "rejected")}
_from_iso = datetime.fromisoformat  # a record's ``at``: ``at.isoformat()`` of a UTC time, read back exactly


def expand(institution: str, now: datetime, actors: list[Any], rows: list[tuple[Any, ...]]
           ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[str, str, str, str, datetime]]]:
    """A chunk's decided rows (``Chunk.rows``) as what the tables take: the
    transactions, the postings of those posted, and each transaction's
    audit entry, whose payload is its decision record's canonical text.
    Made where the chunk is written (the write-ahead writer, on the other
    core), not by the process that decides."""
    txn_rows: list[tuple[Any, ...]] = []
    postings: list[tuple[Any, ...]] = []
    entries: list[tuple[str, str, str, str, datetime]] = []
    for (number, fee_minor, who, lines, text, ref, kind, status, amount_minor, currency, source, dest, channel,
         memo, at, version, code) in rows:
        actor = actors[who]
        txn_rows.append((number, institution, ref, kind, status, amount_minor, fee_minor, currency, source, dest,
                         channel, memo, _from_iso(at), now, actor, version, code,
                         json.dumps([list(line) for line in lines]) if status == "held" else None))
        if status == "posted":
            postings.extend((number, institution, acc, amount, currency, rule, now) for acc, amount, rule in lines)
        entries.append((actor, _ACTIONS[status], public_txn_id(number), text, now))
    return txn_rows, postings, entries


def write_chunk(conn: Connection, audit: Any, writes: Writes) -> tuple[int, str] | None:
    """A chunk's writes, set-based (statements only: everything was decided
    and sealed before); returns the audit chain's new head."""
    institution, now, actors, shadow_rows, (rows, deltas, seals, usage_deltas) = writes
    txn_rows, posting_rows, entries = expand(institution, now, actors, rows)
    insert_rows(conn, Txn.__table__, TXN_COLUMNS, txn_rows)
    insert_rows(conn, Txn.metadata.tables["posting"], POSTING_COLUMNS, posting_rows)
    apply_deltas(conn, institution, deltas, seals=seals)
    bump_usage_many(conn, institution, usage_deltas)
    head = audit.append_many(conn, institution, entries)
    if shadow_rows:
        insert_rows(conn, ShadowDecision.__table__, SHADOW_COLUMNS, shadow_rows)
    return head


def _without_traceback(error: BankError) -> BankError:
    """The error without its traceback (nor its causes'): a traceback holds
    the frame of the chunk whose outcome list holds this error, a cycle that
    would keep every chunk's rows alive until a full garbage collection."""
    seen: BaseException | None = error
    while seen is not None:
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__
    return error


_NO_USAGE = UsageCounters(UNDECLARED_USAGE, UNDECLARED_USAGE, UNDECLARED_RECENT)  # type: ignore[arg-type]
_CLOSED = AccountStatus.CLOSED.value
_ISO: dict[Any, str] = {}  # an opening time (as stored) -> its wire text


def _iso(value: Any) -> str:
    if len(_ISO) > 100_000:
        _ISO.clear()
    text = _ISO[value] = as_utc(value).isoformat()
    return text


def process_chunk(pipeline: Pipeline, conn: Connection, inst: InstitutionView,
                  requests: list[TxnRequest], now: datetime, first_index: int = 0,
                  carry: Carry | None = None) -> list[Outcome]:
    """Decide and write one chunk inside the caller's database transaction.
    ``carry``: the file's :class:`Carry`; call its ``committed()`` once the
    transaction commits."""
    kinds, outcomes = check_rows(inst, requests, now, first_index)
    chunk = Chunk(pipeline, conn, inst, now, carry)
    chunk.load(requests, kinds)
    decide_rows(chunk, requests, kinds, outcomes, first_index)
    chunk.flush()
    return outcomes  # type: ignore[return-value]


def check_rows(inst: InstitutionView, requests: list[TxnRequest], now: datetime, first_index: int
               ) -> tuple[list[Kind | None], list[Outcome | None]]:
    """Each row's kind, or (kind None) its outcome: the error of a row
    whose shape, time or channel is wrong, before anything is loaded."""
    kinds: list[Kind | None] = []
    outcomes: list[Outcome | None] = []
    earliest, latest = now - inst.at_window[0], now + inst.at_window[1]
    for offset, request in enumerate(requests):
        try:
            if request.institution != inst.id:
                raise InvalidRequest(f"institution: {request.institution!r} is not this batch's institution {inst.id!r}")
            kind = request.check_shape()
            at = request.at  # (aware and in range: ``check_shape``)
            if at is not None and not earliest <= at <= latest:  # before any time arithmetic
                check_at_window(at, now, *inst.at_window)  # (raises, saying the window)
            if inst.channels and request.channel not in inst.channels:
                check_choice("channel", request.channel, inst.channels, inst.id)  # (raises, saying which)
            kinds.append(kind)
            outcomes.append(None)
        except BankError as exc:
            kinds.append(None)
            outcomes.append(Outcome(first_index + offset, request, error=exc))
    return kinds, outcomes


def decide_rows(chunk: Chunk, requests: list[TxnRequest], kinds: list[Kind | None],
                outcomes: list[Outcome | None], first_index: int) -> None:
    """Decide the loaded chunk's valid rows in order, filling ``outcomes``."""
    chunk.remaining = sum(1 for k in kinds if k is not None)
    if chunk.inst.remote is not None:
        _decide_in_waves(chunk, chunk.inst.remote, requests, kinds, outcomes, first_index)
        return
    for offset, (request, kind) in enumerate(zip(requests, kinds)):
        if kind is None:
            continue
        try:
            outcomes[offset] = chunk.decide(first_index + offset, request, kind)
        except BankError as exc:
            outcomes[offset] = Outcome(first_index + offset, request, error=exc)


def _decide_in_waves(chunk: Chunk, remote: Any, requests: list[TxnRequest], kinds: list[Kind | None],
                     outcomes: list[Outcome | None], first_index: int) -> None:
    """Decide a chunk whose drivers run in a policy server, in as few
    messages as the rows allow, with exactly the outcomes of the row-by-row
    loop.

    A row's context depends on the rows before it only through the accounts
    it names (their balances, usage and recent times) and its idempotency
    key (an earlier row with the same key makes it a replay). So rows are
    prepared in order into a *wave* until one names an account or a key an
    earlier row of the wave names; then the wave's contexts go to the server
    in one message, its rows are recorded in order with their verdicts, and
    the next wave starts with that row. Rows of one wave touch disjoint
    state, so preparing each before its wave-mates are recorded sees exactly
    what the row-by-row loop sees. (On random traffic over 1,000 accounts a
    wave is ~20-40 rows; one hot account makes every wave one row.)"""
    wave: list[tuple[int, Any]] = []
    touched: set[Any] = set()
    wire = chunk.inst.shadow is None  # a shadow is evaluated inline, on the context's objects

    def send() -> None:
        todo = [p for _, p in wave if p[1] is None]
        verdicts = iter(remote.evaluate_wire(chunk.inst.drivers, [p[0] for p in todo], [p[7] for p in todo])
                        if wire else remote.evaluate_many(chunk.inst.drivers, [p[0] for p in todo]))
        for offset, prepared in wave:
            verdict = prepared[1] if prepared[1] is not None else next(verdicts)
            try:
                outcomes[offset] = chunk.finish(prepared, verdict)
            except BankError as exc:
                outcomes[offset] = Outcome(first_index + offset, prepared[3], error=exc)
        wave.clear()
        touched.clear()

    for offset, (request, kind) in enumerate(zip(requests, kinds)):
        if kind is None:
            continue
        keys = (request.source, request.dest, (request.ref,))
        if wave and any(key in touched for key in keys):
            send()
        try:
            prepared = chunk.prepare(first_index + offset, request, kind, wire)
        except BankError as exc:
            outcomes[offset] = Outcome(first_index + offset, request, error=exc)
            continue
        if type(prepared) is Outcome:
            outcomes[offset] = prepared
            continue
        wave.append((offset, prepared))
        touched.update(keys)
        touched.discard(None)  # a deposit names no source: that is no shared state
    if wave:
        send()
