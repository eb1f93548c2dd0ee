"""Post-loan checks say how they are carried out (phone, on-site visit, document review); existing ones were calls

Revision ID: 78455cb3d9f3
Revises: fe0b386d43b4
Create Date: 2026-12-01 16:00:16.740039
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '78455cb3d9f3'
down_revision: str | None = 'fe0b386d43b4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('check_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visit_type', sqlmodel.sql.sqltypes.AutoString(length=16), server_default='phone', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('check_tasks', schema=None) as batch_op:
        batch_op.drop_column('visit_type')
