from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from services.customer.identity_links import service
from services.customer.identity_links.models import SharedIdentifiers
from services.customer.web import database
from shared.auth.dependencies import require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.errors import problem_responses

router = APIRouter(prefix="/customers", tags=["customers"])
# Who screens applications (the submitting officer's screening, the reviewer's) and the risk team; not a partner,
# who would learn of other banks' customers.
Screener = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST,
                                                      Role.CREDIT_COMMITTEE))]


@router.get("/{customer_id}/shared-identifiers", response_model=SharedIdentifiers,
            summary="Other customers with the same national ID, phone or address (counts and ids, never the "
                    "values; admin, loan officer, risk analyst, credit committee)",
            responses=problem_responses(404))
async def shared_identifiers(request: Request, customer_id: str, principal: Screener) -> SharedIdentifiers:
    def run() -> SharedIdentifiers:
        with database(request).session() as session:
            return service.shared_identifiers(session, principal, customer_id)

    return await run_in_threadpool(run)
