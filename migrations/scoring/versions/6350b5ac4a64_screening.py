"""Screening before the money leaves: screening_hits with their evidence and resolution; applications carry keyed
hashes of the device and payout account, and what the policy approved before a hit held them

Revision ID: 6350b5ac4a64
Revises: f84e17dbf46f
Create Date: 2026-12-01 17:09:46.857042
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '6350b5ac4a64'
down_revision: str | None = 'f84e17dbf46f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('screening_hits',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('application_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('check', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('thresholds', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('resolution_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('screening_hits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_screening_hits_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_screening_hits_status'), ['status'], unique=False)

    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_hash', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
        batch_op.add_column(sa.Column('payout_account_hash', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
        batch_op.add_column(sa.Column('held_approved_amount', sa.Numeric(precision=18, scale=2), nullable=True))
        batch_op.create_index(batch_op.f('ix_applications_device_hash'), ['device_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_applications_payout_account_hash'), ['payout_account_hash'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_applications_payout_account_hash'))
        batch_op.drop_index(batch_op.f('ix_applications_device_hash'))
        batch_op.drop_column('held_approved_amount')
        batch_op.drop_column('payout_account_hash')
        batch_op.drop_column('device_hash')

    with op.batch_alter_table('screening_hits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_screening_hits_status'))
        batch_op.drop_index(batch_op.f('ix_screening_hits_application_id'))

    op.drop_table('screening_hits')
