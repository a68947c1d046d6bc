from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, insert, select, update

from bank_audit.tables import AuditEntryRow, AuditHead
from bank_core.ports import AuditEntry, AuditVerdict
from bank_core.storage.bulk import insert_rows

GENESIS_HASH = "0" * 64


def canonical_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _utc_text(at: datetime) -> str:
    if at.tzinfo is None:  # SQLite hands back naive UTC
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(institution_id: str, seq: int, at: datetime, actor: str, action: str,
               subject: str, payload_json: str, prev_hash: str) -> str:
    material = "\x1f".join((institution_id, str(seq), _utc_text(at), actor, action, subject,
                            payload_json, prev_hash))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


_COLUMNS = ("institution_id", "seq", "at", "actor", "action", "subject", "payload", "prev_hash",
            "hash")


class AuditServer:
    """Append-only log; the kernel appends in the same database transaction
    as the change it records."""

    def start_chain(self, conn: Connection, institution_id: str) -> None:
        conn.execute(insert(AuditHead).values(institution_id=institution_id, seq=0,
                                              hash=GENESIS_HASH))

    def append(self, conn: Connection, institution_id: str, *, actor: str, action: str,
               subject: str, payload: dict[str, Any], at: datetime) -> int:
        head = conn.execute(select(AuditHead.seq, AuditHead.hash)
                            .where(AuditHead.institution_id == institution_id)
                            .with_for_update()).one()
        seq = head.seq + 1
        payload_json = canonical_json(payload)
        digest = entry_hash(institution_id, seq, at, actor, action, subject, payload_json,
                            head.hash)
        conn.execute(insert(AuditEntryRow).values(
            institution_id=institution_id, seq=seq, at=at, actor=actor, action=action,
            subject=subject, payload=payload_json, prev_hash=head.hash, hash=digest))
        conn.execute(update(AuditHead).where(AuditHead.institution_id == institution_id)
                     .values(seq=seq, hash=digest))
        return seq

    def append_many(self, conn: Connection, institution_id: str,
                    entries: list[tuple[str, str, str, str, datetime]]) -> tuple[int, str] | None:
        """Append ``(actor, action, subject, payload_json, at)`` entries in
        order with one read of the head, one insert and one head update;
        returns the new head (None when there was nothing to append).
        ``payload_json`` must already be canonical (see ``canonical_json``)."""
        if not entries:
            return None
        head = conn.execute(select(AuditHead.seq, AuditHead.hash)
                            .where(AuditHead.institution_id == institution_id)
                            .with_for_update()).one()
        seq, prev = head.seq, head.hash
        rows = []
        stamps: dict[datetime, str] = {}  # a chunk shares one decision time
        sha256 = hashlib.sha256
        for actor, action, subject, payload_json, at in entries:
            seq += 1
            stamp = stamps.get(at)
            if stamp is None:
                stamp = stamps[at] = _utc_text(at)
            material = "\x1f".join((institution_id, str(seq), stamp, actor, action, subject,
                                    payload_json, prev))
            digest = sha256(material.encode("utf-8")).hexdigest()
            rows.append((institution_id, seq, at, actor, action, subject, payload_json, prev, digest))
            prev = digest
        insert_rows(conn, AuditEntryRow.__table__, _COLUMNS, rows)
        conn.execute(update(AuditHead).where(AuditHead.institution_id == institution_id)
                     .values(seq=seq, hash=prev))
        return seq, prev

    def head(self, conn: Connection, institution_id: str) -> tuple[int, str] | None:
        row = conn.execute(select(AuditHead.seq, AuditHead.hash)
                           .where(AuditHead.institution_id == institution_id)).first()
        return None if row is None else (row.seq, row.hash)

    def verify(self, conn: Connection, institution_id: str) -> AuditVerdict:
        rows = conn.execute(select(AuditEntryRow)
                            .where(AuditEntryRow.institution_id == institution_id)
                            .order_by(AuditEntryRow.seq))
        expected_seq, prev = 1, GENESIS_HASH
        count = 0
        for row in rows:
            count += 1
            if row.seq != expected_seq:
                return AuditVerdict(False, count, expected_seq,
                                    f"entry {expected_seq} is missing (next is {row.seq})")
            if row.prev_hash != prev:
                return AuditVerdict(False, count, row.seq,
                                    f"entry {row.seq} does not link to entry {row.seq - 1}")
            digest = entry_hash(institution_id, row.seq, row.at, row.actor, row.action,
                                row.subject, row.payload, row.prev_hash)
            if digest != row.hash:
                return AuditVerdict(False, count, row.seq,
                                    f"entry {row.seq} was altered (hash does not match)")
            prev, expected_seq = row.hash, expected_seq + 1
        head = conn.execute(select(AuditHead.seq, AuditHead.hash)
                            .where(AuditHead.institution_id == institution_id)).first()
        last = expected_seq - 1
        if head is not None and (head.seq != last or head.hash != prev):
            return AuditVerdict(False, count, last + 1,
                                f"entries after {last} are missing (head is at {head.seq})")
        return AuditVerdict(True, count)

    def decisions(self, conn: Connection, institution_id: str, subjects: list[str],
                  actions: tuple[str, ...]) -> dict[str, str]:
        """The payload of the first entry with one of ``actions`` for each
        subject (a transaction's decision record)."""
        rows = conn.execute(select(AuditEntryRow.subject, AuditEntryRow.payload)
                            .where(AuditEntryRow.institution_id == institution_id,
                                   AuditEntryRow.subject.in_(subjects),
                                   AuditEntryRow.action.in_(actions))
                            .order_by(AuditEntryRow.seq.desc()))
        return {subject: payload for subject, payload in rows}  # the first entry wins

    def entries(self, conn: Connection, institution_id: str, *, subject: str | None = None,
                limit: int | None = None) -> list[AuditEntry]:
        query = select(AuditEntryRow).where(AuditEntryRow.institution_id == institution_id)
        if subject is not None:
            query = query.where(AuditEntryRow.subject == subject)
        query = query.order_by(AuditEntryRow.seq.desc())
        if limit is not None:
            query = query.limit(limit)
        found = [AuditEntry(r.institution_id, r.seq, r.at, r.actor, r.action, r.subject,
                            _payload(r.payload), r.prev_hash, r.hash)
                 for r in conn.execute(query)]
        return list(reversed(found))


def _payload(text: str) -> Any:
    """An entry's payload as data: a dict, or a transaction's decision record
    (a list; see ``bank_core.record``)."""
    return json.loads(text)
