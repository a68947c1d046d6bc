"""The kernel's tables: institutions, profiles, balances, transactions,
postings and usage counters. Accounts and audit tables belong to the internal
servers (``bank_accounts``, ``bank_audit``) and are declared there on the same
``Base``.

Money columns are 64-bit integers of minor units. Times are stored as UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bank_core.storage.base import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
SERIAL = BigInteger().with_variant(Integer(), "sqlite")


class Institution(Base):
    __tablename__ = "institution"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    hold_expiry_hours: Mapped[int]
    profile_version: Mapped[int]
    created_at: Mapped[datetime]


class ProfileVersion(Base):
    """Every profile ever applied; transactions record the version that decided."""

    __tablename__ = "profile_version"
    __table_args__ = (UniqueConstraint("institution_id", "version"),)

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    version: Mapped[int]
    document: Mapped[str] = mapped_column(Text)
    applied_at: Mapped[datetime]
    applied_by: Mapped[str] = mapped_column(String(200))


class Balance(Base):
    """Incremental balances of one account (TigerBeetle's four counters).

    posted = credits_posted - debits_posted; available = posted - debits_pending.
    """

    __tablename__ = "balance"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    debits_posted: Mapped[int]
    credits_posted: Mapped[int]
    debits_pending: Mapped[int]
    credits_pending: Mapped[int]


class Txn(Base):
    """One transaction request and its decision. ``status`` moves only from
    held to posted, released or expired; posted and rejected rows never change."""

    __tablename__ = "txn"
    __table_args__ = (
        UniqueConstraint("institution_id", "idempotency_key"),
        UniqueConstraint("reverses_txn_id"),
        Index("ix_txn_source_at", "source_account_id", "at"),
        Index("ix_txn_dest_at", "dest_account_id", "at"),
        Index("ix_txn_institution_status", "institution_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int]
    fee_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    source_account_id: Mapped[str | None] = mapped_column(String(64))
    dest_account_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    memo: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime]
    decided_at: Mapped[datetime]
    initiator: Mapped[str] = mapped_column(String(200))
    profile_version: Mapped[int]
    reverses_txn_id: Mapped[str | None] = mapped_column(ForeignKey("txn.id"))
    lines: Mapped[str] = mapped_column(Text)   # JSON: planned postings (for holds)
    result: Mapped[str] = mapped_column(Text)  # JSON: the first result, for replays
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(String(500))


class Posting(Base):
    """One leg of a posted transaction; signed, credit positive. Never updated."""

    __tablename__ = "posting"
    __table_args__ = (Index("ix_posting_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(ForeignKey("txn.id"), index=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    account_id: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    rule: Mapped[str] = mapped_column(String(200))
    posted_at: Mapped[datetime]


class UsageCounter(Base):
    """Outgoing usage of an account per local day or month, kind and channel."""

    __tablename__ = "usage_counter"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)  # 2026-11-22 or 2026-11
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    amount_minor: Mapped[int]
    fee_minor: Mapped[int]
    count: Mapped[int]
