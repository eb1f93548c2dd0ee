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


_SEALED = ('payer_account', 'counterparty')
_SEALED_COLUMNS = (('enc', 200), ('hash', 64), ('masked', 64))


def upgrade() -> None:
    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_account_transactions_payer')
        batch_op.add_column(sa.Column('pii_kid', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        for field in _SEALED:
            batch_op.alter_column(field, new_column_name=f'{field}_clear', existing_type=sa.String(length=64),
                                  existing_nullable=True)
            for suffix, length in _SEALED_COLUMNS:
                batch_op.add_column(sa.Column(f'{field}_{suffix}', sqlmodel.sql.sqltypes.AutoString(length=length),
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
        for field in reversed(_SEALED):
            for suffix, _ in reversed(_SEALED_COLUMNS):
                batch_op.drop_column(f'{field}_{suffix}')
            batch_op.alter_column(f'{field}_clear', new_column_name=field, existing_type=sa.String(length=64),
                                  existing_nullable=True)
        batch_op.drop_column('pii_kid')
    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_account_transactions_payer', ['payer_account'], unique=False)
