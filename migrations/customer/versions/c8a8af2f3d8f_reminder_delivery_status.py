"""The contact log keeps how far an automated message (a repayment reminder) got: queued, sent, delivered, failed

Revision ID: c8a8af2f3d8f
Revises: 606572ee089e
Create Date: 2026-12-01 16:12:31.628496
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'c8a8af2f3d8f'
down_revision: str | None = '606572ee089e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_column('delivery_status')
