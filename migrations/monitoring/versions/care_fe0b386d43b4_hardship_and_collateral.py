"""hardship plans, deferrals and early recall on loans, asset-preservation steps, collateral and guarantees

Revision ID: fe0b386d43b4
Revises: b7275328c2d9
Create Date: 2026-12-01 16:06:25.146480
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shared.db


revision: str = 'fe0b386d43b4'
down_revision: str | None = 'b7275328c2d9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('collaterals',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('guarantor_customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('value', shared.db.Money(precision=18, scale=2), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('valuation_date', sa.Date(), nullable=False),
    sa.Column('revalue_every_months', sa.Integer(), nullable=True),
    sa.Column('next_revaluation_on', sa.Date(), nullable=True),
    sa.Column('revaluation_overdue_since', sa.Date(), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('collaterals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collaterals_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index('ix_collaterals_next_revaluation', ['next_revaluation_on'], unique=False)

    op.create_table('collateral_valuations',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('collateral_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('value', shared.db.Money(precision=18, scale=2), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('valuation_date', sa.Date(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('recorded_on', sa.Date(), nullable=False),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['collateral_id'], ['collaterals.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('collateral_valuations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collateral_valuations_collateral_id'), ['collateral_id'], unique=False)

    op.create_table('hardship_records',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('rebooking_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('treatment', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('observation_until', sa.Date(), nullable=True),
    sa.Column('proposed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('schedule_after', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.ForeignKeyConstraint(['rebooking_id'], ['schedule_rebookings.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['change_requests.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hardship_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hardship_records_loan_id'), ['loan_id'], unique=False)

    op.create_table('preservation_steps',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('action_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('document_ref', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['action_id'], ['collection_actions.id'], ),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('preservation_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_preservation_steps_action_id'), ['action_id'], unique=False)

    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hardship_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('hardship_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('hardship_until', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('early_recall_allowed', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('recalled_on', sa.Date(), nullable=True))
        batch_op.create_index('ix_loans_hardship_until', ['hardship_until'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_hardship_until')
        batch_op.drop_column('recalled_on')
        batch_op.drop_column('early_recall_allowed')
        batch_op.drop_column('hardship_until')
        batch_op.drop_column('hardship_on')
        batch_op.drop_column('hardship_kind')

    with op.batch_alter_table('preservation_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_preservation_steps_action_id'))

    op.drop_table('preservation_steps')
    with op.batch_alter_table('hardship_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hardship_records_loan_id'))

    op.drop_table('hardship_records')
    with op.batch_alter_table('collateral_valuations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collateral_valuations_collateral_id'))

    op.drop_table('collateral_valuations')
    with op.batch_alter_table('collaterals', schema=None) as batch_op:
        batch_op.drop_index('ix_collaterals_next_revaluation')
        batch_op.drop_index(batch_op.f('ix_collaterals_loan_id'))

    op.drop_table('collaterals')
