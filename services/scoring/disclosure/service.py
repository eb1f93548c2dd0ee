"""Disclosure rules: what a customer is shown before an approved application is paid out (terms, total cost, how
it was decided and why, in plain words), their acknowledgement, which disbursement requires; and the evaluation a
customer may ask for, told from their score's reason codes without internal terms."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, select

from services.scoring.applications.models import Application, ApplicationStatus
from services.scoring.disclosure.models import AcknowledgementCommand, Disclosure, EvaluationRead
from shared.ids import now
from services.scoring.scores.models import Score
from shared.auth.scope import Visibility
from shared.clients.monitoring import ScheduleQuote
from shared.errors import Problem, field_problem

# What each input the scorecard weighs means to a customer. An input not named here (or one a customer should not
# be told weighed on them, such as sex or nationality) is "other information in your application".
PLAIN_WORDS = {
    "status_of_existing_checking_account": "the balance of your current account",
    "duration_in_month": "the length of the loan you asked for",
    "credit_history": "your record of repaying past credit",
    "purpose": "what the loan is for",
    "credit_amount": "the amount you asked for",
    "savings_account_and_bonds": "little or no savings we know of",
    "present_employment_since": "a short time in your present job",
    "installment_rate_in_percentage_of_disposable_income": "the share of your income the repayments would take",
    "other_debtors_or_guarantors": "no one sharing or guaranteeing the debt",
    "present_residence_since": "a short time at your present address",
    "property": "little property we know of",
    "other_installment_plans": "other loans you are repaying",
    "housing": "your housing situation",
    "number_of_existing_credits_at_this_bank": "the loans you already have with us",
    "job": "your type of work",
    "number_of_people_being_liable_to_provide_maintenance_for": "the number of people who depend on you",
    "telephone": "no telephone number on record",
}
OTHER = "other information in your application"
OUTCOMES = {"approve": "Your evaluation allows the bank to lend to you, within your limit.",
            "review": "Your evaluation needs a closer look by a credit officer.",
            "decline": "On this evaluation the bank cannot offer you credit now."}


def plain_reasons(reasons: list[dict[str, Any]]) -> list[str]:
    """The score's reason codes (biggest shortfall first) as phrases, each once; the input-contract codes are
    the bank's own checks on the data, not reasons about the customer."""
    phrases: list[str] = []
    for reason in reasons:
        if reason.get("unit") == "input_contract":
            continue
        phrase = PLAIN_WORDS.get(reason["feature"], OTHER)
        if phrase not in phrases:
            phrases.append(phrase)
    return phrases


def explanation(phrases: list[str]) -> str:
    if not phrases:
        return "Nothing in particular lowered your score."
    return f"Your score was lowered mainly by: {'; '.join(phrases)}."


def decision_in_words(application: Application, score: Score) -> str:
    if application.decided_by is None:
        how = "Approved automatically by the bank's credit policy"
    else:
        how = "Approved by a credit officer after review"
    return f"{how}, from your credit score (grade {score.grade}). {explanation(plain_reasons(score.reasons))}"


def record_disclosure(session: Session, application: Application, score: Score, quote: ScheduleQuote, *,
                      annual_rate: Decimal, fees: Decimal, by: str) -> Disclosure:
    """What the customer is shown now for an approved application. Shown again before the acknowledgement, it
    replaces what was shown; once acknowledged it stands (409)."""
    if application.status != ApplicationStatus.APPROVED:
        raise Problem(409, "Conflict", f"Only an approved application's terms are disclosed; this one is "
                                       f"{application.status}.")
    disclosure = session.get(Disclosure, application.id)
    if disclosure is not None and disclosure.acknowledged_at is not None:
        raise Problem(409, "Already acknowledged", "The customer acknowledged these terms; they stand as shown.")
    values = {
        "amount": application.approved_amount, "annual_rate": annual_rate, "term_months": application.term_months,
        "repayment_method": application.repayment_method, "fees": fees,
        "penalty_daily_rate": quote.penalty_daily_rate, "first_instalment": quote.instalments[0].total,
        "total_interest": quote.total_interest, "total_cost": quote.total_interest + fees,
        "decision": decision_in_words(application, score), "reasons": plain_reasons(score.reasons),
        "shown_at": now(), "shown_by": by,
    }
    if disclosure is None:
        disclosure = Disclosure(application_id=application.id, **values)
    else:
        for name, value in values.items():
            setattr(disclosure, name, value)
    session.add(disclosure)
    session.flush()
    return disclosure


def get_disclosure(session: Session, application: Application) -> Disclosure:
    disclosure = session.get(Disclosure, application.id)
    if disclosure is None:
        raise Problem(404, "Not found", "Nothing has been disclosed for this application yet.")
    return disclosure


def acknowledge_disclosure(session: Session, application: Application, command: AcknowledgementCommand,
                           by: str) -> Disclosure:
    """The customer's acknowledgement of what was shown; acknowledging again answers the first one."""
    disclosure = get_disclosure(session, application)
    if disclosure.acknowledged_at is not None:
        return disclosure
    at = command.acknowledged_at or datetime.now(UTC)
    shown = disclosure.shown_at if disclosure.shown_at.tzinfo else disclosure.shown_at.replace(tzinfo=UTC)
    if at < shown or at > datetime.now(UTC):
        raise field_problem("body.acknowledged_at", "must lie between the disclosure and now")
    disclosure.acknowledged_at, disclosure.acknowledged_channel = at, command.channel.value
    disclosure.acknowledgement_recorded_by = by
    session.add(disclosure)
    session.flush()
    return disclosure


def disclosed_rate(session: Session, application: Application, given: Decimal | None) -> Decimal:
    """The rate to book: the one the customer acknowledged. 409 without an acknowledgement, or for another rate."""
    disclosure = session.get(Disclosure, application.id)
    if disclosure is None or disclosure.acknowledged_at is None:
        raise Problem(409, "Disclosure not acknowledged", "The customer must be shown the terms and acknowledge "
                                                          "them (PUT …/disclosure, then POST …/disclosure/"
                                                          "acknowledgement) before the money is paid out.")
    if disclosure.amount != application.approved_amount:
        raise Problem(409, "Disclosure out of date", "The approved amount is not the one disclosed.")
    if given is not None and given != disclosure.annual_rate:
        raise field_problem("body.annual_rate", f"the customer acknowledged {disclosure.annual_rate}; a loan is "
                                                "booked at the rate disclosed", status=409, title="Conflict")
    return disclosure.annual_rate


def customer_evaluation(session: Session, customer_id: str, scope: Visibility) -> EvaluationRead:
    """The customer's latest evaluation the caller may see (404 as for an unknown customer otherwise)."""
    score = session.exec(select(Score).where(
        Score.customer_id == customer_id, Score.shadow == False,  # noqa: E712
        scope.where(Score.branch, Score.created_by)).order_by(Score.created_at.desc(), Score.id.desc())).first()
    if score is None:
        raise Problem(404, "Not found", f"No evaluation of customer {customer_id!r}.")
    phrases = plain_reasons(score.reasons)
    return EvaluationRead(customer_id=customer_id, evaluated_on=score.created_at.date(), grade=score.grade,
                          outcome=OUTCOMES[score.decision], explanation=explanation(phrases), reasons=phrases)
