"""Application rules: the policy decides at submission; review cases need a second person (maker-checker), and an
approval above what one officer may approve a third, of the credit committee; every approval and disbursement
stays within the decision policy's bounds (policy/service.py); only an approved application is disbursed, once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from services.scoring.db import outbox
from services.scoring.applications.models import (Application, ApplicationCreate, ApplicationEvent,
                                                  ApplicationRead, ApplicationStatus, DecisionCommand, ReviewDecision)
from shared.ids import now
from services.scoring.policy import service as policy
from services.scoring.scores.models import Score
from services.scoring.screening.models import HitStatus, ScreeningHit
from services.scoring.settings import ScoringSettings
from shared.auth.scope import Visibility
from shared.errors import Problem, field_problem
from shared.outbox import EventType
from shared.pagination import Page, PageRequest, keyset

_STATUS_FOR_DECISION = {"approve": ApplicationStatus.APPROVED, "decline": ApplicationStatus.DECLINED,
                        "review": ApplicationStatus.IN_REVIEW}


def _record(session: Session, application: Application, to: ApplicationStatus, actor: str, reason: str,
            details: dict[str, Any] | None = None, from_status: str | None = None) -> None:
    session.add(ApplicationEvent(application_id=application.id, from_status=from_status, to_status=to, actor=actor,
                                 reason=reason, details=details))
    application.status = to
    application.updated_at = now()
    session.add(application)
    _publish(session, application, to, actor)


def _publish(session: Session, application: Application, to: ApplicationStatus, actor: str) -> None:
    """The webhook events of a status change, in the transaction that makes it."""
    if to in (ApplicationStatus.APPROVED, ApplicationStatus.DECLINED):
        type_, payload = EventType.APPLICATION_DECIDED, {"status": to.value, "decided_by": actor}
    elif to == ApplicationStatus.DISBURSED:
        type_, payload = EventType.LOAN_DISBURSED, {"loan_id": application.loan_id, "disbursed_by": actor}
    else:
        return
    outbox.record(session, type_, application.id, {
        "application_id": application.id, "customer_id": application.customer_id, "branch": application.branch,
        "product": application.product, "amount": application.amount, "term_months": application.term_months,
        "approved_amount": application.approved_amount, **payload,
    }, branch=application.branch, customer_id=application.customer_id, owner=application.submitted_by)


def check_branch(branch: str, customer_branch: str | None) -> None:
    """An application is filed at its customer's branch, like everything hanging off a customer, so no branch sees
    an application (nor, once paid out, a loan) about a customer it cannot read."""
    if customer_branch is not None and branch != customer_branch:
        raise field_problem("body.branch", f"the customer is of branch {customer_branch}; its applications are "
                                           "filed there")


def check_request(settings: ScoringSettings, command: ApplicationCreate) -> None:
    """Before anything is scored: the amount and term asked for lie in the product's bands (422 otherwise)."""
    policy.check_application(settings, command.product, command.amount, command.term_months)


def first_decision(settings: ScoringSettings, score: dict[str, Any], amount: Decimal, *, collateral: str | None,
                   guarantor: str | None) -> tuple[str, Decimal | None, str]:
    """The status an application starts in, its approved amount and why: the score's decision, except that the
    policy alone approves nothing above the committee threshold (that goes to review) and a grade without the
    security it needs is referred or declined."""
    decision = score["decision"]
    approved = min(amount, score["suggested_limit"]) if decision == "approve" else None
    reason = f"policy: grade {score['grade']} -> {decision}"
    held = [f"{r['feature']} {r['code']}" for r in score["reasons"] if r.get("unit") == "input_contract"]
    if held:
        reason += f" (input contract: {', '.join(held)})"
    if approved is not None and not policy.auto_approvable(settings, approved, score["grade"]):
        decision, approved = "review", None
        reason += f"; above the committee threshold of {settings.committee_threshold}: review"
    elif approved is not None and score["grade"] in settings.fast_lane_grades:
        reason += "; fast lane"
    missing = policy.missing_security(settings, score["grade"], collateral=collateral, guarantor=guarantor)
    if missing is not None and decision != "decline":
        rule, why = missing
        decision, approved = rule.without, None
        reason += f"; {why}: {rule.without}"
    return _STATUS_FOR_DECISION[decision], approved, reason


def submit_application(session: Session, command: ApplicationCreate, branch: str, score: dict[str, Any],
                       actor: str, application_id: str, settings: ScoringSettings, *,
                       hashes: dict[str, str | None] | None = None, screening_hold: str | None = None) -> Application:
    """`score` is the stored champion score of this application; `first_decision` sets the first status, and a
    screening hit (`screening_hold` names the checks) holds in review what the policy would approve."""
    status, approved, reason = first_decision(settings, score, command.amount, collateral=command.collateral,
                                              guarantor=command.guarantor)
    held = None
    if screening_hold is not None and status != ApplicationStatus.DECLINED:
        held, status, approved = approved, ApplicationStatus.IN_REVIEW, None
        reason += f"; screening: {screening_hold}: review"
    application = Application(
        id=application_id, customer_id=command.customer_id, product=command.product, amount=command.amount,
        term_months=command.term_months, purpose=command.purpose, repayment_method=command.repayment_method,
        collateral=command.collateral, guarantor=command.guarantor, branch=branch, status=status,
        score_id=score["id"], policy_decision=score["decision"], held_approved_amount=held, **(hashes or {}),
        approved_amount=approved, rate_adjustment_bps=score["rate_adjustment_bps"], submitted_by=actor,
    )
    session.add(application)
    session.flush()
    _record(session, application, status, actor, reason,
            {"score_id": score["id"], "grade": score["grade"], "score": score["score"]})
    return application


def get_application(session: Session, application_id: str, scope: Visibility) -> Application:
    """The application, or 404 when unknown or outside the caller's scope: its branch, or its submitter for a
    partner (existence is not leaked)."""
    application = session.get(Application, application_id)
    if application is None or not scope.allows(application.branch, application.submitted_by):
        raise Problem(404, "Not found", f"No application {application_id!r}.")
    return application


def list_applications(session: Session, status: ApplicationStatus | None, scope: Visibility,
                      paging: PageRequest) -> Page[ApplicationRead]:
    """The review queue is `status=in_review`: oldest first, so nothing waits forever."""
    query = select(Application).where(scope.where(Application.branch, Application.submitted_by))
    if status is not None:
        query = query.where(Application.status == status)
    return keyset(session, query, paging, Application.created_at, Application.id,
                  read=lambda rows: [ApplicationRead.model_validate(a) for a in rows])


def history(session: Session, application_id: str) -> list[ApplicationEvent]:
    return list(session.exec(select(ApplicationEvent).where(ApplicationEvent.application_id == application_id)
                             .order_by(ApplicationEvent.at, ApplicationEvent.id)).all())


def decide_application(session: Session, application: Application, command: DecisionCommand, score: Score,
                       actor: str, settings: ScoringSettings, *, by_committee: bool) -> Application:
    """In review: approved, declined, or (an approval above what an officer may approve alone) passed to the credit
    committee. In committee: approved or declined by a member of the committee, neither its submitter nor the
    officer who proposed it."""
    current = application.status
    if current not in (ApplicationStatus.IN_REVIEW, ApplicationStatus.IN_COMMITTEE):
        raise Problem(409, "Conflict", f"Only an application in review or in committee can be decided; this one is "
                                       f"{current}.")
    if actor == application.submitted_by:
        raise Problem(403, "Forbidden", "Maker-checker: the person who submitted an application cannot decide it.")
    if current == ApplicationStatus.IN_COMMITTEE:
        if not by_committee:
            raise Problem(403, "Forbidden", "This approval is above what an officer may approve alone: a member of "
                                            "the credit committee decides it.")
        if actor == application.decided_by:
            raise Problem(403, "Forbidden", "The officer who proposed this approval cannot also give the committee's.")
    to = ApplicationStatus.DECLINED
    amount = None
    if command.decision == ReviewDecision.APPROVE:
        require_screened(session, application)
        missing = policy.missing_security(settings, score.grade, collateral=application.collateral,
                                          guarantor=application.guarantor)
        if missing is not None:
            raise Problem(409, "Security required", f"The decision policy: {missing[1]}; this application can "
                                                    "only be declined.")
        amount = command.approved_amount or application.approved_amount or min(application.amount,
                                                                               score.suggested_limit)
        higher = policy.needs_committee(settings, product=application.product, requested=application.amount,
                                        grade=score.grade, amount=amount, field="body.approved_amount",
                                        by_committee=by_committee)
        to = ApplicationStatus.IN_COMMITTEE if higher else ApplicationStatus.APPROVED
    # Claimed in the database, not only checked on the row read: of two deciders racing, the second finds the
    # application no longer where it was (PostgreSQL re-checks the condition once the first commits; SQLite lets
    # one writer in) and gets the 409, so a decision is never overwritten.
    claimed = session.execute(update(Application).where(
        Application.id == application.id, Application.status == current,  # type: ignore[arg-type]
    ).values(status=to).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        session.rollback()
        raise Problem(409, "Conflict", "This application was decided meanwhile; it is no longer in review.")
    if amount is not None:
        application.approved_amount = amount
    application.decided_by = actor
    application.decision_reason = command.reason
    details = {"approved_amount": str(amount)} if amount is not None else None
    _record(session, application, to, actor, command.reason, details, from_status=current)
    return application


def loan_body(application: Application, disbursement_date: date, annual_rate: Decimal) -> dict[str, Any]:
    """What the monitoring service's POST /loans needs; the application id is the loan's external id. The loan's
    officer is whoever disburses: monitoring takes it from the token sent with this body."""
    return {
        "customer_id": application.customer_id, "external_id": application.id, "product": application.product,
        "principal": str(application.approved_amount), "annual_rate": str(annual_rate),
        "term_months": application.term_months, "repayment_method": application.repayment_method,
        "disbursement_date": disbursement_date.isoformat(), "purpose": application.purpose,
        "collateral": application.collateral, "guarantor": application.guarantor, "branch": application.branch,
    }


def require_disbursable(application: Application) -> None:
    if application.status != ApplicationStatus.APPROVED:
        raise Problem(409, "Conflict", f"Only an approved application can be disbursed; this one is "
                                       f"{application.status}.")


def disbursement_rate(settings: ScoringSettings, application: Application, given: Decimal | None) -> Decimal:
    """The rate the loan is booked at (given, or base plus the grade's adjustment), inside the product's band; and
    the approved amount still inside the bounds (an approval recorded before them is not paid out past them)."""
    band = policy.product_band(settings, application.product, field="product")
    approved = application.approved_amount
    if approved is None or approved > application.amount or approved > band.max_amount:
        raise Problem(409, "Conflict", f"The approved amount {approved} exceeds the amount asked for or the "
                                       f"{application.product} maximum; it cannot be paid out.")
    rate = given if given is not None else (
        settings.base_annual_rate + Decimal(application.rate_adjustment_bps) / 10_000)
    policy.check_rate(settings, application.product, rate, "body.annual_rate")
    return rate


def mark_disbursed(session: Session, application: Application, loan_id: str, actor: str) -> Application:
    require_disbursable(application)
    application.loan_id = loan_id
    _record(session, application, ApplicationStatus.DISBURSED, actor, "loan registered with monitoring",
            {"loan_id": loan_id}, from_status=ApplicationStatus.APPROVED)
    return application


# --- screening's effect on the application (the checks themselves: screening/service.py) ---------------------

def open_hits(session: Session, application_id: str) -> list[ScreeningHit]:
    return list(session.exec(select(ScreeningHit).where(ScreeningHit.application_id == application_id,
                                                        ScreeningHit.status == HitStatus.OPEN)
                             .order_by(ScreeningHit.created_at, ScreeningHit.id)).all())


def require_screened(session: Session, application: Application) -> None:
    """Nothing is approved or paid out while a screening hit is unresolved (409 naming the checks)."""
    pending = open_hits(session, application.id)
    if pending:
        raise Problem(409, "Screening hit unresolved",
                      f"Screening found {', '.join(h.check for h in pending)} on this application; a reviewer must "
                      "confirm or clear it first.", extra={"hits": [h.id for h in pending]})


def _claim(session: Session, application: Application, to: ApplicationStatus) -> str:
    """The status moved in the database only if still where it was read (a racing resolution gets the 409)."""
    current = application.status
    claimed = session.execute(update(Application).where(
        Application.id == application.id, Application.status == current,  # type: ignore[arg-type]
    ).values(status=to).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        session.rollback()
        raise Problem(409, "Conflict", "This application changed meanwhile; read it again.")
    return current


def screening_held(session: Session, application: Application, actor: str, checks: str, hits: list[str]) -> None:
    """A hit found before disbursement: the application stays approved, its payout blocked until resolved."""
    session.add(ApplicationEvent(application_id=application.id, from_status=application.status,
                                 to_status=application.status, actor=actor,
                                 reason=f"screening before disbursement: {checks}", details={"hits": hits}))


def screening_cleared(session: Session, application: Application, actor: str, reason: str, hits: list[str]) -> None:
    """Cleared: what the policy approved before screening held it is approved now; otherwise the application stays
    where it is (in review, a reviewer decides it as any other; approved, it may be disbursed)."""
    details: dict[str, Any] = {"hits": hits, "screening": "cleared"}
    if application.status == ApplicationStatus.IN_REVIEW and application.held_approved_amount is not None:
        current = _claim(session, application, ApplicationStatus.APPROVED)
        application.approved_amount, application.held_approved_amount = application.held_approved_amount, None
        application.decided_by, application.decision_reason = actor, reason
        details["approved_amount"] = str(application.approved_amount)
        _record(session, application, ApplicationStatus.APPROVED, actor, f"screening cleared: {reason}", details,
                from_status=current)
        return
    session.add(ApplicationEvent(application_id=application.id, from_status=application.status,
                                 to_status=application.status, actor=actor, reason=f"screening cleared: {reason}",
                                 details=details))
    application.updated_at = now()
    session.add(application)


def screening_confirmed(session: Session, application: Application, actor: str, reason: str,
                        hits: list[str]) -> None:
    """Confirmed: the application is declined with the reviewer's reason."""
    if application.status not in (ApplicationStatus.IN_REVIEW, ApplicationStatus.IN_COMMITTEE,
                                  ApplicationStatus.APPROVED):
        raise Problem(409, "Conflict", f"This application is {application.status}; it cannot be declined now.")
    current = _claim(session, application, ApplicationStatus.DECLINED)
    application.approved_amount = application.held_approved_amount = None
    application.decided_by, application.decision_reason = actor, reason
    _record(session, application, ApplicationStatus.DECLINED, actor, f"screening confirmed: {reason}",
            {"hits": hits, "screening": "confirmed"}, from_status=current)
