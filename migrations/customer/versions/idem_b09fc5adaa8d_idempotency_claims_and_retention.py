"""idempotency keys are claimed before the write (a lease) and expire after a retention

Revision ID: b09fc5adaa8d
Revises: policy_a1c3e5f70001
Create Date: 2026-12-01 10:45:00.000000
"""
from collections.abc import Sequence

from migrations.steps import claim_idempotency_keys, unclaim_idempotency_keys

revision: str = 'b09fc5adaa8d'
down_revision: str | None = 'policy_a1c3e5f70001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = 'customer_idempotency_keys'


def upgrade() -> None:
    claim_idempotency_keys(TABLE)


def downgrade() -> None:
    unclaim_idempotency_keys(TABLE)
