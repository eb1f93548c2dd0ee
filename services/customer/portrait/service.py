"""Computing a customer's portrait from the contact log, complaints, surveys and the peers' scores and loans."""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import fmean

from sqlalchemy import delete, func
from sqlmodel import Session, select

from services.customer.common import as_utc, utcnow
from services.customer.complaints.models import Complaint, ComplaintKind
from services.customer.customers.models import Customer, CustomerStatus
from services.customer.interactions.models import RELATIONSHIP_PURPOSES, Interaction
from services.customer.overview.sections import Unavailable
from services.customer.portrait import clusters, rules
from services.customer.portrait.models import ClusterProfile, CustomerPortrait, PortraitRead, SegmentMember
from services.customer.relationship.models import ChurnScore
from services.customer.surveys.service import answered_since, csat_of
from shared.clients.monitoring import CustomerRisk, LoanSummary
from shared.clients.scoring import Score


def _months_between(start: datetime, end: datetime) -> int:
    return max(0, (end.year - start.year) * 12 + end.month - start.month - (end.day < start.day))


def features(session: Session, customer: Customer, score: Score | None | Unavailable,
             loans: list[LoanSummary] | Unavailable, risk: CustomerRisk | Unavailable,
             stored: CustomerPortrait | None) -> tuple[rules.Features, list[float]]:
    """The rule inputs, and the CSAT of each answer of the last 12 months (oldest first)."""
    now = utcnow()
    churn = session.get(ChurnScore, customer.id)
    relationship = (Interaction.customer_id == customer.id, Interaction.purpose.in_(RELATIONSHIP_PURPOSES))
    contacts = select(func.count()).select_from(Interaction).where(*relationship)
    last_contact = session.exec(select(func.max(Interaction.occurred_at)).where(*relationship)).one()
    surveys = [s for s in answered_since(session, customer.id, now - timedelta(days=365)) if csat_of(s) is not None]
    csat = [csat_of(s) for s in surveys]
    # A peer that did not answer leaves the last known figure in place rather than pretending "none".
    if isinstance(loans, Unavailable):
        products = stored.products_held if stored else 0
    else:
        products = sum(1 for loan in loans if loan.status == "active")
    if isinstance(score, Unavailable):
        grade = stored.latest_grade if stored else None
    else:
        grade = score.grade if score else None
    if isinstance(risk, Unavailable):
        credit = {name: getattr(stored, name) if stored else None for name in _RISK}
    else:
        credit = {name: getattr(risk, name) for name in _RISK}
    return rules.Features(
        closed=customer.status != CustomerStatus.ACTIVE,
        tenure_months=_months_between(as_utc(customer.created_at), now),
        products_held=products,
        contacts_90d=session.exec(contacts.where(Interaction.occurred_at >= now - timedelta(days=90))).one(),
        contacts_prior_90d=session.exec(contacts.where(Interaction.occurred_at >= now - timedelta(days=180),
                                                       Interaction.occurred_at < now - timedelta(days=90))).one(),
        days_since_last_contact=None if last_contact is None else (now - as_utc(last_contact)).days,
        csat_trend=round(csat[-1] - fmean(csat[:-1]), 2) if len(csat) >= 2 else None,
        nps_latest=surveys[-1].nps if surveys else None,
        complaints_12m=session.exec(select(func.count()).select_from(Complaint).where(
            Complaint.customer_id == customer.id, Complaint.kind == ComplaintKind.COMPLAINT.value,
            Complaint.opened_at >= now - timedelta(days=365))).one(),
        monthly_income=customer.monthly_income,
        assets=customer.assets,
        latest_grade=grade,
        churn_risk=churn.probability if churn else None,
        **credit,
    ), csat


_RISK = ("current_max_dpd", "max_dpd_12m", "worst_class")


def refresh_portrait(session: Session, customer: Customer, score: Score | None | Unavailable,
                     loans: list[LoanSummary] | Unavailable, risk: CustomerRisk | Unavailable) -> PortraitRead:
    """Compute, store (for segment queries and campaigns) and return one customer's portrait."""
    stored = session.get(CustomerPortrait, customer.id)
    facts, csat = features(session, customer, score, loans, risk, stored)
    points = None
    if isinstance(score, Unavailable):
        points = stored.latest_score if stored else None
    elif score is not None:
        points = round(score.points)
    portrait = stored or CustomerPortrait(customer_id=customer.id)
    for name, value in {
        "tenure_months": facts.tenure_months, "products_held": facts.products_held,
        "contacts_90d": facts.contacts_90d, "contacts_prior_90d": facts.contacts_prior_90d,
        "days_since_last_contact": facts.days_since_last_contact, "csat_avg": round(fmean(csat), 2) if csat else None,
        "csat_trend": facts.csat_trend, "nps_latest": facts.nps_latest, "complaints_12m": facts.complaints_12m,
        "monthly_income": facts.monthly_income, "assets": facts.assets, "latest_score": points,
        "latest_grade": facts.latest_grade, "value_tier": rules.value_tier(facts).value,
        "lifecycle_stage": rules.lifecycle_stage(facts).value, "retention_risk": rules.retention_risk(facts),
        "current_max_dpd": facts.current_max_dpd, "max_dpd_12m": facts.max_dpd_12m, "worst_class": facts.worst_class,
        "refreshed_at": utcnow(),
    }.items():
        setattr(portrait, name, value)
    portrait.cluster = clusters.nearest(session, portrait)
    session.add(portrait)
    named = rules.segments(facts)
    _set_segments(session, customer.id, [s.value for s in named])
    session.flush()
    return read(session, customer, portrait, [s.value for s in named],
                "unavailable" if isinstance(score, Unavailable) else "available" if score else "none")


def _set_segments(session: Session, customer_id: str, names: list[str]) -> None:
    current = set(session.exec(select(SegmentMember.segment).where(SegmentMember.customer_id == customer_id)).all())
    gone = current - set(names)
    if gone:
        session.execute(delete(SegmentMember).where(SegmentMember.customer_id == customer_id,
                                                    SegmentMember.segment.in_(gone)))
    for name in set(names) - current:
        session.add(SegmentMember(segment=name, customer_id=customer_id))


def read(session: Session, customer: Customer, portrait: CustomerPortrait, segment_names: list[str],
         score_status: str) -> PortraitRead:
    profile = session.get(ClusterProfile, portrait.cluster) if portrait.cluster is not None else None
    hold = rules.credit_hold(portrait.current_max_dpd, portrait.max_dpd_12m, portrait.worst_class, customer.status,
                              customer.kyc_status)
    return PortraitRead.model_validate({**portrait.model_dump(), "segments": segment_names, "credit_hold": hold,
                                        "branch": customer.branch, "status": customer.status,
                                        "kyc_status": customer.kyc_status,
                                        "referred_by": customer.referred_by,
                                        "cluster_label": profile.label if profile else None,
                                        "score_status": score_status})
