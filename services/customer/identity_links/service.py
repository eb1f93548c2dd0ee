"""Which other customers share a customer's identity hash, phone or address. Identity numbers and phones are
compared through their keyed hashes (never decrypted); the address by its normalised text. Email is left out: a
household or an employer's shared mailbox makes it too common to mean a ring."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from services.customer.customers import service as customers
from services.customer.customers.models import Customer
from services.customer.identity_links.models import SharedIdentifier, SharedIdentifiers, SharedKind
from shared.auth.tokens import Principal

_HASHED = {SharedKind.NATIONAL_ID: Customer.national_id_hash, SharedKind.PHONE: Customer.phone_hash}
MAX_IDS = 50  # a ring larger than this is counted in full, its ids cut to the first


def normalised_address(address: str) -> str:
    return " ".join(address.lower().split())


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
    if customer.address and customer.address.strip():
        wanted = normalised_address(customer.address)
        # Lower/trim in SQL, the whitespace folding here: a stored address with a run of inner spaces is missed
        # (a normalised, indexed address column would catch it and spare the scan).
        near = session.exec(select(Customer.id, Customer.address).where(
            func.lower(func.trim(Customer.address)) == wanted, Customer.id != customer.id)
            .order_by(Customer.id)).all()
        matches[SharedKind.ADDRESS] = [i for i, a in near if normalised_address(a) == wanted]
    return SharedIdentifiers(customer_id=customer.id, shared=[
        SharedIdentifier(kind=kind, count=len(ids), customer_ids=ids[:MAX_IDS]) for kind, ids in matches.items()
        if ids])
