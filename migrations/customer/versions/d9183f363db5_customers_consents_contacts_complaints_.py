"""customers, consents, contacts, complaints, surveys, portraits, access log

Personal data columns hold AES-GCM ciphertexts (`*_enc`, key id in `pii_kid`) and HMAC search hashes (`*_hash`).
See services/customer/customers/pii.py.

Revision ID: d9183f363db5
Revises: 01e45fa7d49c
Create Date: 2026-11-23 11:54:15.700089
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'd9183f363db5'
down_revision: str | None = '01e45fa7d49c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cluster_profiles',
    sa.Column('cluster', sa.Integer(), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('centre', sa.JSON(), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('cluster')
    )
    op.create_table('customers',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('pii_kid', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('national_id_enc', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('national_id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('phone_enc', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('phone_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('email_enc', sqlmodel.sql.sqltypes.AutoString(length=600), nullable=True),
    sa.Column('email_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('business_registration_no', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('occupation', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('employer', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('monthly_income', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('assets', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('education', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('marital_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('household_size', sa.Integer(), nullable=True),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('acquisition_channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('kyc_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('referred_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('external_source', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('close_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('external_source', 'external_id', name='uq_customers_external'),
    sa.UniqueConstraint('national_id_hash'),
    sa.UniqueConstraint('phone_hash')
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('ix_customers_branch_created', ['branch', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_customers_created', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_email_hash'), ['email_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_referred_by'), ['referred_by'], unique=False)

    op.create_table('pii_access_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('roles', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pii_access_log', schema=None) as batch_op:
        batch_op.create_index('ix_pii_access_at', ['at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pii_access_log_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_pii_access_log_customer_id'), ['customer_id'], unique=False)

    op.create_table('complaints',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('assigned_to', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('responded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('response', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaints_branch'), ['branch'], unique=False)
        batch_op.create_index('ix_complaints_customer_opened', ['customer_id', 'opened_at'], unique=False)
        batch_op.create_index('ix_complaints_status_due', ['status', 'due_at'], unique=False)

    op.create_table('consents',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('granted_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('withdrawal_source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index('ix_consents_customer_purpose', ['customer_id', 'purpose', 'granted_at'], unique=False)

    op.create_table('customer_portraits',
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('tenure_months', sa.Integer(), nullable=False),
    sa.Column('products_held', sa.Integer(), nullable=False),
    sa.Column('contacts_90d', sa.Integer(), nullable=False),
    sa.Column('contacts_prior_90d', sa.Integer(), nullable=False),
    sa.Column('days_since_last_contact', sa.Integer(), nullable=True),
    sa.Column('csat_avg', sa.Float(), nullable=True),
    sa.Column('csat_trend', sa.Float(), nullable=True),
    sa.Column('nps_latest', sa.Integer(), nullable=True),
    sa.Column('complaints_12m', sa.Integer(), nullable=False),
    sa.Column('monthly_income', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('assets', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('latest_score', sa.Integer(), nullable=True),
    sa.Column('latest_grade', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('value_tier', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('lifecycle_stage', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('retention_risk', sa.Boolean(), nullable=False),
    sa.Column('cluster', sa.Integer(), nullable=True),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('customer_id')
    )
    with op.batch_alter_table('customer_portraits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_portraits_latest_grade'), ['latest_grade'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_portraits_lifecycle_stage'), ['lifecycle_stage'], unique=False)

    op.create_table('interactions',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('officer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('campaign_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.create_index('ix_interactions_branch_at', ['branch', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_interactions_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index('ix_interactions_customer_at', ['customer_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_interactions_officer_at', ['officer', 'occurred_at'], unique=False)

    op.create_table('segment_members',
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('segment', 'customer_id')
    )
    with op.batch_alter_table('segment_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segment_members_customer_id'), ['customer_id'], unique=False)

    op.create_table('surveys',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('officer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('service_efficiency', sa.Integer(), nullable=True),
    sa.Column('service_quality', sa.Integer(), nullable=True),
    sa.Column('product_range', sa.Integer(), nullable=True),
    sa.Column('staff_attitude', sa.Integer(), nullable=True),
    sa.Column('resolution_speed', sa.Integer(), nullable=True),
    sa.Column('nps', sa.Integer(), nullable=True),
    sa.Column('comment', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('sent_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.create_index('ix_surveys_branch_answered', ['branch', 'answered_at'], unique=False)
        batch_op.create_index('ix_surveys_customer_answered', ['customer_id', 'answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_surveys_officer'), ['officer'], unique=False)

    op.create_table('follow_up_tasks',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('officer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('survey_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('follow_up_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_officer_status', ['officer', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('follow_up_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_officer_status')

    op.drop_table('follow_up_tasks')
    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveys_officer'))
        batch_op.drop_index('ix_surveys_customer_answered')
        batch_op.drop_index('ix_surveys_branch_answered')

    op.drop_table('surveys')
    with op.batch_alter_table('segment_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segment_members_customer_id'))

    op.drop_table('segment_members')
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_index('ix_interactions_officer_at')
        batch_op.drop_index('ix_interactions_customer_at')
        batch_op.drop_index(batch_op.f('ix_interactions_campaign_id'))
        batch_op.drop_index('ix_interactions_branch_at')

    op.drop_table('interactions')
    with op.batch_alter_table('customer_portraits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_portraits_lifecycle_stage'))
        batch_op.drop_index(batch_op.f('ix_customer_portraits_latest_grade'))

    op.drop_table('customer_portraits')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_customer_purpose')

    op.drop_table('consents')
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_index('ix_complaints_status_due')
        batch_op.drop_index('ix_complaints_customer_opened')
        batch_op.drop_index(batch_op.f('ix_complaints_branch'))

    op.drop_table('complaints')
    with op.batch_alter_table('pii_access_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pii_access_log_customer_id'))
        batch_op.drop_index(batch_op.f('ix_pii_access_log_actor'))
        batch_op.drop_index('ix_pii_access_at')

    op.drop_table('pii_access_log')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_referred_by'))
        batch_op.drop_index(batch_op.f('ix_customers_name'))
        batch_op.drop_index(batch_op.f('ix_customers_email_hash'))
        batch_op.drop_index('ix_customers_created')
        batch_op.drop_index('ix_customers_branch_created')

    op.drop_table('customers')
    op.drop_table('cluster_profiles')
