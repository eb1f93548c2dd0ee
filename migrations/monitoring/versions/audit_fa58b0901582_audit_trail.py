"""the audit trail: chained rows of every write and personal-data read, and the chain head

Revision ID: fa58b0901582
Revises: 9c4e1a7b2d60
Create Date: 2026-12-01 13:00:00
"""
from collections.abc import Sequence

from migrations.steps import create_audit_trail, drop_audit_trail


revision: str = 'fa58b0901582'
down_revision: str | None = '9c4e1a7b2d60'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_audit_trail('monitoring')


def downgrade() -> None:
    drop_audit_trail('monitoring')
