"""The base every table of the engine is declared on.

One ``MetaData`` with a naming convention, so alembic revisions name
constraints the same way on SQLite and PostgreSQL.

Tables are written as classes in SQLAlchemy's declarative style
(``id: Mapped[str] = mapped_column(String(64), primary_key=True)``), but
read by :class:`Base` itself into a Core ``Table``: the engine never maps
objects (it reads and writes rows), and importing SQLAlchemy's ORM to
declare them was ~0.1 s of every command's start-up. After declaration,
``Cls.name`` is the table's column, ``Cls.__table__`` the table, and
``select(Cls)`` selects its rows.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, MetaData, String, Table
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

T = TypeVar("T")


class Mapped(Generic[T]):
    """The Python type of a column, in a table class's annotations: ``int``,
    ``str`` or ``datetime``, ``| None`` when the column may be NULL."""


class _ColumnSpec:
    __slots__ = ("args", "kwargs")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args, self.kwargs = args, kwargs


def mapped_column(*args: Any, **kwargs: Any) -> Any:
    """A column's SQL type, foreign key and options, as ``Column`` takes
    them; the type may be left to the annotation."""
    return _ColumnSpec(args, kwargs)


# The SQL type of an annotation that names none (as declarative's map did).
_TYPES: dict[str, Any] = {"int": BigInteger, "str": String, "datetime": lambda: DateTime(timezone=True)}
_ANNOTATION = re.compile(r"\AMapped\[(.+)\]\Z")


def _is_type(value: Any) -> bool:
    return isinstance(value, TypeEngine) or (isinstance(value, type) and issubclass(value, TypeEngine))


class Base:
    metadata: ClassVar[MetaData] = MetaData(naming_convention=NAMING_CONVENTION)
    __table__: ClassVar[Table]
    __tablename__: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        columns = []
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            match = _ANNOTATION.match(str(annotation).replace(" ", ""))
            if match is None:
                continue
            parts = match.group(1).split("|")
            (python_type,) = [part for part in parts if part != "None"]
            spec = cls.__dict__.get(name)
            args, options = (spec.args, dict(spec.kwargs)) if isinstance(spec, _ColumnSpec) else ((), {})
            if not args or not _is_type(args[0]) and not isinstance(args[0], ForeignKey):
                args = (_TYPES[python_type](), *args)  # (a foreign key's column takes its target's type)
            options.setdefault("nullable", "None" in parts and not options.get("primary_key", False))
            columns.append(Column(name, *args, **options))
        cls.__table__ = Table(cls.__tablename__, cls.metadata, *columns,
                              *cls.__dict__.get("__table_args__", ()))
        for column in cls.__table__.c:
            setattr(cls, column.key, column)

    @classmethod
    def __clause_element__(cls) -> Table:
        """``select(Cls)``: the table's rows."""
        return cls.__table__


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
