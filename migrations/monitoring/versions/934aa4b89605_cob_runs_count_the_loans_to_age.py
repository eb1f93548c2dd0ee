"""COB runs count the loans to age, for progress (loans_processed / loans_total)

Revision ID: 934aa4b89605
Revises: 4d2453ff3a95
Create Date: 2026-11-23 15:03:15.356349
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '934aa4b89605'
down_revision: str | None = '4d2453ff3a95'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cob_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('loans_total', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('cob_runs', schema=None) as batch_op:
        batch_op.drop_column('loans_total')
