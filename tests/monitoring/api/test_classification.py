"""Five-category classification at each regulatory boundary, IFRS 9 stage, and overrides under maker-checker."""

from datetime import date, timedelta

import pytest

from tests.monitoring.api.helpers import assert_problem, officer, register, role, set_today

TODAY = date(2026, 6, 30)


def loan_overdue(suite, borrowers, dpd, product="personal_loan"):
    """A loan whose first instalment fell due `dpd` days before the business date and was never paid."""
    first_due = TODAY - timedelta(days=dpd)
    return register(suite, borrowers, product=product, term_months=24, first_due_date=first_due.isoformat(),
                    disbursement_date=(first_due - timedelta(days=20)).isoformat())


@pytest.fixture(autouse=True)
def today(suite):
    set_today(suite, TODAY)


@pytest.mark.parametrize("dpd, bucket, loan_class, stage", [
    (0, "M0", "normal", 1), (1, "M1", "special_mention", 2), (30, "M1", "special_mention", 2),
    (31, "M2", "special_mention", 2), (90, "M3", "special_mention", 2), (91, "M4+", "substandard", 3),
    (270, "M4+", "substandard", 3), (271, "M4+", "doubtful", 3), (360, "M4+", "doubtful", 3), (361, "M4+", "loss", 3),
])
def test_a_loan_is_classified_by_its_floor_at_each_boundary_day(suite, borrowers, dpd, bucket, loan_class, stage):
    loan = loan_overdue(suite, borrowers, dpd)
    stored = suite.direct["monitoring"].get(f"/loans/{loan['id']}", headers=officer(suite)).json()
    assert (stored["dpd"], stored["bucket"], stored["classification"], stored["ifrs9_stage"]) == (
        dpd, bucket, loan_class, stage)


@pytest.mark.parametrize("dpd, loan_class", [
    (90, "special_mention"), (91, "substandard"), (120, "substandard"), (121, "doubtful"), (180, "doubtful"),
    (181, "loss"),
])
def test_credit_cards_follow_their_own_floors(suite, borrowers, dpd, loan_class):
    assert loan_overdue(suite, borrowers, dpd, product="credit_card")["classification"] == loan_class


def _override(suite, loan_id, requested, headers):
    return suite.direct["monitoring"].post(f"/loans/{loan_id}/class-overrides", headers=headers,
                                           json={"requested_class": requested, "reason": "main buyer went bankrupt"})


def _decide(suite, override_id, headers, approve=True):
    return suite.direct["monitoring"].post(f"/class-overrides/{override_id}/decision", headers=headers,
                                           json={"approve": approve, "note": "credit committee"})


def test_an_override_applies_only_after_someone_else_approves_it(suite, borrowers):
    loan = loan_overdue(suite, borrowers, 0)
    maker = suite.headers("analyst.maker", ["risk_analyst"])
    proposed = _override(suite, loan["id"], "substandard", maker)
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["status"] == "pending"
    unchanged = suite.direct["monitoring"].get(f"/loans/{loan['id']}", headers=maker).json()
    assert unchanged["classification"] == "normal"
    assert_problem(_decide(suite, proposed.json()["id"], maker), 403)
    assert_problem(_decide(suite, proposed.json()["id"], role(suite, "collector")), 403)
    approved = _decide(suite, proposed.json()["id"], suite.headers("analyst.checker", ["risk_analyst"]))
    assert approved.status_code == 200 and approved.json()["checker"] == "analyst.checker"
    after = suite.direct["monitoring"].get(f"/loans/{loan['id']}", headers=maker).json()
    assert (after["classification"], after["ifrs9_stage"]) == ("substandard", 3)
    history = suite.direct["monitoring"].get(f"/loans/{loan['id']}/history", headers=maker).json()["items"]
    assert {"field": "loan_class", "from_value": "normal", "to_value": "substandard", "cause": "override"}.items() <= \
        next(h for h in history if h["cause"] == "override" and h["field"] == "loan_class").items()
    assert_problem(_decide(suite, proposed.json()["id"], suite.headers("analyst.checker")), 409)


def test_an_override_can_never_improve_a_class(suite, borrowers):
    loan = loan_overdue(suite, borrowers, 100)
    assert_problem(_override(suite, loan["id"], "special_mention", officer(suite)), 422, "body.requested_class")
    assert _override(suite, loan["id"], "substandard", officer(suite)).status_code == 201


def test_a_rejected_override_changes_nothing(suite, borrowers):
    loan = loan_overdue(suite, borrowers, 0)
    proposed = _override(suite, loan["id"], "doubtful", officer(suite)).json()
    rejected = _decide(suite, proposed["id"], suite.headers("analyst.checker", ["risk_analyst"]), approve=False)
    assert rejected.json()["status"] == "rejected"
    stored = suite.direct["monitoring"].get(f"/loans/{loan['id']}", headers=officer(suite)).json()
    assert stored["classification"] == "normal"
    listed = suite.direct["monitoring"].get(f"/loans/{loan['id']}/class-overrides",
                                            headers=role(suite, "auditor")).json()["items"]
    assert [o["status"] for o in listed] == ["rejected"]
