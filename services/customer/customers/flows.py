"""Privacy erasure: anonymise the profile, end its consents, scrub free text, keep the history."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlmodel import Session

from services.customer.complaints.models import Complaint
from services.customer.consents.service import withdraw_all
from services.customer.customers.models import Customer
from services.customer.customers.service import anonymise
from services.customer.interactions.models import Interaction
from services.customer.portrait.models import CustomerPortrait, SegmentMember
from services.customer.surveys.models import Survey
from shared.auth.tokens import Principal
from shared.clients.monitoring import CustomerRisk

# Erasure keeps that a contact, complaint or survey happened, not what was written about the person.
_FREE_TEXT = ((Interaction, ("notes",)), (Complaint, ("description", "response")), (Survey, ("comment",)))


def erase_customer(session: Session, principal: Principal, customer_id: str, risk: CustomerRisk) -> Customer:
    """`risk` is monitoring's answer for the customer: erasure waits until nothing is owed."""
    customer = anonymise(session, principal, customer_id, risk)
    withdraw_all(session, customer.id, source="erasure", by=principal.sub)
    for table, columns in _FREE_TEXT:
        session.execute(update(table).where(table.customer_id == customer.id).values(dict.fromkeys(columns)))
    # The portrait copies income and assets and profiles the person: it goes with them.
    for table in (SegmentMember, CustomerPortrait):
        session.execute(delete(table).where(table.customer_id == customer.id))
    return customer
