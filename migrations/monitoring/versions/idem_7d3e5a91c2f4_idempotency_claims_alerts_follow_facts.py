"""idempotency keys are claimed before the write and expire; alerts follow the facts (resolved by correction)

Revision ID: 7d3e5a91c2f4
Revises: policy_c3e5a7b90003
Create Date: 2026-12-01 10:45:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.steps import claim_idempotency_keys, unclaim_idempotency_keys


revision: str = '7d3e5a91c2f4'
down_revision: str | None = 'policy_c3e5a7b90003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = 'monitoring_idempotency_keys'


def upgrade() -> None:
    claim_idempotency_keys(TABLE)
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
    unclaim_idempotency_keys(TABLE)
