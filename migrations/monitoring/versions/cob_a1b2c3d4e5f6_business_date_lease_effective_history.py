"""COB runs hold a lease with a heartbeat and may belong to a catch-up range; history rows keep their DPD and
are marked, never deleted, when a replay supersedes them

Revision ID: cob_a1b2c3d4e5f6
Revises: 7d3e5a91c2f4
Create Date: 2026-12-01 11:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'cob_a1b2c3d4e5f6'
down_revision: str | None = '7d3e5a91c2f4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cob_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('through', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table('risk_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpd', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('superseded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('superseded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('risk_changes', schema=None) as batch_op:
        batch_op.drop_column('superseded_by')
        batch_op.drop_column('superseded_at')
        batch_op.drop_column('dpd')
    with op.batch_alter_table('cob_runs', schema=None) as batch_op:
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('lease_owner')
        batch_op.drop_column('through')
