"""The feed's accounts rotate to a new key like customers' personal data: every row re-encrypted under it, still
opened to the same accounts and matched by the same hashes (a suite of its own: the rotated rows need the new key)."""

import base64
import json
import os
import uuid
from datetime import date

from sqlalchemy import text

from services.monitoring.settings import MonitoringSettings
from services.monitoring.transactions.scheduled import run_rotate_keys_cli
from services.monitoring.transactions.service import KEY_FILE, load_vault
from tests.monitoring.api.helpers import register, set_today
from tests.monitoring.api.test_transactions import feed, row


def test_rotating_the_feeds_key_re_encrypts_every_account_and_keeps_them_matched(suite, borrowers, capsys):
    set_today(suite, date(2026, 3, 1))
    loan = register(suite, borrowers, disbursement_date="2026-01-05")
    own, payer, counterparty = (f"6222-{uuid.uuid4().int % 10**12:012d}" for _ in range(3))
    assert feed(suite, [
        row(loan, "2026-02-05", "3000.00", "credit", "repayment", loan_id=loan["id"], account=own,
            payer_account=payer),
        row(loan, "2026-02-06", "500.00", "debit", "transfer", account=own, counterparty=counterparty)],
    ).status_code == 201
    old = json.loads((suite.kernel.var_dir / KEY_FILE).read_text())
    settings = MonitoringSettings(pii_keys=f"{old['kid']}:{old['key']},k2:{base64.b64encode(os.urandom(32)).decode()}",
                                  pii_active_kid="k2", pii_hash_key=old["hash_key"])

    rotated = run_rotate_keys_cli(kernel=suite.kernel, settings=settings)
    assert rotated >= 2
    assert f"{rotated}/{rotated}" in capsys.readouterr().err  # long work shows its progress
    assert run_rotate_keys_cli(kernel=suite.kernel, settings=settings) == 0  # done: nothing left on the old key

    vault = load_vault(settings, suite.kernel)
    with suite.database("monitoring").engine.connect() as conn:
        assert set(conn.execute(text("SELECT DISTINCT pii_kid FROM account_transactions")).scalars()) == {"k2"}
        rows = conn.execute(text("SELECT id, pii_kid, account_enc, account_hash, payer_account_enc, "
                                 "payer_account_hash, counterparty_enc FROM account_transactions "
                                 "WHERE customer_id = :c ORDER BY booked_on"), {"c": loan["customer_id"]}).all()
    repaid, moved = rows
    assert [vault.open(r.account_enc, kid=r.pii_kid, row_id=r.id, field="account") for r in rows] == [own, own]
    assert vault.open(repaid.payer_account_enc, kid="k2", row_id=repaid.id, field="payer_account") == payer
    assert vault.open(moved.counterparty_enc, kid="k2", row_id=moved.id, field="counterparty") == counterparty
    # The hash key stays: what the rules match on is unchanged.
    assert repaid.account_hash == moved.account_hash == vault.digest(own.replace("-", ""))
    assert repaid.payer_account_hash == vault.digest(payer.replace("-", ""))
