"""Post-loan monitoring: loans and schedules, postings, risk history and pauses, overrides, COB runs,
alerts and rules, collections with the contact-log outbox, check tasks.

Revision ID: 6e5c4aa04f39
Revises: 3a08332bd307
Create Date: 2026-11-23 12:20:12.081155
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '6e5c4aa04f39'
down_revision: str | None = '3a08332bd307'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('business_days',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('value', sa.Date(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('cob_chunks',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('first_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('next_first_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('changed', sa.Integer(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('business_date', 'number')
    )
    op.create_table('cob_failures',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cob_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cob_failures_business_date'), ['business_date'], unique=False)

    op.create_table('cob_runs',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('chunk_size', sa.Integer(), nullable=False),
    sa.Column('chunks_total', sa.Integer(), nullable=False),
    sa.Column('chunks_done', sa.Integer(), nullable=False),
    sa.Column('loans_processed', sa.Integer(), nullable=False),
    sa.Column('loans_changed', sa.Integer(), nullable=False),
    sa.Column('history_appended', sa.Integer(), nullable=False),
    sa.Column('alerts_raised', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('triggered_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('business_date')
    )
    op.create_table('early_warning_rules',
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('loans',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('external_source', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('principal', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('annual_rate', sa.Numeric(precision=9, scale=6), nullable=False),
    sa.Column('term_months', sa.Integer(), nullable=False),
    sa.Column('repayment_method', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('disbursement_date', sa.Date(), nullable=False),
    sa.Column('first_due_date', sa.Date(), nullable=True),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('collateral', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('guarantor', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('officer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('outstanding_principal', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('credit_balance', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('oldest_unpaid_due', sa.Date(), nullable=True),
    sa.Column('dpd', sa.Integer(), nullable=False),
    sa.Column('bucket', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('classification', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('ifrs9_stage', sa.Integer(), nullable=False),
    sa.Column('override_class', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('restructured_on', sa.Date(), nullable=True),
    sa.Column('restructure_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('last_score', sa.Integer(), nullable=True),
    sa.Column('last_grade', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('scored_on', sa.Date(), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('external_source', 'external_id', name='uq_loans_external')
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index('ix_loans_branch', ['branch'], unique=False)
        batch_op.create_index('ix_loans_customer', ['customer_id'], unique=False)
        batch_op.create_index('ix_loans_oldest_unpaid_due', ['oldest_unpaid_due'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('due_at', sa.Date(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('trigger_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('loan_id', 'rule', 'trigger_key', name='uq_alerts_event')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_customer_status', ['customer_id', 'status'], unique=False)
        batch_op.create_index('ix_alerts_status_due', ['status', 'due_at'], unique=False)

    op.create_table('check_tasks',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('branch', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('officer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('findings', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('completed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('completed_on', sa.Date(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('loan_id', 'kind', 'due_date', name='uq_check_tasks_due')
    )
    with op.batch_alter_table('check_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_check_tasks_open', ['status', 'due_date'], unique=False)

    op.create_table('class_overrides',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('requested_class', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('maker', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('checker', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('requested_on', sa.Date(), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=True),
    sa.Column('decision_note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('class_overrides', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_class_overrides_loan_id'), ['loan_id'], unique=False)

    op.create_table('delinquency_pauses',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('start', sa.Date(), nullable=False),
    sa.Column('end', sa.Date(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('delinquency_pauses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delinquency_pauses_loan_id'), ['loan_id'], unique=False)

    op.create_table('instalments',
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('principal', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('interest', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('principal_paid', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('interest_paid', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('loan_id', 'number')
    )
    op.create_table('postings',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('value_date', sa.Date(), nullable=False),
    sa.Column('booked_on', sa.Date(), nullable=False),
    sa.Column('principal', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('interest', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('penalty', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('overpayment', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reversal_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('reversed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('reversed_on', sa.Date(), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('loan_id', 'external_id', name='uq_postings_external')
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index('ix_postings_loan', ['loan_id', 'value_date'], unique=False)

    op.create_table('risk_changes',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('from_value', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('to_value', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('cause', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('recorded_on', sa.Date(), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('risk_changes', schema=None) as batch_op:
        batch_op.create_index('ix_risk_changes_field_date', ['field', 'effective_date'], unique=False)
        batch_op.create_index('ix_risk_changes_loan', ['loan_id', 'effective_date'], unique=False)

    op.create_table('alert_events',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('alert_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_events_alert_id'), ['alert_id'], unique=False)

    op.create_table('collection_actions',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('alert_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('collector', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('occurred_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('promised_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('promised_date', sa.Date(), nullable=True),
    sa.Column('promise_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('collection_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collection_actions_loan_id'), ['loan_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('action_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('delivered', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('delivered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['action_id'], ['collection_actions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_action_id'), ['action_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_delivered'), ['delivered'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_delivered'))
        batch_op.drop_index(batch_op.f('ix_outbox_action_id'))

    op.drop_table('outbox')
    with op.batch_alter_table('collection_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collection_actions_loan_id'))

    op.drop_table('collection_actions')
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_events_alert_id'))

    op.drop_table('alert_events')
    with op.batch_alter_table('risk_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_changes_loan')
        batch_op.drop_index('ix_risk_changes_field_date')

    op.drop_table('risk_changes')
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index('ix_postings_loan')

    op.drop_table('postings')
    op.drop_table('instalments')
    with op.batch_alter_table('delinquency_pauses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delinquency_pauses_loan_id'))

    op.drop_table('delinquency_pauses')
    with op.batch_alter_table('class_overrides', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_class_overrides_loan_id'))

    op.drop_table('class_overrides')
    with op.batch_alter_table('check_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_check_tasks_open')

    op.drop_table('check_tasks')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_status_due')
        batch_op.drop_index('ix_alerts_customer_status')

    op.drop_table('alerts')
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_oldest_unpaid_due')
        batch_op.drop_index('ix_loans_customer')
        batch_op.drop_index('ix_loans_branch')

    op.drop_table('loans')
    op.drop_table('early_warning_rules')
    op.drop_table('cob_runs')
    with op.batch_alter_table('cob_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cob_failures_business_date'))

    op.drop_table('cob_failures')
    op.drop_table('cob_chunks')
    op.drop_table('business_days')
