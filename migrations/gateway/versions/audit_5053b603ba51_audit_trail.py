"""the audit trail: chained rows of every write and personal-data read, and the chain head

Revision ID: 5053b603ba51
Revises: 411268c1cc0d
Create Date: 2026-12-01 13:00:00
"""
from collections.abc import Sequence

from migrations.steps import create_audit_trail, drop_audit_trail


revision: str = '5053b603ba51'
down_revision: str | None = '411268c1cc0d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_audit_trail('gateway')


def downgrade() -> None:
    drop_audit_trail('gateway')
