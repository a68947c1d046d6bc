from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text

from bank_core.storage.base import Base, Mapped, UtcTime, mapped_column


class AuditEntryRow(Base):
    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_subject", "institution_id", "subject"),)

    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # What the person typed, when it differs from ``actor`` (its normal form,
    # bank_core.actors); hashed into the entry when present (revision 0011).
    actor_typed: Mapped[str | None] = mapped_column(Text)


class AuditCheckpoint(Base):
    """A signed head of a chain (``bank audit checkpoint``): Ed25519 over
    the institution, sequence number, hash and time, by a key kept outside
    the database. Verify checks the chain still passes through it."""

    __tablename__ = "audit_checkpoint"

    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(40))  # UTC text, exactly as signed
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(200))


class AuditHead(Base):
    """The last sequence number and hash of each chain (detects a cut tail,
    and is the row writers lock to append in order)."""

    __tablename__ = "audit_head"

    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))
