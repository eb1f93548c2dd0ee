from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.exposure import service
from services.monitoring.exposure.models import CustomerRisk
from shared.errors import problem_responses

router = APIRouter(tags=["exposure"])


@router.get("/customers/{customer_id}/risk", response_model=CustomerRisk,
            summary="A customer's credit risk: active loans and what they owe, days past due now and in the last "
                    "12 months, worst class, open alerts (branch-scoped for loan officers)",
            description="What the customer service asks before erasing or closing a customer and before offering "
                        "credit. A customer without loans in the caller's scope answers zeros. A customer the "
                        "customer service does not have, or does not show the caller, is a 404 (asked with the "
                        "caller's token; 503 when it cannot say): zeros would read as a customer owing nothing.",
            responses=problem_responses(403, 404, 503))
async def customer_risk(request: Request, customer_id: str, principal: api.BatchReader) -> CustomerRisk:
    await api.require_known_customer(request, principal, customer_id)

    def read() -> CustomerRisk:
        with api.database(request).session() as session:
            return service.customer_risk(session, customer_id, scope=api.scope(principal),
                                         as_of=business_date(session, api.settings(request)))

    return await run_in_threadpool(read)
