"""money in integer cents on SQLite (the kernel's Money type); PostgreSQL's NUMERIC(18, 2) is unchanged

Revision ID: policy_a1c3e5f70001
Revises: 9ff5c72893d0
Create Date: 2026-12-01 11:30:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = 'policy_a1c3e5f70001'
down_revision: str | None = '9ff5c72893d0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite kept these NUMERIC(18, 2) columns as REAL (a cent lost near 10^14); the kernel's Money type stores integer
# cents there, in the same columns. Existing rows are converted; PostgreSQL needs nothing.
MONEY_COLUMNS = {
    'customer_portraits': ['monthly_income', 'assets'],
    'customers': ['monthly_income', 'assets'],
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
