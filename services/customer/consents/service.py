"""Consents per purpose: grant, withdraw, history, and the question "may I do P for C now?"."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, select

from services.customer.common import as_utc, utcnow
from services.customer.consents.models import Consent, ConsentCheck, ConsentGrant, ConsentRead, ConsentStatus, Purpose
from shared.errors import Problem, field_problem


def _read(consent: Consent) -> ConsentRead:
    return ConsentRead.model_validate({**consent.model_dump(), "active": consent.withdrawn_at is None})


def active_consent(session: Session, customer_id: str, purpose: Purpose) -> Consent | None:
    now = utcnow()
    row = session.exec(select(Consent).where(Consent.customer_id == customer_id, Consent.purpose == purpose.value,
                                             Consent.withdrawn_at.is_(None))
                       .order_by(Consent.granted_at.desc())).first()
    # A grant dated in the future (a form signed ahead) does not count yet.
    return row if row is not None and as_utc(row.granted_at) <= now else None


def grant_consent(session: Session, customer_id: str, command: ConsentGrant, by: str) -> ConsentRead:
    if active_consent(session, customer_id, command.purpose) is not None:
        raise Problem(409, "Already granted",
                      f"{command.purpose.value} consent is already in force; withdraw it first.")
    granted_at = command.granted_at or utcnow()
    if granted_at > utcnow():
        raise field_problem("body.granted_at", "cannot be in the future")
    consent = Consent(customer_id=customer_id, purpose=command.purpose.value, source=command.source.value,
                      granted_at=granted_at, granted_by=by)
    session.add(consent)
    session.flush()
    return _read(consent)


def withdraw_consent(session: Session, customer_id: str, purpose: Purpose, source: str, by: str) -> ConsentRead:
    consent = active_consent(session, customer_id, purpose)
    if consent is None:
        raise Problem(409, "Not granted", f"There is no {purpose.value} consent in force to withdraw.")
    consent.withdrawn_at = utcnow()
    consent.withdrawn_by = by
    consent.withdrawal_source = source
    session.add(consent)
    session.flush()
    return _read(consent)


def withdraw_all(session: Session, customer_id: str, source: str, by: str) -> None:
    for consent in session.exec(select(Consent).where(Consent.customer_id == customer_id,
                                                      Consent.withdrawn_at.is_(None))).all():
        consent.withdrawn_at = utcnow()
        consent.withdrawn_by = by
        consent.withdrawal_source = source
        session.add(consent)
    session.flush()


def history(session: Session, customer_id: str) -> list[ConsentRead]:
    rows = session.exec(select(Consent).where(Consent.customer_id == customer_id)
                        .order_by(Consent.granted_at.desc(), Consent.id)).all()
    return [_read(row) for row in rows]


def current(rows: Sequence[ConsentRead]) -> list[ConsentStatus]:
    now = utcnow()
    statuses = []
    for purpose in Purpose:
        live = next((r for r in rows if r.purpose == purpose and r.active and r.granted_at <= now), None)
        statuses.append(ConsentStatus(purpose=purpose, allowed=live is not None,
                                      granted_at=live.granted_at if live else None))
    return statuses


def check(session: Session, customer_id: str, purpose: Purpose) -> ConsentCheck:
    consent = active_consent(session, customer_id, purpose)
    return ConsentCheck(customer_id=customer_id, purpose=purpose, allowed=consent is not None,
                        granted_at=consent.granted_at if consent else None)
