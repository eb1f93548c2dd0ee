"""the audit trail: chained rows of every write and personal-data read, and the chain head

Revision ID: 850c78836628
Revises: 3f8a2c6d1e90
Create Date: 2026-12-01 13:00:00
"""
from collections.abc import Sequence

from migrations.steps import create_audit_trail, drop_audit_trail


revision: str = '850c78836628'
down_revision: str | None = '3f8a2c6d1e90'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_audit_trail('scoring')


def downgrade() -> None:
    drop_audit_trail('scoring')
