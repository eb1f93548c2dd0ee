"""stored masks of personal data for masked reads

Masked reads show these instead of decrypting. Rows already on file get their masks from
`loancrm customers rotate-keys` (reseal_with_active_key also fills missing masks), which needs the keys a
migration does not have; until then those rows are masked from their decrypted value, as before.

Revision ID: 9ff5c72893d0
Revises: e9642220bd4e
Create Date: 2026-11-23 14:58:22.979173
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '9ff5c72893d0'
down_revision: str | None = 'e9642220bd4e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('national_id_masked', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True))
        batch_op.add_column(sa.Column('phone_masked', sqlmodel.sql.sqltypes.AutoString(length=11), nullable=True))
        batch_op.add_column(sa.Column('email_masked', sqlmodel.sql.sqltypes.AutoString(length=260), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('email_masked')
        batch_op.drop_column('phone_masked')
        batch_op.drop_column('national_id_masked')
