"""idempotency keys are claimed before the write and expire; alerts follow the facts (resolved by correction)

Revision ID: 7d3e5a91c2f4
Revises: 09b1f1893271
Create Date: 2026-12-01 10:45:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '7d3e5a91c2f4'
down_revision: str | None = 'policy_c3e5a7b90003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = 'monitoring_idempotency_keys'


def upgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimant', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('status_code', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=True)
        batch_op.create_index(f'ix_{TABLE}_created_at', ['created_at'], unique=False)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('corrected_by', sa.String(length=64), nullable=True))
        batch_op.alter_column('status', existing_type=sa.String(length=16), type_=sa.String(length=32),
                              existing_nullable=False)
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.alter_column('from_status', existing_type=sa.String(length=16), type_=sa.String(length=32),
                              existing_nullable=False)
        batch_op.alter_column('to_status', existing_type=sa.String(length=16), type_=sa.String(length=32),
                              existing_nullable=False)
    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_account_transactions_booked', ['booked_on'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_account_transactions_booked')
    # The older schema knows no such status: what a correction closed reads as resolved.
    op.execute(sa.text("UPDATE alerts SET status = 'resolved' WHERE status = 'resolved_by_correction'"))
    op.execute(sa.text("UPDATE alert_events SET to_status = 'resolved' WHERE to_status = 'resolved_by_correction'"))
    op.execute(sa.text("UPDATE alert_events SET from_status = 'resolved' "
                       "WHERE from_status = 'resolved_by_correction'"))
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.alter_column('to_status', existing_type=sa.String(length=32), type_=sa.String(length=16),
                              existing_nullable=False)
        batch_op.alter_column('from_status', existing_type=sa.String(length=32), type_=sa.String(length=16),
                              existing_nullable=False)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=32), type_=sa.String(length=16),
                              existing_nullable=False)
        batch_op.drop_column('corrected_by')
    # Claims still running have no answer to keep.
    op.execute(sa.text(f'DELETE FROM {TABLE} WHERE status_code IS NULL'))
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(f'ix_{TABLE}_created_at')
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('status_code', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('lease_until')
        batch_op.drop_column('claimant')
