"""Simulate a candidate profile over past traffic, writing nothing live.

The design is "apply the profile to a copy and re-run", made cheap: a
scratch SQLite database (a temporary file, deleted afterwards) gets the
institution as it stood at the window's start (its accounts, every
balance, the holds then pending, the usage counters and recent outgoing
transactions the drivers may read, and the transactions reversed in the
window) and the candidate profile as its active version. Then every request
the institution decided in the window is replayed, in the original order
and with the original times (a chunk's processing time is the original
``decided_at``; ``at`` as the request gave it), through the kernel's one
decision path, ``process_chunk``, against that scratch database, so the
candidate's decisions move the simulated world forward exactly as they
would have moved the real one. No second rules engine exists to drift.

Recorded human actions in the window (approvals, rejections, expiries and
reversals) are replayed at their recorded times through the same
``Holds`` code the commands use; one that no longer applies (the hold was
never held under the candidate, a reversal would now overdraw, four-eyes)
is listed with the reason.

The requests come from what is stored: each transaction's ``txn`` row holds
the request (ref, kind, accounts, amount, channel, memo, its time, who sent
it) and when it was decided; its decision record (the payload of its audit
entry) is the decision before. The scratch world shares the live term ids
and takes each row's live profile version number, so an unchanged decision
is written as exactly the live record's text, and only a changed row's live
record is parsed.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, case, event, func, insert, or_, select, update

from bank_core import ledger
from bank_core.chunk import DECISION_ACTIONS, Carry, process_chunk
from bank_core.contract import Kind
from bank_core.errors import BankError, InvalidRequest, Refused
from bank_core.messages import TxnRequest, as_utc, utc_now
from bank_core.money import format_minor
from bank_core.pipeline import zone
from bank_core.ports import AccountRecord
from bank_core.profile import Profile, validate_profile
from bank_core.record import loads
from bank_core.simulation_report import Decision, Totals, decision_of, invalid, same_decision
from bank_core.storage.engine import make_engine
from bank_core.seal import seal
from bank_core.storage.base import from_micros, micros
from bank_core.storage.bulk import stream_rows
from bank_core.storage.models import Balance, Institution, Posting, ProfileVersion, Term, Txn

if TYPE_CHECKING:
    from bank_core.service import BankService

BATCH_ROWS = 1000  # rows read, and decided in one scratch transaction
OUTGOING = (str(Kind.WITHDRAWAL), str(Kind.TRANSFER))
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EXPIRED_ON_APPROVAL = "hold expired before approval"  # bank_core.holds' resolution text
SCRATCH_UNUSED_INDEXES = ("ix_txn_dest_at",)


@dataclass(frozen=True, slots=True)
class Action:
    """A person's act on a transaction, as the ``txn`` table recorded it."""

    at: datetime
    kind: str  # approve | reject | expire | reverse
    target: int  # the live transaction number
    target_id: str
    actor: str
    text: str  # the rejection reason or the reversal memo


@dataclass
class Simulation:
    institution: str
    start: datetime | None
    end: datetime | None
    totals: Totals = field(default_factory=Totals)
    applied: int = 0
    not_applied: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {"institution": self.institution,
                "from": self.start.isoformat() if self.start else None,
                "to": self.end.isoformat() if self.end else None,
                **self.totals.report(),
                "actions": {"applied": self.applied, "not_applied": self.not_applied}}


Progress = Callable[[int, int], None]
# A replayed row: its live txn row, its live decision record's text, the
# request and its original processing time.
Item = tuple["LiveRow", str, TxnRequest, datetime]
Changed = Callable[[dict[str, Any]], None]


def simulate(service: BankService, document: dict[str, Any], *, start: datetime | None = None,
             end: datetime | None = None, on_change: Changed | None = None,
             progress: Progress | None = None) -> Simulation:
    """Replay the institution's window through ``document`` (a profile) on
    a scratch copy; the live database is only read."""
    candidate = validate_profile(document, service.registry)
    if start is not None and end is not None and start >= end:
        raise InvalidRequest(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    sim = Simulation(candidate.id, start, end)
    with tempfile.TemporaryDirectory(prefix="bank-simulate-") as scratch_dir:
        scratch = _scratch_service(service, Path(scratch_dir) / "simulation.db")
        try:
            World(service, scratch, candidate, sim).run(on_change, progress)
        finally:
            scratch.engine.dispose()
    return sim


def _scratch_service(service: BankService, path: Path) -> BankService:
    """A service on a throw-away SQLite file with the live service's ports
    and driver registry. The schema is created from the models (the
    migrations' test proves them equal) rather than by replaying every
    revision: a simulation should not spend a second on alembic."""
    from bank_core.service import BankService
    from bank_core.storage.base import Base

    engine = make_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _fast(dbapi_connection: Any, _record: Any) -> None:
        # A throw-away file: no fsync, no WAL; and no foreign-key lookups on
        # every row written (only the kernel's own code writes it, the same
        # code the live database holds to them).
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MB: the scratch world stays in memory
        cursor.close()

    Base.metadata.create_all(engine)
    with engine.begin() as conn:  # what only an account's statement reads: not kept up to date here
        for index in SCRATCH_UNUSED_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX {index}")
    return BankService(engine, service.accounts, ScratchAudit(), registry=service.registry)


class ScratchAudit:
    """The scratch world's audit port: it keeps no chain. A simulation is
    not evidence of anything, so it needs no hash chain; and it never needs
    a stored decision back (that is only for a request sent again with the
    same ref, and such a resend was never recorded as a decision of its
    own, so none is replayed). It holds the decision records' texts of the
    scratch transaction in progress, to compare with the live ones."""

    HEAD = (0, "")  # never moves: only the simulation itself writes the scratch world
    head_sql = ""  # never read: a simulation keeps no chain to verify

    def __init__(self) -> None:
        self.payloads: dict[str, str] = {}  # subject -> decision record text, of one scratch transaction

    def start_chain(self, conn: Connection, institution_id: str) -> None:
        return None

    def append(self, conn: Connection, institution_id: str, **_entry: Any) -> int:
        return 0

    def append_many(self, conn: Connection, institution_id: str, entries: list[Any]) -> tuple[int, str]:
        for _actor, _action, subject, payload, _at in entries:
            self.payloads[subject] = payload
        return self.HEAD

    def head(self, conn: Connection, institution_id: str) -> tuple[int, str]:
        return self.HEAD

    def decisions(self, conn: Connection, institution_id: str, subjects: list[str],
                  actions: tuple[str, ...]) -> dict[str, str]:
        return {}

    def verify(self, conn: Connection, institution_id: str) -> Any:
        raise InvalidRequest("a simulation keeps no audit log")

    def entries(self, conn: Connection, institution_id: str, **_query: Any) -> list[Any]:
        return []


class World:
    """The live institution read, the scratch one written."""

    def __init__(self, live: BankService, scratch: BankService, candidate: Profile, sim: Simulation) -> None:
        self.live = live
        self.scratch = scratch
        self.candidate = candidate
        self.sim = sim
        self.inst = candidate.id
        self.start = as_utc(sim.start) if sim.start else EPOCH
        self.end = as_utc(sim.end) if sim.end else None
        self.ids: dict[int, str] = {}  # live number -> scratch id, for the targets of actions
        # Accounts and balances handed from chunk to chunk. The scratch audit
        # keeps no chain, so its head never moves; a person's act replayed
        # between chunks (the only other writer) starts a new carry instead.
        self.carry = Carry()
        self.version: int | None = None  # the scratch institution's profile version number now

    # ---------------------------------------------------------------- run

    def run(self, on_change: Changed | None, progress: Progress | None) -> None:
        last, total, actions = self.live.read(self._window)
        self.targets = {a.target for a in actions}
        self.live.read(self._seed_from_live)
        pending = iter(actions)
        action = next(pending, None)
        done = 0
        rows: list[Item] = []  # decided together once the original processing time moves on
        for batch in self._batches(last):
            for item in batch:
                while action is not None and action.at < item[3]:
                    self._decide(rows, on_change)
                    rows = []
                    self._act(action)
                    action = next(pending, None)
                if len(rows) >= BATCH_ROWS and item[3] != rows[-1][3]:
                    # whole original chunks at a time: a chunk cut in two would cost
                    # a second round of loads and writes
                    self._decide(rows, on_change)
                    rows = []
                rows.append(item)
            done += len(batch)
            if progress is not None:
                progress(done - len(rows), total)
        self._decide(rows, on_change)
        if progress is not None:
            progress(done, total)
        while action is not None:
            self._act(action)
            action = next(pending, None)

    def _in_window(self, column: Any) -> Any:
        return (column >= self.start) if self.end is None else ((column >= self.start) & (column < self.end))

    def _window(self, conn: Connection) -> tuple[int, int, list[Action]]:
        """The last decision of the window (rows written later are not
        replayed), the number of rows, and the people's acts in order."""
        self.live.institution(conn, self.inst)  # exists (NotFound names it otherwise)
        decided = (Txn.institution_id == self.inst) & (Txn.kind != "reversal") & self._in_window(Txn.decided_at)
        last, total = conn.execute(select(func.max(Txn.id), func.count()).where(decided)).one()
        acts = conn.execute(select(Txn).where(Txn.institution_id == self.inst, or_(
            self._in_window(Txn.resolved_at), (Txn.kind == "reversal") & self._in_window(Txn.decided_at))))
        actions = []
        for row in acts:
            if row.kind == "reversal":
                target = conn.execute(select(Txn).where(Txn.id == row.reverses_txn_id)).one()
                actions.append(Action(as_utc(row.decided_at), "reverse", target.id,
                                      ledger.txn_public_id(target), row.initiator, row.memo))
                continue
            kind = {"posted": "approve", "rejected": "reject", "expired": "expire"}[row.status]
            if row.status == "expired" and row.resolution == EXPIRED_ON_APPROVAL:
                kind = "approve"  # an approval that found the hold expired and released it
            actions.append(Action(as_utc(row.resolved_at), kind, row.id, ledger.txn_public_id(row),
                                  row.resolved_by or "system", row.resolution or ""))
        actions.sort(key=lambda a: (a.at, a.target))
        return last or 0, total, actions

    def _batches(self, last: int) -> Iterator[list[Item]]:
        after = 0
        while True:
            batch = self.live.read(lambda conn: self._read_batch(conn, after, last))
            if not batch:
                return
            after = batch[-1][0].id
            yield batch

    def _read_batch(self, conn: Connection, after: int, last: int) -> list[Item]:
        """The next rows of the window: each its request, rebuilt from the
        ``txn`` row (read as the driver gives it: a thousand rows' worth of
        result processing is a tenth of a simulation), and its decision
        record's text."""
        sqlite = conn.dialect.name == "sqlite"
        mark, stored = ("?", micros) if sqlite else ("%s", lambda moment: moment)
        where = (f"institution_id = {mark} AND kind <> 'reversal' AND id > {mark} AND id <= {mark} "
                 f"AND decided_at >= {mark}")
        params: list[Any] = [self.inst, after, last, stored(self.start)]
        if self.end is not None:
            where += f" AND decided_at < {mark}"
            params.append(stored(self.end))
        rows = list(stream_rows(conn, (
            "SELECT id, legacy_id, profile_version, decided_at, at, idempotency_key, kind, amount_minor, "
            "currency, source_account_id, dest_account_id, channel, memo, initiator FROM txn "
            f"WHERE {where} ORDER BY id LIMIT {BATCH_ROWS}"), tuple(params)))
        if not rows:
            return []
        times: dict[Any, datetime] = {}  # a chunk's rows share their decision time

        def moment(value: Any) -> datetime:
            found = times.get(value)
            if found is None:
                found = times[value] = from_micros(value) if sqlite else as_utc(value)
            return found

        live = [LiveRow(r[0], r[1], r[2]) for r in rows]
        subjects = [ledger.txn_public_id(r) for r in live]
        payloads = self.live.audit.decisions(conn, self.inst, subjects, DECISION_ACTIONS)
        found = []
        for row, subject, (_n, _l, _v, decided, at, ref, kind, amount, currency, source, dest, channel,
                           memo, initiator) in zip(live, subjects, rows):
            decided_at = moment(decided)
            at_time = moment(at)
            found.append((row, payloads[subject], TxnRequest(
                self.inst, ref, kind, format_minor(amount, currency), source, dest, currency, channel, memo,
                # a request without a time was decided at its processing time
                None if at_time == decided_at else at_time, initiator), decided_at))
        return found

    # ---------------------------------------------------------------- decide

    def _decide(self, rows: list[Item], on_change: Changed | None) -> None:
        """Decide ``rows`` on the scratch database, one chunk per original
        processing time, all in one scratch transaction, and compare each
        row's two decisions."""
        if not rows:
            return
        scratch = self.scratch

        def work(conn: Connection) -> list[tuple[Any, Decision, Decision]]:
            outcomes: list[Any] = []
            group: list[TxnRequest] = []
            scratch.audit.payloads.clear()
            try:
                for index, (row, _payload, request, now) in enumerate(rows):
                    group.append(request)
                    if index + 1 == len(rows) or rows[index + 1][3] != now:
                        inst = self._institution(conn, row.profile_version)
                        outcomes += process_chunk(scratch.pipeline, conn, inst, group, now, len(outcomes),
                                                  carry=self.carry)
                        self.carry.committed()  # one transaction: the next chunk sees what this left
                        group = []
            except BaseException:
                self.carry = Carry()  # rolled back: what was carried is not the database's
                self.version = None
                raise
            text = scratch.pipeline.terms.session(conn).text  # the live records' terms are here too
            written = scratch.audit.payloads
            return [(outcome, *self._compare(payload, outcome, written, text))
                    for (_row, payload, _request, _now), outcome in zip(rows, outcomes)]

        for (row, _payload, request, now), (outcome, before, after) in zip(rows, scratch.write(work)):
            if outcome.error is None and row.id in self.targets:
                self.ids[row.id] = outcome.txn_id
            changed = self.sim.totals.add(request.source or request.dest, before, after)
            if changed and on_change is not None:
                on_change({"txn_id": ledger.txn_public_id(row), "ref": request.ref, "kind": request.kind,
                           "amount": request.amount, "currency": before.currency,
                           "source": request.source, "dest": request.dest,
                           "at": (request.at or now).isoformat(), "decided_at": now.isoformat(),
                           "simulated_txn_id": outcome.txn_id,
                           "before": before.to_dict(), "after": after.to_dict()})

    @staticmethod
    def _compare(payload: str, outcome: Any, written: dict[str, str],
                 text: Callable[[int], str]) -> tuple[Decision, Decision]:
        """(before, after) of one row. The scratch world has the live term
        ids and the row's live profile version, so a decision the candidate
        did not change is written as exactly the live record's text: then
        the live record need not even be parsed."""
        if outcome.error is None and written.get(outcome.txn_id) == payload:
            before = decision_of(outcome.record, text)
            return before, before
        record = loads(payload)
        before = decision_of(record, text)
        if outcome.error is not None:
            return before, invalid(before.currency, str(outcome.error))
        return before, (before if same_decision(record, outcome.record) else decision_of(outcome.record, text))

    def _institution(self, conn: Connection, version: int) -> Any:
        """The scratch institution, at the live row's profile version number
        (its document is always the candidate's)."""
        if version != self.version:
            held = conn.execute(select(ProfileVersion.version).where(
                ProfileVersion.institution_id == self.inst, ProfileVersion.version == version)).first()
            if held is None:
                conn.execute(insert(ProfileVersion).values(
                    institution_id=self.inst, version=version, document=self.candidate.document(),
                    applied_at=utc_now(), applied_by="simulation"))
            conn.execute(update(Institution).where(Institution.id == self.inst).values(profile_version=version))
            self.version = version
        return self.scratch.institution(conn, self.inst)

    # ---------------------------------------------------------------- act

    def _act(self, action: Action) -> None:
        self.carry = Carry()  # the act changes balances behind the carry's back
        holds = self.scratch.holds
        target = self.ids.get(action.target)
        try:
            if target is None:
                raise InvalidRequest("the candidate did not record this transaction (its request was invalid)")
            if action.kind == "approve":
                try:
                    holds.approve(self.inst, target, action.actor, now=action.at)
                except Refused:
                    if action.text != EXPIRED_ON_APPROVAL:
                        raise  # an approval that found the hold expired: expired it is
            elif action.kind == "reject":
                holds.reject(self.inst, target, action.actor, action.text or "rejected")
            elif action.kind == "expire":
                released = holds.expire(self.inst, action.actor, now=action.at)
                if target not in released and self._status(target) != "expired":
                    raise InvalidRequest(f"{target} was not held under the candidate")
            else:
                holds.reverse(self.inst, target, action.actor, action.text)
            self.sim.applied += 1
        except BankError as exc:
            self.sim.not_applied.append({"action": action.kind, "txn_id": action.target_id,
                                         "at": action.at.isoformat(), "actor": action.actor,
                                         "reason": str(exc)})

    def _status(self, txn_id: str) -> str:
        return self.scratch.read(lambda conn: ledger.find_txn(conn, self.inst, txn_id).status)

    # ---------------------------------------------------------------- seed

    def _seed_from_live(self, conn: Connection) -> None:
        """Read the institution as it stood at the window's start and write
        it into the scratch database with the candidate as its profile."""
        seed = Seed(self.live, conn, self.candidate, self.start, self.targets)
        version = conn.execute(select(Institution.profile_version)
                               .where(Institution.id == self.inst)).scalar_one() + 1
        self.scratch.write(lambda scratch_conn: seed.write(self.scratch, scratch_conn, version))
        self.version = version
        self.ids.update({number: public for number, public in seed.copied.items()})


class Seed:
    """The institution at one moment, read from the live database."""

    def __init__(self, live: BankService, conn: Connection, candidate: Profile, at: datetime,
                 targets: set[int]) -> None:
        self.candidate = candidate
        self.at = at
        inst = candidate.id
        self.accounts = live.accounts.list(conn, inst, include_internal=True)
        self.terms = [{"id": i, "text": t} for i, t in conn.execute(select(Term.id, Term.text))]
        # From the beginning (no --from): nothing was posted or decided before.
        empty = at <= EPOCH
        self.balances = defaultdict(lambda: [0, 0, 0, 0]) if empty else self._posted(conn, inst)
        rows = [] if empty else self._transactions(conn, inst, targets)
        self.txns = [self._as_then(row) for row in rows]
        for row in self.txns:
            if row["status"] == "held":
                for acc, delta in ledger.deltas_for(ledger.lines_from_json(row["lines"]), "hold").items():
                    self.balances[acc][2] += delta[2]
                    self.balances[acc][3] += delta[3]
        self.usage = self._usage(inst) if self.txns else {}
        number_ids = [r["id"] for r in self.txns if r["id"] in targets]
        self.postings = conn.execute(select(Posting).where(
            Posting.txn_id.in_(number_ids), Posting.posted_at < at)).all() if number_ids else []
        self.copied = {r["id"]: ledger.txn_public_id(LiveRow(r["id"], r["legacy_id"], r["profile_version"]))
                       for r in self.txns}

    def _posted(self, conn: Connection, inst: str) -> dict[str, list[int]]:
        found: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        debit = func.sum(case((Posting.amount_minor < 0, -Posting.amount_minor), else_=0))
        credit = func.sum(case((Posting.amount_minor > 0, Posting.amount_minor), else_=0))
        for acc, d, c in conn.execute(select(Posting.account_id, debit, credit).where(
                Posting.institution_id == inst, Posting.posted_at < self.at).group_by(Posting.account_id)):
            found[acc][0], found[acc][1] = int(d), int(c)
        return found

    def _transactions(self, conn: Connection, inst: str, targets: set[int]) -> list[Any]:
        """Decided before the window: the holds pending at its start, the
        outgoing ones counted in the usage windows its rows can read (their
        times reach back ``max_backdate`` and a day, to the start of that
        local month), and the ones reversed in it."""
        back = self.at - self.candidate.at_window[0] - timedelta(days=1)
        local = back.astimezone(zone(self.candidate.timezone))
        month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)
        since = min(back, month)
        before = (Txn.institution_id == inst) & (Txn.decided_at < self.at)
        held_then = (Txn.status == "held") | (Txn.resolved_at >= self.at)
        counted = Txn.kind.in_(OUTGOING) & (Txn.at >= since) & (
            Txn.status.in_(("posted", "held")) | (Txn.resolved_at >= self.at))
        wanted = held_then | counted
        if targets:
            wanted = wanted | Txn.id.in_(sorted(targets))
        return conn.execute(select(Txn).where(before, wanted).order_by(Txn.id)).all()

    def _as_then(self, row: Any) -> dict[str, Any]:
        values = {c.name: getattr(row, c.name) for c in Txn.__table__.columns}
        values["reverses_txn_id"] = None
        if row.resolved_at is not None and as_utc(row.resolved_at) >= self.at:
            values.update(status="held", resolved_at=None, resolved_by=None, resolution=None)
        if values["status"] == "held" and row.lines:  # a released hold's fee was set to 0
            lines = ledger.lines_from_json(row.lines)
            values["fee_minor"] = sum(l.amount_minor for l in lines if l.amount_minor > 0 and l.rule != row.kind)
        return values

    def _as_then_account(self, record: AccountRecord) -> AccountRecord:
        """The account as it stood at the window's start: opened, and frozen
        or closed only if that happened before."""
        if record.status == "open" or (record.closed_at is not None and as_utc(record.closed_at) >= self.at):
            return replace(record, status="open", closed_at=None)
        return replace(record, closed_at=as_utc(record.closed_at or record.opened_at)
                       if record.status == "closed" else None)

    def _usage(self, inst: str) -> dict[tuple[str, str, str, str], list[int]]:
        tz = zone(self.candidate.timezone)
        usage: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for row in self.txns:
            if row["kind"] in OUTGOING and row["status"] in ("posted", "held"):
                for key in ledger.period_keys(as_utc(row["at"]).astimezone(tz).date()):
                    tally = usage[(row["source_account_id"], key, row["kind"], row["channel"])]
                    tally[0] += row["amount_minor"]
                    tally[1] += row["fee_minor"]
                    tally[2] += 1
        return usage

    def write(self, scratch: BankService, conn: Connection, version: int) -> None:
        profile, inst, now = self.candidate, self.candidate.id, utc_now()
        conn.execute(insert(Institution).values(
            id=inst, name=profile.name, currency=profile.currency, timezone=profile.timezone,
            hold_expiry_hours=profile.hold_expiry_hours, profile_version=version, created_at=now))
        conn.execute(insert(ProfileVersion).values(institution_id=inst, version=version,
                                                   document=profile.document(), applied_at=now,
                                                   applied_by="simulation"))
        scratch.audit.start_chain(conn, inst)
        if self.terms:  # the same ids: a decision unchanged by the candidate is an equal record
            conn.execute(insert(Term), self.terms)
        scratch.accounts.restore(conn, inst, [self._as_then_account(r) for r in self.accounts])
        conn.execute(insert(Balance), [
            {"account_id": r.id, "institution_id": inst, "currency": r.currency,
             "debits_posted": self.balances[r.id][0], "credits_posted": self.balances[r.id][1],
             "debits_pending": self.balances[r.id][2], "credits_pending": self.balances[r.id][3],
             "seal": seal(r.id, *self.balances[r.id][:4])}  # the kernel checks it before a write
            for r in self.accounts])
        if self.txns:
            conn.execute(insert(Txn), self.txns)
        if self.postings:
            conn.execute(insert(Posting), [{c.name: getattr(p, c.name) for c in Posting.__table__.columns
                                            if c.name != "id"} for p in self.postings])
        ledger.bump_usage_many(conn, inst, self.usage)


class LiveRow(NamedTuple):
    """What a replayed row keeps of its live ``txn`` row."""

    id: int
    legacy_id: str | None
    profile_version: int

