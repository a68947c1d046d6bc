"""postings are no longer indexed by account

Revision ID: 0014_no_posting_account_index
Revises: 0013_posting_fk
Create Date: 2026-12-04

``ix_posting_account_id_id`` took each posting at the end of its account's
range, so on a large ledger every commit rewrote a leaf page per account
touched: at 1M rows it was the writer's costliest b-tree (about 2,000 of the
~5,900 pages a 2,500-row commit wrote; dropping it took the writer of a 1M
file from 53 to 39 processor seconds). Its one reader, an account's
statement, now finds a customer's postings through the transactions the
account is the source or destination of (``ix_txn_source_at``,
``ix_txn_dest_at``) and the postings' ``txn_id`` index; an institution's
own accounts (cash, fee income), which take part in a large share of all
postings, are read in full.
"""
from __future__ import annotations

from alembic import op


revision = '0014_no_posting_account_index'
down_revision = '0013_posting_fk'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_posting_account_id_id', table_name='posting')


def downgrade() -> None:
    op.create_index('ix_posting_account_id_id', 'posting', ['account_id', 'id'])
