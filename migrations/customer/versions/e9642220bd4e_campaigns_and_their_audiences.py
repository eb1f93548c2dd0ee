"""campaigns and their audiences

Revision ID: e9642220bd4e
Revises: d9183f363db5
Create Date: 2026-11-23 12:04:54.174006
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'e9642220bd4e'
down_revision: str | None = 'd9183f363db5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('grades', sa.JSON(), nullable=False),
    sa.Column('product_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('audience_size', sa.Integer(), nullable=False),
    sa.Column('excluded_without_consent', sa.Integer(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('audience_built_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('campaign_members',
    sa.Column('campaign_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('grade', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('segments', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('reply', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('replied_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('campaign_id', 'customer_id')
    )
    with op.batch_alter_table('campaign_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_members_customer_id'), ['customer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('campaign_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_members_customer_id'))

    op.drop_table('campaign_members')
    op.drop_table('campaigns')
