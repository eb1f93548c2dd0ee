"""repayment files: one job per uploaded file, its row errors; postings found by reference

Revision ID: c1e5c224315c
Revises: 61dee7611407
Create Date: 2026-12-01 16:08:49.080270
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'c1e5c224315c'
down_revision: str | None = '61dee7611407'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('repayment_files',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('rows_total', sa.Integer(), nullable=False),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('posted', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('scope_everything', sa.Boolean(), nullable=False),
    sa.Column('scope_branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('repayment_files', schema=None) as batch_op:
        batch_op.create_index('ix_repayment_files_created', ['created_at'], unique=False)

    op.create_table('repayment_file_errors',
    sa.Column('file_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['repayment_files.id'], ),
    sa.PrimaryKeyConstraint('file_id', 'line')
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index('ix_postings_external_id', ['external_id'], unique=False)
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index('ix_loans_external_id', ['external_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_external_id')
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index('ix_postings_external_id')

    op.drop_table('repayment_file_errors')
    with op.batch_alter_table('repayment_files', schema=None) as batch_op:
        batch_op.drop_index('ix_repayment_files_created')

    op.drop_table('repayment_files')
