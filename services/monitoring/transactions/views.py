from datetime import timedelta

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.transactions import service
from services.monitoring.transactions.models import MAX_BATCH_ROWS, BatchReceipt, ScreeningFacts, TransactionBatch
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey
from shared.middleware import max_body

router = APIRouter(tags=["account transactions"])


@router.post("/transactions:batch", status_code=201, response_model=BatchReceipt,
             summary=f"Take in up to {MAX_BATCH_ROWS:,} rows of the account-transactions feed (admin, loan officer)",
             description="All or nothing; a bad row is a 422 naming `body.rows.N.field`. The feed rules (salary "
                         "stopped, shared payer, card cash-out, funds moved on) run on the borrowers concerned. "
                         "Idempotency-Key required: a retry returns the first receipt.",
             responses=problem_responses(409, 413, 422, 428))
@max_body(MAX_BATCH_ROWS * 1024)  # a full batch: rows are a few hundred bytes each
async def record_transactions(request: Request, command: TransactionBatch, principal: api.Officer,
                              idempotency_key: IdempotencyKey) -> JSONResponse:
    def run(session):  # noqa: ANN001, ANN202
        receipt = service.record_transactions(session, api.vault(request), command.rows, by=principal.sub,
                                              scope=api.scope(principal),
                                              as_of=business_date(session, api.settings(request)))
        return 201, receipt.model_dump(mode="json")

    return await run_in_threadpool(api.idempotent, request, principal, idempotency_key, required=True,
                                   command_name="record_transactions", payload=command.model_dump(mode="json"),
                                   command=run)


@router.get("/customers/{customer_id}/screening-facts", response_model=ScreeningFacts,
            summary="For application screening: the payer accounts that repaid the customer's loans with how many "
                    "other borrowers each repaid, and the customer's feed rows of the last `days` days (admin, loan "
                    "officer, risk analyst, credit committee)",
            responses=problem_responses(404, 422))
async def screening_facts(request: Request, customer_id: str, principal: api.Screener,
                          days: int = Query(90, ge=1, le=400)) -> ScreeningFacts:
    await api.require_visible_customer(request, principal, customer_id)

    def read() -> ScreeningFacts:
        with api.database(request).session() as session:
            return service.screening_facts(session, customer_id,
                                           business_date(session, api.settings(request)) - timedelta(days=days))

    return await run_in_threadpool(read)
