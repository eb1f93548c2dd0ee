"""Reminders before a repayment falls due: the schedule by product and grade, and each reminder (one per loan,
instalment and offset) with its status; instalments indexed by due date for the step that queues them

Revision ID: 61dee7611407
Revises: 78455cb3d9f3
Create Date: 2026-12-01 16:16:13.605414
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '61dee7611407'
down_revision: str | None = '78455cb3d9f3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reminder_schedules',
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('grade', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('offsets_days', sa.JSON(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('product', 'grade')
    )
    op.create_table('reminders',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('instalment_number', sa.Integer(), nullable=False),
    sa.Column('offset_days', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('remind_on', sa.Date(), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('interaction_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('loan_id', 'instalment_number', 'offset_days', name='uq_reminders_once')
    )
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminders_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index('ix_reminders_status_on', ['status', 'remind_on'], unique=False)
    with op.batch_alter_table('instalments', schema=None) as batch_op:
        batch_op.create_index('ix_instalments_due_date', ['due_date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('instalments', schema=None) as batch_op:
        batch_op.drop_index('ix_instalments_due_date')
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.drop_index('ix_reminders_status_on')
        batch_op.drop_index(batch_op.f('ix_reminders_loan_id'))

    op.drop_table('reminders')
    op.drop_table('reminder_schedules')