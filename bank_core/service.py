"""The service facade (the adapter): the one thing every client calls.

It opens units of work, maps requests in and results out, and holds no
business rule of an institution: those are in the drivers its profile names.
"""

from __future__ import annotations

import json
from dataclasses import replace
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, func, select, update

from bank_core import ledger, limits
from bank_core.chunk import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, Carry, Outcome, process_chunk
from bank_core.decide import Evaluator
from bank_core.errors import Conflict, InvalidRequest, NotFound, Refused
from bank_core.holds import Holds
from bank_core.ledger import find_txn, not_for_index, txn_public_id
from bank_core.messages import TxnRequest, TxnResult, as_utc, parse_txn_id, public_txn_id, utc_now
from bank_core.money import MoneyError, check_currency, format_minor
from bank_core.pipeline import InstitutionView, Pipeline, profile_reads, zone
from bank_core.contract import Slot
from bank_core.record import Record
from bank_core.ports import INTERNAL_ROLES, ROLE_CUSTOMER, AccountRecord, AccountsPort, AuditPort
from bank_core.profile import Profile, bind_profile, validate_profile
from bank_core.registry import Registry
from bank_core.shadow import bind_shadow, stop_running
from bank_core.storage import dryrun
from bank_core.storage.engine import discard_after_commit, dry_run_engine, run_in_transaction
from bank_core.storage.models import Institution, Posting, ProfileVersion, Txn
from bank_core.server_status import database_key

if TYPE_CHECKING:  # imported where used: process isolation and verify are not every command's
    from bank_core.integrity import Report
    from bank_core.supervisor import PolicyServer, Supervisor



def _chunks(requests: Iterable[TxnRequest], size: int) -> Iterator[list[TxnRequest]]:
    chunk: list[TxnRequest] = []
    for request in requests:
        chunk.append(request)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class BankService:
    def __init__(self, engine: Engine, accounts: AccountsPort, audit: AuditPort,
                 registry: Registry | None = None) -> None:
        self.engine = engine
        self.accounts = accounts
        self.audit = audit
        self.registry = registry or Registry()
        self.evaluator = Evaluator()
        self.pipeline = Pipeline(accounts, audit, self.evaluator)
        self.holds = Holds(self)
        self._views: dict[tuple[str, int], InstitutionView] = {}
        self._supervisor: Supervisor | None = None

    # ------------------------------------------------------------ units of work

    def write(self, work: Any, institution: str | None = None) -> Any:
        """One retried unit of work; ``institution`` (whose writes it makes)
        lets writers of one institution queue on PostgreSQL instead of
        aborting each other (see ``bank_core.storage.engine``)."""
        return run_in_transaction(self.engine, work, lock=institution)

    def read(self, work: Any) -> Any:
        return run_in_transaction(self.engine, work, read_only=True)

    # ------------------------------------------------------------ institutions

    def institution(self, conn: Connection, institution_id: str) -> InstitutionView:
        if not limits.is_institution_id(institution_id):
            raise NotFound(f"institution {limits.shown(institution_id)} not found")
        row = conn.execute(select(Institution).where(Institution.id == institution_id)).first()
        if row is None:
            raise NotFound(f"institution {institution_id!r} not found (apply its profile first)")
        key = (row.id, row.profile_version, row.shadow)
        view = self._views.get(key)
        if view is None:
            profile = self.profile(conn, row.id, row.profile_version)
            remote = None
            if profile.isolation == "process":  # the drivers live in a policy server
                server = self.policy_server(profile, row.profile_version)
                from bank_core.supervisor import RemoteEvaluator

                drivers, reads, remote = server.drivers(), server.reads, RemoteEvaluator(server)
            else:
                drivers = bind_profile(profile, self.registry)
                reads = profile_reads(drivers)
            shadow = None if row.shadow is None else bind_shadow(conn, row.id, row.shadow, self.registry)
            view = InstitutionView(row.id, profile.currency, profile.timezone,
                                   profile.hold_expiry_hours, row.profile_version, drivers,
                                   tuple(profile.account_currencies), profile.at_window,
                                   tuple(profile.channels), tuple(profile.products),
                                   reads=reads, shadow=shadow, remote=remote)
            self._views[key] = view
        return view

    def policy_server(self, profile: Profile, version: int) -> PolicyServer:
        """The running policy server of a process-isolated profile (started,
        or restarted with another version's drivers, as needed)."""
        from bank_core.supervisor import Supervisor, remote_bounds

        if self._supervisor is None:
            self._supervisor = Supervisor(self._database_key())
        refs = [(str(slot), ref.driver, ref.params) for slot in Slot for ref in profile.slot_refs(slot)]
        return self._supervisor.server(profile.id, profile.timezone, version, refs,
                                       remote_bounds(self.registry, refs))

    def _database_key(self) -> str:
        return database_key(self.engine.url.render_as_string(hide_password=False))

    def close(self) -> None:
        """Stop this process's policy servers (they also stop when it exits)."""
        if self._supervisor is not None:
            self._supervisor.stop_all()

    def profile(self, conn: Connection, institution_id: str, version: int | None = None) -> Profile:
        if not limits.is_institution_id(institution_id):
            raise NotFound(f"institution {limits.shown(institution_id)} not found")
        query = select(ProfileVersion.document).where(ProfileVersion.institution_id == institution_id)
        if version is None:
            query = query.order_by(ProfileVersion.version.desc()).limit(1)
        else:
            query = query.where(ProfileVersion.version == version)
        document = conn.execute(query).scalar()
        if document is None:
            raise NotFound(f"institution {institution_id!r} not found")
        return Profile.model_validate_json(document)

    def institutions(self) -> list[dict[str, Any]]:
        def work(conn: Connection) -> list[dict[str, Any]]:
            rows = conn.execute(select(Institution).order_by(Institution.id))
            return [{"id": r.id, "name": r.name, "currency": r.currency, "timezone": r.timezone,
                     "hold_expiry_hours": r.hold_expiry_hours, "profile_version": r.profile_version}
                    for r in rows]
        return self.read(work)

    def preview_profile(self, document: dict[str, Any]) -> tuple[Profile, Profile | None]:
        """Validate ``document``; return it with the institution's active
        profile (None for a new institution), to show what would change."""
        profile = validate_profile(document, self.registry)

        def work(conn: Connection) -> Profile | None:
            try:
                return self.profile(conn, profile.id)
            except NotFound:
                return None
        return profile, self.read(work)

    def apply_profile(self, document: dict[str, Any], actor: str, *, promote: bool = False
                      ) -> tuple[Profile, int]:
        """Validate everything, then create the institution or add a version
        (none when the document is the active one: that version is returned).
        ``promote``: the document is the running shadow's, stopped in the
        same transaction."""
        profile = validate_profile(document, self.registry)

        def work(conn: Connection) -> int:
            now = utc_now()
            if promote and stop_running(conn, self, profile.id, actor, now) is None:
                raise NotFound(f"institution {profile.id} has no shadow profile running")
            row = conn.execute(select(Institution.profile_version)
                               .where(Institution.id == profile.id).with_for_update()).first()
            if row is not None and self.profile(conn, profile.id).document() == profile.document():
                return row.profile_version  # unchanged: no new version
            version = 1 if row is None else row.profile_version + 1
            values = {"name": profile.name, "currency": profile.currency,
                      "timezone": profile.timezone, "hold_expiry_hours": profile.hold_expiry_hours,
                      "profile_version": version}
            if row is None:
                conn.execute(Institution.__table__.insert().values(id=profile.id, created_at=now, **values))
                self.audit.start_chain(conn, profile.id)
            else:
                conn.execute(update(Institution).where(Institution.id == profile.id).values(**values))
            conn.execute(ProfileVersion.__table__.insert().values(
                institution_id=profile.id, version=version, document=profile.document(),
                applied_at=now, applied_by=actor))
            self._ensure_internal(conn, profile.id, profile.currency, now, actor)
            self.audit.append(conn, profile.id, actor=actor, action="profile.applied",
                              subject=f"profile:{version}",
                              payload={"version": version, "profile": json.loads(profile.document())},
                              at=now)
            return version

        return profile, self.write(work, profile.id)

    def _ensure_internal(self, conn: Connection, institution_id: str, currency: str,
                         now: datetime, actor: str) -> None:
        for role in INTERNAL_ROLES:
            if self.accounts.internal(conn, institution_id, role, currency) is None:
                record = self.accounts.open(conn, institution_id, holder=f"{institution_id} {role}",
                                            product="internal", currency=currency, role=role, now=now)
                ledger.create_balance(conn, institution_id, record.id, currency)
                self.audit.append(conn, institution_id, actor=actor, action="account.opened",
                                  subject=record.id, payload={"role": role, "currency": currency},
                                  at=now)

    # ------------------------------------------------------------ accounts

    def open_account(self, institution_id: str, *, holder: str, product: str = "standard",
                     currency: str | None = None, actor: str = "system",
                     opened_at: datetime | None = None) -> AccountRecord:
        holder = limits.check_text(holder, "holder", limits.MAX_HOLDER_LENGTH, required=True).strip()
        if not holder:
            raise InvalidRequest("holder: must be 1-200 characters")
        limits.check_text(product, "product", limits.MAX_PRODUCT_LENGTH, required=True)
        limits.check_text(actor, "actor", limits.MAX_ACTOR_LENGTH, required=True)
        if currency is not None and not currency:
            raise InvalidRequest("currency: must not be empty (omit it for the institution's currency)")

        def work(conn: Connection) -> AccountRecord:
            inst = self.institution(conn, institution_id)
            cur = inst.currency if currency is None else currency
            try:
                check_currency(cur)
            except MoneyError as exc:
                raise InvalidRequest(str(exc)) from None
            limits.check_choice("product", product, inst.products, institution_id)
            allowed = inst.account_currencies
            if cur not in allowed:
                raise InvalidRequest(
                    f"currency: {institution_id} opens accounts in {', '.join(allowed)}; list {cur} "
                    "in the profile's currencies (its amount parameters must fit it) to allow it")
            now = utc_now()
            self._ensure_internal(conn, institution_id, cur, now, actor)
            record = self.accounts.open(conn, institution_id, holder=holder, product=product,
                                        currency=cur, role=ROLE_CUSTOMER,
                                        now=as_utc(opened_at) if opened_at else now)
            ledger.create_balance(conn, institution_id, record.id, cur)
            self.audit.append(conn, institution_id, actor=actor, action="account.opened",
                              subject=record.id,
                              payload={"holder": holder, "product": product, "currency": cur}, at=now)
            return record

        return self.write(work, institution_id)

    def _customer(self, conn: Connection, institution_id: str, account_id: str,
                  for_update: bool = False) -> AccountRecord:
        if not limits.is_id(account_id):
            raise NotFound(f"account {limits.shown(account_id)} not found in institution {institution_id}")
        found = self.accounts.get_many(conn, institution_id, [account_id], for_update=for_update)
        record = found.get(account_id)
        if record is None or record.role != ROLE_CUSTOMER:
            raise NotFound(f"account {account_id!r} not found in institution {institution_id}")
        return record

    def account_record(self, conn: Connection, institution_id: str, account_id: str) -> AccountRecord:
        """A customer account or one of the institution's own (cash, fee income): for reading."""
        if not limits.is_id(account_id):
            raise NotFound(f"account {limits.shown(account_id)} not found in institution {institution_id}")
        record = self.accounts.get_many(conn, institution_id, [account_id]).get(account_id)
        if record is None:
            raise NotFound(f"account {account_id!r} not found in institution {institution_id}")
        return record

    def set_account_status(self, institution_id: str, account_id: str, status: str,
                           actor: str) -> AccountRecord:
        allowed = {"frozen": ("open",), "open": ("frozen",), "closed": ("open", "frozen")}[status]

        def work(conn: Connection) -> AccountRecord:
            self.institution(conn, institution_id)
            record = self._customer(conn, institution_id, account_id, for_update=True)
            if record.status not in allowed:
                raise Conflict(f"account {account_id} is {record.status}; cannot make it {status}")
            if status == "closed":
                bal = ledger.load_balances(conn, institution_id, [account_id], for_update=True)[account_id]
                if bal.posted or bal.debits_pending or bal.credits_pending:
                    holds = " and pending holds" if bal.debits_pending or bal.credits_pending else ""
                    raise Refused(f"account {account_id} has balance "
                                  f"{format_minor(bal.posted, bal.currency)} {bal.currency}{holds}; "
                                  "only an account at zero with no holds can be closed")
            now = utc_now()
            updated = self.accounts.set_status(conn, institution_id, account_id, status, now)
            action = {"frozen": "account.frozen", "open": "account.unfrozen", "closed": "account.closed"}[status]
            self.audit.append(conn, institution_id, actor=actor, action=action, subject=account_id,
                              payload={"from": record.status, "to": status}, at=now)
            return updated

        return self.write(work, institution_id)

    def account(self, institution_id: str, account_id: str, *, internal_ok: bool = False
                ) -> tuple[AccountRecord, ledger.BalanceRow]:
        """An account and its balance; ``internal_ok``: the institution's own too."""
        def work(conn: Connection) -> tuple[AccountRecord, ledger.BalanceRow]:
            record = (self.account_record(conn, institution_id, account_id) if internal_ok
                      else self._customer(conn, institution_id, account_id))
            return record, ledger.load_balances(conn, institution_id, [account_id])[account_id]
        return self.read(work)

    def list_accounts(self, institution_id: str, include_internal: bool = False
                      ) -> list[tuple[AccountRecord, ledger.BalanceRow]]:
        def work(conn: Connection) -> list[tuple[AccountRecord, ledger.BalanceRow]]:
            self.institution(conn, institution_id)
            records = self.accounts.list(conn, institution_id, include_internal=include_internal)
            balances = ledger.load_balances(conn, institution_id, [r.id for r in records])
            return [(r, balances[r.id]) for r in records]
        return self.read(work)

    # ------------------------------------------------------------ transactions

    def submit(self, request: TxnRequest) -> TxnResult:
        """Decide one request: posted, held or rejected (a ``TxnResult``), or
        raise ``InvalidRequest``, ``NotFound`` or ``Conflict``."""
        request.check_shape()

        def work(conn: Connection) -> Outcome:
            inst = self.institution(conn, request.institution)
            return process_chunk(self.pipeline, conn, inst, [request], utc_now())[0]

        outcome = self.write(work, request.institution)
        if outcome.error is not None:
            raise outcome.error
        return TxnResult.model_validate(outcome.result)

    def submit_batch(self, institution_id: str, requests: Iterable[TxnRequest], *,
                     chunk_size: int = DEFAULT_CHUNK_SIZE, dry_run: bool = False,
                     write_ahead: bool | None = None) -> Iterator[Outcome]:
        """Each request's outcome, in order: :meth:`submit_chunks`, one by one."""
        for outcomes in self.submit_chunks(institution_id, requests, chunk_size=chunk_size, dry_run=dry_run,
                                           write_ahead=write_ahead):
            yield from outcomes
            del outcomes  # (a chunk's outcomes are not kept while the next is decided)

    def submit_chunks(self, institution_id: str, requests: Iterable[TxnRequest], *,
                      chunk_size: int = DEFAULT_CHUNK_SIZE, dry_run: bool = False,
                      write_ahead: bool | None = None) -> Iterator[list[Outcome]]:
        """Decide many requests of one institution, in order, one database
        transaction per chunk, with exactly the semantics of ``submit``: a
        rejection or an invalid request is that request's outcome and never
        rolls back its neighbours. A chunk's outcomes are yielded, as one
        list, after it commits (:meth:`submit_batch` yields them one by one;
        a file's rows then pass through one generator, not one per layer).
        With ``dry_run`` every chunk runs in one transaction that is
        rolled back at the end: later rows see earlier ones as if posted,
        and nothing is written. ``write_ahead`` (default: ``BANK_WRITE_AHEAD``,
        on): a chunk is written while the next is decided, with the same
        outcomes (``bank_core.ahead``; where a writer process can be forked).
        """
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise InvalidRequest(f"chunk size must be 1..{MAX_CHUNK_SIZE}")
        from bank_core import ahead  # (not at start-up: single commands never batch)

        overlap = ahead.wanted(write_ahead)
        chunks = _chunks(requests, chunk_size)
        if dry_run:
            yield from self._dry_run(institution_id, chunks)
            return
        if overlap and ahead.available(self.engine):
            yield from ahead.process(self, institution_id, chunks)
            return
        done = 0
        carry = Carry()  # accounts and balances from chunk to chunk, while nobody else writes
        for chunk in chunks:
            outcomes = self.write_chunk(institution_id, chunk, done, carry)
            carry.committed()
            done += len(chunk)
            yield outcomes
            del outcomes  # (not kept while the next chunk is decided)

    def write_chunk(self, institution_id: str, requests: list[TxnRequest], first: int, carry: Carry
                    ) -> list[Outcome]:
        """One chunk of a batch (its first row the batch's ``first``),
        decided and written in one retried unit of work."""
        def work(conn: Connection) -> list[Outcome]:
            inst = self.institution(conn, institution_id)
            return process_chunk(self.pipeline, conn, inst, requests, utc_now(), first, carry=carry)
        return self.write(work, institution_id)

    def _dry_run(self, institution_id: str, chunks: Iterator[list[TxnRequest]]) -> Iterator[list[Outcome]]:
        """A dry run decides on a snapshot and never blocks writers, through
        the kernel's own ``process_chunk`` in one transaction rolled back at
        the end. SQLite: the database is first copied, consistently, through
        the backup API (a WAL reader, so writers go on) and the run writes
        to the copy, which is deleted after. PostgreSQL: a REPEATABLE READ
        transaction whose writes go to private stand-ins of the tables and
        which is READ ONLY for every live one (``storage/dryrun.py``)."""
        with dry_run_engine(self.engine) as engine:
            with engine.connect() as raw:
                conn = dryrun.isolation(raw)
                transaction = conn.begin()
                pipeline = self.pipeline.for_dry_run()
                try:
                    dryrun.stand_ins(conn, institution_id)
                    inst = self.institution(conn, institution_id)
                    done = 0
                    carry = Carry()  # one transaction: each chunk sees what the last left
                    for chunk in chunks:
                        outcomes = process_chunk(pipeline, conn, inst, chunk, utc_now(), done, carry=carry)
                        carry.committed()
                        yield outcomes
                        del outcomes
                        done += len(chunk)
                finally:
                    transaction.rollback()
                    discard_after_commit(conn)

    def txn(self, institution_id: str, txn_id: str) -> dict[str, Any]:
        if not limits.is_id(txn_id):
            raise NotFound(f"transaction {limits.shown(txn_id)} not found in institution {institution_id}")

        def work(conn: Connection) -> dict[str, Any]:
            self.institution(conn, institution_id)
            row = find_txn(conn, institution_id, txn_id)
            if row is None:
                raise NotFound(f"transaction {txn_id!r} not found in institution {institution_id}")
            return self._views_of(conn, institution_id, [row])[0]
        return self.read(work)

    def txns(self, institution_id: str, *, account: str | None = None, status: str | None = None,
             limit: int = 100) -> list[dict[str, Any]]:
        def work(conn: Connection) -> list[dict[str, Any]]:
            self.institution(conn, institution_id)
            query = self._txns_of(conn, institution_id, account)
            if status is not None:
                query = query.where(Txn.status == status)
            rows = conn.execute(query.order_by(Txn.id.desc()).limit(limit)).all()
            return self._views_of(conn, institution_id, rows)
        return self.read(work)

    def _txns_of(self, conn: Connection, institution_id: str, account: str | None) -> Any:
        """The institution's transactions, or those of one of its customers'
        accounts (read through the account's two indexes, not every
        transaction of the institution)."""
        if account is None:
            return select(Txn).where(Txn.institution_id == institution_id)
        self._customer(conn, institution_id, account)
        return select(Txn).where(not_for_index(conn, Txn.institution_id) == institution_id,
                                 (Txn.source_account_id == account) | (Txn.dest_account_id == account))

    def _views_of(self, conn: Connection, institution_id: str, rows: list[Any]) -> list[dict[str, Any]]:
        """Transactions as they stand now, with their decisions rendered."""
        subjects = [txn_public_id(r) for r in rows]
        payloads: dict[str, str] = {}
        for start in range(0, len(subjects), 500):
            payloads.update(self.audit.decisions(conn, institution_id, subjects[start:start + 500],
                                                 ("txn.posted", "txn.held", "txn.rejected", "txn.reversed")))
        terms = self.pipeline.terms.session(conn)
        return [txn_view(row, payloads.get(subject), terms.text) for row, subject in zip(rows, subjects)]

    def txn_page(self, institution_id: str, *, account: str | None = None, status: str | None = None,
                 kind: str | None = None, since: datetime | None = None, until: datetime | None = None,
                 after: tuple[datetime, str] | None = None, limit: int = 100
                 ) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
        """One page of transactions, newest decision first (``decided_at``,
        then id, both descending), filtered by account, status, kind and a
        half-open range ``since <= decided_at < until``. ``after`` is the
        (decided_at, id) of the last row of the previous page; the second
        value returned is that of this page's last row when more may follow."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit: must be 1..1000")

        def work(conn: Connection) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
            self.institution(conn, institution_id)
            query = self._txns_of(conn, institution_id, account)
            for column, value in ((Txn.status, status), (Txn.kind, kind)):
                if value is not None:
                    query = query.where(column == value)
            if since is not None:
                query = query.where(Txn.decided_at >= as_utc(since))
            if until is not None:
                query = query.where(Txn.decided_at < as_utc(until))
            if after is not None:
                at, last_id = as_utc(after[0]), parse_txn_id(after[1])
                if last_id is None:
                    raise InvalidRequest(f"cursor: {after[1]!r} is not a transaction id")
                query = query.where((Txn.decided_at < at) | ((Txn.decided_at == at) & (Txn.id < last_id)))
            rows = conn.execute(query.order_by(Txn.decided_at.desc(), Txn.id.desc()).limit(limit + 1)).all()
            page = rows[:limit]
            more = (as_utc(page[-1].decided_at), public_txn_id(page[-1].id)) if len(rows) > limit else None
            return self._views_of(conn, institution_id, page), more
        return self.read(work)

    def statement(self, institution_id: str, account_id: str, first: date | None,
                  last: date | None) -> dict[str, Any]:
        """Postings of one account (a customer's or the institution's own)
        between two local dates, with the running balance, each line in the
        institution's local time with its transaction's memo, ref and the
        account on the other side. (A statement reads history; a balance never does.)"""
        if first is not None and last is not None and first > last:
            raise InvalidRequest(f"--from {first} is after --to {last}")

        def work(conn: Connection) -> dict[str, Any]:
            inst = self.institution(conn, institution_id)
            record = self.account_record(conn, institution_id, account_id)
            tz = zone(inst.timezone)
            start = datetime.combine(first, time.min, tz) if first else None
            end = datetime.combine(last + timedelta(days=1), time.min, tz) if last else None
            mine = _postings_of(institution_id, record)
            base = select(func.coalesce(func.sum(Posting.amount_minor), 0)).where(*mine)
            opening = conn.execute(base.where(Posting.posted_at < start)).scalar() if start else 0
            query = (select(Posting.posted_at, Posting.txn_id, Posting.rule, Posting.amount_minor,
                            Posting.currency, Txn.memo, Txn.idempotency_key, Txn.source_account_id,
                            Txn.dest_account_id, Txn.kind)
                     .join(Txn, Txn.id == Posting.txn_id)
                     .where(*mine))
            if start is not None:
                query = query.where(Posting.posted_at >= start)
            if end is not None:
                query = query.where(Posting.posted_at < end)
            running, lines = opening, []
            for p in conn.execute(query.order_by(Posting.id)):
                memo, ref, source, dest = p.memo, p.idempotency_key, p.source_account_id, p.dest_account_id
                running += p.amount_minor
                lines.append({"posted_at": as_utc(p.posted_at).astimezone(tz).isoformat(),
                              "txn_id": public_txn_id(p.txn_id), "ref": ref, "rule": p.rule, "memo": memo,
                              "counterparty": _counterparty(account_id, p.rule, source, dest),
                              "amount": format_minor(p.amount_minor, p.currency),
                              "balance": format_minor(running, p.currency)})
            cur = record.currency
            return {"account": account_id, "currency": cur, "timezone": inst.timezone,
                    "opening": format_minor(opening, cur), "closing": format_minor(running, cur),
                    "lines": lines}
        return self.read(work)

    # ------------------------------------------------------------ audit

    def audit_verify(self, institution_id: str):  # type: ignore[no-untyped-def]
        """The first failure of ``verify_integrity`` as an ``AuditVerdict``."""
        return self.verify_integrity(institution_id).verdict()

    def verify_integrity(self, institution_id: str, *, public_key: Any = None,
                         checkpoint: Any = None) -> Report:
        """The chain, the signed checkpoints (with ``public_key``, a PEM
        file) or an exported one (``checkpoint``, a file), and the money
        (``bank_core.integrity``), in one consistent read."""
        from bank_core.integrity import Problem, verify_ledger
        from bank_core.integrity_halves import in_halves, verify_later
        from bank_core.storage.forked import forked_helper

        def work(conn: Connection) -> Report:
            self.institution(conn, institution_id)
            anchors, problems, stored = self.audit.anchors(conn, institution_id, public_key, checkpoint)
            first = in_halves(helper) if helper is not None else None
            report = verify_ledger(conn, institution_id, self.audit, self.accounts, anchors, first)
            report.problems[:0] = [Problem("checkpoint", f"institution {institution_id}", p)
                                   for p in problems]
            report.stored_checkpoints, report.keyed = stored, public_key is not None
            return report

        # SQLite: a second process, forked before the read opens its connection
        # (bank_core.storage.forked), checks half of the chain and the rows.
        later = lambda conn, request: verify_later(conn, request, self.audit, self.accounts)  # noqa: E731
        head = lambda conn: self.audit.head(conn, institution_id)  # noqa: E731
        with forked_helper(self.engine, later, head) as helper:
            return self.read(work)

    def audit_checkpoint(self, institution_id: str, signing_key: Any) -> dict[str, Any]:
        """Sign the chain's head with the key in file ``signing_key`` and store it."""
        def work(conn: Connection) -> dict[str, Any]:
            self.institution(conn, institution_id)
            return self.audit.checkpoint(conn, institution_id, signing_key, utc_now())
        return self.write(work, institution_id)

    def audit_log(self, institution_id: str, *, subject: str | None = None, limit: int | None = 50):  # type: ignore[no-untyped-def]
        def work(conn: Connection):  # type: ignore[no-untyped-def]
            self.institution(conn, institution_id)
            entries = self.audit.entries(conn, institution_id, subject=subject, limit=limit)
            terms = self.pipeline.terms.session(conn)
            return [replace(e, payload=Record(e.payload, terms.text).result(e.subject, institution_id))
                    if isinstance(e.payload, list) else e for e in entries]
        return self.read(work)


def _postings_of(institution_id: str, account: AccountRecord) -> tuple[Any, ...]:
    """The conditions that pick one account's postings.

    There is no index of postings by account (revision 0014): on a large
    ledger it was the writer's costliest index, a leaf page per account
    rewritten by every commit. A customer's account is the source or the
    destination of every transaction that posts to it (the kernel's own
    lines, fees paid by the payer, a hold's planned lines, a reversal's
    mirror), so its postings are found through the transactions' two
    account indexes and the postings' ``txn_id`` index: as many rows read
    as the account has transactions. An institution's own account (cash,
    fee income) takes part in a large share of all postings, which are read
    in full."""
    where: tuple[Any, ...] = (Posting.institution_id == institution_id, Posting.account_id == account.id)
    if account.role != ROLE_CUSTOMER:
        return where
    # (no institution in the subquery: an account id names one account, and
    # the postings are held to the institution above; named there, it let
    # PostgreSQL without statistics also read the institution's whole key index)
    theirs = select(Txn.id).where((Txn.source_account_id == account.id) | (Txn.dest_account_id == account.id))
    return (*where, Posting.txn_id.in_(theirs))


def _counterparty(account_id: str, rule: str, source: str | None, dest: str | None) -> str:
    """The other side of a statement line: the other customer, "cash" for
    deposits and withdrawals, "fee income" for a fee; on the institution's
    own accounts, the customer."""
    customers = [a for a in (source, dest) if a]
    if account_id not in customers:
        return customers[0] if customers else "-"
    if rule not in ("deposit", "withdrawal", "transfer", "reversal"):
        return "fee income"
    others = [a for a in customers if a != account_id]
    return others[0] if others else "cash"



def decision_of(payload: str | None, text: Any) -> tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """(code, reasons, fees) of a decision record or a revision-0001 result."""
    if payload is None:
        return None, [], []
    data = json.loads(payload)
    if isinstance(data, dict):  # a revision-0001 result document, or a reversal's entry
        return data.get("code"), data.get("reasons", []), data.get("fees", [])
    record = Record(data, text)
    result = record.result("", "")
    return result["code"], result["reasons"], result["fees"]


def txn_view(row: Any, payload: str | None = None, text: Any = None) -> dict[str, Any]:
    """A transaction as it stands now (status may have moved since its result)."""
    code, reasons, fees = decision_of(payload, text)
    return {
        "txn_id": txn_public_id(row), "ref": row.idempotency_key, "kind": row.kind, "status": row.status,
        "amount": format_minor(row.amount_minor, row.currency), "currency": row.currency,
        "fee_total": format_minor(row.fee_minor, row.currency), "source": row.source_account_id,
        "dest": row.dest_account_id, "channel": row.channel, "memo": row.memo,
        "at": as_utc(row.at).isoformat(), "decided_at": as_utc(row.decided_at).isoformat(),
        "initiator": row.initiator, "profile_version": row.profile_version,
        "reverses": public_txn_id(row.reverses_txn_id) if row.reverses_txn_id else None,
        "code": row.code if row.code is not None else code, "reasons": reasons,
        "fees": fees,
        "resolved_at": as_utc(row.resolved_at).isoformat() if row.resolved_at else None,
        "resolved_by": row.resolved_by, "resolution": row.resolution,
    }
