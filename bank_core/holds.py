"""Holds (two-phase transfers) and reversals.

A held transaction reserves funds: its lines sit in the pending counters.
Approving settles them into posted (after re-checking the profile's limits
and approval rejections at that moment, and only by an actor other than the
initiator); rejecting or expiring releases them. A posted transaction is
never edited: a reversal is a new transaction with the opposite lines,
pointing at the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from bank_core import ledger, limits
from bank_core.actors import same_person
from bank_core.seal import check_seals
from bank_core.contract import AccountStatus, Kind, Money, PolicyContext, Request, Slot, Tally, UsageCounters
from bank_core.errors import Conflict, InvalidRequest, NotFound, Refused
from bank_core.messages import as_utc, public_txn_id, utc_now
from bank_core.money import format_minor
from bank_core.decide import Verdict
from bank_core.pipeline import ACCOUNT_CLOSED, InstitutionView, snapshot, zone
from bank_core.storage.models import Posting, Txn

if TYPE_CHECKING:
    from bank_core.service import BankService


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    txn_id: str
    status: str
    message: str
    reasons: list[dict[str, Any]]


def _without(usage: UsageCounters, row: Any) -> UsageCounters:
    """Usage as if this held transaction had not been counted (the windows
    are those of the hold's own time, so it is in both)."""
    own = Tally(row.amount_minor, row.fee_minor, 1)
    key = (Kind(row.kind), row.channel)

    def minus(window: Any) -> Any:
        if key not in window:
            return window
        left = window[key]
        return {**window, key: Tally(left.amount_minor - own.amount_minor,
                                     left.fee_minor - own.fee_minor, left.count - own.count)}

    at = as_utc(row.at)
    return UsageCounters(minus(usage.day), minus(usage.month),
                         tuple(t for t in usage.recent_out_at if t != at))


class Holds:
    def __init__(self, service: BankService) -> None:
        self.service = service

    @staticmethod
    def _locked(conn: Connection, institution_id: str, txn_id: str) -> Any:
        """The transaction row, locked; another institution's is not found."""
        if not limits.is_id(txn_id):
            raise NotFound(f"transaction {limits.shown(txn_id)} not found in institution {institution_id}")
        row = ledger.find_txn(conn, institution_id, txn_id, for_update=True)
        if row is None:
            raise NotFound(f"transaction {txn_id!r} not found in institution {institution_id}")
        return row

    def _held(self, conn: Connection, institution_id: str, txn_id: str) -> Any:
        row = self._locked(conn, institution_id, txn_id)
        if row.status != "held":
            raise Conflict(f"transaction {txn_id} is {row.status}, not held")
        return row

    def _release(self, conn: Connection, inst: InstitutionView, row: Any, status: str,
                 actor: str, reason: str, now: datetime) -> None:
        lines = ledger.lines_from_json(row.lines)
        ledger.apply_deltas(conn, inst.id, ledger.deltas_for(lines, "release"))
        if row.kind in (Kind.WITHDRAWAL, Kind.TRANSFER):
            local_date = as_utc(row.at).astimezone(zone(inst.timezone)).date()
            ledger.bump_usage(conn, inst.id, row.source_account_id, local_date, row.kind,
                              row.channel, -row.amount_minor, -row.fee_minor, -1)
        conn.execute(update(Txn).where(Txn.id == row.id).values(  # nothing charged: fee 0
            status=status, fee_minor=0, resolved_at=now, resolved_by=actor, resolution=reason))
        self.service.audit.append(conn, inst.id, actor=actor, action=f"txn.{status}",
                                  subject=ledger.txn_public_id(row), payload={"reason": reason}, at=now)

    def _expired(self, inst: InstitutionView, row: Any, now: datetime) -> bool:
        return as_utc(row.decided_at) + timedelta(hours=inst.hold_expiry_hours) <= now

    def approve(self, institution_id: str, txn_id: str, actor: str,
                now: datetime | None = None) -> HoldOutcome:
        """Post a held transaction. Refused for its initiator, after expiry,
        and when the profile's limits fail or an approval driver rejects at
        this moment."""
        svc = self.service
        limits.check_text(actor, "actor", limits.MAX_ACTOR_LENGTH, required=True)

        def work(conn: Connection) -> HoldOutcome:
            nonlocal txn_id
            moment = as_utc(now) if now is not None else utc_now()
            inst = svc.institution(conn, institution_id)
            row = self._held(conn, institution_id, txn_id)
            txn_id = ledger.txn_public_id(row)
            if same_person(actor, row.initiator):
                message = f"four-eyes: {actor!r} initiated {txn_id}; a different person must approve it"
                svc.audit.append(conn, inst.id, actor=actor, action="txn.approval_refused", subject=txn_id,
                                 payload={"reason": "four-eyes", "message": message}, at=moment)
                return HoldOutcome(txn_id, "held", message, [])
            if self._expired(inst, row, moment):
                self._release(conn, inst, row, "expired", actor, "hold expired before approval", moment)
                return HoldOutcome(txn_id, "expired", f"hold {txn_id} had expired; it was released, not posted", [])
            verdict = self._recheck(conn, inst, row)
            reasons = verdict.reasons()
            if verdict.status == "rejected":
                svc.audit.append(conn, inst.id, actor=actor, action="txn.approval_refused", subject=txn_id,
                                 payload={"reasons": [r.to_dict() for r in reasons],
                                          "profile_version": inst.profile_version}, at=moment)
                failed = next(r for r in reasons if r.outcome in ("fail", "fault", "reject"))
                return HoldOutcome(txn_id, "held", f"cannot approve {txn_id}: {failed.rule}: {failed.message}",
                                   [r.to_dict() for r in reasons])
            lines = ledger.lines_from_json(row.lines)
            currencies = {l.account_id: row.currency for l in lines}
            ledger.apply_deltas(conn, inst.id, ledger.deltas_for(lines, "settle"))
            ledger.insert_postings(conn, inst.id, row.id, lines, currencies, moment)
            conn.execute(update(Txn).where(Txn.id == row.id).values(
                status="posted", resolved_at=moment, resolved_by=actor, resolution="approved"))
            svc.audit.append(conn, inst.id, actor=actor, action="txn.approved", subject=txn_id,
                             payload={"initiator": row.initiator, "profile_version": inst.profile_version,
                                      "reasons": [r.to_dict() for r in reasons]}, at=moment)
            return HoldOutcome(txn_id, "posted", f"{txn_id} approved and posted", [r.to_dict() for r in reasons])

        outcome = svc.write(work, institution_id)  # refusals are audited and committed, then raised
        if outcome.status in ("expired", "held"):
            raise Refused(outcome.message)
        return outcome

    def _recheck(self, conn: Connection, inst: InstitutionView, row: Any) -> Any:
        """Run the limit and approval slots again on the balances and account
        states as they are now, as if this hold had not reserved anything yet.
        An approval driver's REVIEW is what the approver is answering, so only
        a REJECT (e.g. ``core.frozen_reject``: an account frozen while the
        transaction was held) refuses; fees are not recomputed."""
        svc = self.service
        ids = [a for a in (row.source_account_id, row.dest_account_id) if a]
        records = svc.accounts.get_many(conn, inst.id, ids, for_update=True)
        balances = ledger.load_balances(conn, inst.id, ids, for_update=True)
        own = ledger.deltas_for(ledger.lines_from_json(row.lines), "hold")
        snaps = {a: snapshot(records[a], balances[a], own.get(a, [0, 0, 0, 0])) for a in ids}
        at = as_utc(row.at)
        local_date = at.astimezone(zone(inst.timezone)).date()
        usage = UsageCounters()
        if row.source_account_id:
            usage = ledger.load_usage(conn, inst.id, row.source_account_id, local_date, at)
            usage = _without(usage, row)
        request = Request(inst.id, Kind(row.kind), Money(row.amount_minor, row.currency),
                          row.source_account_id, row.dest_account_id, row.channel, row.memo, at)
        ctx = PolicyContext(request, snaps.get(row.source_account_id or ""),
                            snaps.get(row.dest_account_id or ""), usage, inst.timezone, local_date,
                            Money(row.fee_minor, row.currency))
        return inst.evaluator(svc.evaluator).evaluate(inst.drivers, ctx, skip_fees=True,
                                      slots=(Slot.LIMIT, Slot.APPROVAL))

    def reject(self, institution_id: str, txn_id: str, actor: str, reason: str) -> HoldOutcome:
        if not reason.strip():
            raise InvalidRequest("--reason: a reason is required to reject a hold")
        limits.check_text(reason, "--reason", limits.MAX_REASON_LENGTH)
        limits.check_text(actor, "actor", limits.MAX_ACTOR_LENGTH, required=True)

        def work(conn: Connection) -> HoldOutcome:
            inst = self.service.institution(conn, institution_id)
            row = self._held(conn, institution_id, txn_id)
            self._release(conn, inst, row, "rejected", actor, reason, utc_now())
            public = ledger.txn_public_id(row)
            return HoldOutcome(public, "rejected", f"{public} rejected; funds released, no fee charged", [])

        return self.service.write(work, institution_id)

    def expire(self, institution_id: str, actor: str, now: datetime | None = None) -> list[str]:
        """Release every hold older than the profile's ``hold_expiry_hours``."""
        if now is not None:
            limits.check_time(now, "--as-of")
        def work(conn: Connection) -> list[str]:
            moment = as_utc(now) if now is not None else utc_now()  # UTC: SQLite compares text
            inst = self.service.institution(conn, institution_id)
            cutoff = moment - timedelta(hours=inst.hold_expiry_hours)
            rows = conn.execute(select(Txn).where(Txn.institution_id == institution_id,
                                                  Txn.status == "held", Txn.decided_at <= cutoff)
                                .order_by(Txn.decided_at, Txn.id).with_for_update()).all()
            for row in rows:
                self._release(conn, inst, row, "expired", actor,
                              f"hold older than {inst.hold_expiry_hours} hours", moment)
            return [ledger.txn_public_id(row) for row in rows]

        return self.service.write(work, institution_id)

    def reverse(self, institution_id: str, txn_id: str, actor: str, memo: str = "") -> dict[str, Any]:
        """Post the opposite of a posted transaction, linked to it. Refused
        twice, for reversals, and when it would overdraw a customer account."""
        svc = self.service
        limits.check_text(memo, "--memo", limits.MAX_MEMO_LENGTH)
        limits.check_text(actor, "actor", limits.MAX_ACTOR_LENGTH, required=True)

        def work(conn: Connection) -> dict[str, Any]:
            nonlocal txn_id
            now = utc_now()
            inst = svc.institution(conn, institution_id)
            row = self._locked(conn, institution_id, txn_id)
            txn_id = ledger.txn_public_id(row)
            if row.status != "posted":
                raise Conflict(f"transaction {txn_id} is {row.status}; only posted ones can be reversed")
            if row.kind == "reversal":
                raise Conflict(f"transaction {txn_id} is itself a reversal")
            done = conn.execute(select(Txn.id).where(Txn.reverses_txn_id == row.id)).scalar()
            if done is not None:
                raise Conflict(f"transaction {txn_id} was already reversed by {public_txn_id(done)}")
            postings = conn.execute(select(Posting.account_id, Posting.amount_minor, Posting.rule)
                                    .where(Posting.txn_id == row.id).order_by(Posting.id)).all()
            lines = [ledger.Line(p.account_id, -p.amount_minor, "reversal") for p in postings]
            balances = ledger.load_balances(conn, inst.id, {l.account_id for l in lines}, for_update=True)
            check_seals(inst.id, balances)
            deltas = ledger.deltas_for(lines, "post")
            verdict = self._reversal_verdict(conn, inst, row, balances, memo or f"reversal of {txn_id}", now)
            reasons = [r.to_dict() for r in verdict.reasons()]
            if verdict.status == "rejected":
                failed = next((r for r in verdict.reasons() if r.outcome in ("fail", "fault", "reject")), None)
                message = (f"cannot reverse {txn_id}: {failed.rule}: {failed.message}" if failed else
                           f"cannot reverse {txn_id}: {verdict.code}")
                svc.audit.append(conn, inst.id, actor=actor, action="txn.reversal_refused", subject=txn_id,
                                 payload={"reasons": reasons, "profile_version": inst.profile_version,
                                          "message": message}, at=now)
                return {"refused": message}
            for acc in sorted({a for a in (row.source_account_id, row.dest_account_id) if a}):
                b, d = balances[acc], deltas.get(acc, [0, 0, 0, 0])
                after = b.available + d[1] - d[0]
                if after < 0:
                    raise Refused(f"reversing {txn_id} would overdraw {acc}: available "
                                  f"{format_minor(b.available, b.currency)} {b.currency}, "
                                  f"after {format_minor(after, b.currency)}")
            ref = f"reversal:{txn_id}"
            (number,) = ledger.next_txn_ids(conn, 1)
            new_id = public_txn_id(number)
            ledger.check_balanced(lines, {a: b.currency for a, b in balances.items()})
            ledger.apply_deltas(conn, inst.id, deltas, balances)
            view = {"txn_id": new_id, "reverses": txn_id, "status": "posted",
                    "amount": format_minor(row.amount_minor, row.currency), "currency": row.currency}
            conn.execute(insert(Txn).values(
                id=number, institution_id=inst.id, idempotency_key=ref,
                kind="reversal", status="posted", amount_minor=row.amount_minor,
                fee_minor=0, currency=row.currency, source_account_id=row.dest_account_id,
                dest_account_id=row.source_account_id, channel=row.channel,
                memo=memo or f"reversal of {txn_id}", at=now, decided_at=now, initiator=actor,
                profile_version=inst.profile_version, reverses_txn_id=row.id, lines=None))
            ledger.insert_postings(conn, inst.id, number, lines,
                                   {a: b.currency for a, b in balances.items()}, now)
            svc.audit.append(conn, inst.id, actor=actor, action="txn.reversed", subject=new_id,
                             payload={**view, "lines": [[l.account_id, l.amount_minor] for l in lines],
                                      "source": row.dest_account_id, "dest": row.source_account_id,
                                      "memo": memo or f"reversal of {txn_id}", "reasons": reasons,
                                      "profile_version": inst.profile_version}, at=now)
            return view

        outcome = svc.write(work, institution_id)  # a refusal is audited and committed, then raised
        if "refused" in outcome:
            raise Refused(outcome["refused"])
        return outcome

    def _reversal_verdict(self, conn: Connection, inst: InstitutionView, row: Any,
                          balances: dict[str, ledger.BalanceRow], memo: str, now: datetime) -> Any:
        """A reversal meets the checks any transaction touching its accounts
        meets: the kernel refuses a closed account, then the profile's limit
        and approval drivers decide, seeing ``Kind.REVERSAL`` (no fees are
        charged; the original's are refunded by its lines). A REVIEW answer
        does not hold a reversal: a supervisor is already making it."""
        svc = self.service
        source, dest = row.dest_account_id, row.source_account_id  # the opposite direction
        ids = [a for a in (source, dest) if a]
        records = svc.accounts.get_many(conn, inst.id, ids, for_update=True)
        closed = [a for a in ids if records[a].status == AccountStatus.CLOSED]
        if closed:
            return Verdict("rejected", ACCOUNT_CLOSED, kernel=(ACCOUNT_CLOSED, f"account {closed[0]} is closed"))
        snaps = {a: snapshot(records[a], balances[a]) for a in ids}
        request = Request(inst.id, Kind.REVERSAL, Money(row.amount_minor, row.currency), source, dest,
                          row.channel, memo, now)
        ctx = PolicyContext(request, snaps.get(source or ""), snaps.get(dest or ""), UsageCounters(),
                            inst.timezone, now.astimezone(zone(inst.timezone)).date(), Money(0, row.currency))
        return inst.evaluator(svc.evaluator).evaluate(inst.drivers, ctx, skip_fees=True, slots=(Slot.LIMIT, Slot.APPROVAL))
