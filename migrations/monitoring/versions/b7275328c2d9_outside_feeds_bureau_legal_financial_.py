"""outside feeds: bureau, legal, financial statements, imports and row errors

Revision ID: b7275328c2d9
Revises: fa58b0901582
Create Date: 2026-12-01 16:02:37
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'b7275328c2d9'
down_revision: str | None = 'fa58b0901582'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('feed_bureau_records',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('lender', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('amount_overdue', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('reported_on', sa.Date(), nullable=False),
    sa.Column('import_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id', 'lender', 'reported_on', name='uq_feed_bureau_record')
    )
    with op.batch_alter_table('feed_bureau_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_bureau_records_customer_id'), ['customer_id'], unique=False)

    op.create_table('feed_financial_statements',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('total_liabilities', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('current_ratio', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('debt_to_equity', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('revenue', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('import_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id', 'period_end', name='uq_feed_financial_statement')
    )
    with op.batch_alter_table('feed_financial_statements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_financial_statements_customer_id'), ['customer_id'], unique=False)

    op.create_table('feed_imports',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('feed', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('uploaded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('uploaded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('accepted', sa.Integer(), nullable=False),
    sa.Column('already_on_file', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('alerts_raised', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feed_imports', schema=None) as batch_op:
        batch_op.create_index('ix_feed_imports_uploaded', ['uploaded_at', 'id'], unique=False)

    op.create_table('feed_legal_records',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('case_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('filed_on', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('import_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id', 'case_type', 'filed_on', 'amount', name='uq_feed_legal_record')
    )
    with op.batch_alter_table('feed_legal_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_legal_records_customer_id'), ['customer_id'], unique=False)

    op.create_table('feed_row_errors',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('import_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['feed_imports.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feed_row_errors', schema=None) as batch_op:
        batch_op.create_index('ix_feed_row_errors_import_row', ['import_id', 'row', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('feed_row_errors', schema=None) as batch_op:
        batch_op.drop_index('ix_feed_row_errors_import_row')

    op.drop_table('feed_row_errors')
    with op.batch_alter_table('feed_legal_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_legal_records_customer_id'))

    op.drop_table('feed_legal_records')
    with op.batch_alter_table('feed_imports', schema=None) as batch_op:
        batch_op.drop_index('ix_feed_imports_uploaded')

    op.drop_table('feed_imports')
    with op.batch_alter_table('feed_financial_statements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_financial_statements_customer_id'))

    op.drop_table('feed_financial_statements')
    with op.batch_alter_table('feed_bureau_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_bureau_records_customer_id'))

    op.drop_table('feed_bureau_records')
