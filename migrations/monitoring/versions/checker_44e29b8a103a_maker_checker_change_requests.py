"""Maker-checker change requests for every act that lowers risk or what is owed (class overrides move into them);
waived interest and penalty on instalments; written-off loans

Revision ID: 44e29b8a103a
Revises: 09b1f1893271
Create Date: 2026-12-01 10:50:00.000000
"""
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '44e29b8a103a'
down_revision: str | None = '09b1f1893271'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
OVERRIDE_COLUMNS = ('id', 'loan_id', 'requested_class', 'reason', 'status', 'maker', 'checker', 'requested_on',
                    'decided_on', 'decision_note', 'created_at')


def _class_overrides_table() -> sa.Table:
    return sa.table('class_overrides', *(sa.column(c) for c in OVERRIDE_COLUMNS))


def _requests_table() -> sa.Table:
    return sa.table('change_requests', sa.column('id'), sa.column('loan_id'), sa.column('kind'),
                    sa.column('payload', sa.JSON()), sa.column('reason'), sa.column('status'), sa.column('maker'),
                    sa.column('checker'), sa.column('requested_on'), sa.column('decided_on'),
                    sa.column('decision_note'), sa.column('created_at'), sa.column('decided_at'))


def upgrade() -> None:
    op.create_table('change_requests',
    sa.Column('id', S(length=32), nullable=False),
    sa.Column('loan_id', S(length=32), nullable=False),
    sa.Column('kind', S(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('reason', S(length=500), nullable=False),
    sa.Column('status', S(length=16), nullable=False),
    sa.Column('maker', S(length=64), nullable=False),
    sa.Column('checker', S(length=64), nullable=True),
    sa.Column('requested_on', sa.Date(), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=True),
    sa.Column('decision_note', S(length=500), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('change_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_requests_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index('ix_change_requests_queue', ['status', 'created_at', 'id'], unique=False)

    op.create_table('change_request_events',
    sa.Column('id', S(length=32), nullable=False),
    sa.Column('request_id', S(length=32), nullable=False),
    sa.Column('loan_id', S(length=32), nullable=False),
    sa.Column('step', S(length=16), nullable=False),
    sa.Column('actor', S(length=64), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('note', S(length=500), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['change_requests.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('change_request_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_request_events_request_id'), ['request_id'], unique=False)

    # Class overrides were the first maker-checker act: they become change requests of kind class_override.
    bind = op.get_bind()
    overrides = bind.execute(sa.select(_class_overrides_table())).mappings().all()
    if overrides:
        bind.execute(sa.insert(_requests_table()), [
            {'id': o['id'], 'loan_id': o['loan_id'], 'kind': 'class_override',
             'payload': {'requested_class': o['requested_class'], 'reason': o['reason']}, 'reason': o['reason'],
             'status': o['status'], 'maker': o['maker'], 'checker': o['checker'],
             'requested_on': o['requested_on'], 'decided_on': o['decided_on'], 'decision_note': o['decision_note'],
             'created_at': o['created_at'], 'decided_at': o['created_at'] if o['decided_on'] else None}
            for o in overrides])
        events = sa.table('change_request_events', sa.column('id'), sa.column('request_id'), sa.column('loan_id'),
                          sa.column('step'), sa.column('actor'), sa.column('business_date'), sa.column('note'),
                          sa.column('detail', sa.JSON()), sa.column('at'))
        rows = []
        for o in overrides:
            steps = [('requested', o['maker'], o['requested_on'], None)]
            if o['status'] == 'approved':
                steps += [('approved', o['checker'], o['decided_on'], o['decision_note']),
                          ('applied', o['checker'], o['decided_on'], None)]
            elif o['status'] == 'rejected':
                steps.append(('rejected', o['checker'], o['decided_on'], o['decision_note']))
            rows += [{'id': uuid.uuid4().hex, 'request_id': o['id'], 'loan_id': o['loan_id'], 'step': step,
                      'actor': actor, 'business_date': on, 'note': note, 'detail': {}, 'at': o['created_at']}
                     for step, actor, on, note in steps]
        bind.execute(sa.insert(events), rows)

    with op.batch_alter_table('class_overrides', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_class_overrides_loan_id'))
    op.drop_table('class_overrides')

    with op.batch_alter_table('instalments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('interest_waived', sa.Numeric(precision=18, scale=2), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('penalty_waived', sa.Numeric(precision=18, scale=2), server_default='0',
                                      nullable=False))

    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('written_off_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('written_off_amount', sa.Numeric(precision=18, scale=2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('written_off_amount')
        batch_op.drop_column('written_off_on')

    with op.batch_alter_table('instalments', schema=None) as batch_op:
        batch_op.drop_column('penalty_waived')
        batch_op.drop_column('interest_waived')

    op.create_table('class_overrides',
    sa.Column('id', S(length=32), nullable=False),
    sa.Column('loan_id', S(length=32), nullable=False),
    sa.Column('requested_class', S(length=16), nullable=False),
    sa.Column('reason', S(length=500), nullable=False),
    sa.Column('status', S(length=16), nullable=False),
    sa.Column('maker', S(length=64), nullable=False),
    sa.Column('checker', S(length=64), nullable=True),
    sa.Column('requested_on', sa.Date(), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=True),
    sa.Column('decision_note', S(length=500), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('class_overrides', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_class_overrides_loan_id'), ['loan_id'], unique=False)

    # Class overrides go back to their own table; the other kinds did not exist before this revision.
    bind = op.get_bind()
    requests = _requests_table()
    overrides = bind.execute(sa.select(requests).where(requests.c.kind == 'class_override')).mappings().all()
    if overrides:
        bind.execute(sa.insert(_class_overrides_table()), [
            {**{c: r[c] for c in OVERRIDE_COLUMNS if c != 'requested_class'},
             'requested_class': r['payload']['requested_class']} for r in overrides])

    with op.batch_alter_table('change_request_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_request_events_request_id'))
    op.drop_table('change_request_events')
    with op.batch_alter_table('change_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_change_requests_queue')
        batch_op.drop_index(batch_op.f('ix_change_requests_loan_id'))
    op.drop_table('change_requests')
