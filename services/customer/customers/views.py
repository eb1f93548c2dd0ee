from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from sqlalchemy import Connection
from sqlmodel import Session

from services.customer.customers import flows, service
from services.customer.customers.models import (
    Customer,
    CustomerClose,
    CustomerCreate,
    CustomerKind,
    CustomerLookup,
    CustomerRead,
    CustomerReveal,
    CustomerStatus,
    CustomerUpdate,
    KycStatus,
    RevealRead,
)
from services.customer.db import idempotency
from services.customer.web import Admin, IfMatch, Manager, OptionalIfMatch, Reader, Revealer, Writer, database, \
    etag, expected_versions, json_body, read_log, read_session, vault
from shared.pagination import Page, paged
from shared.auth.dependencies import bearer_token, needs
from shared.auth.tokens import Principal
from shared.bounds import Timestamp
from shared.clients.monitoring import CustomerRisk
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey, OptionalIdempotencyKey, check_key, fingerprint

router = APIRouter(prefix="/customers", tags=["customers"])


def _one(request: Request, principal: Principal, customer: Customer | Any, via: str,
         session: Session | Connection) -> dict[str, Any]:
    return service.shown(session, vault(request), principal, [customer], via)[0]


def _answer(read: dict[str, Any], status_code: int = 200, replayed: bool = False) -> Response:
    headers = {"ETag": etag(read["version"])}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_body(read, status_code, headers)


# First of the router's routes: FastAPI tries them in order (twice a request), and this is the hottest one. Only a
# GET matches it in full, so a POST to /lookup still finds its own route.
@router.get("/{customer_id}", response_model=CustomerRead, summary="Read a customer (ETag for later updates)",
            description="Personal data is masked unless the caller is admin, auditor or a loan officer of the "
                        "customer's branch (masked: ID and phone keep their last two digits, the birth date is "
                        "shown as `birth_year` only); each full view is written to the access log. One field "
                        "in full for a stated reason: `POST /customers/{id}/reveal`.",
            responses=problem_responses(404))
async def get_customer(request: Request, customer_id: str, principal: Reader) -> Response:
    keys = vault(request)
    return _answer(await read_log(request).run(
        lambda connection, row: service.shown_by_id(connection, row, keys, principal, customer_id, "get_customer"),
        service.rows_by_id, customer_id))


@router.post("", status_code=201, response_model=CustomerRead, summary="Register a customer",
             description="Validates the resident ID (check digit, birth date), phone and money; refuses a duplicate "
                         "national ID or phone with 409 naming the existing customer. A partner's registrations "
                         "are recorded as its referrals.",
             responses=problem_responses(403, 409, 422, 428))
def register_customer(request: Request, command: CustomerCreate, principal: Writer,
                      idempotency_key: IdempotencyKey) -> Response:
    return _keyed(request, principal, idempotency_key, True, 201,
                  ("register_customer", command.model_dump(mode="json")), "register_customer",
                  lambda session: service.register_customer(session, vault(request), command, principal))


def _keyed(request: Request, principal: Principal, key: str | None, required: bool, status_code: int,
           payload: tuple[Any, ...], via: str, command: Callable[[Session], Customer]) -> Response:
    """A keyed write whose answer is the customer: only its id is remembered for replays (the idempotency table
    must never hold personal data in clear), and the answer is read afresh, masked for the caller."""
    outcome = idempotency.run_once(
        database(request), owner=principal.sub, key=check_key(key, required=required),
        request_fingerprint=fingerprint(*payload), command=lambda session: (status_code, {"id": command(session).id}),
    )
    with database(request).session() as session:
        customer = service.get_visible(session, principal, outcome.body["id"])
        read = _one(request, principal, customer, via, session)
        session.commit()
    return _answer(read, outcome.status_code, outcome.replayed)


@router.get("", response_model=Page[CustomerRead], summary="List customers (cursor pages, filters, name prefix)",
            description="Oldest first by creation time then id, so pages are stable. Loan officers see their "
                        "branch, partners their referrals. segment, lifecycle and grade come from the portrait.",
            responses=problem_responses(422))
def list_customers(
    request: Request,
    principal: Reader,
    branch: str | None = None,
    status: CustomerStatus | None = None,
    kind: CustomerKind | None = None,
    kyc_status: KycStatus | None = None,
    segment: str | None = Query(None, examples=["high_value"]),
    lifecycle: str | None = Query(None, examples=["growing"]),
    grade: str | None = Query(None, examples=["A"]),
    name_prefix: str | None = Query(None, min_length=1, max_length=100),
    created_from: Timestamp | None = None,
    created_to: Timestamp | None = None,
    paging: paged() = None,
) -> Response:
    with read_session(request) as session:
        page = service.list_customers(
            session, principal, equal={"branch": branch, "status": status, "kind": kind, "kyc_status": kyc_status},
            segment=segment, lifecycle=lifecycle, grade=grade, name_prefix=name_prefix, created_from=created_from,
            created_to=created_to, paging=paging,
            read=lambda rows: service.shown(session, vault(request), principal, rows, "list_customers"))
        session.commit()
    return json_body({"items": page.items, "next_cursor": page.next_cursor, "next": page.next})


@router.post("/lookup", response_model=list[CustomerRead], summary="Exact lookup by national ID, phone or email",
             description="Matches through a keyed hash, never by decrypting every row. POST keeps identity numbers "
                         "out of URLs and logs. Finds only customers in the caller's scope (an empty list "
                         "otherwise); each customer found is written to the access log (`lookup`); at most "
                         "`LOANCRM_CUSTOMER_LOOKUP_PER_MINUTE` lookups per user a minute (429 with Retry-After).",
             responses=problem_responses(422, 429), openapi_extra=needs("customer:read"))
async def lookup_customers(request: Request, command: CustomerLookup, principal: Reader) -> Response:
    await service.count_lookup(request.app.state.limiter, principal.sub, request.app.state.settings.lookup_per_minute)
    return await run_in_threadpool(_lookup, request, principal, command)


def _lookup(request: Request, principal: Principal, command: CustomerLookup) -> Response:
    with read_session(request) as session:
        found = service.lookup(session, vault(request), principal, command)
        items = service.shown(session, vault(request), principal, found, "lookup_customers")
        session.commit()
    return json_body(items)


@router.get("/by-external-id/{external_id}", response_model=CustomerRead,
            summary="Find a customer by the calling system's external id",
            description="`source` defaults to the caller: each client system sees its own external ids.",
            responses=problem_responses(404))
def get_by_external_id(request: Request, external_id: str, principal: Reader,
                       source: str | None = None) -> Response:
    with database(request).session() as session:
        customer = service.find_by_external_id(session, principal, source or principal.sub, external_id)
        read = _one(request, principal, customer, "get_by_external_id", session)
        session.commit()
    return _answer(read)


@router.patch("/{customer_id}", response_model=CustomerRead, summary="Update a customer's profile (If-Match)",
              description="Needs `If-Match` with the ETag of your last read: 428 without it, 412 if someone "
                          "changed the customer since.",
              responses=problem_responses(403, 404, 409, 412, 422, 428))
def update_profile(request: Request, customer_id: str, command: CustomerUpdate, principal: Writer,
                   if_match: IfMatch) -> Response:
    versions = expected_versions(if_match)
    with database(request).session() as session:
        customer = service.update_profile(session, vault(request), principal, customer_id, versions, command)
        read = _one(request, principal, customer, "update_profile", session)
        session.commit()
    return _answer(read)


def _require_visible(request: Request, principal: Principal, customer_id: str) -> None:
    with read_session(request) as session:
        service.read_visible(session, principal, customer_id)


async def _risk(request: Request, principal: Principal, customer_id: str) -> CustomerRisk:
    """Monitoring's word on everything the customer owes, asked only for a customer the caller may see, and asked
    as this service: with the caller's token a loan officer would hear only of loans at their own branch. Down or
    slow (monitoring, or the gateway for the service's token) answers 503/504: nothing is closed or erased
    blindly."""
    await run_in_threadpool(_require_visible, request, principal, customer_id)
    token = await request.app.state.service_identity.token()
    return await request.app.state.monitoring_guard.customer_risk(customer_id, token=token)


@router.post("/{customer_id}/closure", response_model=CustomerRead, summary="Close a customer (soft)",
             description="The record stays readable with status `closed`; If-Match is honoured when sent. While "
                         "monitoring shows a loan with something outstanding, 409 naming the active loans; "
                         "monitoring down is a 503 (never closed blindly).",
             responses=problem_responses(403, 404, 409, 412, 503))
async def close_customer(request: Request, customer_id: str, command: CustomerClose, principal: Manager,
                         if_match: OptionalIfMatch = None,
                         idempotency_key: OptionalIdempotencyKey = None) -> Response:
    versions = expected_versions(if_match, required=False)
    risk = await _risk(request, principal, customer_id)
    # Keyed, a retry after a lost answer gets the closure it made, not a 409 for a customer no longer active.
    return await run_in_threadpool(
        _keyed, request, principal, idempotency_key, False, 200, ("close_customer", customer_id, command.reason,
                                                                  versions), "close_customer",
        lambda session: service.close_customer(session, principal, customer_id, command.reason, versions, risk))


def _erase(request: Request, principal: Principal, customer_id: str, risk: CustomerRisk,
           key: str | None) -> Response:
    return _keyed(request, principal, key, False, 200, ("erase_customer", customer_id), "erase_customer",
                  lambda session: flows.erase_customer(session, principal, customer_id, risk))


@router.post("/{customer_id}/erasure", response_model=CustomerRead, summary="Erase a customer's personal data (admin)",
             description="Only once every loan is repaid (409 naming the active loans before; 503 when monitoring "
                         "cannot say). Removes name, identity numbers, contact details, birth date, address, work, "
                         "income, assets, household, region and external ids, withdraws every consent, clears "
                         "contact notes, complaint and survey texts and drops the portrait. Kept under the "
                         "customer id, now a pseudonym: kind, branch, KYC status, referring partner, dates, the "
                         "facts of each contact, complaint, survey and consent, the access log, and monitoring's "
                         "loan records.",
             responses=problem_responses(403, 404, 409, 503))
async def erase_customer(request: Request, customer_id: str, principal: Admin,
                         idempotency_key: OptionalIdempotencyKey = None) -> Response:
    risk = await _risk(request, principal, customer_id)
    return await run_in_threadpool(_erase, request, principal, customer_id, risk, idempotency_key)


def _branch_of(request: Request, principal: Principal, customer_id: str) -> str:
    with read_session(request) as session:
        return service.visible_branch(session, principal, customer_id)


def _reveal(request: Request, principal: Principal, customer_id: str, command: CustomerReveal,
            reason: str) -> RevealRead:
    with database(request).session() as session:
        revealed = service.reveal_field(session, vault(request), principal, customer_id, command.field, reason)
        session.commit()
    return revealed


@router.post("/{customer_id}/reveal", response_model=RevealRead, summary="Reveal one field of one customer in full",
             description="For an admin or a loan officer of the customer's branch, with a `reason`; for a collector, "
                         "the phone, email or address of a borrower whose collection queue item "
                         "(`queue_item_id`) is assigned to them and still open, checked with monitoring (503 when "
                         "it cannot say). Written to the access log as `reveal` with its reason.",
             responses=problem_responses(403, 404, 422, 503), openapi_extra=needs("customer:read"))
async def reveal_field(request: Request, customer_id: str, command: CustomerReveal, principal: Revealer) -> RevealRead:
    branch = await run_in_threadpool(_branch_of, request, principal, customer_id)
    if service.reveal_basis(principal, branch, command) == service.QUEUE_ITEM:
        item = await request.app.state.monitoring_guard.queue_item(command.queue_item_id, token=bearer_token(request))
        reason = service.queue_item_reason(principal, customer_id, command.queue_item_id, item)
    else:
        reason = command.reason
    return await run_in_threadpool(_reveal, request, principal, customer_id, command, reason)
