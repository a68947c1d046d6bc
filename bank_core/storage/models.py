"""The kernel's tables: institutions, profiles, balances, transactions,
postings and usage counters. Accounts and audit tables belong to the internal
servers (``bank_accounts``, ``bank_audit``) and are declared there on the same
``Base``.

Money columns are 64-bit integers of minor units. Times are stored as UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text, UniqueConstraint, text

from bank_core.storage.base import Base, Mapped, UtcTime, mapped_column

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
    # The number of the shadow profile evaluated beside the live one (None:
    # no shadow). Read with the row every chunk loads, so an institution
    # without a shadow pays no extra query.
    shadow: Mapped[int | None] = mapped_column(Integer)


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
    seal: Mapped[str | None] = mapped_column(String(16))  # bank_core.seal (revision 0011)


# The partial indexes of ``txn``: index name -> the rows it holds.
_PARTIAL = {"ix_txn_held": "status = 'held'",
            "uq_txn_reverses_txn_id": "reverses_txn_id IS NOT NULL",
            "ix_txn_legacy_id": "legacy_id IS NOT NULL"}


def with_postgresql_options() -> None:
    """Give the partial indexes their PostgreSQL ``WHERE`` as well (what
    migration 0002 creates there), for whatever compares or creates the
    schema on PostgreSQL (``bank_wiring.metadata``, make_engine). Kept out of
    the class body because naming a PostgreSQL option loads that dialect
    (~0.14 s of every command's start-up on SQLite)."""
    for index in Txn.__table__.indexes:
        where = _PARTIAL.get(index.name)  # type: ignore[arg-type]
        if where is not None and index.dialect_options["postgresql"]["where"] is None:
            index.dialect_options["postgresql"]["where"] = text(where)


class Txn(Base):
    """One transaction request and its decision: the queryable columns.

    ``id`` is a time-ordered integer (``txn_<id>`` to people), so inserts
    append to the table and its indexes; the (institution, idempotency key)
    unique key is what makes a retried request find its first result. The
    decision itself (every driver's answer) is the payload of the
    transaction's audit entry, stored once (``bank_core.record``).
    ``status`` moves only from held to posted, released or expired; posted
    and rejected rows never change."""

    __tablename__ = "txn"
    __table_args__ = (
        UniqueConstraint("institution_id", "idempotency_key"),
        Index("ix_txn_source_at", "source_account_id", "at"),
        Index("ix_txn_dest_at", "dest_account_id", "at"),
        # Partial indexes: their PostgreSQL spelling is added by
        # ``with_postgresql_options`` (naming ``postgresql_where`` here would
        # import the PostgreSQL dialect into every command on SQLite).
        Index("ix_txn_held", "institution_id", "decided_at", sqlite_where=text(_PARTIAL["ix_txn_held"])),
        Index("uq_txn_reverses_txn_id", "reverses_txn_id", unique=True,
              sqlite_where=text(_PARTIAL["uq_txn_reverses_txn_id"])),
        Index("ix_txn_legacy_id", "legacy_id", unique=True, sqlite_where=text(_PARTIAL["ix_txn_legacy_id"])),
        # what a posting's foreign key names: the transaction with its institution
        Index("uq_txn_id_institution_id", "id", "institution_id", unique=True),
    )

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=False)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int]
    fee_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    source_account_id: Mapped[str | None] = mapped_column(String(64))
    dest_account_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    memo: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UtcTime)
    decided_at: Mapped[datetime] = mapped_column(UtcTime)
    initiator: Mapped[str] = mapped_column(String(200))
    profile_version: Mapped[int]
    code: Mapped[str | None] = mapped_column(String(200))  # the rule or fault that held or rejected
    reverses_txn_id: Mapped[int | None] = mapped_column(SERIAL, ForeignKey("txn.id"))
    lines: Mapped[str | None] = mapped_column(Text)  # JSON: planned postings (holds only)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcTime)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(String(500))
    legacy_id: Mapped[str | None] = mapped_column(String(64))  # the id a revision-0001 database gave it


class Posting(Base):
    """One leg of a posted transaction; signed, credit positive. Never updated.

    Its transaction *and institution* are one foreign key: (txn_id,
    institution_id) must be a transaction of that institution (revision
    0013). One check a posting instead of two (a transaction, an
    institution), and a stronger one: a posting can no longer name another
    institution than its transaction's.

    No index by account (revision 0014): a statement finds a customer's
    postings through its transactions (``BankService.statement``)."""

    __tablename__ = "posting"
    __table_args__ = (ForeignKeyConstraint(["txn_id", "institution_id"], ["txn.id", "txn.institution_id"]),)

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    txn_id: Mapped[int] = mapped_column(SERIAL, index=True)
    institution_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    rule: Mapped[str] = mapped_column(String(200))
    posted_at: Mapped[datetime] = mapped_column(UtcTime)


class Term(Base):
    """Each distinct rule name, driver, message template and fee memo that a
    decision record mentions, stored once; records hold the ids."""

    __tablename__ = "decision_term"

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text, unique=True)


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


class ShadowProfile(Base):
    """A candidate profile installed to be evaluated beside the live one
    (``bank profile shadow``); ``stopped_at`` is set when it is stopped or
    promoted. Never deleted: a stopped shadow's report can still be read."""

    __tablename__ = "shadow_profile"
    __table_args__ = (UniqueConstraint("institution_id", "number"),)

    id: Mapped[int] = mapped_column(SERIAL, primary_key=True, autoincrement=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)
    installed_at: Mapped[datetime] = mapped_column(UtcTime)
    installed_by: Mapped[str] = mapped_column(String(200))
    stopped_at: Mapped[datetime | None] = mapped_column(UtcTime)
    stopped_by: Mapped[str | None] = mapped_column(String(200))


class ShadowDecision(Base):
    """What the shadow profile decided for one live transaction: its status,
    code, fee total and compact decision record (``bank_core.record``'s
    format, with no balances: a shadow moves no money)."""

    __tablename__ = "shadow_decision"

    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    txn_id: Mapped[int] = mapped_column(SERIAL, ForeignKey("txn.id"), primary_key=True)
    shadow: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(200))
    fee_minor: Mapped[int]
    record: Mapped[str] = mapped_column(Text)
