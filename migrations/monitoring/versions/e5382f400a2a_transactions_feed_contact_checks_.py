"""transactions feed, contact checks, penalty interest

Revision ID: e5382f400a2a
Revises: 6e5c4aa04f39
Create Date: 2026-11-23 13:14:43.897284

The account-transactions feed the transaction-level early-warning rules read; when COB last read a borrower's
contact log and complaints; penalty interest (a loan's daily rate, what each instalment has paid of it).
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'e5382f400a2a'
down_revision: str | None = '6e5c4aa04f39'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('account_transactions',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('booked_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('counterparty', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('merchant', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('payer_account', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('housing_estate', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_account_transactions_customer_booked', ['customer_id', 'booked_on'], unique=False)
        batch_op.create_index('ix_account_transactions_payer', ['payer_account'], unique=False)

    with op.batch_alter_table('instalments', schema=None) as batch_op:
        # Existing rows: no penalty was ever charged.
        batch_op.add_column(sa.Column('penalty_paid', sa.Numeric(precision=18, scale=2), nullable=False,
                                      server_default='0'))

    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contacts_checked_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('penalty_daily_rate', sa.Numeric(precision=9, scale=6), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('penalty_daily_rate')
        batch_op.drop_column('contacts_checked_on')

    with op.batch_alter_table('instalments', schema=None) as batch_op:
        batch_op.drop_column('penalty_paid')

    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_account_transactions_payer')
        batch_op.drop_index('ix_account_transactions_customer_booked')

    op.drop_table('account_transactions')
