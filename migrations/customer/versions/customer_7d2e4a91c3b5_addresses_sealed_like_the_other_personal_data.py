"""addresses sealed like the other personal data

The address was the one identifying field kept in clear (and shown in full to masked readers). It gets the
columns the others have: a ciphertext, a keyed hash of its normalised form (indexed: shared-address checks no
longer scan the table) and a stored mask. The clear column is kept as `address_clear` until the customer service,
which holds the keys, seals each row at its next start and clears it (`seal_addresses_held_in_clear`).

The downgrade puts the clear column back under its old name; it refuses while any address is sealed, since
without the keys it would drop them.

Revision ID: 7d2e4a91c3b5
Revises: c8a8af2f3d8f
Create Date: 2026-12-01 22:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '7d2e4a91c3b5'
down_revision: str | None = 'c8a8af2f3d8f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('address', new_column_name='address_clear',
                              existing_type=sa.String(length=300), existing_nullable=True)
        batch_op.add_column(sa.Column('address_enc', sqlmodel.sql.sqltypes.AutoString(length=1300), nullable=True))
        batch_op.add_column(sa.Column('address_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('address_masked', sqlmodel.sql.sqltypes.AutoString(length=305),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_customers_address_hash'), ['address_hash'], unique=False)


def downgrade() -> None:
    sealed = op.get_bind().execute(sa.text("SELECT count(*) FROM customers WHERE address_enc IS NOT NULL")).scalar()
    if sealed:
        raise RuntimeError(f"{sealed} customers' addresses are sealed; downgrading would lose them")
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_address_hash'))
        batch_op.drop_column('address_masked')
        batch_op.drop_column('address_hash')
        batch_op.drop_column('address_enc')
        batch_op.alter_column('address_clear', new_column_name='address',
                              existing_type=sa.String(length=300), existing_nullable=True)
