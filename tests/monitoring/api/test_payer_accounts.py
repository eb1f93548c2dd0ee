"""Bank accounts in the feed (the borrower's own, payers' and counterparties') are personal data: sealed at rest in
the monitoring database, matched by their keyed hashes, masked unless the role may see them, and never sent out in
clear (events, webhooks, screening)."""

import json
import os
import stat
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import insert, inspect, text

from tests.monitoring.api.helpers import admin, officer, register, role, set_today
from tests.monitoring.api.test_transactions import feed, row

TODAY = date(2026, 3, 1)


def _accounts():
    digits = f"{uuid.uuid4().int % 10**12:012d}"
    return f"6222-{digits}", f"DE89{digits}0000"  # a feed's payer; a repayment file's (an IBAN)


def _ring(suite, borrowers, payer):
    """Three borrowers repaid from one account (with the feed spelling it two ways): a shared payer."""
    loans = [register(suite, borrowers, product="mortgage", disbursement_date="2026-01-05") for _ in range(3)]
    spellings = (payer, payer.replace("-", ""), payer.lower())
    receipt = feed(suite, [row(loan, "2026-02-05", "3000.00", "credit", "repayment", loan_id=loan["id"],
                               payer_account=spelled, housing_estate="Sunshine Garden")
                           for loan, spelled in zip(loans, spellings, strict=True)])
    assert receipt.status_code == 201, receipt.text
    return loans


def _payer_alerts(suite, loan, headers):
    answer = suite.direct["monitoring"].get("/alerts", params={"loan_id": loan["id"]}, headers=headers)
    assert answer.status_code == 200, answer.text
    return [a for a in answer.json()["items"] if a["rule"] == "shared_payer"]


def _repaid_by_file(suite, loan, reference, payer):
    """A repayment file of one row naming its payer, posted (the test client runs the job before it answers)."""
    content = ("reference,loan_id,loan_external_id,amount,value_date,payer_account\n"
               f"{reference},{loan['id']},,100.00,,{payer}\n").encode()
    upload = suite.direct["monitoring"].post(
        "/repayment-files", params={"source": "dd-bank"}, files={"file": ("payers.csv", content, "text/csv")},
        headers={**admin(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert upload.status_code == 202, upload.text
    return suite.direct["monitoring"].get(f"/repayment-files/{upload.json()['id']}", headers=admin(suite)).json()


def _stored(suite):
    """Every value of every table of the monitoring database (bytes decoded), as one text."""
    engine = suite.database("monitoring").engine

    def shown(value):
        return bytes(value).decode(errors="replace") if isinstance(value, bytes | memoryview) else str(value)

    with engine.connect() as conn:
        return " ".join(shown(v) for table in inspect(engine).get_table_names()
                        for fetched in conn.execute(text(f"SELECT * FROM {table}")) for v in fetched)


def test_no_table_holds_a_payer_account_in_clear_after_a_feed_and_a_repayment_file(suite, borrowers):
    set_today(suite, TODAY)
    payer, iban = _accounts()
    ring = _ring(suite, borrowers, payer)
    loan = register(suite, borrowers, disbursement_date="2026-02-20")
    stranger = _accounts()[0]  # where a transfer went: funds moved on, an alert naming it
    moved = feed(suite, [row(loan, "2026-02-22", "11000.00", "debit", "transfer", counterparty=stranger,
                             loan_id=loan["id"])])
    assert moved.status_code == 201 and moved.json()["alerts_raised"] == 1, moved.text
    job = _repaid_by_file(suite, loan, f"P-{uuid.uuid4().hex[:8]}", iban)
    assert job["posted"] == 1, job
    # Neither in the feed, the alerts, the outbox nor the file's job (its bytes go once it is posted), nor anywhere
    # else: answers kept for retries, the audit trail.
    stored = _stored(suite)
    digits = payer.removeprefix("6222-")
    assert digits not in stored and iban not in stored and iban[4:] not in stored
    assert stranger.removeprefix("6222-") not in stored
    with suite.database("monitoring").engine.connect() as conn:
        sealed = conn.execute(text("SELECT pii_kid, payer_account_hash, payer_account_masked FROM account_transactions"
                                   " WHERE customer_id = :c"), {"c": ring[0]["customer_id"]}).one()
    assert sealed[0] and len(sealed[1]) == 64 and sealed[2] == "*" * (len(payer) - 4) + payer[-4:]
    from services.monitoring.transactions.service import KEY_FILE

    assert stat.S_IMODE(os.stat(suite.kernel.var_dir / KEY_FILE).st_mode) == 0o600


def test_the_repayment_event_webhooks_receive_names_the_payer_masked_with_its_hash(suite, borrowers):
    set_today(suite, TODAY)
    _, iban = _accounts()
    loan = register(suite, borrowers, disbursement_date="2026-01-05")
    reference = f"W-{uuid.uuid4().hex[:8]}"
    _repaid_by_file(suite, loan, reference, iban)
    relay = suite.headers("system.relay", ["system"])
    events, after = [], 0
    while True:
        page = suite.direct["monitoring"].get("/events", params={"after": after, "limit": 500}, headers=relay)
        assert page.status_code == 200, page.text
        events += page.json()["items"]
        if not page.json()["next_cursor"]:
            break
        after = page.json()["next_cursor"]
    [posted] = [e for e in events if e["type"] == "repayment.posted"
                and e["payload"].get("external_id") == f"dd-bank:{reference}"]
    assert posted["payload"]["payer_account"] == "*" * (len(iban) - 4) + iban[-4:]
    assert len(posted["payload"]["payer_account_hash"]) == 64
    assert iban not in str(events) and iban[4:-4] not in str(events)


def test_the_shared_payer_is_found_by_its_hash_and_shown_in_clear_only_to_roles_that_may_see_it(suite, borrowers):
    set_today(suite, TODAY)
    payer, _ = _accounts()
    loans = _ring(suite, borrowers, payer)
    masked = "*" * (len(payer) - 4) + payer[-4:]
    # The three spellings are one payer: its three borrowers are found, as before.
    [alert] = _payer_alerts(suite, loans[0], admin(suite))
    assert alert["evidence"]["borrowers"] == 3 and alert["evidence"]["shared_estates"] == ["Sunshine Garden"]
    assert alert["evidence"]["payer_account"] == payer and len(alert["evidence"]["payer_account_hash"]) == 64
    for allowed in (officer(suite), role(suite, "auditor")):
        assert [a["evidence"]["payer_account"] for a in _payer_alerts(suite, loans[0], allowed)] == [payer]
    for others in (role(suite, "collector"), role(suite, "risk_analyst")):
        [seen] = _payer_alerts(suite, loans[0], others)
        assert seen["evidence"]["payer_account"] == masked
        assert seen["evidence"]["payer_account_hash"] == alert["evidence"]["payer_account_hash"]
    # Screening (which keeps what it is given) gets the payer masked, with the hash it matches on.
    facts = suite.direct["monitoring"].get(f"/customers/{loans[0]['customer_id']}/screening-facts",
                                           headers=admin(suite)).json()
    [shared] = facts["payers"]
    assert shared["payer_account"] == masked and shared["other_borrowers"] == 2
    assert {t["payer_account"] for t in facts["transactions"]} == {masked}
    assert payer.removeprefix("6222-") not in str(facts)


def test_payer_accounts_an_older_version_stored_in_clear_are_sealed_and_still_matched(suite, borrowers):
    from services.monitoring.alerts.models import Alert
    from services.monitoring.transactions.service import TXNS, seal_accounts_held_in_clear

    set_today(suite, TODAY)
    payer, _ = _accounts()
    loans = [register(suite, borrowers, disbursement_date="2026-01-05") for _ in range(2)]
    vault = suite.services["monitoring"].state.pii_vault
    database = suite.database("monitoring")
    with database.session() as session:
        # As the version two before this one wrote them: the accounts in clear, nothing sealed.
        session.execute(insert(TXNS), [
            {"id": uuid.uuid4().hex, "account_clear": "acc-old", "customer_id": loan["customer_id"],
             "loan_id": loan["id"],
             "booked_on": date(2026, 2, 5), "amount": Decimal("3000.00"), "direction": "credit", "kind": "repayment",
             "payer_account_clear": payer, "counterparty_clear": f"{payer}-X", "recorded_by": "core-banking",
             "recorded_at": datetime(2026, 2, 5, 23, tzinfo=UTC)}
            for loan in loans])
        # And the alert it raised on them, naming the account in its evidence and its trigger.
        session.add(Alert(loan_id=loans[0]["id"], customer_id=loans[0]["customer_id"], branch="BJ001",
                          rule="shared_payer", severity="medium", due_at=date(2026, 3, 15), created_on=TODAY,
                          evidence={"payer_account": payer, "borrowers": 3, "shared_estates": []},
                          trigger_key=f"payer:{payer}:borrowers"))
        session.commit()
        assert seal_accounts_held_in_clear(session, vault) >= 2
        assert seal_accounts_held_in_clear(session, vault) == 0  # done: a later start finds nothing to seal
    assert payer.removeprefix("6222-") not in _stored(suite)
    # A third borrower repaid from it now makes three: the sealed rows are matched by their hash.
    third = register(suite, borrowers, disbursement_date="2026-01-05")
    feed(suite, [row(third, "2026-02-06", "3000.00", "credit", "repayment", loan_id=third["id"],
                     payer_account=payer)])
    [alert] = _payer_alerts(suite, third, admin(suite))
    assert alert["evidence"]["borrowers"] == 3 and alert["evidence"]["payer_account"] == payer
    # The older alert now names the payer by its hash: the same finding on that loan raises no second one.
    [restated] = _payer_alerts(suite, loans[0], role(suite, "collector"))
    assert restated["evidence"]["payer_account"] == "*" * (len(payer) - 4) + payer[-4:]
    assert restated["evidence"]["payer_account_hash"] == alert["evidence"]["payer_account_hash"]


def test_a_payer_shown_in_clear_is_a_read_the_audit_trail_records_and_a_masked_one_is_not(suite, borrowers):
    """Found: admins, auditors and the branch's officers saw payers' accounts in clear on GET /alerts, and no
    trail row said who had read whose account (customer's reads of personal data are all recorded)."""
    from tests.test_audit import audit_rows, rid

    set_today(suite, TODAY)
    payer, _ = _accounts()
    loans = _ring(suite, borrowers, payer)
    request = rid()
    answer = suite.direct["monitoring"].get("/alerts", params={"loan_id": loans[0]["id"]},
                                            headers={**admin(suite), **request})
    [alert] = [a for a in answer.json()["items"] if a["rule"] == "shared_payer"]
    assert alert["evidence"]["payer_account"] == payer
    (read,) = [r for r in audit_rows(suite, "monitoring", request["X-Request-Id"]) if r["action"] == "read"]
    assert (read["entity"], read["entity_id"], read["actor"]) == ("alerts", alert["id"], "admin")
    assert json.loads(read["detail"]) == {"via": "list_alerts", "full": [alert["id"]], "fields": ["payer_account"]}
    masked = rid()
    seen = suite.direct["monitoring"].get("/alerts", params={"loan_id": loans[0]["id"]},
                                          headers={**role(suite, "collector"), **masked})
    assert seen.status_code == 200
    assert [r for r in audit_rows(suite, "monitoring", masked["X-Request-Id"]) if r["action"] == "read"] == []


def _cash_out(loan, repaid_on, account):
    """Two round purchases at one merchant, repaid at once from the borrower's own account: a card cash-out."""
    return [row(loan, "2026-02-25", "5000.00", "debit", "card_purchase", merchant="Lucky Jewels", account=account),
            row(loan, "2026-02-26", "5000.00", "debit", "card_purchase", merchant="Lucky Jewels", account=account),
            row(loan, repaid_on, "10000.00", "credit", "repayment", account=account)]


def test_the_borrowers_own_account_is_sealed_and_a_card_cash_out_names_it_masked_unless_the_role_may_see_it(
        suite, borrowers):
    """Found: the feed stored the borrower's own account number in clear (`account_transactions.account`), and a
    card cash-out alert named it in clear in its evidence and its trigger, to every role."""
    set_today(suite, TODAY)
    account = _accounts()[0]
    loan = register(suite, borrowers, product="credit_card", disbursement_date="2026-02-01")
    assert feed(suite, _cash_out(loan, "2026-02-27", account)).status_code == 201
    assert account.removeprefix("6222-") not in _stored(suite)
    masked = "*" * (len(account) - 4) + account[-4:]

    def cash_outs(headers):
        answer = suite.direct["monitoring"].get("/alerts", params={"loan_id": loan["id"]}, headers=headers)
        return [a["evidence"] for a in answer.json()["items"] if a["rule"] == "card_cash_out"]

    [seen] = cash_outs(role(suite, "collector"))
    assert seen["account"] == masked and len(seen["account_hash"]) == 64 and seen["merchant"] == "Lucky Jewels"
    assert [e["account"] for e in cash_outs(officer(suite))] == [account]


def test_a_borrowers_account_an_older_version_stored_in_clear_is_sealed_and_its_cash_out_not_raised_twice(
        suite, borrowers):
    from services.monitoring.alerts.models import Alert
    from services.monitoring.transactions.service import TXNS, feed_row, seal_accounts_held_in_clear

    set_today(suite, TODAY)
    account, payer = _accounts()[0], _accounts()[0]
    loan = register(suite, borrowers, product="credit_card", disbursement_date="2026-02-01")
    vault = suite.services["monitoring"].state.pii_vault
    with suite.database("monitoring").session() as session:
        # As the version before this one wrote them: the payer sealed, the borrower's account in clear.
        older = []
        for fed in _cash_out(loan, "2026-02-27", account):
            stored = feed_row(vault, {"merchant": None, **fed, "id": uuid.uuid4().hex, "loan_id": None,
                                      "counterparty": None,
                                      "payer_account": payer, "housing_estate": None, "recorded_by": "core-banking",
                                      "recorded_at": datetime(2026, 2, 27, 23, tzinfo=UTC),
                                      "amount": Decimal(fed["amount"]),
                                      "booked_on": date.fromisoformat(fed["booked_on"])})
            older.append({**stored, "account_enc": None, "account_masked": None, "account_clear": account})
        session.execute(insert(TXNS), older)
        # And the cash-out it raised, naming the account in clear in its evidence and its trigger.
        session.add(Alert(loan_id=loan["id"], customer_id=loan["customer_id"], branch="BJ001", rule="card_cash_out",
                          severity="high", due_at=date(2026, 3, 15), created_on=TODAY,
                          evidence={"account": account, "merchant": "Lucky Jewels", "purchases": 2},
                          trigger_key=f"cashout:{account}:Lucky Jewels:2026-02-27"))
        session.commit()
        assert seal_accounts_held_in_clear(session, vault) == 3
        assert seal_accounts_held_in_clear(session, vault) == 0
    stored = _stored(suite)
    assert account.removeprefix("6222-") not in stored and payer.removeprefix("6222-") not in stored
    # The feed again (the rules re-run on it): the same cash-out, now found by hash, is the alert already raised.
    assert feed(suite, [row(loan, "2026-02-28", "10.00", "credit", "salary", account=account)]).status_code == 201
    answer = suite.direct["monitoring"].get("/alerts", params={"loan_id": loan["id"]}, headers=officer(suite))
    [alert] = [a for a in answer.json()["items"] if a["rule"] == "card_cash_out"]
    assert alert["evidence"]["account"] == account and len(alert["evidence"]["account_hash"]) == 64
    # The payer sealed by the version before opens as it did, under the row's one key id.
    with suite.database("monitoring").engine.connect() as conn:
        resealed = conn.execute(text("SELECT id, pii_kid, payer_account_enc FROM account_transactions "
                                     "WHERE customer_id = :c"), {"c": loan["customer_id"]}).all()
    assert {vault.open(enc, kid=kid, row_id=rid, field="payer_account") for rid, kid, enc in resealed
            if enc} == {payer}
