"""Campaigns: a target (segment and grades), an audience of consenting customers, replies via the contact log."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, exists
from sqlmodel import Session, select

from services.customer.campaigns.models import Campaign, CampaignCreate, CampaignMember, CampaignRead, \
    CampaignReport, CampaignStatus, Rates, Reply
from services.customer.common import utcnow
from services.customer.consents.models import Consent, Purpose
from services.customer.customers.models import Customer, CustomerStatus
from services.customer.offers.catalogue import ProductKind
from services.customer.offers.service import product
from services.customer.portrait.models import CustomerPortrait, SegmentMember, credit_clean
from services.customer.scoping import WRITE_ROLES, can_change, can_see
from shared.auth.scope import visibility
from shared.auth.tokens import Principal
from shared.errors import Problem, field_problem
from shared.pagination import Page, PageRequest, keyset

# Contact outcomes that count as a conversion or a refusal; any other outcome on a campaign contact is a response.
_CONVERTED = frozenset({"converted", "accepted", "signed"})
_DECLINED = frozenset({"declined", "not_interested"})


def _read(campaign: Campaign) -> CampaignRead:
    return CampaignRead.model_validate(campaign.model_dump())


def create_campaign(session: Session, principal: Principal, command: CampaignCreate) -> CampaignRead:
    if command.product_code is not None and product(command.product_code) is None:
        raise field_problem("body.product_code", "not in the product catalogue (GET /products)")
    if visibility(principal, among=WRITE_ROLES).everything:
        branch = command.branch
    else:
        # A campaign without a branch targets the whole bank: an officer's is its own branch's, and an officer
        # whose token names no branch targets nobody.
        branch = command.branch or principal.branch
        if branch is None or not can_change(principal, branch, None):
            raise field_problem("body.branch", "a loan officer targets their own branch only")
    campaign = Campaign(name=command.name, segment=command.segment.value if command.segment else None,
                        grades=sorted(set(command.grades)), product_code=command.product_code, branch=branch,
                        created_by=principal.sub)
    session.add(campaign)
    session.flush()
    return _read(campaign)


def visible_campaign(session: Session, principal: Principal, campaign_id: str, *, change: bool = False) -> Campaign:
    """The campaign, or 404 outside the caller's scope (a bank-wide one, of no branch, is seen by the roles that
    see every branch); `change` for a write, judged by the caller's writing roles."""
    campaign = session.get(Campaign, campaign_id)
    allowed = can_change if change else can_see
    if campaign is None or not allowed(principal, campaign.branch, None):
        raise Problem(404, "Not found", f"No campaign {campaign_id!r}.")
    return campaign


def build_audience(session: Session, principal: Principal, campaign_id: str) -> CampaignRead:
    """Everyone matching the target, minus those without a marketing consent in force now."""
    campaign = visible_campaign(session, principal, campaign_id, change=True)
    if session.exec(select(CampaignMember).where(CampaignMember.campaign_id == campaign.id,
                                                 CampaignMember.reply.is_not(None))).first():
        raise Problem(409, "Campaign under way", "Replies are already recorded; the audience can no longer change.")
    target = (select(Customer.id, CustomerPortrait.latest_grade)
              .join(CustomerPortrait, CustomerPortrait.customer_id == Customer.id, isouter=True)
              .where(Customer.status == CustomerStatus.ACTIVE.value))
    if campaign.branch:
        target = target.where(Customer.branch == campaign.branch)
    if campaign.segment:
        target = target.where(Customer.id.in_(select(SegmentMember.customer_id)
                                              .where(SegmentMember.segment == campaign.segment)))
    if campaign.grades:
        target = target.where(CustomerPortrait.latest_grade.in_(campaign.grades))
    offered = product(campaign.product_code) if campaign.product_code else None
    if offered is not None and offered.kind in (ProductKind.LOAN, ProductKind.CARD):
        # New credit reaches nobody on credit hold (portrait rules), judged on the stored portraits.
        target = target.where(*credit_clean(CustomerPortrait))
    now = utcnow()
    consented = exists().where(Consent.customer_id == Customer.id, Consent.purpose == Purpose.MARKETING.value,
                               Consent.withdrawn_at.is_(None), Consent.granted_at <= now)
    matched = session.execute(target.add_columns(consented.label("consented"))).all()
    audience = [(cid, grade) for cid, grade, ok in matched if ok]
    segments: dict[str, list[str]] = defaultdict(list)
    for segment, cid in session.execute(select(SegmentMember.segment, SegmentMember.customer_id).where(
            SegmentMember.customer_id.in_([cid for cid, _ in audience]))).all():
        segments[cid].append(segment)
    session.execute(delete(CampaignMember).where(CampaignMember.campaign_id == campaign.id))
    session.add_all(CampaignMember(campaign_id=campaign.id, customer_id=cid, grade=grade,
                                   segments=",".join(sorted(segments[cid]))) for cid, grade in audience)
    campaign.status = CampaignStatus.AUDIENCE_BUILT.value
    campaign.audience_size = len(audience)
    campaign.excluded_without_consent = len(matched) - len(audience)
    campaign.audience_built_at = now
    session.add(campaign)
    session.flush()
    return _read(campaign)


def audience(session: Session, principal: Principal, campaign_id: str, paging: PageRequest) -> Page[str]:
    campaign = visible_campaign(session, principal, campaign_id)
    return keyset(session, select(CampaignMember.customer_id).where(CampaignMember.campaign_id == campaign.id),
                  paging, CampaignMember.customer_id, key=lambda customer_id: (customer_id,))


def record_reply(session: Session, campaign_id: str, customer_id: str, outcome: str) -> None:
    """Called by the contact log when a contact names a campaign."""
    member = session.get(CampaignMember, (campaign_id, customer_id))
    if member is None:
        raise field_problem("body.campaign_id", "this customer is not in that campaign's audience")
    reply = Reply.CONVERTED if outcome in _CONVERTED else Reply.DECLINED if outcome in _DECLINED else Reply.RESPONDED
    # A conversion is final; a later courtesy call does not turn it back into a mere response.
    if member.reply != Reply.CONVERTED:
        member.reply = reply.value
        member.replied_at = utcnow()
        session.add(member)


def _rates(key: str, members: list[CampaignMember]) -> Rates:
    responded = sum(1 for m in members if m.reply is not None)
    converted = sum(1 for m in members if m.reply == Reply.CONVERTED)
    size = len(members)
    return Rates(key=key, audience=size, responded=responded, converted=converted,
                 response_rate=round(responded / size, 4) if size else 0.0,
                 conversion_rate=round(converted / size, 4) if size else 0.0)


def report(session: Session, principal: Principal, campaign_id: str) -> CampaignReport:
    campaign = visible_campaign(session, principal, campaign_id)
    members = list(session.exec(select(CampaignMember).where(CampaignMember.campaign_id == campaign.id)).all())
    by_grade: dict[str, list[CampaignMember]] = defaultdict(list)
    by_segment: dict[str, list[CampaignMember]] = defaultdict(list)
    for member in members:
        by_grade[member.grade or "unscored"].append(member)
        for segment in member.segments.split(",") if member.segments else ["none"]:
            by_segment[segment].append(member)
    return CampaignReport(campaign_id=campaign.id, total=_rates("all", members),
                          by_grade=[_rates(k, v) for k, v in sorted(by_grade.items())],
                          by_segment=[_rates(k, v) for k, v in sorted(by_segment.items())])
