"""Point-in-time relationship measures, the loyalty index, and the records of information shared and products held.

Every measure of a date is computed from events dated on or before the end of that day (UTC), never from the
stored portrait (which is latest-only): a training extract taken as of a date uses nothing the bank learnt later.
A page of customers costs a fixed number of GROUP BY queries over the page's ids, whatever its size.
Definitions and weights: README, "Relationship measures".
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from statistics import fmean
from typing import Any

import sqlmodel
from sqlalchemy import and_, case, exists, func, or_, select
from sqlmodel import Session

from services.customer.common import as_utc, utcnow
from services.customer.complaints.models import Complaint, ComplaintKind, ComplaintStatus
from services.customer.consents.models import Consent, Purpose
from services.customer.customers.models import Customer
from services.customer.interactions.models import RELATIONSHIP_PURPOSES, ContactPurpose, Direction, Interaction
from services.customer.portrait import rules
from services.customer.relationship.models import DisclosureAcknowledged, DocumentProvided, HoldingRead, \
    ProductClosed, ProductHolding, ProductOpened, RelationshipFeatures, SharingEvent, SharingEventRead, SharingKind, \
    decimal_or_none
from services.customer.surveys.models import CSAT_DIMENSIONS, Survey
from services.customer.surveys.service import csat_of
from shared.pagination import Page, PageRequest, keyset
from shared.errors import Problem, field_problem

# The loyalty index: 100 x the weighted mean of five parts, each in [0, 1].
LOYALTY_WEIGHTS = {"satisfaction": 0.30, "communication": 0.20, "information_sharing": 0.20, "tenure": 0.15,
                   "products": 0.15}
FULL_TENURE_MONTHS = 60  # five years of relationship earn the whole tenure part
FULL_PRODUCTS = 3
COMPLAINT_PENALTY = 0.1  # off satisfaction for each complaint of the window not answered by its deadline
LOYALTY_BANDS = ((70.0, "high"), (40.0, "medium"), (0.0, "low"))
# The information-sharing index: four equal parts, each saturating.
SHARING_PARTS = {"profile_updates": 2, "documents_provided": 3, "data_sharing_consents": 1,
                 "disclosures_acknowledged": 2}
_DAYS_PER_MONTH = 365.25 / 12
# The columns of a customer the measures read.
PERSON = (Customer.id, Customer.branch, Customer.kind, Customer.created_at, Customer.monthly_income, Customer.assets,
          Customer.closed_at, Customer.referred_by)


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def month_end(day: date) -> date:
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def months_between(start: date, end: date) -> int:
    return max(0, (end.year - start.year) * 12 + end.month - start.month - (end.day < start.day))


def end_of(day: date) -> datetime:
    """The first instant after `day` (UTC): events strictly before it are "on or before `day`"."""
    return datetime.combine(day + timedelta(days=1), time(), UTC)


def window_start(as_of: date, window_months: int) -> datetime:
    return end_of(add_months(as_of, -window_months))


def loyalty_band(index: float) -> str:
    return next(name for floor, name in LOYALTY_BANDS if index >= floor)


def information_sharing(counts: dict[str, int]) -> float:
    share = 100 / len(SHARING_PARTS)
    return round(sum(share * min(counts[name], full) / full for name, full in SHARING_PARTS.items()), 1)


def loyalty_parts(f: dict[str, Any]) -> dict[str, float]:
    marks = [] if f["csat_mean"] is None else [(f["csat_mean"] - 1) / 4]
    if f["nps_last"] is not None:
        marks.append(f["nps_last"] / 10)
    late = f["complaints"] - f["complaints_resolved_on_time"]
    satisfaction = (fmean(marks) if marks else 0.5) - COMPLAINT_PENALTY * late
    return {
        "satisfaction": min(1.0, max(0.0, satisfaction)),
        # One relationship contact a month, on average over the window, earns the whole part.
        "communication": min(1.0, f["contacts_relationship"] / f["window_months"]),
        "information_sharing": f["information_sharing"] / 100,
        "tenure": min(1.0, f["tenure_months"] / FULL_TENURE_MONTHS),
        "products": min(1.0, f["products_held"] / FULL_PRODUCTS),
    }


def loyalty_index(f: dict[str, Any]) -> float:
    parts = loyalty_parts(f)
    return round(100 * sum(LOYALTY_WEIGHTS[name] * parts[name] for name in LOYALTY_WEIGHTS), 1)


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y on x; None under two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mx, my = fmean(x for x, _ in points), fmean(y for _, y in points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


@dataclass
class _Facts:
    """What the page's GROUP BY queries found, per customer id."""

    contacts: dict[str, dict[tuple[str, str], int]]
    first_contact: dict[str, datetime]
    surveys: dict[str, list[Survey]]
    complaints: dict[str, tuple[int, int, int]]
    sharing: dict[str, dict[str, int]]
    later_before: dict[str, dict[str, Any]]
    consents: dict[str, int]
    holdings: dict[str, tuple[int, int, date | None]]


def _gather(session: Session, ids: list[str], as_of: date, window_months: int) -> _Facts:
    end, start = end_of(as_of), window_start(as_of, window_months)
    facts = _Facts(defaultdict(dict), {}, defaultdict(list), {}, defaultdict(lambda: defaultdict(int)),
                   defaultdict(dict), {}, {})
    if not ids:
        return facts
    for cid, purpose, direction, count in session.execute(
            select(Interaction.customer_id, Interaction.purpose, Interaction.direction, func.count())
            .where(Interaction.customer_id.in_(ids), Interaction.occurred_at >= start, Interaction.occurred_at < end)
            .group_by(Interaction.customer_id, Interaction.purpose, Interaction.direction)):
        facts.contacts[cid][(purpose, direction)] = count
    facts.first_contact = dict(session.execute(
        select(Interaction.customer_id, func.min(Interaction.occurred_at))
        .where(Interaction.customer_id.in_(ids), Interaction.purpose.in_(RELATIONSHIP_PURPOSES),
               Interaction.occurred_at < end).group_by(Interaction.customer_id)).all())
    for survey in session.execute(
            select(Survey).where(Survey.customer_id.in_(ids), Survey.answered_at >= start, Survey.answered_at < end)
            .order_by(Survey.customer_id, Survey.answered_at, Survey.id)).scalars():
        facts.surveys[survey.customer_id].append(survey)
    resolved = and_(Complaint.status == ComplaintStatus.RESOLVED.value, Complaint.responded_at < end)
    for cid, count, done, on_time in session.execute(
            select(Complaint.customer_id, func.count(), func.sum(case((resolved, 1), else_=0)),
                   func.sum(case((and_(resolved, Complaint.responded_at <= Complaint.due_at), 1), else_=0)))
            .where(Complaint.customer_id.in_(ids), Complaint.kind == ComplaintKind.COMPLAINT.value,
                   Complaint.opened_at >= start, Complaint.opened_at < end).group_by(Complaint.customer_id)):
        facts.complaints[cid] = (count, int(done or 0), int(on_time or 0))
    for cid, kind, count in session.execute(
            select(SharingEvent.customer_id, SharingEvent.kind, func.count())
            .where(SharingEvent.customer_id.in_(ids), SharingEvent.occurred_at >= start,
                   SharingEvent.occurred_at < end).group_by(SharingEvent.customer_id, SharingEvent.kind)):
        facts.sharing[cid][kind] = count
    # The first later profile update that changed a figure holds the figure as it stood on `as_of`.
    for cid, before in session.execute(
            select(SharingEvent.customer_id, SharingEvent.before)
            .where(SharingEvent.customer_id.in_(ids), SharingEvent.kind == SharingKind.PROFILE_UPDATE.value,
                   SharingEvent.occurred_at >= end).order_by(SharingEvent.customer_id, SharingEvent.occurred_at,
                                                             SharingEvent.created_at)):
        for name, value in (before or {}).items():
            facts.later_before[cid].setdefault(name, value)
    facts.consents = dict(session.execute(
        select(Consent.customer_id, func.count())
        .where(Consent.customer_id.in_(ids), Consent.purpose == Purpose.PARTNER_DATA_SHARING.value,
               Consent.granted_at < end, or_(Consent.withdrawn_at.is_(None), Consent.withdrawn_at >= end))
        .group_by(Consent.customer_id)).all())
    active = or_(ProductHolding.closed_on.is_(None), ProductHolding.closed_on > as_of)
    for cid, held, ever, first in session.execute(
            select(ProductHolding.customer_id, func.sum(case((active, 1), else_=0)), func.count(),
                   func.min(ProductHolding.opened_on))
            .where(ProductHolding.customer_id.in_(ids), ProductHolding.opened_on <= as_of)
            .group_by(ProductHolding.customer_id)):
        facts.holdings[cid] = (int(held or 0), ever, first)
    return facts


def _figure(person: Any, facts: _Facts, name: str) -> Decimal | None:
    later = facts.later_before.get(person.id, {})
    return decimal_or_none(later[name]) if name in later else getattr(person, name)


def _one(person: Any, facts: _Facts, as_of: date, window_months: int) -> RelationshipFeatures:
    cid = person.id
    contacts = facts.contacts.get(cid, {})

    def purpose(p: ContactPurpose) -> int:
        return sum(n for (pp, _), n in contacts.items() if pp == p.value)

    def direction(d: Direction) -> int:
        return sum(n for (pp, dd), n in contacts.items() if dd == d.value and pp in RELATIONSHIP_PURPOSES)

    held, ever, first_product = facts.holdings.get(cid, (0, 0, None))
    starts = [as_utc(person.created_at).date(), first_product,
              as_utc(facts.first_contact[cid]).date() if cid in facts.first_contact else None]
    since = min(day for day in starts if day is not None)
    surveys = facts.surveys.get(cid, [])
    answered = [(s, csat_of(s)) for s in surveys]
    scored = [(s, c) for s, c in answered if c is not None]
    origin = window_start(as_of, window_months)
    trend = slope([((as_utc(s.answered_at) - origin).total_seconds() / 86400 / _DAYS_PER_MONTH, c)
                   for s, c in scored])
    dimensions = {name: round(fmean(values), 2) for name in CSAT_DIMENSIONS
                  if (values := [getattr(s, name) for s in surveys if getattr(s, name) is not None])}
    complaints, resolved, on_time = facts.complaints.get(cid, (0, 0, 0))
    sharing = facts.sharing.get(cid, {})
    counts = {"profile_updates": sharing.get(SharingKind.PROFILE_UPDATE.value, 0),
              "documents_provided": sharing.get(SharingKind.DOCUMENT_PROVIDED.value, 0),
              "data_sharing_consents": facts.consents.get(cid, 0),
              "disclosures_acknowledged": sharing.get(SharingKind.DISCLOSURE_ACKNOWLEDGED.value, 0)}
    income, assets = _figure(person, facts, "monthly_income"), _figure(person, facts, "assets")
    tier = rules.value_tier(rules.Features(
        closed=False, tenure_months=0, products_held=held, contacts_90d=0, contacts_prior_90d=0,
        days_since_last_contact=None, csat_trend=None, nps_latest=None, complaints_12m=0, monthly_income=income,
        assets=assets, latest_grade=None))
    nps = [s.nps for s in surveys if s.nps is not None]
    f: dict[str, Any] = {
        "customer_id": cid, "as_of": as_of, "window_months": window_months, "branch": person.branch,
        "segment": tier.value, "customer_type": person.kind, "since": since,
        "tenure_months": months_between(since, as_of) if since <= as_of else 0,
        "annual_income": None if income is None else income * 12, "monthly_debt_payments": None,
        "contacts_service": purpose(ContactPurpose.SERVICE), "contacts_marketing": purpose(ContactPurpose.MARKETING),
        "contacts_followup": purpose(ContactPurpose.POST_LOAN_FOLLOW_UP),
        "contacts_collection": purpose(ContactPurpose.COLLECTION),
        "contacts_inbound": direction(Direction.INBOUND), "contacts_outbound": direction(Direction.OUTBOUND),
        "csat_mean": round(fmean(c for _, c in scored), 2) if scored else None,
        "csat_trend": None if trend is None else round(trend, 4), "nps_last": nps[-1] if nps else None,
        "survey_dimensions": dimensions, "surveys_count": len(surveys), "complaints": complaints,
        "complaints_resolved": resolved, "complaints_resolved_on_time": on_time, **counts,
        "information_sharing": information_sharing(counts), "products_held": held, "products_ever": ever,
        "closed_on": as_utc(person.closed_at).date() if person.closed_at is not None else None,
    }
    f["contacts_relationship"] = f["contacts_service"] + f["contacts_marketing"] + f["contacts_followup"]
    f["loyalty_index"] = loyalty_index(f)
    f["loyalty_band"] = loyalty_band(f["loyalty_index"])
    return RelationshipFeatures.model_validate(f)


def features_of(session: Session, people: Sequence[Any], as_of: date, window_months: int
                ) -> list[RelationshipFeatures]:
    """The measures of each customer in `people` (rows with the PERSON columns) as of the date."""
    facts = _gather(session, [p.id for p in people], as_of, window_months)
    return [_one(person, facts, as_of, window_months) for person in people]


def related_by(as_of: date) -> Any:
    """SQL: the customer had a relationship on or before `as_of` (registered, a product, or a relationship contact)."""
    end = end_of(as_of)
    return or_(Customer.created_at < end,
               exists().where(Interaction.customer_id == Customer.id, Interaction.occurred_at < end,
                              Interaction.purpose.in_(RELATIONSHIP_PURPOSES)),
               exists().where(ProductHolding.customer_id == Customer.id, ProductHolding.opened_on <= as_of))


def people_page(session: Session, scope: Any | None, as_of: date, after: str | None, limit: int) -> list[Any]:
    """Customers in scope with a relationship by `as_of`, by id after the cursor's; one row more than the page."""
    query = select(*PERSON).where(related_by(as_of))
    if scope is not None:
        query = query.where(scope)
    if after is not None:
        query = query.where(Customer.id > after)
    return list(session.execute(query.order_by(Customer.id).limit(limit + 1)).all())


def person(session: Session, customer_id: str) -> Any:
    return session.execute(select(*PERSON).where(Customer.id == customer_id)).one()


# --- writes: information shared, products held ---------------------------------------------------------------

def _when(value: datetime | None, field: str) -> datetime:
    at = value or utcnow()
    if at > utcnow() + timedelta(minutes=5):
        raise field_problem(field, "cannot be in the future")
    return at


def _event_read(event: SharingEvent) -> SharingEventRead:
    return SharingEventRead.model_validate(event.model_dump())


def record_profile_update(session: Session, customer: Customer, changes: dict[str, Any], by: str) -> None:
    """Called by the profile update in its own transaction: the fields changed, and the money figures replaced."""
    if not changes:
        return
    before = {name: None if getattr(customer, name) is None else str(getattr(customer, name))
              for name in ("monthly_income", "assets") if name in changes and changes[name] != getattr(customer, name)}
    session.add(SharingEvent(customer_id=customer.id, kind=SharingKind.PROFILE_UPDATE.value,
                             detail=",".join(sorted(changes))[:300], before=before or None, occurred_at=utcnow(),
                             recorded_by=by))


def record_document(session: Session, customer: Customer, command: DocumentProvided, by: str) -> SharingEventRead:
    event = SharingEvent(customer_id=customer.id, kind=SharingKind.DOCUMENT_PROVIDED.value,
                         detail=command.document_type.value, occurred_at=_when(command.provided_at,
                                                                                "body.provided_at"), recorded_by=by)
    session.add(event)
    session.flush()
    return _event_read(event)


def acknowledge_disclosure(session: Session, customer: Customer, command: DisclosureAcknowledged,
                           by: str) -> SharingEventRead:
    event = SharingEvent(customer_id=customer.id, kind=SharingKind.DISCLOSURE_ACKNOWLEDGED.value,
                         detail=command.disclosure.value,
                         occurred_at=_when(command.acknowledged_at, "body.acknowledged_at"), recorded_by=by)
    session.add(event)
    session.flush()
    return _event_read(event)


def sharing_events(session: Session, customer_id: str, paging: PageRequest) -> Page[SharingEventRead]:
    """Newest first."""
    # sqlmodel's select, so the page's rows are the events themselves (keyset reads their attributes).
    return keyset(session, sqlmodel.select(SharingEvent).where(SharingEvent.customer_id == customer_id), paging,
                  SharingEvent.occurred_at, SharingEvent.id, descending=True,
                  read=lambda rows: [_event_read(row) for row in rows])


def _holding_read(holding: ProductHolding) -> HoldingRead:
    return HoldingRead.model_validate(holding.model_dump())


def open_product(session: Session, customer: Customer, command: ProductOpened, by: str) -> HoldingRead:
    if command.closed_on is not None and command.closed_on < command.opened_on:
        raise field_problem("body.closed_on", "cannot be before opened_on")
    holding = ProductHolding(customer_id=customer.id, recorded_by=by, **command.model_dump())
    session.add(holding)
    session.flush()
    return _holding_read(holding)


def close_product(session: Session, customer: Customer, holding_id: str, command: ProductClosed) -> HoldingRead:
    holding = session.get(ProductHolding, holding_id)
    if holding is None or holding.customer_id != customer.id:
        raise Problem(404, "Not found", f"Customer {customer.id} holds no product {holding_id!r}.")
    if holding.closed_on is not None:
        raise Problem(409, "Already closed", f"This product was closed on {holding.closed_on}.")
    if command.closed_on < holding.opened_on:
        raise field_problem("body.closed_on", "cannot be before the product was opened")
    holding.closed_on = command.closed_on
    session.add(holding)
    session.flush()
    return _holding_read(holding)


def holdings(session: Session, customer_id: str) -> list[HoldingRead]:
    rows = session.execute(select(ProductHolding).where(ProductHolding.customer_id == customer_id)
                           .order_by(ProductHolding.opened_on, ProductHolding.id)).scalars()
    return [_holding_read(row) for row in rows]


def holders(session: Session, product_code: str, as_of: date) -> set[str]:
    return set(session.execute(select(ProductHolding.customer_id).where(
        ProductHolding.product_code == product_code, ProductHolding.opened_on <= as_of,
        or_(ProductHolding.closed_on.is_(None), ProductHolding.closed_on > as_of))).scalars())
