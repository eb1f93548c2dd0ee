"""idempotency keys are claimed before the write (a lease) and expire after a retention

Revision ID: f09558575077
Revises: 938feb14ef4a
Create Date: 2026-12-01 10:45:00.000000
"""
from collections.abc import Sequence

from migrations.steps import claim_idempotency_keys, unclaim_idempotency_keys

revision: str = 'f09558575077'
down_revision: str | None = '938feb14ef4a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = 'gateway_idempotency_keys'


def upgrade() -> None:
    claim_idempotency_keys(TABLE)


def downgrade() -> None:
    unclaim_idempotency_keys(TABLE)
