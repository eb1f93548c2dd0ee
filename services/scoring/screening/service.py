"""Screening rules. The four pattern checks are pure functions over facts fetched from the peers (flows.py) and
the scoring service's own applications; the rest records hits and their resolution. A hit holds the application
in review (or, found before disbursement, blocks the payout) until a reviewer who did not submit it confirms the
hit (the application is declined) or clears it (it may proceed)."""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session, select

from services.scoring.applications import service as applications
from services.scoring.applications.models import Application, ApplicationCreate
from services.scoring.hashing import hash_personal
from shared.ids import now
from services.scoring.screening.models import Check, Finding, HitStatus, ScreeningHit, Stage
from services.scoring.settings import ScoringSettings
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.clients.customer import SharedIdentifiers
from shared.clients.monitoring import FeedRow, PayerFacts, ScreeningFacts
from shared.errors import Problem

# Kinds of credit that are not the proceeds of a cash-out or a collection from the public.
_OWN_INCOME = frozenset({"salary", "repayment"})


@dataclass
class Facts:
    """What screening knows of an applicant: None for a peer that could not answer, with why in `missing`."""

    identifiers: SharedIdentifiers | None
    feed: ScreeningFacts | None
    missing: dict[str, str] = field(default_factory=dict)


# --- the checks (pure) --------------------------------------------------------------------------------------

def shared_identifiers(shared: dict[str, tuple[int, list[str]]], settings: ScoringSettings) -> Finding | None:
    """`shared`: identifier kind -> how many other customers hold it, and (the first of) their ids. Counts and ids
    only, never the values."""
    over = {kind: (count, ids) for kind, (count, ids) in shared.items()
            if count >= (settings.screening_address_min_others if kind == "address"
                         else settings.screening_identifier_min_others)}
    if not over:
        return None
    return Finding(check=Check.SHARED_IDENTIFIERS,
                   facts={kind: {"other_customers": count, "customer_ids": ids}
                          for kind, (count, ids) in sorted(over.items())},
                   thresholds={"identifier_min_others": settings.screening_identifier_min_others,
                               "address_min_others": settings.screening_address_min_others})


def shared_payer(payers: Sequence[PayerFacts], settings: ScoringSettings) -> Finding | None:
    """A payer account that repaid several other borrowers' loans; fewer suffice when all named one estate."""
    hits = []
    for payer in payers:
        one_estate = len(payer.estates) == 1
        needed = settings.screening_payer_min_others_same_estate if one_estate else settings.screening_payer_min_others
        if payer.other_borrowers >= needed:
            hits.append({"payer_account": payer.payer_account, "payer_account_hash": payer.payer_account_hash,
                         "other_borrowers": payer.other_borrowers,
                         "other_borrower_ids": payer.other_borrower_ids, "estates": payer.estates,
                         "same_estate": one_estate})
    if not hits:
        return None
    return Finding(check=Check.SHARED_PAYER, facts={"payers": hits},
                   thresholds={"payer_min_others": settings.screening_payer_min_others,
                               "payer_min_others_same_estate": settings.screening_payer_min_others_same_estate})


def _near(a: Decimal, b: Decimal, tolerance: Decimal) -> bool:
    return abs(a - b) <= a * tolerance


def card_cash_out(rows: Sequence[FeedRow], settings: ScoringSettings) -> Finding | None:
    """Card purchases turned back into cash: each purchase paired with a later (within `cashout_days`) credit that
    is not salary or a repayment, or a cash withdrawal, of near the same amount; each row pairs once."""
    purchases = sorted((r for r in rows if r.kind == "card_purchase" and r.direction == "debit"),
                       key=lambda r: r.booked_on)
    returns = sorted((r for r in rows if (r.direction == "credit" and r.kind not in _OWN_INCOME)
                      or (r.direction == "debit" and r.kind == "cash")), key=lambda r: r.booked_on)
    used: set[int] = set()
    pairs = []
    window = timedelta(days=settings.screening_cashout_days)
    for purchase in purchases:
        for i, back in enumerate(returns):
            if i not in used and purchase.booked_on <= back.booked_on <= purchase.booked_on + window and \
                    _near(purchase.amount, back.amount, settings.screening_cashout_tolerance):
                used.add(i)
                pairs.append({"card_on": purchase.booked_on.isoformat(), "card_amount": str(purchase.amount),
                              "merchant": purchase.merchant, "back_on": back.booked_on.isoformat(),
                              "back_amount": str(back.amount), "back_kind": back.kind})
                break
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for purchase in purchases:
        spend[purchase.merchant or "(none)"] += purchase.amount
    total = sum(spend.values(), Decimal(0))
    top = sorted(spend.values(), reverse=True)[:settings.screening_cashout_top_merchants]
    share = (sum(top, Decimal(0)) / total).quantize(Decimal("0.0001")) if total else Decimal(0)
    concentrated = len(purchases) >= settings.screening_cashout_min_card_purchases and \
        share >= settings.screening_cashout_merchant_share
    if len(pairs) < settings.screening_cashout_min_pairs and not (pairs and concentrated):
        return None
    return Finding(check=Check.CARD_CASH_OUT,
                   facts={"pairs": len(pairs), "examples": pairs[:10], "card_purchases": len(purchases),
                          "top_merchant_share": str(share)},
                   thresholds={"cashout_days": settings.screening_cashout_days,
                               "cashout_tolerance": str(settings.screening_cashout_tolerance),
                               "cashout_min_pairs": settings.screening_cashout_min_pairs,
                               "cashout_top_merchants": settings.screening_cashout_top_merchants,
                               "cashout_merchant_share": str(settings.screening_cashout_merchant_share),
                               "cashout_min_card_purchases": settings.screening_cashout_min_card_purchases})


def illegal_fundraising(rows: Sequence[FeedRow], settings: ScoringSettings) -> Finding | None:
    """Many small inflows from many payers funnelled out, within any `fundraising_days` of the feed (a scheme that
    ended a month before the application is still one): from each small credit on, the small credits (not salary
    or repayments) from distinct payers in the window, and how much of them left to few accounts in it. The
    window funnelling the largest share is reported."""
    window = timedelta(days=settings.screening_fundraising_days)
    ordered = sorted(rows, key=lambda r: r.booked_on)
    booked = [r.booked_on for r in ordered]
    best: dict[str, Any] | None = None
    for start in sorted({r.booked_on for r in ordered if _small_inflow(r, settings)}):
        found = _funnelled(start, ordered[bisect_left(booked, start):bisect_right(booked, start + window)], settings)
        if found is not None and (best is None or Decimal(found["funnelled_share"]) > Decimal(best["funnelled_share"])):
            best = found
    if best is None:
        return None
    return Finding(check=Check.ILLEGAL_FUNDRAISING, facts=best,
                   thresholds={"fundraising_days": settings.screening_fundraising_days,
                               "fundraising_small_inflow": str(settings.screening_fundraising_small_inflow),
                               "fundraising_min_payers": settings.screening_fundraising_min_payers,
                               "fundraising_out_share": str(settings.screening_fundraising_out_share),
                               "fundraising_max_out_accounts": settings.screening_fundraising_max_out_accounts})


def _small_inflow(row: FeedRow, settings: ScoringSettings) -> bool:
    return row.direction == "credit" and row.kind not in _OWN_INCOME and \
        row.amount <= settings.screening_fundraising_small_inflow


def _funnelled(start: date, rows: Sequence[FeedRow], settings: ScoringSettings) -> dict[str, Any] | None:
    """The facts of one window starting on `start` when its inflows were funnelled out, else None."""
    small = [r for r in rows if _small_inflow(r, settings)]
    payers = {r.payer_account_hash or r.counterparty_hash for r in small} - {None}
    if len(payers) < settings.screening_fundraising_min_payers:
        return None
    collected = sum((r.amount for r in small), Decimal(0))
    # Counterparties by their keyed hashes (two may share a mask), named masked as monitoring gives them.
    out: dict[str, Decimal] = defaultdict(Decimal)
    names: dict[str, str] = {}
    for r in rows:
        if r.direction == "debit" and r.kind != "card_purchase":
            key = r.counterparty_hash or r.kind
            out[key] += r.amount
            names[key] = r.counterparty or r.kind
    top = sorted(out.items(), key=lambda kv: kv[1], reverse=True)[:settings.screening_fundraising_max_out_accounts]
    funnelled = sum((amount for _, amount in top), Decimal(0))
    share = (funnelled / collected).quantize(Decimal("0.0001"))
    if share < settings.screening_fundraising_out_share:
        return None
    return {"small_inflows": len(small), "distinct_payers": len(payers), "collected": str(collected),
            "out_accounts": [names[key] for key, _ in top], "funnelled": str(funnelled), "funnelled_share": str(share),
            "from": start.isoformat()}


def findings(facts: Facts, local: dict[str, list[str]], settings: ScoringSettings) -> list[Finding]:
    """Every check over the facts; a peer that could not answer is a `not_done` finding, never a pass."""
    shared = {kind: (len(ids), ids) for kind, ids in local.items()}
    if facts.identifiers is not None:
        shared.update({s.kind: (s.count, s.customer_ids) for s in facts.identifiers.shared})
    found = [shared_identifiers(shared, settings)]
    if facts.feed is not None:
        found += [shared_payer(facts.feed.payers, settings), card_cash_out(facts.feed.transactions, settings),
                  illegal_fundraising(facts.feed.transactions, settings)]
    if facts.missing:
        found.append(Finding(check=Check.NOT_DONE, facts={"peers": facts.missing}, thresholds={}))
    return [f for f in found if f is not None]


# --- records ------------------------------------------------------------------------------------------------

def identifier_hashes(key: bytes, device_id: str | None, payout_account: str | None) -> dict[str, str | None]:
    """The device id and payout account an application carries, stored only as keyed hashes."""
    hashed = hash_personal(key, {"device_id": device_id, "payout_account": payout_account},
                           ("device_id", "payout_account"))
    return {"device_hash": hashed["device_id"], "payout_account_hash": hashed["payout_account"]}


def other_applicants(session: Session, customer_id: str, hashes: dict[str, str | None]) -> dict[str, list[str]]:
    """Other customers whose applications carried the same device or payout account."""
    shared = {}
    for kind, column in (("device_id", Application.device_hash), ("payout_account", Application.payout_account_hash)):
        value = hashes[column.key]
        if value is not None:
            ids = session.exec(select(Application.customer_id).distinct().where(
                column == value, Application.customer_id != customer_id).order_by(Application.customer_id)).all()
            if ids:
                shared[kind] = list(ids)
    return shared


def hits(session: Session, application_id: str) -> list[ScreeningHit]:
    return list(session.exec(select(ScreeningHit).where(ScreeningHit.application_id == application_id)
                             .order_by(ScreeningHit.created_at, ScreeningHit.id)).all())


def record_hits(session: Session, application: Application, stage: Stage,
                found: Sequence[Finding]) -> list[ScreeningHit]:
    """Stores the findings as open hits, except one a reviewer already cleared on the very same facts (so a
    cleared application is not stopped again by what was looked at)."""
    cleared = {(h.check, _fingerprint(h.facts)) for h in hits(session, application.id)
               if h.status == HitStatus.CLEARED}
    recorded = []
    for finding in found:
        facts = _canonical(finding.facts)
        if (finding.check, _fingerprint(facts)) in cleared:
            continue
        hit = ScreeningHit(application_id=application.id, stage=stage, check=finding.check, facts=facts,
                           thresholds=_canonical(finding.thresholds))
        session.add(hit)
        recorded.append(hit)
    session.flush()
    return recorded


def _canonical(value: Any) -> Any:
    """JSON as stored (dict keys ordered, tuples as lists), so stored and fresh facts compare equal."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _fingerprint(facts: Any) -> str:
    return json.dumps(facts, sort_keys=True, default=str)


def summary(found: Sequence[Finding]) -> str:
    return ", ".join(f.check.value for f in found)


def _resolvable(session: Session, application: Application, actor: str) -> list[ScreeningHit]:
    if actor == application.submitted_by:
        raise Problem(403, "Forbidden", "Maker-checker: the person who submitted an application cannot resolve its "
                                        "screening hits.")
    pending = applications.open_hits(session, application.id)
    if not pending:
        raise Problem(409, "Conflict", "This application has no unresolved screening hit.")
    return pending


def _resolve(pending: Sequence[ScreeningHit], status: HitStatus, actor: str, reason: str) -> None:
    for hit in pending:
        hit.status, hit.resolved_by, hit.resolution_reason, hit.resolved_at = status, actor, reason, now()


def clear_hits(session: Session, application: Application, actor: str, reason: str) -> Application:
    """Every open hit cleared: an application the policy had approved before screening held it is approved."""
    pending = _resolvable(session, application, actor)
    _resolve(pending, HitStatus.CLEARED, actor, reason)
    applications.screening_cleared(session, application, actor, reason, [h.id for h in pending])
    return application


def confirm_hits(session: Session, application: Application, actor: str, reason: str) -> Application:
    """Every open hit confirmed: the application is declined with the reviewer's reason."""
    pending = _resolvable(session, application, actor)
    _resolve(pending, HitStatus.CONFIRMED, actor, reason)
    applications.screening_confirmed(session, application, actor, reason, [h.id for h in pending])
    return application


def screens_at_submission(principal: Principal) -> bool:
    """A partner's token carries no monitoring scope and may not see other customers: its applications are screened
    on the bank's side, before disbursement (local device and payout matches still run at submission)."""
    return principal.has_role(Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST, Role.CREDIT_COMMITTEE)


def screen_submission(session: Session, command: ApplicationCreate, facts: Facts, key: bytes,
                      settings: ScoringSettings) -> tuple[dict[str, str | None], list[Finding]]:
    """The application's identifier hashes and what screening finds on it, before it is stored."""
    hashes = identifier_hashes(key, command.device_id, command.payout_account)
    return hashes, findings(facts, other_applicants(session, command.customer_id, hashes), settings)


def screen_disbursement(session: Session, application: Application, facts: Facts, settings: ScoringSettings,
                        actor: str) -> list[ScreeningHit]:
    """Screening again just before the payout; new hits are recorded in the application's history (the caller
    commits them and refuses the payout)."""
    local = other_applicants(session, application.customer_id, {"device_hash": application.device_hash,
                                                                "payout_account_hash": application.payout_account_hash})
    recorded = record_hits(session, application, Stage.DISBURSEMENT, findings(facts, local, settings))
    if recorded:
        applications.screening_held(session, application, actor, ", ".join(h.check for h in recorded),
                                    [h.id for h in recorded])
    return recorded
