"""a posting's transaction and institution as one foreign key

Revision ID: 0013_posting_fk
Revises: 0012_shadow
Create Date: 2026-12-03

A posting had two foreign keys, ``txn_id -> txn.id`` and ``institution_id
-> institution.id``: two checks per posting written (on PostgreSQL the
second was 0.42 s of a 20,000-row file's 5.1 s). Now one, ``(txn_id,
institution_id) -> txn (id, institution_id)``, which also holds what the
two did not: a posting names its own transaction's institution (the
transaction's own foreign key still names an existing institution).
``txn`` gets the unique index that key refers to.
"""
from __future__ import annotations

from alembic import op


revision = '0013_posting_fk'
down_revision = '0012_shadow'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('uq_txn_id_institution_id', 'txn', ['id', 'institution_id'], unique=True)
    with op.batch_alter_table('posting', schema=None) as batch_op:
        batch_op.drop_constraint('fk_posting_institution_id_institution', type_='foreignkey')
        batch_op.drop_constraint('fk_posting_txn_id_txn', type_='foreignkey')
        batch_op.create_foreign_key('fk_posting_txn_id_txn', 'txn', ['txn_id', 'institution_id'],
                                    ['id', 'institution_id'])


def downgrade() -> None:
    with op.batch_alter_table('posting', schema=None) as batch_op:
        batch_op.drop_constraint('fk_posting_txn_id_txn', type_='foreignkey')
        batch_op.create_foreign_key('fk_posting_txn_id_txn', 'txn', ['txn_id'], ['id'])
        batch_op.create_foreign_key('fk_posting_institution_id_institution', 'institution',
                                    ['institution_id'], ['id'])
    op.drop_index('uq_txn_id_institution_id', table_name='txn')
