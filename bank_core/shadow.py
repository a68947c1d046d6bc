"""Shadow runs: a candidate profile evaluated beside the live one.

``bank profile shadow FILE`` installs a candidate (validated like ``profile
apply``, its drivers loaded through the same registry). From then on every
new transaction of the institution (a single command, a file, the HTTP API:
all go through ``bank_core.chunk``) is decided by the live profile first;
then the candidate's drivers are called on exactly the context the live
drivers saw (the same account snapshots, the same usage counters), and its
verdict is stored, compactly, in ``shadow_decision`` beside the live
transaction. A shadow's verdict moves no money, writes no audit entry and
counts no usage; its driver faults (raised, bad answer, timeout, forbidden)
are its own verdict, and anything else that goes wrong with it is recorded
as a ``shadow_failed`` verdict. Nothing it does can reach the live decision,
which was made and recorded before it runs.

Unlike ``profile simulate``, a shadow does not move a world of its own
forward: every row is decided on the live ledger, so a transfer the shadow
would have refused still moved the money for the rows after it. Over a
window where the candidate's changes do not cascade (a fee change that
pushes nobody over a limit), the shadow report equals a simulation.

The institution row names its active shadow's number (``institution.shadow``),
read with the row every chunk loads: an institution without a shadow pays
one ``is None`` test per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, update

from bank_core import ledger
from bank_core.chunk import DECISION_ACTIONS
from bank_core.decide import Drivers
from bank_core.errors import InvalidRequest, NotFound
from bank_core.messages import as_utc, utc_now
from bank_core.money import format_minor
from bank_core.pipeline import profile_reads
from bank_core.profile import Profile, bind_profile, validate_profile
from bank_core.record import loads
from bank_core.simulation_report import Totals, decision_of
from bank_core.storage.models import Institution, ShadowDecision, ShadowProfile, Txn

if TYPE_CHECKING:
    from bank_core.registry import Registry
    from bank_core.service import BankService

BATCH_ROWS = 1000  # shadow decisions read per query for a report


@dataclass(frozen=True, slots=True)
class ShadowView:
    """The active shadow of an institution as the chunk needs it: its number,
    its bound drivers (None when they no longer load: ``error`` says why)
    and what they read."""

    number: int
    drivers: Drivers | None
    reads: frozenset[str]
    error: str = ""


def bind_shadow(conn: Connection, institution_id: str, number: int, registry: Registry) -> ShadowView:
    """The institution's shadow ``number`` bound to its drivers. Never
    raises for a driver that broke after installation: live transactions
    must go on, so the shadow records ``shadow_unavailable`` instead."""
    document = conn.execute(select(ShadowProfile.document).where(
        ShadowProfile.institution_id == institution_id, ShadowProfile.number == number)).scalar_one()
    try:
        drivers = bind_profile(Profile.model_validate_json(document), registry)
    except Exception as exc:  # noqa: BLE001 - any failure of a plug-in stays the shadow's
        return ShadowView(number, None, frozenset(), f"shadow {number} cannot load its drivers: {exc}")
    return ShadowView(number, drivers, profile_reads(drivers))


# ------------------------------------------------------------------ commands


def install(service: BankService, document: dict[str, Any], actor: str) -> tuple[Profile, int, int | None]:
    """Validate ``document`` and make it the institution's shadow; returns
    (profile, new number, the number of the shadow it replaced or None)."""
    candidate = validate_profile(document, service.registry)
    bind_profile(candidate, service.registry)  # load every driver now, not at the first row

    def work(conn: Connection) -> tuple[int, int | None]:
        service.institution(conn, candidate.id)  # exists (NotFound names it otherwise)
        now = utc_now()
        replaced = stop_running(conn, service, candidate.id, actor, now)
        number = (conn.execute(select(func.max(ShadowProfile.number))
                               .where(ShadowProfile.institution_id == candidate.id)).scalar() or 0) + 1
        conn.execute(ShadowProfile.__table__.insert().values(
            institution_id=candidate.id, number=number, document=candidate.document(),
            installed_at=now, installed_by=actor))
        conn.execute(update(Institution).where(Institution.id == candidate.id).values(shadow=number))
        service.audit.append(conn, candidate.id, actor=actor, action="profile.shadow_installed",
                             subject=f"shadow:{number}",
                             payload={"shadow": number, "profile": json.loads(candidate.document())},
                             at=now)
        return number, replaced

    number, replaced = service.write(work, candidate.id)
    return candidate, number, replaced


def stop(service: BankService, institution_id: str, actor: str) -> int:
    """Stop the institution's shadow; returns its number."""
    def work(conn: Connection) -> int:
        service.institution(conn, institution_id)
        number = stop_running(conn, service, institution_id, actor, utc_now())
        if number is None:
            raise NotFound(f"institution {institution_id} has no shadow profile running")
        return number
    return service.write(work, institution_id)


def stop_running(conn: Connection, service: BankService, institution_id: str, actor: str,
          now: datetime) -> int | None:
    """Stop the active shadow inside the caller's transaction (None: none ran);
    also what ``BankService.apply_profile(..., promote=True)`` calls."""
    number = conn.execute(select(Institution.shadow).where(Institution.id == institution_id)
                          .with_for_update()).scalar()
    if number is None:
        return None
    conn.execute(update(ShadowProfile).where(
        ShadowProfile.institution_id == institution_id, ShadowProfile.number == number)
        .values(stopped_at=now, stopped_by=actor))
    conn.execute(update(Institution).where(Institution.id == institution_id).values(shadow=None))
    service.audit.append(conn, institution_id, actor=actor, action="profile.shadow_stopped",
                         subject=f"shadow:{number}", payload={"shadow": number}, at=now)
    return number



def latest(conn: Connection, institution_id: str, running_only: bool = False) -> Any:
    """The institution's running shadow, else (unless ``running_only``) the
    last one stopped; NotFound when there is none."""
    query = select(ShadowProfile).where(ShadowProfile.institution_id == institution_id)
    if running_only:
        query = query.where(ShadowProfile.stopped_at.is_(None))
    row = conn.execute(query.order_by(ShadowProfile.number.desc()).limit(1)).first()
    if row is None:
        state = "running" if running_only else "installed"
        raise NotFound(f"institution {institution_id} has no shadow profile {state} "
                       "(install one with `bank profile shadow FILE`)")
    return row


def status(service: BankService, institution_id: str) -> dict[str, Any]:
    """The running or last shadow, and how many transactions it decided."""
    def work(conn: Connection) -> dict[str, Any]:
        service.institution(conn, institution_id)
        row = latest(conn, institution_id)
        decided = conn.execute(select(func.count()).where(
            ShadowDecision.institution_id == institution_id, ShadowDecision.shadow == row.number)).scalar()
        return {**_describe(row), "decided": decided}
    return service.read(work)


def _describe(row: Any) -> dict[str, Any]:
    return {"institution": row.institution_id, "shadow": row.number,
            "installed_at": as_utc(row.installed_at).isoformat(), "installed_by": row.installed_by,
            "stopped_at": as_utc(row.stopped_at).isoformat() if row.stopped_at else None,
            "stopped_by": row.stopped_by, "running": row.stopped_at is None}


def document(service: BankService, institution_id: str) -> dict[str, Any]:
    """The running shadow's profile document (what ``profile promote`` applies)."""
    def work(conn: Connection) -> dict[str, Any]:
        service.institution(conn, institution_id)
        return json.loads(latest(conn, institution_id, running_only=True).document)
    return service.read(work)


# ------------------------------------------------------------------ report


Changed = Callable[[dict[str, Any]], None]


def report(service: BankService, institution_id: str, *, start: datetime | None = None,
           end: datetime | None = None, on_change: Changed | None = None) -> dict[str, Any]:
    """The simulation report (``bank_core.simulation_report``) of the
    running or last shadow: per transaction it decided whose live decision
    time is in ``[start, end)``, the live decision against the shadow's."""
    if start is not None and end is not None and start >= end:
        raise InvalidRequest(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    totals = Totals()

    def head(conn: Connection) -> Any:
        service.institution(conn, institution_id)
        return latest(conn, institution_id)

    shadow = service.read(head)
    after = 0
    while True:
        batch = service.read(lambda conn: _batch(service, conn, shadow.number, institution_id, after,
                                                 start, end))
        if not batch:
            break
        after = batch[-1][0].id
        for row, before, shadowed in batch:
            changed = totals.add(row.source_account_id or row.dest_account_id, before, shadowed)
            if changed and on_change is not None:
                on_change({"txn_id": ledger.txn_public_id(row), "ref": row.idempotency_key,
                           "kind": row.kind, "amount": format_minor(row.amount_minor, row.currency),
                           "currency": row.currency, "source": row.source_account_id,
                           "dest": row.dest_account_id, "at": as_utc(row.at).isoformat(),
                           "decided_at": as_utc(row.decided_at).isoformat(),
                           "before": before.to_dict(), "after": shadowed.to_dict()})
    return {**_describe(shadow), "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None, **totals.report()}


def _batch(service: BankService, conn: Connection, number: int, institution_id: str, after: int,
           start: datetime | None, end: datetime | None) -> list[tuple[Any, Any, Any]]:
    query = (select(Txn.id, Txn.legacy_id, Txn.idempotency_key, Txn.kind, Txn.amount_minor, Txn.currency,
                    Txn.source_account_id, Txn.dest_account_id, Txn.at, Txn.decided_at,
                    ShadowDecision.record)
             .join(ShadowDecision, (ShadowDecision.txn_id == Txn.id)
                   & (ShadowDecision.institution_id == Txn.institution_id))
             .where(Txn.institution_id == institution_id, ShadowDecision.shadow == number, Txn.id > after))
    if start is not None:
        query = query.where(Txn.decided_at >= as_utc(start))
    if end is not None:
        query = query.where(Txn.decided_at < as_utc(end))
    rows = conn.execute(query.order_by(Txn.id).limit(BATCH_ROWS)).all()
    if not rows:
        return []
    subjects = [ledger.txn_public_id(r) for r in rows]
    payloads = service.audit.decisions(conn, institution_id, subjects, DECISION_ACTIONS)
    text = service.pipeline.terms.session(conn).text
    return [(row, decision_of(loads(payloads[subject]), text), decision_of(loads(row.record), text))
            for row, subject in zip(rows, subjects)]
