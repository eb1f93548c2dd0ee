"""the borrower's own account in the feed sealed like the payer's

The feed's `account` (the borrower's own account number) stayed in clear beside its keyed hash. It gets a
ciphertext and a stored mask beside that hash; the clear value is kept as `account_clear` until the monitoring
service, which holds the keys, seals each row at its next start and clears it (`seal_accounts_held_in_clear`).

The downgrade puts the clear column back; it refuses while any row's account is sealed, since without the keys it
would lose them.

Revision ID: 5e1c7b3d9f20
Revises: 8b3f5d1e2a47
Create Date: 2026-12-02 06:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '5e1c7b3d9f20'
down_revision: str | None = '8b3f5d1e2a47'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.alter_column('account', new_column_name='account_clear', existing_type=sa.String(length=64),
                              nullable=True)
        batch_op.add_column(sa.Column('account_enc', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('account_masked', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    sealed = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM account_transactions WHERE account_enc IS NOT NULL")).scalar()
    if sealed:
        raise RuntimeError(f"{sealed} feed rows' accounts are sealed; downgrading would lose them")
    with op.batch_alter_table('account_transactions', schema=None) as batch_op:
        batch_op.drop_column('account_masked')
        batch_op.drop_column('account_enc')
        batch_op.alter_column('account_clear', new_column_name='account', existing_type=sa.String(length=64),
                              nullable=False)
