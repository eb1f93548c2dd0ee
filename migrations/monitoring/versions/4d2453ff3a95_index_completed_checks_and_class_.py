"""Index completed checks, class changes by recording date and restructured loans: COB looks only at what can
have moved; leave room in each page of loans (PostgreSQL) so that COB's daily DPD updates are HOT (no index
writes)

Revision ID: 4d2453ff3a95
Revises: ced82f7fa1ed
Create Date: 2026-11-23 14:40:16.593615
"""
from collections.abc import Sequence

from alembic import op


revision: str = '4d2453ff3a95'
down_revision: str | None = 'ced82f7fa1ed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('check_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_check_tasks_completed', ['completed_on'], unique=False)

    with op.batch_alter_table('risk_changes', schema=None) as batch_op:
        batch_op.create_index('ix_risk_changes_field_recorded', ['field', 'recorded_on'], unique=False)

    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index('ix_loans_restructured_on', ['restructured_on'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loans SET (fillfactor = 85)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loans RESET (fillfactor)")
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_restructured_on')

    with op.batch_alter_table('risk_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_changes_field_recorded')

    with op.batch_alter_table('check_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_check_tasks_completed')
