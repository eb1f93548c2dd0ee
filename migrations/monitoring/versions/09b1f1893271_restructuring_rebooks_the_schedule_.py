"""Restructuring rebooks the schedule, keeping the superseded instalments

Revision ID: 09b1f1893271
Revises: 934aa4b89605
Create Date: 2026-11-23 15:11:25.700672
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '09b1f1893271'
down_revision: str | None = '934aa4b89605'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('schedule_rebookings',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('principal_rescheduled', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('annual_rate_before', sa.Numeric(precision=9, scale=6), nullable=False),
    sa.Column('annual_rate_after', sa.Numeric(precision=9, scale=6), nullable=False),
    sa.Column('term_months', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('schedule_rebookings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedule_rebookings_loan_id'), ['loan_id'], unique=False)

    op.create_table('superseded_instalments',
    sa.Column('rebooking_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('principal', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('interest', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('principal_paid', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('interest_paid', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('penalty_paid', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['rebooking_id'], ['schedule_rebookings.id'], ),
    sa.PrimaryKeyConstraint('rebooking_id', 'number')
    )


def downgrade() -> None:
    op.drop_table('superseded_instalments')
    with op.batch_alter_table('schedule_rebookings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedule_rebookings_loan_id'))

    op.drop_table('schedule_rebookings')