"""dated information-sharing events, product holdings, churn scores; old collection contacts classified

The contact log always had a purpose, but a contact that monitoring's collection flow wrote could be filed under
another. Monitoring writes its notes as `[action kind] ...` (services/monitoring/collections/service.py), and a
promise to pay is only ever collection: those rows become `collection`, so no relationship measure counts them.
The downgrade drops the new tables and leaves the reclassified purposes as they are (the old label was wrong).

Revision ID: 3c657996bc21
Revises: 5b1e7c2a9d40
Create Date: 2026-12-01 13:01:39.137139
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '3c657996bc21'
down_revision: str | None = '5b1e7c2a9d40'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('churn_scores',
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('model_as_of', sa.Date(), nullable=False),
    sa.Column('scored_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('customer_id')
    )
    op.create_table('information_sharing_events',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('information_sharing_events', schema=None) as batch_op:
        batch_op.create_index('ix_sharing_customer_at', ['customer_id', 'occurred_at'], unique=False)

    op.create_table('product_holdings',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('product_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('product_holdings', schema=None) as batch_op:
        batch_op.create_index('ix_holdings_customer_opened', ['customer_id', 'opened_on'], unique=False)
        batch_op.create_index('ix_holdings_product', ['product_code', 'opened_on'], unique=False)
    kinds = ("reminder", "call", "visit", "promise_to_pay", "restructuring", "legal", "write_off")
    written_by_collections = " OR ".join(f"notes LIKE '[{kind}]%'" for kind in kinds)
    op.execute("UPDATE interactions SET purpose = 'collection' WHERE purpose <> 'collection' AND "
               f"({written_by_collections} OR outcome = 'promise_to_pay')")


def downgrade() -> None:
    with op.batch_alter_table('product_holdings', schema=None) as batch_op:
        batch_op.drop_index('ix_holdings_product')
        batch_op.drop_index('ix_holdings_customer_opened')

    op.drop_table('product_holdings')
    with op.batch_alter_table('information_sharing_events', schema=None) as batch_op:
        batch_op.drop_index('ix_sharing_customer_at')

    op.drop_table('information_sharing_events')
    op.drop_table('churn_scores')
