"""lean ledger: time-ordered integer transaction ids, one decision record

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

- ``txn.id`` becomes a time-ordered integer (shown as ``txn_<id>``); the old
  text id of every existing transaction is kept in ``legacy_id`` (unique),
  so ids people wrote down still find their transaction.
- ``txn.result`` and ``txn.request_hash`` go: the decision is stored once,
  as the payload of the transaction's audit entry (existing entries keep
  their payloads untouched, so the hash chain still verifies; readers
  understand both forms). ``txn.code`` keeps the rule that held or rejected.
- ``posting.txn_id`` follows the new ids; times of the hot tables are stored
  on SQLite as integer microseconds (PostgreSQL keeps ``timestamptz``).
- Fewer indexes on the write path: held transactions and reversals get
  partial indexes instead of full ones.
- ``decision_term`` stores each distinct rule, driver, template and memo once.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _time() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True).with_variant(sa.BigInteger(), 'sqlite')


def _micros(column: str, sqlite: bool) -> str:
    """SQL turning an old time column into the new representation."""
    if not sqlite:
        return column
    return (f"(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000000"
            f" + CAST(substr({column} || '.000000', 21, 6) AS INTEGER))")


def _create_tables() -> None:
    op.create_table('decision_term',
    sa.Column('id', SERIAL, autoincrement=True, nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decision_term')),
    sa.UniqueConstraint('text', name=op.f('uq_decision_term_text'))
    )
    op.create_table('txn',
    sa.Column('id', SERIAL, autoincrement=False, nullable=False),
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('source_account_id', sa.String(length=64), nullable=True),
    sa.Column('dest_account_id', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('memo', sa.String(length=500), nullable=False),
    sa.Column('at', _time(), nullable=False),
    sa.Column('decided_at', _time(), nullable=False),
    sa.Column('initiator', sa.String(length=200), nullable=False),
    sa.Column('profile_version', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=200), nullable=True),
    sa.Column('reverses_txn_id', SERIAL, nullable=True),
    sa.Column('lines', sa.Text(), nullable=True),
    sa.Column('resolved_at', _time(), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.Column('resolution', sa.String(length=500), nullable=True),
    sa.Column('legacy_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_txn_institution_id_institution')),
    sa.ForeignKeyConstraint(['reverses_txn_id'], ['txn.id'], name=op.f('fk_txn_reverses_txn_id_txn')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_txn')),
    sa.UniqueConstraint('institution_id', 'idempotency_key', name=op.f('uq_txn_institution_id'))
    )
    op.create_table('posting',
    sa.Column('id', SERIAL, autoincrement=True, nullable=False),
    sa.Column('txn_id', SERIAL, nullable=False),
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('rule', sa.String(length=200), nullable=False),
    sa.Column('posted_at', _time(), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_posting_institution_id_institution')),
    sa.ForeignKeyConstraint(['txn_id'], ['txn.id'], name=op.f('fk_posting_txn_id_txn')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posting'))
    )


def _create_indexes() -> None:
    held = sa.text("status = 'held'")
    op.create_index('ix_txn_source_at', 'txn', ['source_account_id', 'at'])
    op.create_index('ix_txn_dest_at', 'txn', ['dest_account_id', 'at'])
    op.create_index('ix_txn_held', 'txn', ['institution_id', 'decided_at'],
                    sqlite_where=held, postgresql_where=held)
    not_null = sa.text('reverses_txn_id IS NOT NULL')
    op.create_index('uq_txn_reverses_txn_id', 'txn', ['reverses_txn_id'], unique=True,
                    sqlite_where=not_null, postgresql_where=not_null)
    legacy = sa.text('legacy_id IS NOT NULL')
    op.create_index('ix_txn_legacy_id', 'txn', ['legacy_id'], unique=True,
                    sqlite_where=legacy, postgresql_where=legacy)
    op.create_index('ix_posting_account_id_id', 'posting', ['account_id', 'id'])
    op.create_index(op.f('ix_posting_txn_id'), 'posting', ['txn_id'])


def _set_aside_old_tables(sqlite: bool) -> None:
    for index in ('ix_txn_dest_at', 'ix_txn_institution_status', 'ix_txn_source_at'):
        op.drop_index(index, table_name='txn')
    op.drop_index('ix_posting_account_id_id', table_name='posting')
    op.drop_index('ix_posting_txn_id', table_name='posting')
    if not sqlite:  # constraint names are index names on PostgreSQL: free them
        op.drop_constraint('fk_posting_txn_id_txn', 'posting', type_='foreignkey')
        op.drop_constraint('fk_posting_institution_id_institution', 'posting', type_='foreignkey')
        op.drop_constraint('pk_posting', 'posting', type_='primary')
        op.drop_constraint('fk_txn_reverses_txn_id_txn', 'txn', type_='foreignkey')
        op.drop_constraint('fk_txn_institution_id_institution', 'txn', type_='foreignkey')
        op.drop_constraint('uq_txn_reverses_txn_id', 'txn', type_='unique')
        op.drop_constraint('uq_txn_institution_id', 'txn', type_='unique')
        op.drop_constraint('pk_txn', 'txn', type_='primary')
    op.rename_table('posting', 'posting_0001')
    op.rename_table('txn', 'txn_0001')


def _copy_rows(sqlite: bool) -> None:
    code = "json_extract(result, '$.code')" if sqlite else "(result::json ->> 'code')"
    t = lambda column: _micros(column, sqlite)  # noqa: E731
    op.execute(f"""
        INSERT INTO txn (id, institution_id, idempotency_key, kind, status, amount_minor,
                         fee_minor, currency, source_account_id, dest_account_id, channel, memo,
                         at, decided_at, initiator, profile_version, code, reverses_txn_id, lines,
                         resolved_at, resolved_by, resolution, legacy_id)
        SELECT ROW_NUMBER() OVER (ORDER BY decided_at, id), institution_id, idempotency_key,
               kind, status, amount_minor, fee_minor, currency, source_account_id,
               dest_account_id, channel, memo, {t('at')}, {t('decided_at')}, initiator,
               profile_version, {code}, NULL,
               CASE WHEN lines = '[]' THEN NULL ELSE lines END,
               CASE WHEN resolved_at IS NULL THEN NULL ELSE {t('resolved_at')} END,
               resolved_by, resolution, id
        FROM txn_0001""")
    op.execute("""
        UPDATE txn SET reverses_txn_id = (
            SELECT target.id FROM txn_0001 old JOIN txn target ON target.legacy_id = old.reverses_txn_id
            WHERE old.id = txn.legacy_id)
        WHERE legacy_id IN (SELECT id FROM txn_0001 WHERE reverses_txn_id IS NOT NULL)""")
    op.execute(f"""
        INSERT INTO posting (id, txn_id, institution_id, account_id, amount_minor, currency, rule,
                             posted_at)
        SELECT p.id, t.id, p.institution_id, p.account_id, p.amount_minor, p.currency, p.rule,
               {_micros('p.posted_at', sqlite)}
        FROM posting_0001 p JOIN txn t ON t.legacy_id = p.txn_id""")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    _set_aside_old_tables(sqlite)
    _create_tables()
    _copy_rows(sqlite)
    op.drop_table('posting_0001')
    op.drop_table('txn_0001')
    _create_indexes()
    if sqlite:
        op.execute(f"UPDATE audit_entry SET at = {_micros('at', True)} WHERE typeof(at) = 'text'")
        with op.batch_alter_table('audit_entry', schema=None) as batch_op:
            batch_op.alter_column('at', existing_type=sa.DateTime(timezone=True),
                                  type_=sa.BigInteger(), existing_nullable=False)
    else:
        op.execute("CREATE SEQUENCE txn_id_seq")
        op.execute("SELECT setval('txn_id_seq', COALESCE((SELECT max(id) FROM txn), 0) + 1, false)")


def downgrade() -> None:
    raise NotImplementedError("0002 keeps every transaction; there is no way back to 0001's layout")
