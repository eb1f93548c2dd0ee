"""Migration steps that several services' histories take alike (each history still runs them on its own tables)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def claim_idempotency_keys(table: str) -> None:
    """Keys are claimed before the write (who holds it, until when) and answered after: the answer may be missing
    while a claim runs; creation time is indexed for the purge of expired keys."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimant', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('status_code', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=True)
        batch_op.create_index(f'ix_{table}_created_at', ['created_at'], unique=False)


def unclaim_idempotency_keys(table: str) -> None:
    # Claims still running have no answer to keep.
    op.execute(sa.text(f'DELETE FROM {table} WHERE status_code IS NULL'))
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_index(f'ix_{table}_created_at')
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('status_code', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('lease_until')
        batch_op.drop_column('claimant')


def money_to_cents(columns: dict[str, list[str]]) -> None:
    """SQLite kept NUMERIC(18, 2) columns as REAL (a cent lost near 10^14); the kernel's Money type stores integer
    cents there, in the same columns. PostgreSQL needs nothing."""
    _convert_money(columns, "CAST(ROUND({c} * 100) AS INTEGER)")


def money_from_cents(columns: dict[str, list[str]]) -> None:
    _convert_money(columns, "{c} / 100.0")


def _convert_money(columns: dict[str, list[str]], expression: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, names in columns.items():
        sets = ", ".join(f"{c} = {expression.format(c=c)}" for c in names)
        op.execute(f"UPDATE {table} SET {sets}")
