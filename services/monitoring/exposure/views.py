from fastapi import APIRouter, Request

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
                        "credit. A customer without loans in the caller's scope answers zeros, not 404: monitoring "
                        "does not know which customers exist.",
            responses=problem_responses(403))
def customer_risk(request: Request, customer_id: str, principal: api.BatchReader) -> CustomerRisk:
    with api.database(request).session() as session:
        return service.customer_risk(session, customer_id, scope=api.scope(principal),
                                     as_of=business_date(session, api.settings(request)))
