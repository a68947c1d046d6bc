"""The declarative base every table of the engine is declared on.

One ``MetaData`` with a naming convention, so alembic revisions name
constraints the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from datetime import timedelta, timezone
from typing import Any

from sqlalchemy import BigInteger, DateTime, MetaData, String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        int: BigInteger(),
        str: String(),
        datetime: DateTime(timezone=True),
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def micros(moment: datetime) -> int:
    """An aware time as integer microseconds since 1970 UTC (exact)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


class SqliteMicros(TypeDecorator[datetime]):
    """On SQLite, a time is stored as integer microseconds since 1970 UTC:
    8 bytes instead of 26 characters of text, exact, and compared as numbers.
    (PostgreSQL keeps its native ``timestamptz``.)"""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None or isinstance(value, int):
            return value
        return micros(value)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return from_micros(value)


UtcTime = DateTime(timezone=True).with_variant(SqliteMicros(), "sqlite")
"""The hot tables' time columns: ``timestamptz`` on PostgreSQL, integer
microseconds on SQLite."""
