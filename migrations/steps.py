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


def create_audit_trail(service: str) -> None:
    """The service's audit trail (shared/audit/trail.py): the chained rows and the one-row chain head, which
    starts at the genesis hash. On SQLite a trigger moves the head with each row appended."""
    name = f'{service}_audit'
    op.create_table(
        name,
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('roles', sa.String(length=200), nullable=False),
        sa.Column('request_id', sa.String(length=128), nullable=True),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('entity', sa.String(length=64), nullable=False),
        sa.Column('entity_id', sa.String(length=200), nullable=True),
        sa.Column('digest_before', sa.String(length=64), nullable=True),
        sa.Column('digest_after', sa.String(length=64), nullable=True),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('seq'),
    )
    op.create_index(f'ix_{name}_at', name, ['at'], unique=False)
    op.create_index(f'ix_{name}_actor_seq', name, ['actor', 'seq'], unique=False)
    op.create_index(f'ix_{name}_entity', name, ['entity', 'entity_id'], unique=False)
    op.create_index(f'ix_{name}_request_id', name, ['request_id'], unique=False)
    op.create_table(
        f'{name}_head',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    genesis = '0' * 64
    op.execute(f"INSERT INTO {name}_head (id, seq, prev_hash, hash) VALUES (1, 0, '{genesis}', '{genesis}')")
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(f'CREATE TRIGGER {name}_advance AFTER INSERT ON {name} BEGIN UPDATE {name}_head SET '
                   f'seq = NEW.seq, prev_hash = NEW.prev_hash, hash = NEW.hash WHERE id = 1; END')


def drop_audit_trail(service: str) -> None:
    name = f'{service}_audit'
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(f'DROP TRIGGER IF EXISTS {name}_advance')
    op.drop_table(f'{name}_head')
    for index in ('request_id', 'entity', 'actor_seq', 'at'):
        op.drop_index(f'ix_{name}_{index}', table_name=name)
    op.drop_table(name)
