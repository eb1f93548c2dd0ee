"""money in integer cents on SQLite (the kernel's Money type); PostgreSQL's NUMERIC(18, 2) is unchanged

Revision ID: policy_c3e5a7b90003
Revises: 44e29b8a103a
Create Date: 2026-12-01 11:30:00
"""
from collections.abc import Sequence

from migrations.steps import money_from_cents, money_to_cents

revision: str = 'policy_c3e5a7b90003'
down_revision: str | None = '44e29b8a103a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Stored as REAL by SQLite until now: converted to the kernel Money type's integer cents (PostgreSQL unchanged).
MONEY_COLUMNS = {
    'account_transactions': ['amount'],
    'collection_actions': ['promised_amount'],
    'instalments': ['principal', 'interest', 'principal_paid', 'interest_paid', 'penalty_paid'],
    'loans': ['principal', 'outstanding_principal', 'credit_balance'],
    'postings': ['amount', 'principal', 'interest', 'penalty', 'overpayment'],
    'schedule_rebookings': ['principal_rescheduled'],
    'superseded_instalments': ['principal', 'interest', 'principal_paid', 'interest_paid', 'penalty_paid'],
}


def upgrade() -> None:
    money_to_cents(MONEY_COLUMNS)


def downgrade() -> None:
    money_from_cents(MONEY_COLUMNS)
