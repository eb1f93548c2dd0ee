"""idempotency keys are claimed before the write (a lease) and expire after a retention

Revision ID: a4c101f6e42b
Revises: policy_b2d4f6a80002
Create Date: 2026-12-01 10:45:00.000000
"""
from collections.abc import Sequence

from migrations.steps import claim_idempotency_keys, unclaim_idempotency_keys

revision: str = 'a4c101f6e42b'
down_revision: str | None = 'policy_b2d4f6a80002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = 'scoring_idempotency_keys'


def upgrade() -> None:
    claim_idempotency_keys(TABLE)


def downgrade() -> None:
    unclaim_idempotency_keys(TABLE)
