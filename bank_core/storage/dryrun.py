"""A PostgreSQL dry run: the real pipeline on a snapshot, holding no lock a writer waits for.

``txn process --dry-run`` must decide exactly as the real run would, so it
runs the kernel's own ``process_chunk`` (no second rules engine), but the
kernel writes as it decides: it locks the accounts, balances and chain head
it uses (``FOR UPDATE``), updates balances and usage counters and appends to
the chain. In one live transaction rolled back at the end those row locks
made every writer of the institution wait for the whole run.

So the run's transaction is first given private stand-ins, in the session's
temporary schema (which PostgreSQL searches before any other for a table
name, so the kernel's unqualified SQL finds them without knowing):

- the tables the kernel locks or updates (``account``, ``balance``,
  ``audit_head``, ``usage_counter``) are copies of the institution's rows
  (a few rows per account);
- the tables it only appends to (``txn``, ``posting``, ``audit_entry``,
  ``shadow_decision``, ``decision_term``) are views: every live row, plus
  the run's own rows, which an ``INSTEAD OF INSERT`` trigger keeps in a
  temporary table (so an idempotency lookup, a replay or a usage read sees
  both, without copying the history);
- ``txn_id_seq`` is a private sequence starting where the live one would
  go on, so the run's transaction ids are the real run's.

The transaction is REPEATABLE READ (one snapshot: the run sees the ledger as
it stood when it began, whatever commits meanwhile) and, once the stand-ins
exist, READ ONLY: PostgreSQL then refuses any write, or row lock, on a live
table, so a dry run cannot block a writer even through a path this module
does not know about (it would fail instead). It takes no advisory lock.
Everything, stand-ins included, disappears when the transaction is rolled
back.
"""

from __future__ import annotations

from sqlalchemy import Connection

COPIED = ("account", "balance", "audit_head", "usage_counter")  # locked or updated: the institution's rows
APPENDED = ("txn", "posting", "audit_entry", "shadow_decision", "decision_term")  # insert-only: a view
SERIAL_IDS = ("posting", "decision_term")  # ids the database gives (the run's own from a temporary sequence)
SUFFIX = "_dry_run"


def isolation(conn: Connection) -> Connection:
    """``conn`` set up for a dry run's transaction (call before it begins)."""
    if conn.dialect.name != "postgresql":
        return conn
    return conn.execution_options(isolation_level="REPEATABLE READ")


def stand_ins(conn: Connection, institution_id: str) -> None:
    """Inside the dry run's transaction, before the kernel's first
    statement: the private tables and views, then READ ONLY."""
    if conn.dialect.name != "postgresql":
        return
    schema = conn.exec_driver_sql(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = 'txn'::regclass").scalar_one()
    live = f'"{schema}".'
    for table in COPIED:
        conn.exec_driver_sql(f"CREATE TEMP TABLE {table} (LIKE {live}{table} INCLUDING INDEXES)")
        conn.exec_driver_sql(f"INSERT INTO pg_temp.{table} SELECT * FROM {live}{table} WHERE institution_id = %s",
                             (institution_id,))
    for table in APPENDED:
        own = f"pg_temp.{table}{SUFFIX}"
        conn.exec_driver_sql(f"CREATE TEMP TABLE {table}{SUFFIX} (LIKE {live}{table} INCLUDING INDEXES)")
        give_id = ""
        if table in SERIAL_IDS:
            start = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) + 1 FROM {live}{table}").scalar_one()
            conn.exec_driver_sql(f"CREATE TEMP SEQUENCE {table}{SUFFIX}_id START WITH {int(start)}")
            give_id = f"IF NEW.id IS NULL THEN NEW.id := nextval('pg_temp.{table}{SUFFIX}_id'); END IF;"
        conn.exec_driver_sql(f"CREATE TEMP VIEW {table} AS SELECT * FROM {live}{table} UNION ALL SELECT * FROM {own}")
        conn.exec_driver_sql(
            f"CREATE FUNCTION pg_temp.{table}{SUFFIX}_insert() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {give_id} INSERT INTO {own} SELECT NEW.*; RETURN NEW; END $$")
        conn.exec_driver_sql(f"CREATE TRIGGER {table}{SUFFIX} INSTEAD OF INSERT ON pg_temp.{table} "
                             f"FOR EACH ROW EXECUTE FUNCTION pg_temp.{table}{SUFFIX}_insert()")
    # Transaction ids: the real run takes them from ``txn_id_seq`` (a chunk
    # takes one per row it has left, used or not); a private sequence that
    # starts where the live one would go on gives the run the very ids.
    start = conn.exec_driver_sql(f"SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END "
                                 f"FROM {live}txn_id_seq").scalar_one()
    conn.exec_driver_sql(f"CREATE TEMP SEQUENCE txn_id_seq START WITH {int(start)}")
    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
