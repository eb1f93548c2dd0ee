"""money in integer cents on SQLite (the kernel's Money type); PostgreSQL's NUMERIC(18, 2) is unchanged

Revision ID: policy_b2d4f6a80002
Revises: e8ff935ce6dd
Create Date: 2026-12-01 11:30:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = 'policy_b2d4f6a80002'
down_revision: str | None = 'e8ff935ce6dd'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite kept these NUMERIC(18, 2) columns as REAL (a cent lost near 10^14); the kernel's Money type stores integer
# cents there, in the same columns. Existing rows are converted; PostgreSQL needs nothing.
MONEY_COLUMNS = {
    'applications': ['amount', 'approved_amount'],
    'scores': ['suggested_limit'],
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
