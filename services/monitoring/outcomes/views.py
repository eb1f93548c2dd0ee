from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.outcomes import service
from services.monitoring.outcomes.models import OutcomePage
from shared.bounds import BusinessDate
from shared.errors import problem_responses
from shared.pagination import paged

router = APIRouter(tags=["outcomes"])


@router.get("/loans/outcomes", response_model=OutcomePage,
            summary="Point-in-time loan facts on as_of and whether each loan defaulted (90+ DPD) in the window after "
                    "(risk analyst, auditor, admin)",
            description="Every loan disbursed on or before `as_of`, by id: its grade at origination, product, "
                        "vintage, principal and DPD on `as_of` (only history effective by then), and "
                        "`default_in_window` (more than 90 days past due in (as_of, as_of + window_months]). Loans "
                        "already past 90 days on `as_of` are left out and counted. The window must have closed by "
                        "the business date (422 naming `query.as_of` otherwise).",
            responses=problem_responses(422))
def loan_outcomes(
    request: Request,
    principal: api.Reviewer,
    as_of: BusinessDate,
    window_months: Annotated[int, Query(ge=1, le=60)] = 12,
    paging: paged(500, 2000) = None,
) -> OutcomePage:
    with api.database(request).session() as session, api.domain_errors("query"):
        return service.loan_outcomes(session, scope=api.scope(principal), as_of=as_of, window_months=window_months,
                                     business_date=business_date(session, api.settings(request)), paging=paging)
