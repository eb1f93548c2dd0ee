"""scores: a model's recent scores by (model_id, created_at), replacing the model_id index

Revision ID: 5c1d2e3f4a6b
Revises: 5c0e7a1b2d3f
Create Date: 2026-12-01 10:55:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '5c1d2e3f4a6b'
down_revision: str | None = '5c0e7a1b2d3f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.create_index('ix_scores_model_created', ['model_id', 'created_at'], unique=False)
        batch_op.drop_index('ix_scores_model_id')


def downgrade() -> None:
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.create_index('ix_scores_model_id', ['model_id'], unique=False)
        batch_op.drop_index('ix_scores_model_created')
