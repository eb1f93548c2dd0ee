"""idempotency keys are claimed before the write (a lease) and expire after a retention

Revision ID: a4c101f6e42b
Revises: e8ff935ce6dd
Create Date: 2026-12-01 10:45:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'a4c101f6e42b'
down_revision: str | None = 'policy_b2d4f6a80002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = 'scoring_idempotency_keys'


def upgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimant', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('status_code', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=True)
        batch_op.create_index(f'ix_{TABLE}_created_at', ['created_at'], unique=False)


def downgrade() -> None:
    # Claims still running have no answer to keep.
    op.execute(sa.text(f'DELETE FROM {TABLE} WHERE status_code IS NULL'))
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(f'ix_{TABLE}_created_at')
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('status_code', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('lease_until')
        batch_op.drop_column('claimant')
