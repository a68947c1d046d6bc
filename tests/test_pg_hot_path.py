"""What the PostgreSQL hot path sends is what is stored (issue 8).

Chunks are written with binary ``COPY`` (the types from the table's columns,
text ``COPY`` for a table with a type outside the map), and the
balance and usage statements take their arrays as one literal each
(``ledger.text_array`` / ``int_array``) instead of psycopg's adaptation of
Python lists. Both must store exactly the values given, whatever the text
holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Numeric, String, Table, Text

from bank_core.actors import actor_name
from bank_core.ledger import int_array, text_array
from bank_core.storage.bulk import _pg_binary_types, insert_rows
from bank_core.storage.engine import make_engine

NASTY = ['plain', '', ' lead and trail ', 'com,ma', '{brace}', 'quo"te', 'back\\slash', '\\"', 'NULL',
         'null', 'tab\there', 'ünï©ødé', "it's", '"', '\\']


def test_array_literals_hold_every_text_and_every_int(pg_url: str) -> None:
    engine = make_engine(pg_url)
    ints = [0, -1, 1, 2**62, -(2**62), 123_456_789]
    try:
        with engine.connect() as conn:
            got_text = conn.exec_driver_sql("SELECT %s::text[]", (text_array(NASTY),)).scalar()
            got_int = conn.exec_driver_sql("SELECT %s::bigint[]", (int_array(ints),)).scalar()
            empty = conn.exec_driver_sql("SELECT %s::text[], %s::bigint[]", (text_array([]), int_array([]))).one()
    finally:
        engine.dispose()
    assert got_text == NASTY
    assert got_int == ints
    assert tuple(empty) == ([], [])


def _tables() -> tuple[Table, Table]:
    meta = MetaData()
    binary = Table("copy_binary", meta, Column("id", BigInteger), Column("n", Integer), Column("name", String(64)),
                   Column("note", Text), Column("at", DateTime(timezone=True)))
    text_only = Table("copy_text", meta, Column("id", BigInteger), Column("rate", Numeric(12, 4)),
                      Column("name", String(64)))
    return binary, text_only


def test_copy_stores_the_values_given_in_binary_and_falls_back_to_text(pg_url: str) -> None:
    binary, text_only = _tables()
    engine = make_engine(pg_url)
    at = datetime(2026, 12, 4, 21, 5, 7, 123456, tzinfo=timezone.utc)
    actor = actor_name("  Teller.ONE ")
    rows = [(i, i - 2**30, NASTY[i % len(NASTY)], None if i % 3 else actor, at + timedelta(microseconds=i))
            for i in range(40)]
    try:
        binary.metadata.create_all(engine)
        with engine.begin() as conn:
            # which way each table goes
            assert _pg_binary_types(conn, binary, ("id", "n", "name", "note", "at")) == [
                "int8", "int4", "text", "text", "timestamptz"]
            assert _pg_binary_types(conn, text_only, ("id", "rate", "name")) is None
            insert_rows(conn, binary, ("id", "n", "name", "note", "at"), rows)
            insert_rows(conn, text_only, ("id", "rate", "name"), [(1, "1.2500", "x,y"), (2, None, '"q"')])
        with engine.connect() as conn:
            stored = [tuple(r) for r in conn.exec_driver_sql("SELECT id, n, name, note, at FROM copy_binary ORDER BY id")]
            as_text = [tuple(r) for r in conn.exec_driver_sql("SELECT id, rate::text, name FROM copy_text ORDER BY id")]
    finally:
        engine.dispose()
    assert stored == [(i, n, name, None if note is None else str(note), moment)
                      for i, n, name, note, moment in rows]
    assert stored[0][3] == "teller.one"  # an Actor is stored as its normal form, not as typed
    assert as_text == [(1, "1.2500", "x,y"), (2, None, '"q"')]
