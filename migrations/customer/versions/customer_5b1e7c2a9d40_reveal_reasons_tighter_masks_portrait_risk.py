"""access-log reasons, masks that keep fewer digits, the portrait's credit-risk figures

The stored masks are rewritten in SQL from the old ones (which hold more than the new ones keep): a national ID
keeps its last two characters, a phone its 3-digit prefix and last two digits. The downgrade clears them; masked
reads then mask from the decrypted value, as before stored masks existed.

Revision ID: 5b1e7c2a9d40
Revises: b09fc5adaa8d
Create Date: 2026-12-01 11:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '5b1e7c2a9d40'
down_revision: str | None = 'b09fc5adaa8d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('pii_access_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    with op.batch_alter_table('customer_portraits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('current_max_dpd', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('max_dpd_12m', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('worst_class', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    # 110***********5678 -> ****************78; 138****5678 -> 138******78
    op.execute("UPDATE customers SET national_id_masked = '****************' || substr(national_id_masked, 17) "
               "WHERE national_id_masked IS NOT NULL AND length(national_id_masked) = 18")
    op.execute("UPDATE customers SET phone_masked = substr(phone_masked, 1, 3) || '******' "
               "|| substr(phone_masked, 10) WHERE phone_masked IS NOT NULL AND length(phone_masked) = 11")


def downgrade() -> None:
    op.execute("UPDATE customers SET national_id_masked = NULL, phone_masked = NULL")
    with op.batch_alter_table('customer_portraits', schema=None) as batch_op:
        batch_op.drop_column('worst_class')
        batch_op.drop_column('max_dpd_12m')
        batch_op.drop_column('current_max_dpd')
    with op.batch_alter_table('pii_access_log', schema=None) as batch_op:
        batch_op.drop_column('reason')
