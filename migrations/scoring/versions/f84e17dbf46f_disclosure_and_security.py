"""Applications carry the security offered (collateral, guarantor); what a customer was shown before borrowing and
their acknowledgement (application_disclosures)

Revision ID: f84e17dbf46f
Revises: 850c78836628
Create Date: 2026-12-01 16:04:17.040332
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'f84e17dbf46f'
down_revision: str | None = '850c78836628'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('application_disclosures',
    sa.Column('application_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('annual_rate', sa.Numeric(precision=9, scale=6), nullable=False),
    sa.Column('term_months', sa.Integer(), nullable=False),
    sa.Column('repayment_method', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('fees', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('penalty_daily_rate', sa.Numeric(precision=9, scale=6), nullable=False),
    sa.Column('first_instalment', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('total_interest', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('total_cost', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('shown_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('shown_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('acknowledged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('acknowledgement_recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
    sa.PrimaryKeyConstraint('application_id')
    )
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('collateral', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('guarantor', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('guarantor')
        batch_op.drop_column('collateral')

    op.drop_table('application_disclosures')