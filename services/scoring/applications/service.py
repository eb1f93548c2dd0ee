"""Application rules: the policy decides at submission; review cases need a second person (maker-checker);
only an approved application is disbursed, once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from services.scoring.applications.models import (Application, ApplicationCreate, ApplicationEvent,
                                                  ApplicationStatus, DecisionCommand, ReviewDecision)
from services.scoring.ids import now
from shared.auth.scope import Visibility
from shared.errors import Problem

_STATUS_FOR_DECISION = {"approve": ApplicationStatus.APPROVED, "decline": ApplicationStatus.DECLINED,
                        "review": ApplicationStatus.IN_REVIEW}


def _record(session: Session, application: Application, to: ApplicationStatus, actor: str, reason: str,
            details: dict[str, Any] | None = None, from_status: str | None = None) -> None:
    session.add(ApplicationEvent(application_id=application.id, from_status=from_status, to_status=to, actor=actor,
                                 reason=reason, details=details))
    application.status = to
    application.updated_at = now()
    session.add(application)


def submit_application(session: Session, command: ApplicationCreate, branch: str, score: dict[str, Any],
                       actor: str, application_id: str) -> Application:
    """`score` is the stored champion score of this application; its decision sets the first status."""
    decision = score["decision"]
    status = _STATUS_FOR_DECISION[decision]
    application = Application(
        id=application_id, customer_id=command.customer_id, product=command.product, amount=command.amount,
        term_months=command.term_months, purpose=command.purpose, repayment_method=command.repayment_method,
        branch=branch, status=status, score_id=score["id"], policy_decision=decision,
        approved_amount=min(command.amount, score["suggested_limit"]) if decision == "approve" else None,
        rate_adjustment_bps=score["rate_adjustment_bps"], submitted_by=actor,
    )
    session.add(application)
    session.flush()
    _record(session, application, status, actor, f"policy: grade {score['grade']} -> {decision}",
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
                      limit: int) -> list[Application]:
    """The review queue is `status=in_review`: oldest first, so nothing waits forever."""
    query = select(Application).where(scope.where(Application.branch, Application.submitted_by)) \
        .order_by(Application.created_at, Application.id).limit(limit)
    if status is not None:
        query = query.where(Application.status == status)
    return list(session.exec(query).all())


def history(session: Session, application_id: str) -> list[ApplicationEvent]:
    return list(session.exec(select(ApplicationEvent).where(ApplicationEvent.application_id == application_id)
                             .order_by(ApplicationEvent.at, ApplicationEvent.id)).all())


def decide_application(session: Session, application: Application, command: DecisionCommand, suggested_limit: Decimal,
                       actor: str) -> Application:
    if application.status != ApplicationStatus.IN_REVIEW:
        raise Problem(409, "Conflict", f"Only an application in review can be decided; this one is "
                                       f"{application.status}.")
    if actor == application.submitted_by:
        raise Problem(403, "Forbidden", "Maker-checker: the person who submitted an application cannot decide it.")
    to = ApplicationStatus.APPROVED if command.decision == ReviewDecision.APPROVE else ApplicationStatus.DECLINED
    # Claimed in the database, not only checked on the row read: of two deciders racing, the second finds the
    # application no longer in review (PostgreSQL re-checks the condition once the first commits; SQLite lets
    # one writer in) and gets the 409, so a decision is never overwritten.
    claimed = session.execute(update(Application).where(
        Application.id == application.id, Application.status == ApplicationStatus.IN_REVIEW,  # type: ignore[arg-type]
    ).values(status=to).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        session.rollback()
        raise Problem(409, "Conflict", "This application was decided meanwhile; it is no longer in review.")
    if to == ApplicationStatus.APPROVED:
        application.approved_amount = command.approved_amount or min(application.amount, suggested_limit)
    application.decided_by = actor
    application.decision_reason = command.reason
    _record(session, application, to, actor, command.reason, from_status=ApplicationStatus.IN_REVIEW)
    return application


def loan_body(application: Application, disbursement_date: date, annual_rate: Decimal) -> dict[str, Any]:
    """What the monitoring service's POST /loans needs; the application id is the loan's external id. The loan's
    officer is whoever disburses: monitoring takes it from the token sent with this body."""
    return {
        "customer_id": application.customer_id, "external_id": application.id, "product": application.product,
        "principal": str(application.approved_amount), "annual_rate": str(annual_rate),
        "term_months": application.term_months, "repayment_method": application.repayment_method,
        "disbursement_date": disbursement_date.isoformat(), "purpose": application.purpose,
        "branch": application.branch,
    }


def require_disbursable(application: Application) -> None:
    if application.status != ApplicationStatus.APPROVED:
        raise Problem(409, "Conflict", f"Only an approved application can be disbursed; this one is "
                                       f"{application.status}.")


def mark_disbursed(session: Session, application: Application, loan_id: str, actor: str) -> Application:
    require_disbursable(application)
    application.loan_id = loan_id
    _record(session, application, ApplicationStatus.DISBURSED, actor, "loan registered with monitoring",
            {"loan_id": loan_id}, from_status=ApplicationStatus.APPROVED)
    return application
