from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from bank_accounts.tables import Account
from bank_core.ledger import one_of
from bank_core.messages import as_utc
from bank_core.ports import ROLE_CUSTOMER, AccountRecord

_COLUMNS = (Account.id, Account.institution_id, Account.currency, Account.holder,
            Account.product, Account.status, Account.role, Account.opened_at, Account.closed_at)


def _record(row) -> AccountRecord:  # type: ignore[no-untyped-def]
    """The row as a record, its times aware UTC (SQLite gives them naive,
    PostgreSQL in the session's zone): read once here, not at every use."""
    opened, closed = row[7], row[8]
    return AccountRecord(*row[:7], as_utc(opened), None if closed is None else as_utc(closed))


def new_account_id() -> str:
    return "acc_" + secrets.token_hex(6)


class AccountsServer:
    """Account lifecycle, stored in the ``account`` table."""

    def open(self, conn: Connection, institution_id: str, *, holder: str, product: str,
             currency: str, role: str, now: datetime, account_id: str | None = None
             ) -> AccountRecord:
        record = AccountRecord(
            id=account_id or (new_account_id() if role == ROLE_CUSTOMER
                              else f"{institution_id}.{role}.{currency}"),
            institution_id=institution_id, currency=currency, holder=holder,
            product=product, status="open", role=role, opened_at=now)
        conn.execute(insert(Account).values(
            id=record.id, institution_id=institution_id, currency=currency, holder=holder,
            product=product, status="open", role=role, opened_at=now, closed_at=None))
        return record

    def get_many(self, conn: Connection, institution_id: str, ids: Sequence[str],
                 *, for_update: bool = False) -> dict[str, AccountRecord]:
        query = select(*_COLUMNS).where(Account.institution_id == institution_id,
                                        one_of(conn, Account.id, list(ids)))
        if for_update:
            query = query.with_for_update()
        return {row.id: _record(row) for row in conn.execute(query)}

    def internal(self, conn: Connection, institution_id: str, role: str,
                 currency: str) -> AccountRecord | None:
        row = conn.execute(select(*_COLUMNS).where(
            Account.institution_id == institution_id, Account.role == role,
            Account.currency == currency)).first()
        return _record(row) if row else None

    def set_status(self, conn: Connection, institution_id: str, account_id: str,
                   status: str, now: datetime) -> AccountRecord:
        values: dict[str, object] = {"status": status}
        if status == "closed":
            values["closed_at"] = now
        conn.execute(update(Account).where(Account.institution_id == institution_id,
                                           Account.id == account_id).values(**values))
        return self.get_many(conn, institution_id, [account_id])[account_id]

    def restore(self, conn: Connection, institution_id: str, records: Sequence[AccountRecord]) -> None:
        if records:
            conn.execute(insert(Account), [
                {"id": r.id, "institution_id": institution_id, "currency": r.currency, "holder": r.holder,
                 "product": r.product, "status": r.status, "role": r.role, "opened_at": r.opened_at,
                 "closed_at": r.closed_at} for r in records])

    def list(self, conn: Connection, institution_id: str, *,
             include_internal: bool = False) -> list[AccountRecord]:
        query = select(*_COLUMNS).where(Account.institution_id == institution_id)
        if not include_internal:
            query = query.where(Account.role == ROLE_CUSTOMER)
        return [_record(row) for row in conn.execute(query.order_by(Account.opened_at, Account.id))]
