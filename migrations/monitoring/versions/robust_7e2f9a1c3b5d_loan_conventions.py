"""loans keep the rounding and broken-period day count they were booked with

Revision ID: 7e2f9a1c3b5d
Revises: cob_a1b2c3d4e5f6
Create Date: 2026-12-01 11:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7e2f9a1c3b5d'
down_revision: str | None = 'cob_a1b2c3d4e5f6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Loans booked before this revision were scheduled half-even on actual/360: they keep saying so.
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rounding', sa.String(length=16), nullable=False, server_default='half_even'))
        batch_op.add_column(sa.Column('day_count', sa.String(length=16), nullable=False, server_default='actual/360'))
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.alter_column('rounding', server_default=None)
        batch_op.alter_column('day_count', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('day_count')
        batch_op.drop_column('rounding')
