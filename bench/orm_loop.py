"""The low anchor: the three rules as a naive SQLAlchemy ORM loop.

What anyone writes in an afternoon: one ORM object per transaction and
posting, accounts fetched with ``session.get``, a commit per 1,000 rows.
The same rules as the bench's three-driver profile: a 0.5% fee (half-up,
at least 0.25) on withdrawals and transfers, a 10,000.00 single-transaction
limit, and no overdraft. Amounts are integers of minor units, parsed from
the file's text without a float.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from sqlalchemy import BigInteger, ForeignKey, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

LIMIT_MINOR = 1_000_000
MIN_FEE_MINOR = 25


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "orm_account"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)


class Txn(Base):
    __tablename__ = "orm_txn"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)


class Posting(Base):
    __tablename__ = "orm_posting"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    txn_id: Mapped[int] = mapped_column(ForeignKey("orm_txn.id"))
    account_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)


def _minor(text: str) -> int | None:
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and (not frac.isdigit() or len(frac) > 2)):
        return None
    return int(whole) * 100 + int(frac.ljust(2, "0") or "0")


def run(url: str, file: Path, accounts: list[str], rows: int) -> float:
    """Seconds to process the first ``rows`` rows of ``file``."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if url.startswith("postgresql://") else url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Account(id=a, balance=0) for a in [*accounts, "cash", "fee_income"]])
        session.commit()
    started = time.perf_counter()
    with Session(engine) as session, file.open(newline="") as handle:
        for n, row in enumerate(csv.DictReader(handle)):
            if n >= rows:
                break
            _one(session, row)
            if n % 1000 == 999:
                session.commit()
        session.commit()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def _one(session: Session, row: dict[str, str]) -> None:
    amount = _minor(row["amount"])
    kind = row["type"]
    if amount is None or kind not in ("deposit", "withdrawal", "transfer") or row["currency"] not in ("", "USD"):
        return
    source = session.get(Account, row["from"]) if row["from"] else None
    dest = session.get(Account, row["to"]) if row["to"] else None
    if (kind != "deposit" and source is None) or (kind != "withdrawal" and dest is None):
        return
    fee = 0
    if kind in ("withdrawal", "transfer"):
        quotient, remainder = divmod(amount * 5, 1000)
        fee = max(MIN_FEE_MINOR, quotient + (1 if 2 * remainder >= 1000 else 0))
    status = "posted"
    if amount > LIMIT_MINOR or (source is not None and source.balance < amount + fee):
        status = "rejected"
    txn = Txn(ref=row["ref"], status=status, amount=amount, fee=0 if status == "rejected" else fee)
    session.add(txn)
    if status == "rejected":
        return
    session.flush()
    cash = session.get(Account, "cash")
    debit, credit = source or cash, dest or cash
    legs = [(debit, -amount), (credit, amount)]
    if fee:
        legs += [(debit, -fee), (session.get(Account, "fee_income"), fee)]
    for account, minor in legs:  # double entry, like the engine's
        account.balance += minor  # type: ignore[union-attr]
    session.add_all([Posting(txn_id=txn.id, account_id=a.id, amount=m) for a, m in legs])  # type: ignore[union-attr]
