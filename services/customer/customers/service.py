"""Customer records: register, read, update, close; the rules of identity, duplicates and scope."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.customer import scoping
from services.customer.access_log.models import AccessAction
from services.customer.access_log.service import record_access
from services.customer.common import keyset, new_id, next_cursor, plain, utcnow
from services.customer.customers import validation
from services.customer.customers.models import (
    REQUIRED_ON_UPDATE,
    Customer,
    CustomerCreate,
    CustomerKind,
    CustomerLookup,
    CustomerRead,
    CustomerStatus,
    CustomerUpdate,
    KycStatus,
)
from services.customer.customers.pii import PiiVault, mask_email, mask_national_id, mask_phone
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.errors import Problem, field_problem

PII_FIELDS = ("national_id", "phone", "email")
_MASKS = {"national_id": mask_national_id, "phone": mask_phone, "email": mask_email}
_UNIQUE_PII = {"national_id": "national ID", "phone": "phone number"}
# Reads that only present customers select plain rows: no identity map, no change tracking to build per row.
_ROW = tuple(Customer.__table__.columns)
_READ_COLUMNS = tuple(name for name in CustomerRead.model_fields if name not in (*PII_FIELDS, "pii_view"))


def not_found(customer_id: str) -> Problem:
    return Problem(404, "Not found", f"No customer {customer_id!r}.")


# --- personal data -----------------------------------------------------------------------------------------

def reveal(vault: PiiVault, customer: Customer) -> dict[str, str | None]:
    return {
        name: None if getattr(customer, f"{name}_enc") is None else vault.open(
            getattr(customer, f"{name}_enc"), kid=customer.pii_kid or "", row_id=customer.id, field=name)
        for name in PII_FIELDS
    }


def sealed(vault: PiiVault, row_id: str, values: dict[str, str | None]) -> dict[str, str | None]:
    """The stored columns for personal data: ciphertexts under the active key and the search hashes."""
    columns: dict[str, str | None] = {"pii_kid": vault.active_kid}
    for name in PII_FIELDS:
        value = values.get(name)
        columns[f"{name}_enc"] = None if value is None else vault.seal(value, row_id=row_id, field=name)
        columns[f"{name}_hash"] = None if value is None else vault.digest(value)
    return columns


def _seal(vault: PiiVault, customer: Customer, changes: dict[str, str | None]) -> None:
    # Every field is re-sealed with the active key whenever any changes, so one key id describes the whole row.
    values = {**(reveal(vault, customer) if customer.pii_kid else {}), **changes}
    for column, value in sealed(vault, customer.id, values).items():
        setattr(customer, column, value)


def reseal_with_active_key(session: Session, vault: PiiVault, batch: int = 500) -> int:
    """Key rotation: re-encrypt rows sealed with an older key; returns how many changed. Safe to re-run."""
    changed = 0
    while True:
        rows = session.exec(select(Customer).where(Customer.pii_kid.is_not(None),
                                                   Customer.pii_kid != vault.active_kid).limit(batch)).all()
        if not rows:
            return changed
        for customer in rows:
            _seal(vault, customer, {})
        session.commit()
        changed += len(rows)


def present(session: Session, vault: PiiVault, principal: Principal, customers: Sequence[Any],
            via: str) -> list[CustomerRead]:
    """Masked or full per the caller's role and branch; every full view goes to the access log."""
    reads, seen_in_full = [], []
    for customer in customers:
        full = scoping.full_view(principal, customer.branch)
        pii = reveal(vault, customer)
        if full and any(pii.values()):
            seen_in_full.append(customer.id)
        if not full:
            pii = {name: None if value is None else _MASKS[name](value) for name, value in pii.items()}
        # Only the columns the response shows: cheaper than dumping the whole ORM row per customer.
        row = {name: getattr(customer, name) for name in _READ_COLUMNS}
        reads.append(CustomerRead.model_validate({**row, **pii, "pii_view": "full" if full else "masked"}))
    record_access(session, principal, seen_in_full, AccessAction.FULL_VIEW, via)
    return reads


# --- reads -------------------------------------------------------------------------------------------------

def get_visible(session: Session, principal: Principal, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or not scoping.can_see(principal, customer.branch, customer.referred_by):
        raise not_found(customer_id)
    return customer


def read_visible(session: Session, principal: Principal, customer_id: str) -> Any:
    """`get_visible` for a pure read: a plain row (attribute access like the model) without ORM tracking."""
    row = session.execute(select(*_ROW).where(Customer.id == customer_id)).first()
    if row is None or not scoping.can_see(principal, row.branch, row.referred_by):
        raise not_found(customer_id)
    return row


def get_changeable(session: Session, principal: Principal, customer_id: str, *, active: bool = True) -> Customer:
    customer = get_visible(session, principal, customer_id)
    if not scoping.can_change(principal, customer.branch, customer.referred_by):
        raise Problem(403, "Forbidden", "Your role may read this customer but not change it.")
    if active and customer.status != CustomerStatus.ACTIVE:
        raise Problem(409, "Customer not active", f"Customer {customer_id} is {customer.status}; it cannot change.")
    return customer


def _scoped(query: Any, principal: Principal) -> Any:
    clause = scoping.scope_filter(principal, Customer.branch, Customer.referred_by)
    return query if clause is None else query.where(clause)


def find_by_external_id(session: Session, principal: Principal, source: str, external_id: str) -> Customer:
    query = select(Customer).where(Customer.external_source == source, Customer.external_id == external_id)
    customer = session.exec(_scoped(query, principal)).first()
    if customer is None:
        raise Problem(404, "Not found", f"No customer with external id {external_id!r} from {source!r}.")
    return customer


def lookup(session: Session, vault: PiiVault, principal: Principal, command: CustomerLookup) -> list[Any]:
    """Exact match on national ID, phone or email through the keyed hash; all given must match."""
    conditions = []
    if command.national_id is not None:
        conditions.append(Customer.national_id_hash == vault.digest(command.national_id.strip().upper()))
    if command.phone is not None:
        try:
            phone = validation.mobile_phone(command.phone)
        except ValueError as exc:
            raise field_problem("body.phone", str(exc)) from None
        conditions.append(Customer.phone_hash == vault.digest(phone))
    if command.email is not None:
        conditions.append(Customer.email_hash == vault.digest(command.email.lower()))
    if not conditions:
        raise field_problem("body", "give at least one of national_id, phone, email")
    return list(session.execute(_scoped(select(*_ROW).where(*conditions), principal)).all())


def list_customers(
    session: Session,
    principal: Principal,
    *,
    filters: list[Any],
    name_prefix: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """Oldest first by (created_at, id): stable under inserts, so a cursor never skips or repeats a row."""
    query = _scoped(select(*_ROW), principal).where(*filters)
    if name_prefix:
        query = query.where(Customer.name.startswith(name_prefix, autoescape=True))
    if created_from:
        query = query.where(Customer.created_at >= created_from)
    if created_to:
        query = query.where(Customer.created_at < created_to)
    rows = list(session.execute(keyset(query, cursor, Customer.created_at, Customer.id, newest_first=False,
                                    limit=limit)).all())
    return rows[:limit], next_cursor(rows, limit, "created_at")


# --- writes ------------------------------------------------------------------------------------------------

def _refuse_duplicates(session: Session, vault: PiiVault, values: dict[str, str | None],
                       exclude_id: str | None = None) -> None:
    for name, label in _UNIQUE_PII.items():
        value = values.get(name)
        if value is None:
            continue
        query = select(Customer.id).where(getattr(Customer, f"{name}_hash") == vault.digest(value))
        if exclude_id is not None:
            query = query.where(Customer.id != exclude_id)
        existing = session.exec(query).first()
        if existing is not None:
            raise Problem(409, "Duplicate customer", f"A customer with this {label} already exists.",
                          type_="urn:loancrm:customer:duplicate",
                          extra={"existing_customer_id": existing, "field": name})


def _flush_unique(session: Session, vault: PiiVault, customer: Customer, values: dict[str, str | None]) -> None:
    """Flush in a savepoint: a concurrent twin that slipped past the check becomes the same 409."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        _refuse_duplicates(session, vault, values, exclude_id=customer.id)
        raise Problem(409, "Conflict", "A concurrent write registered the same identity; retry.") from None


def branch_for_new(principal: Principal, requested: str | None) -> str:
    if principal.has_role(Role.ADMIN):
        if requested is None:
            raise field_problem("body.branch", "required")
        return requested
    if principal.has_role(Role.LOAN_OFFICER) and principal.branch:
        if requested not in (None, principal.branch):
            raise field_problem("body.branch", "a loan officer registers customers of their own branch only")
        return principal.branch
    if requested is None:
        raise field_problem("body.branch", "required: the branch that will serve this referral")
    return requested


def require_business_registration(command: CustomerCreate) -> None:
    if command.kind == CustomerKind.BUSINESS and command.business_registration_no is None:
        raise field_problem("body.business_registration_no", "required for a business customer")


def register_customer(session: Session, vault: PiiVault, command: CustomerCreate, principal: Principal) -> Customer:
    branch = branch_for_new(principal, command.branch)
    require_business_registration(command)
    if command.external_id is not None:
        existing = session.exec(select(Customer.id).where(Customer.external_source == principal.sub,
                                                          Customer.external_id == command.external_id)).first()
        if existing is not None:
            raise Problem(409, "Duplicate external id", f"External id {command.external_id!r} is already used.",
                          extra={"existing_customer_id": existing, "field": "external_id"})
    pii = {name: getattr(command, name) for name in PII_FIELDS}
    _refuse_duplicates(session, vault, pii)
    customer = Customer(**customer_row(vault, command, principal, branch))
    session.add(customer)
    _flush_unique(session, vault, customer, pii)
    return customer


def customer_row(vault: PiiVault, command: CustomerCreate, principal: Principal, branch: str) -> dict[str, Any]:
    """Every column of a new customer for a validated registration, personal data sealed. A plain dict, so the
    bulk import can insert thousands without building an ORM object for each."""
    row_id, now = new_id(), utcnow()
    return {
        **plain(command.model_dump(exclude={*PII_FIELDS, "branch"})),
        **sealed(vault, row_id, {name: getattr(command, name) for name in PII_FIELDS}),
        "id": row_id, "branch": branch, "status": CustomerStatus.ACTIVE.value, "kyc_status": KycStatus.PENDING.value,
        "referred_by": principal.sub if principal.has_role(Role.PARTNER) else None,
        "external_source": principal.sub if command.external_id is not None else None,
        "created_by": principal.sub, "version": 1, "created_at": now, "updated_at": now,
    }


def _bump_version(session: Session, customer: Customer, expected_version: int | None) -> None:
    """Compare-and-set on the version column: of two writers holding one ETag exactly one wins, on both
    databases, because the UPDATE's WHERE is re-checked under the row lock."""
    expected = customer.version if expected_version is None else expected_version
    if customer.version != expected:
        raise stale(customer)
    result = session.execute(update(Customer).where(Customer.id == customer.id, Customer.version == expected)
                             .values(version=expected + 1, updated_at=utcnow())
                             .execution_options(synchronize_session=False))
    if result.rowcount == 0:
        raise stale(customer)
    customer.version = expected + 1
    customer.updated_at = utcnow()


def stale(customer: Customer) -> Problem:
    return Problem(412, "Precondition failed", "The customer changed since you read it; GET it again and retry.",
                   extra={"current_version": customer.version})


def update_profile(session: Session, vault: PiiVault, principal: Principal, customer_id: str,
                   expected_version: int, command: CustomerUpdate) -> Customer:
    customer = get_changeable(session, principal, customer_id)
    if customer.version != expected_version:
        raise stale(customer)
    changes = plain(command.model_dump(exclude_unset=True))
    for name in REQUIRED_ON_UPDATE:
        if name in changes and changes[name] is None:
            raise field_problem(f"body.{name}", "cannot be cleared")
    if changes.get("business_registration_no") is not None and customer.kind != CustomerKind.BUSINESS:
        raise field_problem("body.business_registration_no", "only business customers have a registration number")
    pii_changes = {name: changes.pop(name) for name in PII_FIELDS if name in changes}
    national_id = pii_changes.get("national_id") or reveal(vault, customer)["national_id"]
    born: date = changes.get("date_of_birth") or customer.date_of_birth
    if national_id and born and not validation.id_matches_birth_date(national_id, born):
        field = "body.national_id" if "national_id" in pii_changes else "body.date_of_birth"
        raise field_problem(field, "the national ID's embedded birth date does not match date_of_birth")
    _refuse_duplicates(session, vault, pii_changes, exclude_id=customer.id)
    _bump_version(session, customer, expected_version)
    for name, value in changes.items():
        setattr(customer, name, value)
    if pii_changes:
        _seal(vault, customer, pii_changes)
    session.add(customer)
    _flush_unique(session, vault, customer, pii_changes)
    return customer


def close_customer(session: Session, principal: Principal, customer_id: str, reason: str,
                   expected_version: int | None) -> Customer:
    customer = get_changeable(session, principal, customer_id)
    _bump_version(session, customer, expected_version)
    customer.status = CustomerStatus.CLOSED.value
    customer.closed_at = utcnow()
    customer.close_reason = reason
    session.add(customer)
    session.flush()
    return customer


_ERASED_FIELDS = ("name", "date_of_birth", "business_registration_no", "address", "occupation", "employer",
                  "pii_kid", *(f"{name}_{suffix}" for name in PII_FIELDS for suffix in ("enc", "hash")))


def anonymise(session: Session, principal: Principal, customer_id: str) -> Customer:
    """The personal fields go; id, branch, money figures, dates and every linked record stay for history."""
    customer = get_visible(session, principal, customer_id)
    if customer.status == CustomerStatus.ERASED:
        raise Problem(409, "Already erased", f"Customer {customer_id} was erased at {customer.erased_at}.")
    _bump_version(session, customer, None)
    for name in _ERASED_FIELDS:
        setattr(customer, name, None)
    customer.status = CustomerStatus.ERASED.value
    customer.erased_at = utcnow()
    session.add(customer)
    session.flush()
    record_access(session, principal, [customer.id], AccessAction.ERASURE, "erase_customer")
    return customer
