"""Revision 2c7e9a4b6d13 masks the payer accounts that shared-payer hits stored before monitoring masked them."""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from loancrm import migrate
from tests.support import database_urls

REVISION = "2c7e9a4b6d13"


@pytest.fixture
def url(backend, tmp_path):
    with database_urls(backend, tmp_path) as urls:
        yield urls["scoring"]


def test_stored_shared_payer_hits_keep_the_payer_masked_and_the_rest_of_their_facts(url):
    migrate.upgrade(url, "scoring", "6350b5ac4a64")
    engine = create_engine(url)
    facts = {"payers": [{"payer_account": "6222-0777-1234", "other_borrowers": 2, "other_borrower_ids": ["a", "b"],
                         "estates": ["Sunshine Garden"], "same_estate": True}]}
    funnelled = {"distinct_payers": 12, "out_accounts": ["6230-OFFSHORE-11", "cash"], "funnelled_share": "0.9"}
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL session_replication_role = replica"))  # no application row needed
            for hit_id, check, kept in (("h1", "shared_payer", facts), ("h2", "card_cash_out", facts),
                                        ("h3", "illegal_fundraising", funnelled)):
                conn.execute(text(
                    "INSERT INTO screening_hits (id, application_id, stage, \"check\", facts, thresholds, status, "
                    "created_at) VALUES (:id, 'a1', 'submission', :check, :facts, '{}', 'open', :at)"),
                    {"id": hit_id, "check": check, "facts": json.dumps(kept), "at": datetime(2026, 3, 1, tzinfo=UTC)})
        migrate.upgrade(url, "scoring", REVISION)
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT id, facts FROM screening_hits")).all())
    finally:
        engine.dispose()
    masked, other, out = (json.loads(v) if isinstance(v, str) else v for v in (stored[h] for h in ("h1", "h2", "h3")))
    assert masked["payers"] == [{**facts["payers"][0], "payer_account": "**********1234"}]
    assert other == facts  # another check's facts are not touched
    assert "0777" not in json.dumps(masked)
    assert out == {**funnelled, "out_accounts": ["************E-11", "cash"]}
