"""money in integer cents on SQLite (the kernel's Money type); PostgreSQL's NUMERIC(18, 2) is unchanged

Revision ID: policy_b2d4f6a80002
Revises: e8ff935ce6dd
Create Date: 2026-12-01 11:30:00
"""
from collections.abc import Sequence

from migrations.steps import money_from_cents, money_to_cents

revision: str = 'policy_b2d4f6a80002'
down_revision: str | None = 'e8ff935ce6dd'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Stored as REAL by SQLite until now: converted to the kernel Money type's integer cents (PostgreSQL unchanged).
MONEY_COLUMNS = {
    'applications': ['amount', 'approved_amount'],
    'scores': ['suggested_limit'],
}


def upgrade() -> None:
    money_to_cents(MONEY_COLUMNS)


def downgrade() -> None:
    money_from_cents(MONEY_COLUMNS)
