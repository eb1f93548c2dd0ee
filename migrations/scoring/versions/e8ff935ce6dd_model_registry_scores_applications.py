"""model registry, scores, applications

Revision ID: e8ff935ce6dd
Revises: 1fd1f4cae01f
Create Date: 2026-11-23 12:07:38.663855
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'e8ff935ce6dd'
down_revision: str | None = '1fd1f4cae01f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The partial unique indexes on model_versions.state keep one champion and one challenger at most.
    op.create_table('model_artifacts',
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )
    op.create_table('model_versions',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('family', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('artifact_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('onnx_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('data_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('schema', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('card', sa.JSON(), nullable=False),
    sa.Column('reference', sa.JSON(), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['artifact_sha256'], ['model_artifacts.sha256'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'version', name='uq_model_versions_name_version')
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_versions_state'), ['state'], unique=False)
        batch_op.create_index('uq_model_versions_one_challenger', ['state'], unique=True, sqlite_where=sa.text("state = 'challenger'"), postgresql_where=sa.text("state = 'challenger'"))
        batch_op.create_index('uq_model_versions_one_champion', ['state'], unique=True, sqlite_where=sa.text("state = 'champion'"), postgresql_where=sa.text("state = 'champion'"))

    op.create_table('model_transitions',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('model_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('from_state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('to_state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('replaced_model_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['model_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_transitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_transitions_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_model_transitions_model_id'), ['model_id'], unique=False)

    op.create_table('scores',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('application_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('model_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('model_version', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('shadow', sa.Boolean(), nullable=False),
    sa.Column('champion_score_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('pd', sa.Float(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('grade', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('suggested_limit', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('rate_adjustment_bps', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('points_per_feature', sa.JSON(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['model_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scores_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scores_champion_score_id'), ['champion_score_id'], unique=False)
        batch_op.create_index('ix_scores_customer_created', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_scores_model_id'), ['model_id'], unique=False)

    op.create_table('applications',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('term_months', sa.Integer(), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('repayment_method', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('score_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('policy_decision', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('approved_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('rate_adjustment_bps', sa.Integer(), nullable=False),
    sa.Column('submitted_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('decision_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['score_id'], ['scores.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applications_branch'), ['branch'], unique=False)
        batch_op.create_index(batch_op.f('ix_applications_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_applications_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_applications_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_applications_status'), ['status'], unique=False)

    op.create_table('application_events',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('application_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('application_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_events_application_id'), ['application_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('application_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_events_application_id'))

    op.drop_table('application_events')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_applications_status'))
        batch_op.drop_index(batch_op.f('ix_applications_loan_id'))
        batch_op.drop_index(batch_op.f('ix_applications_customer_id'))
        batch_op.drop_index(batch_op.f('ix_applications_created_at'))
        batch_op.drop_index(batch_op.f('ix_applications_branch'))

    op.drop_table('applications')
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scores_model_id'))
        batch_op.drop_index('ix_scores_customer_created')
        batch_op.drop_index(batch_op.f('ix_scores_champion_score_id'))
        batch_op.drop_index(batch_op.f('ix_scores_application_id'))

    op.drop_table('scores')
    with op.batch_alter_table('model_transitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_transitions_model_id'))
        batch_op.drop_index(batch_op.f('ix_model_transitions_at'))

    op.drop_table('model_transitions')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index('uq_model_versions_one_champion', sqlite_where=sa.text("state = 'champion'"), postgresql_where=sa.text("state = 'champion'"))
        batch_op.drop_index('uq_model_versions_one_challenger', sqlite_where=sa.text("state = 'challenger'"), postgresql_where=sa.text("state = 'challenger'"))
        batch_op.drop_index(batch_op.f('ix_model_versions_state'))

    op.drop_table('model_versions')
    op.drop_table('model_artifacts')
