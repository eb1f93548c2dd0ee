"""scoring PD and customer segments on loans

Revision ID: ced82f7fa1ed
Revises: 4a1d281c3c06
Create Date: 2026-11-23 13:25:29.187042

The scoring service's PD kept with a loan's latest score (expected loss), and the borrower's value tier and named
segments copied from the customer portrait by COB's contact check (portfolio figures by segment).
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'ced82f7fa1ed'
down_revision: str | None = '4a1d281c3c06'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('loan_segments',
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('loan_id', 'segment')
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_pd', sa.Numeric(precision=9, scale=6), nullable=True))
        batch_op.add_column(sa.Column('value_tier', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('value_tier')
        batch_op.drop_column('last_pd')

    op.drop_table('loan_segments')
