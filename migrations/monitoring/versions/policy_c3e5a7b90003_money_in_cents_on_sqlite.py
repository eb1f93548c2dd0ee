"""money in integer cents on SQLite (the kernel's Money type); PostgreSQL's NUMERIC(18, 2) is unchanged

Revision ID: policy_c3e5a7b90003
Revises: 09b1f1893271
Create Date: 2026-12-01 11:30:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = 'policy_c3e5a7b90003'
down_revision: str | None = '44e29b8a103a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite kept these NUMERIC(18, 2) columns as REAL (a cent lost near 10^14); the kernel's Money type stores integer
# cents there, in the same columns. Existing rows are converted; PostgreSQL needs nothing.
MONEY_COLUMNS = {
    'account_transactions': ['amount'],
    'collection_actions': ['promised_amount'],
    'instalments': ['principal', 'interest', 'principal_paid', 'interest_paid', 'penalty_paid'],
    'loans': ['principal', 'outstanding_principal', 'credit_balance'],
    'postings': ['amount', 'principal', 'interest', 'penalty', 'overpayment'],
    'schedule_rebookings': ['principal_rescheduled'],
    'superseded_instalments': ['principal', 'interest', 'principal_paid', 'interest_paid', 'penalty_paid'],
}


def _convert(expression: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in MONEY_COLUMNS.items():
        sets = ", ".join(f"{c} = {expression.format(c=c)}" for c in columns)
        op.execute(f"UPDATE {table} SET {sets}")


def upgrade() -> None:
    _convert("CAST(ROUND({c} * 100) AS INTEGER)")


def downgrade() -> None:
    _convert("{c} / 100.0")
