"""loans keep the grade and PD scoring gave at booking (the relationship study's control)

Revision ID: 9c4e1a7b2d60
Revises: b6fbc7a3e94d
Create Date: 2026-12-01 12:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '9c4e1a7b2d60'
down_revision: str | None = 'b6fbc7a3e94d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Loans booked before this revision stay null: their last_grade may come from a later re-score.
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origination_grade', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('origination_pd', sa.Numeric(9, 6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('origination_pd')
        batch_op.drop_column('origination_grade')
