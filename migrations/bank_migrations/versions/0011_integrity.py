"""ledger integrity: balance seals, typed actor names, signed checkpoints

Revision ID: 0011_integrity
Revises: 0010_api_keys
Create Date: 2026-12-03

- ``balance.seal``: a digest of each balance row's account and counters
  (``bank_core.seal``), computed here for every existing row, so writes
  refuse a balance edited by hand.
- ``audit_entry.actor_typed``: what a person typed when it differs from the
  normalised name in ``actor`` (null on every existing entry, whose hashes
  are unchanged).
- ``audit_checkpoint``: signed chain heads (``bank audit checkpoint``).
"""
from __future__ import annotations

from hashlib import blake2b

from alembic import op
import sqlalchemy as sa


revision = '0011_integrity'
down_revision = '0010_api_keys'
branch_labels = None
depends_on = None

_SEAL_KEY = b"bank-engine balance seal v1"  # the v1 formula of bank_core.seal, frozen here


def _seal(account_id: str, dp: int, cp: int, dpend: int, cpend: int) -> str:
    material = f"{account_id}|{dp}|{cp}|{dpend}|{cpend}"
    return blake2b(material.encode(), digest_size=8, key=_SEAL_KEY).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('balance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seal', sa.String(length=16), nullable=True))
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor_typed', sa.Text(), nullable=True))
    op.create_table('audit_checkpoint',
    sa.Column('institution_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_audit_checkpoint_institution_id_institution')),
    sa.PrimaryKeyConstraint('institution_id', 'seq', name=op.f('pk_audit_checkpoint'))
    )
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT account_id, debits_posted, credits_posted, debits_pending, "
                                "credits_pending FROM balance")).all()
    if rows:
        conn.execute(sa.text("UPDATE balance SET seal = :seal WHERE account_id = :acc"),
                     [{"seal": _seal(*row), "acc": row[0]} for row in rows])


def downgrade() -> None:
    op.drop_table('audit_checkpoint')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_column('actor_typed')
    with op.batch_alter_table('balance', schema=None) as batch_op:
        batch_op.drop_column('seal')
