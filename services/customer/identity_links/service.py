"""Which other customers share a customer's identity hash, phone or address, compared through their keyed hashes
(never decrypted; an address's is of its normalised form). Email is left out: a household or an employer's shared
mailbox makes it too common to mean a ring."""

from __future__ import annotations

from sqlmodel import Session, select

from services.customer.customers import service as customers
from services.customer.customers.models import Customer
from services.customer.identity_links.models import SharedIdentifier, SharedIdentifiers, SharedKind
from shared.auth.tokens import Principal

_HASHED = {SharedKind.NATIONAL_ID: Customer.national_id_hash, SharedKind.PHONE: Customer.phone_hash,
           SharedKind.ADDRESS: Customer.address_hash}
MAX_IDS = 50  # a ring larger than this is counted in full, its ids cut to the first


def shared_identifiers(session: Session, principal: Principal, customer_id: str) -> SharedIdentifiers:
    """The customer must be in the caller's scope (404 otherwise); the others are looked for bank-wide, since a
    ring crosses branches, and only their opaque ids are answered."""
    customer = customers.get_visible(session, principal, customer_id)
    matches: dict[SharedKind, list[str]] = {}
    for kind, column in _HASHED.items():
        value = getattr(customer, column.key)
        if value is not None:
            matches[kind] = list(session.exec(select(Customer.id).where(column == value, Customer.id != customer.id)
                                              .order_by(Customer.id)).all())
    return SharedIdentifiers(customer_id=customer.id, shared=[
        SharedIdentifier(kind=kind, count=len(ids), customer_ids=ids[:MAX_IDS]) for kind, ids in matches.items()
        if ids])
