"""screening hits name payers and counterparties masked

A shared-payer hit kept the payer's bank account as monitoring sent it, in clear, and an illegal-fundraising hit
the accounts the funds went to. Monitoring now sends them masked (the last four characters) with keyed hashes; the
hits already stored are masked here. Scoring never holds
monitoring's keys, so they get no hash: a reviewer reads the account from the alert, where the role allows. The
mask is written out here as this revision knows it (a migration must not change with later code).

Not reversible: the downgrade leaves the masks.

Revision ID: 2c7e9a4b6d13
Revises: 6350b5ac4a64
Create Date: 2026-12-02 01:45:00
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '2c7e9a4b6d13'
down_revision: str | None = '6350b5ac4a64'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_KINDS = ("salary", "repayment", "transfer", "cash", "other")


def _kept(account: str) -> str:
    """The account masked, unless it is already."""
    if account.startswith("*"):
        return account
    kept = account[-4:] if len(account) >= 8 else ""
    return "*" * (len(account) - len(kept)) + kept


def upgrade() -> None:
    hits = sa.table('screening_hits', sa.column('id', sa.String), sa.column('check', sa.String),
                    sa.column('facts', sa.JSON))
    bind = op.get_bind()
    for hit_id, check, facts in bind.execute(sa.select(hits.c.id, hits.c.check, hits.c.facts).where(
            hits.c.check.in_(('shared_payer', 'illegal_fundraising')))).all():
        facts = json.loads(facts) if isinstance(facts, str) else facts
        if check == 'shared_payer':
            facts["payers"] = [{**p, "payer_account": _kept(str(p["payer_account"]))} for p in facts.get("payers", [])]
        else:  # the kind named where a debit had no counterparty stays as it is
            facts["out_accounts"] = [name if name in _KINDS else _kept(name)
                                     for name in facts.get("out_accounts", [])]
        bind.execute(hits.update().where(hits.c.id == hit_id).values(facts=facts))


def downgrade() -> None:
    pass  # the clear accounts are gone, as they should be
