"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 22:29:56.605843
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('institution',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('hold_expiry_hours', sa.BigInteger(), nullable=False),
    sa.Column('profile_version', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_institution'))
    )
    op.create_table('account',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('product', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_account_institution_id_institution')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account'))
    )
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.create_index('ix_account_institution_role', ['institution_id', 'role', 'currency'], unique=False)

    op.create_table('audit_entry',
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_audit_entry_institution_id_institution')),
    sa.PrimaryKeyConstraint('institution_id', 'seq', name=op.f('pk_audit_entry'))
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entry_subject', ['institution_id', 'subject'], unique=False)

    op.create_table('audit_head',
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_audit_head_institution_id_institution')),
    sa.PrimaryKeyConstraint('institution_id', name=op.f('pk_audit_head'))
    )
    op.create_table('balance',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('debits_posted', sa.BigInteger(), nullable=False),
    sa.Column('credits_posted', sa.BigInteger(), nullable=False),
    sa.Column('debits_pending', sa.BigInteger(), nullable=False),
    sa.Column('credits_pending', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_balance_institution_id_institution')),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_balance'))
    )
    with op.batch_alter_table('balance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_balance_institution_id'), ['institution_id'], unique=False)

    op.create_table('profile_version',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('applied_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_profile_version_institution_id_institution')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_profile_version')),
    sa.UniqueConstraint('institution_id', 'version', name=op.f('uq_profile_version_institution_id'))
    )
    op.create_table('txn',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('source_account_id', sa.String(length=64), nullable=True),
    sa.Column('dest_account_id', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('memo', sa.String(length=500), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('initiator', sa.String(length=200), nullable=False),
    sa.Column('profile_version', sa.BigInteger(), nullable=False),
    sa.Column('reverses_txn_id', sa.String(length=64), nullable=True),
    sa.Column('lines', sa.Text(), nullable=False),
    sa.Column('result', sa.Text(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.Column('resolution', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_txn_institution_id_institution')),
    sa.ForeignKeyConstraint(['reverses_txn_id'], ['txn.id'], name=op.f('fk_txn_reverses_txn_id_txn')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_txn')),
    sa.UniqueConstraint('institution_id', 'idempotency_key', name=op.f('uq_txn_institution_id')),
    sa.UniqueConstraint('reverses_txn_id', name=op.f('uq_txn_reverses_txn_id'))
    )
    with op.batch_alter_table('txn', schema=None) as batch_op:
        batch_op.create_index('ix_txn_dest_at', ['dest_account_id', 'at'], unique=False)
        batch_op.create_index('ix_txn_institution_status', ['institution_id', 'status'], unique=False)
        batch_op.create_index('ix_txn_source_at', ['source_account_id', 'at'], unique=False)

    op.create_table('usage_counter',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_usage_counter_institution_id_institution')),
    sa.PrimaryKeyConstraint('account_id', 'period', 'kind', 'channel', name=op.f('pk_usage_counter'))
    )
    op.create_table('posting',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('txn_id', sa.String(length=64), nullable=False),
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('rule', sa.String(length=200), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_posting_institution_id_institution')),
    sa.ForeignKeyConstraint(['txn_id'], ['txn.id'], name=op.f('fk_posting_txn_id_txn')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posting'))
    )
    with op.batch_alter_table('posting', schema=None) as batch_op:
        batch_op.create_index('ix_posting_account_id_id', ['account_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_posting_txn_id'), ['txn_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('posting', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_posting_txn_id'))
        batch_op.drop_index('ix_posting_account_id_id')

    op.drop_table('posting')
    op.drop_table('usage_counter')
    with op.batch_alter_table('txn', schema=None) as batch_op:
        batch_op.drop_index('ix_txn_source_at')
        batch_op.drop_index('ix_txn_institution_status')
        batch_op.drop_index('ix_txn_dest_at')

    op.drop_table('txn')
    op.drop_table('profile_version')
    with op.batch_alter_table('balance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_balance_institution_id'))

    op.drop_table('balance')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entry_subject')

    op.drop_table('audit_entry')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index('ix_account_institution_role')

    op.drop_table('account')
    op.drop_table('institution')
