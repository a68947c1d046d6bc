"""shadow profiles: a candidate evaluated beside the live profile, and its decisions

Revision ID: 0012_shadow
Revises: 0010_api_keys
Create Date: 2026-12-04 10:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0012_shadow'
down_revision = '0011_integrity'
branch_labels = None
depends_on = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _time() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True).with_variant(sa.BigInteger(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shadow', sa.Integer(), nullable=True))
    op.create_table('shadow_profile',
    sa.Column('id', SERIAL, autoincrement=True, nullable=False),
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('installed_at', _time(), nullable=False),
    sa.Column('installed_by', sa.String(length=200), nullable=False),
    sa.Column('stopped_at', _time(), nullable=True),
    sa.Column('stopped_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_shadow_profile_institution_id_institution')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shadow_profile')),
    sa.UniqueConstraint('institution_id', 'number', name=op.f('uq_shadow_profile_institution_id'))
    )
    op.create_table('shadow_decision',
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('txn_id', SERIAL, nullable=False),
    sa.Column('shadow', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=200), nullable=True),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('record', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_shadow_decision_institution_id_institution')),
    sa.ForeignKeyConstraint(['txn_id'], ['txn.id'], name=op.f('fk_shadow_decision_txn_id_txn')),
    sa.PrimaryKeyConstraint('institution_id', 'txn_id', name=op.f('pk_shadow_decision'))
    )


def downgrade() -> None:
    op.drop_table('shadow_decision')
    op.drop_table('shadow_profile')
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.drop_column('shadow')
