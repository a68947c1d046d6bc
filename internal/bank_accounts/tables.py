from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String

from bank_core.storage.base import Base, Mapped, mapped_column


class Account(Base):
    __tablename__ = "account"
    __table_args__ = (Index("ix_account_institution_role", "institution_id", "role", "currency"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    currency: Mapped[str] = mapped_column(String(3))
    holder: Mapped[str] = mapped_column(String(200))
    product: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
