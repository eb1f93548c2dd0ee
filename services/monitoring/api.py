"""What the monitoring routes share: roles, what a caller may see, domain errors as problems, idempotency."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.monitoring.db import idempotency
from services.monitoring.errors import DomainError
from services.monitoring.settings import MonitoringSettings
from shared.auth.dependencies import require_roles
from shared.auth.tokens import Principal
from shared.auth.roles import Role
from shared.auth.scope import Visibility, visibility
from shared.clients.customer import CustomerNotFound
from shared.db import Database
from shared.errors import field_problem
from shared.idempotency import Outcome, answer_once, check_key, fingerprint
from shared.pii import PiiVault

READERS = (Role.ADMIN, Role.AUDITOR, Role.LOAN_OFFICER, Role.RISK_ANALYST, Role.COLLECTOR)
Reader = Annotated[Principal, Depends(require_roles(*READERS))]
# A borrower's loans and risk, which the customer service reads for a portrait (COB's batch identity among its
# callers).
BatchReader = Annotated[Principal, Depends(require_roles(*READERS, Role.BATCH))]
# The readers and the credit committee, which approves hardship plans and recalls: their queue and history.
CommitteeReader = Annotated[Principal, Depends(require_roles(*READERS, Role.CREDIT_COMMITTEE))]
# Application screening: the submitting officer's and the reviewer's (never a partner, who has no monitoring scope).
Screener = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST,
                                                      Role.CREDIT_COMMITTEE))]
OFFICERS = (Role.ADMIN, Role.LOAN_OFFICER)
Officer = Annotated[Principal, Depends(require_roles(*OFFICERS))]
Collector = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.COLLECTOR, Role.LOAN_OFFICER))]
Analyst = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.RISK_ANALYST))]
Maker = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.RISK_ANALYST, Role.LOAN_OFFICER))]
Operator = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Reviewer = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.RISK_ANALYST, Role.AUDITOR))]


def scope(principal: Principal) -> Visibility:
    """The loans, alerts and checks the caller may see: the kernel's rule over their branch (loans have no
    partner-owned records, so partners see none)."""
    return visibility(principal)


def database(request: Request) -> Database:
    return request.app.state.database


def settings(request: Request) -> MonitoringSettings:
    return request.app.state.monitoring_settings


def vault(request: Request) -> PiiVault:
    """The keys that seal payers' accounts."""
    return request.app.state.pii_vault


@contextmanager
def domain_errors(prefix: str = "body") -> Iterator[None]:
    """A rule's DomainError names its input; the client sees it as `prefix.field` in a 422 problem."""
    try:
        yield
    except DomainError as exc:
        raise field_problem(f"{prefix}.{exc.field}", exc.message) from None


def bearer(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2].strip()


async def require_known_customer(request: Request, principal: Principal, customer_id: str) -> None:
    """404 unless the customer service has the customer for this caller (one outside the caller's scope reads as
    an unknown one): monitoring does not know which customers exist. A token without customer:read (one narrowed
    to monitoring's scopes) is shown no customer, as the customer service would refuse it. The batch identity may
    not read customers and asks only of those it holds (COB's borrowers, the customer service's own guards)."""
    if principal.has_role(Role.BATCH):
        return
    if "customer:read" not in principal.scopes:
        raise CustomerNotFound(customer_id)
    await request.app.state.peers.customer.get_customer(customer_id, token=bearer(request))


async def require_visible_customer(request: Request, principal: Principal, customer_id: str) -> None:
    """404 unless the caller may see the customer. Monitoring does not know a customer's branch (a borrower's feed
    rows may come before any loan), so a caller seeing less than the bank asks the customer service, whose scope
    rule decides."""
    if not scope(principal).everything:
        await require_known_customer(request, principal, customer_id)


def _guarded(command: Callable[[Session], tuple[int, Any]]) -> Callable[[Session], tuple[int, Any]]:
    def run(session: Session) -> tuple[int, Any]:
        with domain_errors():
            return command(session)

    return run


def run_idempotent(
    request: Request,
    principal: Principal,
    key: str | None,
    *,
    required: bool,
    command_name: str,
    payload: Any,
    command: Callable[[Session], tuple[int, Any]],
) -> Outcome:
    """Run a write once per (caller, Idempotency-Key); a retry gets what the first call answered."""
    return idempotency.run_once(
        database(request), owner=principal.sub, key=check_key(key, required=required),
        request_fingerprint=fingerprint(command_name, request.url.path, payload), command=_guarded(command),
    )


def idempotent(request: Request, principal: Principal, key: str | None, *, required: bool, command_name: str,
               payload: Any, command: Callable[[Session], tuple[int, Any]]) -> JSONResponse:
    """`run_idempotent` answered through the kernel's wrapper (`Idempotent-Replayed` on a replay)."""
    return answer_once(idempotency, database(request), owner=principal.sub, key=key, required=required,
                       payload=(command_name, request.url.path, payload), command=_guarded(command))
