"""Set-based inserts for the hot path.

On SQLite the rows go straight to the driver's ``executemany`` (SQLAlchemy's
per-row parameter processing costs more than the insert itself), with times
converted exactly as the column types store them. On PostgreSQL they go
through binary ``COPY``, the server's bulk-load path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Table

from bank_core.storage.base import SqliteMicros, micros


def _sqlite_time_columns(table: Table, columns: Sequence[str]) -> list[int]:
    found = []
    for i, name in enumerate(columns):
        column_type = table.c[name].type
        impl = column_type._variant_mapping.get("sqlite", column_type)  # type: ignore[attr-defined]
        if isinstance(impl, SqliteMicros):
            found.append(i)
    return found


def insert_rows(conn: Connection, table: Table, columns: Sequence[str],
                rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        _sqlite_values(conn, table.name, columns, rows, _sqlite_time_columns(table, columns))
        return
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:  # type: ignore[union-attr]
            types = _pg_binary_types(conn, table, columns)
            binary = " (FORMAT BINARY)" if types is not None else ""
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN{binary}") as copy:
                if types is not None:
                    copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        return
    conn.execute(table.insert(), [dict(zip(columns, row)) for row in rows])


# The column types binary COPY can send, by how PostgreSQL names them in DDL
# (a varchar or char column receives text's binary form, its bytes).
_BINARY_COPY = {"BIGINT": "int8", "INTEGER": "int4", "SMALLINT": "int2", "BOOLEAN": "bool", "TEXT": "text",
                "VARCHAR": "text", "CHAR": "text", "TIMESTAMP WITH TIME ZONE": "timestamptz"}
_BINARY_TYPES: dict[tuple[Table, tuple[str, ...]], list[str] | None] = {}


def _pg_binary_types(conn: Connection, table: Table, columns: Sequence[str]) -> list[str] | None:
    """The types to send ``columns`` of ``table`` as binary ``COPY``, from
    the table's own column types (``tests/test_migrations.py`` holds the
    migrated schema to the models, types included), worked out once per
    table; None if any column has a type not in ``_BINARY_COPY`` (then text
    ``COPY``). Binary COPY halves psycopg's work per row (a 100k-row txn
    replay: 0.89 -> 0.39 processor seconds); the server's time for it
    stayed the same (1.2-1.4 s, its index upkeep)."""
    key = (table, tuple(columns))
    if key not in _BINARY_TYPES:
        names = [table.c[column].type.compile(dialect=conn.dialect).split("(")[0] for column in columns]
        types = [_BINARY_COPY.get(name) for name in names]
        _BINARY_TYPES[key] = None if None in types else types  # type: ignore[assignment]
    return _BINARY_TYPES[key]


# Rows per multi-row INSERT on SQLite: one statement binds a batch and
# SQLite inserts it in one step, a fifth less processor time than
# ``executemany``'s statement per row (and far within SQLite's limit of
# 32,766 parameters). Only this one length is used, so each table has one
# such statement in the connection's cache: a statement per length made
# the 100k bench's peak RSS 106 MB instead of 68. A multi-row INSERT has a
# statement journal (single-row ones have none); engine.py keeps it in
# memory (``temp_store``), where it costs 2% less than ``executemany``.
SQLITE_ROWS_PER_INSERT = 100


def _sqlite_values(conn: Connection, table: str, columns: Sequence[str],
                   rows: Sequence[tuple[Any, ...]], times: list[int]) -> None:
    """Insert ``rows``; the values of the ``times`` columns are converted as
    the column type stores them, in the flat parameter list (no row is
    copied to convert it)."""
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    one = f"({', '.join('?' for _ in columns)})"
    width = len(columns)
    converted: dict[datetime, int] = {}  # a chunk shares one decision time

    def flat(batch: Sequence[tuple[Any, ...]]) -> list[Any]:
        values = list(chain.from_iterable(batch))
        for column in times:
            for i in range(column, len(values), width):
                moment = values[i]
                if moment is not None:
                    found = converted.get(moment)
                    if found is None:
                        found = converted[moment] = micros(moment)
                    values[i] = found
        return values

    whole = len(rows) - len(rows) % SQLITE_ROWS_PER_INSERT
    if whole:
        full = head + ", ".join([one] * SQLITE_ROWS_PER_INSERT)
        for start in range(0, whole, SQLITE_ROWS_PER_INSERT):
            conn.exec_driver_sql(full, tuple(flat(rows[start:start + SQLITE_ROWS_PER_INSERT])))
    if whole < len(rows):  # the rest row by row: one statement of every length would each
        rest = flat(rows[whole:])  # be compiled and cached (memory)
        conn.exec_driver_sql(head + one, [tuple(rest[i:i + width]) for i in range(0, len(rest), width)])


def stream_rows(conn: Connection, sql: str, params: tuple[Any, ...]) -> Any:
    """Rows of a large read as plain tuples straight from the driver (no
    per-row SQLAlchemy processing): SQLite's own cursor, PostgreSQL's
    server-side cursor fetching 2,000 rows at a time. ``sql`` uses the
    driver's parameter style (``?`` or ``%s``)."""
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        cursor = raw.cursor(name=f"bank_stream_{id(sql)}")  # type: ignore[union-attr]
        cursor.itersize = 2000
    else:
        cursor = raw.cursor()  # type: ignore[union-attr]
        cursor.arraysize = 2000
    cursor.execute(sql, params)
    try:
        yield from cursor
    finally:
        cursor.close()
