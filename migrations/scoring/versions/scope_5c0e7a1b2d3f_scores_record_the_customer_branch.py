"""Scores record the branch they belong to, so a loan officer reads its own branch's scores only

Revision ID: 5c0e7a1b2d3f
Revises: a4c101f6e42b
Create Date: 2026-12-01 10:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '5c0e7a1b2d3f'
down_revision: str | None = 'a4c101f6e42b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('scores', sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    # An application's scores belong to its branch; older scores without one stay visible to the roles that see
    # every branch only, never to a loan officer.
    op.execute("UPDATE scores SET branch = (SELECT applications.branch FROM applications "
               "WHERE applications.id = scores.application_id) WHERE application_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('scores') as batch:
        batch.drop_column('branch')
