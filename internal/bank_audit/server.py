from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from bank_audit import signing
from bank_audit.tables import AuditCheckpoint, AuditEntryRow, AuditHead
from bank_core.actors import typed_if_different
from bank_core.errors import IntegrityError
from bank_core.ledger import any_of
from bank_core.ports import AuditEntry, AuditVerdict
from bank_core.storage.base import from_micros
from bank_core.storage.bulk import insert_rows, stream_rows

GENESIS_HASH = "0" * 64


def canonical_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _utc_text(at: datetime) -> str:
    if at.tzinfo is None:  # SQLite hands back naive UTC
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(institution_id: str, seq: int, at: datetime, actor: str, action: str,
               subject: str, payload_json: str, prev_hash: str, actor_typed: str | None = None) -> str:
    return _digest(institution_id, seq, _utc_text(at), actor, action, subject, payload_json, prev_hash,
                   actor_typed)


def _digest(institution_id: str, seq: int, stamp: str, actor: str, action: str, subject: str,
            payload_json: str, prev_hash: str, actor_typed: str | None) -> str:
    """An entry's hash, its time already as text (``_utc_text``): what is
    hashed, in one place for writing and checking the chain."""
    material = "\x1f".join((institution_id, str(seq), stamp, actor, action, subject, payload_json, prev_hash))
    if actor_typed is not None:  # what the person typed, when not the normal form (0011)
        material += "\x1f" + actor_typed
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


_COLUMNS = ("institution_id", "seq", "at", "actor", "action", "subject", "payload", "prev_hash",
            "hash", "actor_typed")


def _head(conn: Connection, institution_id: str) -> Any:
    """The chain's head row, locked; a missing one refuses the write."""
    head = conn.execute(select(AuditHead.seq, AuditHead.hash)
                        .where(AuditHead.institution_id == institution_id)
                        .with_for_update()).first()
    if head is None:
        raise IntegrityError(f"the audit chain head of institution {institution_id} is missing "
                             "(deleted outside the bank engine); nothing was written; "
                             "run `bank audit verify`")
    return head


class AuditServer:
    """Append-only log; the kernel appends in the same database transaction
    as the change it records."""

    head_sql = "SELECT seq, hash FROM audit_head WHERE institution_id = ?"

    def start_chain(self, conn: Connection, institution_id: str) -> None:
        conn.execute(insert(AuditHead).values(institution_id=institution_id, seq=0,
                                              hash=GENESIS_HASH))

    def append(self, conn: Connection, institution_id: str, *, actor: str, action: str,
               subject: str, payload: dict[str, Any], at: datetime) -> int:
        head = _head(conn, institution_id)
        seq = head.seq + 1
        payload_json = canonical_json(payload)
        typed = typed_if_different(actor)
        digest = entry_hash(institution_id, seq, at, actor, action, subject, payload_json,
                            head.hash, typed)
        conn.execute(insert(AuditEntryRow).values(
            institution_id=institution_id, seq=seq, at=at, actor=actor, action=action,
            subject=subject, payload=payload_json, prev_hash=head.hash, hash=digest,
            actor_typed=typed))
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
        head = _head(conn, institution_id)
        seq, prev = head.seq, head.hash
        rows = []
        stamps: dict[datetime, str] = {}  # a chunk shares one decision time
        for actor, action, subject, payload_json, at in entries:
            seq += 1
            stamp = stamps.get(at)
            if stamp is None:
                stamp = stamps[at] = _utc_text(at)
            typed = typed_if_different(actor)
            digest = _digest(institution_id, seq, stamp, actor, action, subject, payload_json, prev, typed)
            rows.append((institution_id, seq, at, actor, action, subject, payload_json, prev, digest,
                         typed))
            prev = digest
        insert_rows(conn, AuditEntryRow.__table__, _COLUMNS, rows)
        conn.execute(update(AuditHead).where(AuditHead.institution_id == institution_id)
                     .values(seq=seq, hash=prev))
        return seq, prev

    def head(self, conn: Connection, institution_id: str) -> tuple[int, str] | None:
        row = conn.execute(select(AuditHead.seq, AuditHead.hash)
                           .where(AuditHead.institution_id == institution_id)).first()
        return None if row is None else (row.seq, row.hash)

    def walk(self, conn: Connection, institution_id: str,
             anchors: dict[int, tuple[str, str]] | None = None, read: Any = None,
             span: tuple[int, int | None] | None = None) -> ChainWalk:
        """The chain's entries in order, each checked (see ``ChainWalk``)."""
        return ChainWalk(conn, institution_id, anchors or {}, read, span)

    def first_seq(self, conn: Connection, institution_id: str, subject: str) -> int | None:
        """The sequence number of the first entry about ``subject``."""
        # min(seq + 0): through the subject index (0.05 ms); min(seq) has SQLite
        # walk the chain in seq order until the subject comes (30 ms mid-chain)
        return conn.execute(select(func.min(AuditEntryRow.seq + 0)).where(
            AuditEntryRow.institution_id == institution_id, AuditEntryRow.subject == subject)).scalar()

    def verify(self, conn: Connection, institution_id: str) -> AuditVerdict:
        walk = self.walk(conn, institution_id)
        for _entry in walk:
            pass
        return walk.verdict

    # ------------------------------------------------------------ checkpoints

    def checkpoint(self, conn: Connection, institution_id: str, signing_key_path: Any,
                   at: datetime) -> dict[str, Any]:
        """Sign the chain's head with the private key in ``signing_key_path``
        and store the checkpoint; returns it as the exported document."""
        private_key = signing.load_private(signing_key_path)
        head = _head(conn, institution_id)
        doc = signing.sign(private_key, {"institution": institution_id, "seq": head.seq,
                                         "hash": head.hash, "at": _utc_text(at)})
        stored = conn.execute(select(AuditCheckpoint.seq).where(
            AuditCheckpoint.institution_id == institution_id, AuditCheckpoint.seq == head.seq)).first()
        if stored is None:
            conn.execute(insert(AuditCheckpoint).values(
                institution_id=institution_id, seq=head.seq, hash=head.hash, at=doc["at"],
                key_id=doc["key_id"], signature=doc["signature"]))
        return doc

    def anchors(self, conn: Connection, institution_id: str, public_key_path: Any,
                exported_path: Any) -> tuple[dict[int, tuple[str, str]], list[str], int]:
        """The signed heads the chain must pass through: ({seq: (hash, where)},
        problems, stored checkpoints). Stored checkpoints count only with a
        public key (their signatures checked); an exported file must name
        this institution and, with a key, carry a good signature."""
        public = signing.load_public(public_key_path) if public_key_path else None
        exported = signing.read_checkpoint_file(exported_path) if exported_path else None
        found: dict[int, tuple[str, str]] = {}
        problems: list[str] = []
        rows = conn.execute(select(AuditCheckpoint).where(AuditCheckpoint.institution_id == institution_id)
                            .order_by(AuditCheckpoint.seq)).all()
        if public is not None:
            for row in rows:
                doc = {"institution": row.institution_id, "seq": row.seq, "hash": row.hash,
                       "at": row.at, "signature": row.signature}
                if not signing.signature_ok(public, doc):
                    problems.append(f"stored checkpoint at entry {row.seq} has a bad signature "
                                    "(forged or edited, or signed by another key)")
                else:
                    found[row.seq] = (row.hash, f"the signed checkpoint at entry {row.seq}")
        if exported is not None:
            if exported["institution"] != institution_id:
                problems.append(f"--checkpoint {exported_path} is of institution "
                                f"{exported['institution']}, not {institution_id}")
            elif public is not None and not signing.signature_ok(public, exported):
                problems.append(f"--checkpoint {exported_path} has a bad signature")
            else:
                found[exported["seq"]] = (exported["hash"],
                                          f"the exported checkpoint at entry {exported['seq']}")
        return found, problems, len(rows)
    def decisions(self, conn: Connection, institution_id: str, subjects: list[str],
                  actions: tuple[str, ...]) -> dict[str, str]:
        """The payload of the first entry with one of ``actions`` for each
        subject (a transaction's decision record)."""
        # No ORDER BY: ordering by seq would make the database walk the
        # institution's whole log in seq order instead of looking each
        # subject up in its index; the first entry is picked here.
        # Read as the driver gives them (a simulation reads every decision).
        sql, values = any_of(conn, list(subjects))
        mark = "?" if conn.dialect.name == "sqlite" else "%s"
        rows = stream_rows(conn, f"SELECT subject, seq, payload FROM audit_entry WHERE institution_id = {mark} "
                                 f"AND subject{sql} AND action IN ({', '.join(mark for _ in actions)})",
                           (institution_id, values, *actions))
        first: dict[str, tuple[int, str]] = {}
        for subject, seq, payload in rows:
            found = first.get(subject)
            if found is None or seq < found[0]:
                first[subject] = (seq, payload)
        return {subject: payload for subject, (_seq, payload) in first.items()}

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


class ChainWalk:
    """Iterates ``(seq, at, actor, action, subject, payload)`` over a chain,
    recomputing each hash and link as it goes (raw rows, streamed: set-based,
    no ORM object per entry). It stops at the first bad entry; ``verdict``
    then says where and why. ``anchors`` maps sequence numbers to the hash
    a signed checkpoint says the chain has there: a chain rewritten,
    renumbered, truncated or emptied before one fails even with every hash
    recomputed. A missing head record is a failure too. ``read(sql,
    params)`` reads the entries when given (another connection on the same
    snapshot, see ``bank_core.storage.snapshot``); the head is read on
    ``conn``.

    ``span`` = ``(first, last)`` walks one piece of the chain, so that two
    processes can check one chain side by side: the entries ``first`` to
    ``last`` (``last`` None: to the end, with the head check). A piece
    that starts after entry 1 takes its first entry's link as read and
    keeps it (``first_link``) for the caller to join with the piece before
    it; a piece that ends early keeps its last entry (``last``) and does
    not look at the head. Joined pieces check what the whole walk checks
    only if the caller checks, at each join, that the piece before ends at
    ``first - 1`` with the hash the next piece links to."""

    def __init__(self, conn: Connection, institution_id: str,
                 anchors: dict[int, tuple[str, str]], read: Any = None,
                 span: tuple[int, int | None] | None = None) -> None:
        self.conn = conn
        self.read = read or (lambda sql, params: stream_rows(conn, sql, params))
        self.institution_id = institution_id
        self.anchors = anchors
        self.span = span or (1, None)
        self.first_link: str | None = None  # the prev_hash of a later piece's first entry
        self.last: tuple[int, str] | None = None  # (seq, hash) of the last entry walked
        self.verdict = AuditVerdict(False, 0, None, "the chain was not read to its end")

    def _fail(self, count: int, seq: int, problem: str) -> None:
        self.verdict = AuditVerdict(False, count, seq, problem)

    def __iter__(self) -> Iterator[tuple[int, Any, str, str, str, str]]:
        mark = "?" if self.conn.dialect.name == "sqlite" else "%s"
        first, last = self.span
        where = "" if first == 1 else f" AND seq >= {mark}"
        where += "" if last is None else f" AND seq <= {mark}"
        bounds = tuple(bound for bound in (first if first != 1 else None, last) if bound is not None)
        rows = self.read("SELECT seq, at, actor, action, subject, payload, prev_hash, hash, actor_typed "
                         f"FROM audit_entry WHERE institution_id = {mark}{where} ORDER BY seq",
                         (self.institution_id, *bounds))
        try:
            ended = yield from self._checked(rows)
        finally:
            rows.close()  # a reader ahead of a failed walk stops
        if ended is None:
            return
        count, seq, digest = ended
        self.last = (seq, digest)
        if last is None:
            self._end(*ended)
        else:
            self.verdict = AuditVerdict(True, count)

    def _checked(self, rows: Iterator[Any]) -> Any:
        """The entries, checked; at the end (count, last seq, last hash),
        or None after a failure."""
        inst, anchors = self.institution_id, self.anchors
        sqlite = self.conn.dialect.name == "sqlite"
        stamps: dict[Any, str] = {}
        expected, count = self.span[0], 0
        prev = GENESIS_HASH if expected == 1 else None  # None: a later piece's first link, kept
        for seq, at, actor, action, subject, payload, prev_hash, digest, typed in rows:
            count += 1
            if seq != expected:
                return self._fail(count, expected, f"entry {expected} is missing (next is {seq})")
            if prev is None:
                prev = self.first_link = prev_hash
            if prev_hash != prev:
                return self._fail(count, seq, f"entry {seq} does not link to entry {seq - 1}")
            stamp = stamps.get(at)
            if stamp is None:
                if len(stamps) > 4096:
                    stamps.clear()
                stamp = stamps[at] = _utc_text(from_micros(at) if sqlite else at)
            if _digest(inst, seq, stamp, actor, action, subject, payload, prev, typed) != digest:
                return self._fail(count, seq, f"entry {seq} was altered (hash does not match)")
            anchor = anchors.get(seq)
            if anchor is not None and anchor[0] != digest:
                return self._fail(count, seq, f"entry {seq} is not the entry {anchor[1]} signed: "
                                              "the chain was rewritten (hashes recomputed)")
            yield seq, at, actor, action, subject, payload
            prev, expected = digest, expected + 1
        return count, expected - 1, prev

    def _end(self, count: int, last: int, prev: str) -> None:
        """After the last entry: the anchors beyond it and the head record."""
        conn, inst, anchors = self.conn, self.institution_id, self.anchors
        beyond = [seq for seq in anchors if seq > last]
        if beyond:
            seq = min(beyond)
            return self._fail(count, last + 1, f"the chain ends at entry {last} but "
                                               f"{anchors[seq][1]} is at entry {seq}: "
                                               "entries were deleted (truncated or emptied)")
        head = conn.execute(select(AuditHead.seq, AuditHead.hash)
                            .where(AuditHead.institution_id == inst)).first()
        if head is None:
            return self._fail(count, last + 1, "the chain head record is missing "
                                               "(deleted outside the bank engine)")
        if head.seq != last or head.hash != prev:
            return self._fail(count, last + 1, f"entries after {last} are missing (head is at {head.seq})")
        self.verdict = AuditVerdict(True, count)


def _payload(text: str) -> Any:
    """An entry's payload as data: a dict, or a transaction's decision record
    (a list; see ``bank_core.record``)."""
    return json.loads(text)
