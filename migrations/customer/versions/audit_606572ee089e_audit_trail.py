"""the audit trail: chained rows of every write and personal-data read, and the chain head

Revision ID: 606572ee089e
Revises: 3c657996bc21
Create Date: 2026-12-01 13:00:00
"""
from collections.abc import Sequence

from migrations.steps import create_audit_trail, drop_audit_trail


revision: str = '606572ee089e'
down_revision: str | None = '3c657996bc21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_audit_trail('customer')


def downgrade() -> None:
    drop_audit_trail('customer')
