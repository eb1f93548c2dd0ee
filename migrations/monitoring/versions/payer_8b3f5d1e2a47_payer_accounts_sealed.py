"""payer and counterparty accounts sealed like the customer's personal data

The feed kept other people's accounts in clear: the account a repayment came from (indexed, matched across
borrowers) and a transfer's counterparty. Each gets the columns the customer service's personal data has: a
ciphertext under the row's key id, a keyed hash (the payer's indexed: the shared-payer check matches on it) and a
stored mask; the borrower's own account gets its keyed hash too, so a transfer to it is known by hash. The clear
columns are kept as `payer_account_clear` and `counterparty_clear` until the monitoring service, which holds the
keys, seals each row at its next start and clears them (`seal_payers_held_in_clear`); the index over the clear
payers goes now.

The downgrade puts the clear columns back under their old names; it refuses while any row is sealed, since
without the keys it would drop them.

Revision ID: 8b3f5d1e2a47
Revises: c1e5c224315c
Create Date: 2026-12-02 01:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '8b3f5d1e2a47'
down_revision: str | None = 'c1e5c224315c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_account_transactions_payer')
        batch_op.alter_column('payer_account', new_column_name='payer_account_clear',
                              existing_type=sa.String(length=64), existing_nullable=True)
        batch_op.add_column(sa.Column('pii_kid', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('payer_account_enc', sqlmodel.sql.sqltypes.AutoString(length=200),
                                      nullable=True))
        batch_op.add_column(sa.Column('payer_account_hash', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('payer_account_masked', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.alter_column('counterparty', new_column_name='counterparty_clear',
                              existing_type=sa.String(length=64), existing_nullable=True)
        batch_op.add_column(sa.Column('counterparty_enc', sqlmodel.sql.sqltypes.AutoString(length=200),
                                      nullable=True))
        batch_op.add_column(sa.Column('counterparty_hash', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('counterparty_masked', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('account_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index('ix_account_transactions_payer_hash', ['payer_account_hash'], unique=False)


def downgrade() -> None:
    sealed = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM account_transactions WHERE account_hash IS NOT NULL")).scalar()
    if sealed:
        raise RuntimeError(f"{sealed} feed rows' accounts are sealed; downgrading would lose them")
    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_account_transactions_payer_hash')
        batch_op.drop_column('account_hash')
        batch_op.drop_column('counterparty_masked')
        batch_op.drop_column('counterparty_hash')
        batch_op.drop_column('counterparty_enc')
        batch_op.alter_column('counterparty_clear', new_column_name='counterparty',
                              existing_type=sa.String(length=64), existing_nullable=True)
        batch_op.drop_column('payer_account_masked')
        batch_op.drop_column('payer_account_hash')
        batch_op.drop_column('payer_account_enc')
        batch_op.drop_column('pii_kid')
        batch_op.alter_column('payer_account_clear', new_column_name='payer_account',
                              existing_type=sa.String(length=64), existing_nullable=True)
    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_account_transactions_payer', ['payer_account'], unique=False)
