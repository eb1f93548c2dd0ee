from __future__ import annotations

import logging

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from services.monitoring import api
from services.monitoring.repayment_files import flows, service
from services.monitoring.repayment_files.models import RepaymentFileErrorRead, RepaymentFileRead
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.errors import Problem, problem_responses
from shared.idempotency import IdempotencyKey
from shared.middleware import max_body
from shared.pagination import Page, paged

router = APIRouter(prefix="/repayment-files", tags=["repayment files"])
log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # about 600,000 rows; larger files go through `loancrm repayments import`


def _owner(principal: Principal) -> str | None:
    """Whose files the caller sees: an admin every file, a loan officer the ones it uploaded."""
    return None if Role.ADMIN in principal.roles else principal.sub


def _run(request: Request, file_id: str) -> None:
    try:
        flows.run_file(api.database(request), api.settings(request), file_id, vault=api.vault(request))
    except Exception:  # noqa: BLE001 - the job keeps its committed chunks; POST …/resume continues it
        log.exception("repayment file %s stopped; POST /repayment-files/%s/resume continues it", file_id, file_id)


@router.post("", status_code=202, response_model=RepaymentFileRead,
             summary="Upload a repayment file (CSV) to post as one job (loan officer, admin); Idempotency-Key "
                     "required",
             description="Columns: reference, loan_id or loan_external_id, amount, value_date, payer_account "
                         "(README \"Bulk repayment files\"). The header is checked at once (422); the rows are "
                         "posted in the background. A row whose reference (per `source`) was already posted is "
                         "counted in `duplicates`, so uploading a file again posts nothing twice.",
             responses=problem_responses(409, 413, 422, 428))
@max_body(MAX_UPLOAD_BYTES + 1024 * 1024)  # the file plus its multipart framing
async def upload_repayment_file(request: Request, principal: api.Officer, idempotency_key: IdempotencyKey,
                                source: str, file: UploadFile = File(...)) -> JSONResponse:
    content = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise Problem(413, "Payload too large", "Upload at most 50 MB here; use `loancrm repayments import` "
                                                "beyond.")

    def accept(session):  # noqa: ANN001, ANN202
        job = flows.accept_file(session, source=source, filename=file.filename or "upload.csv", content=content,
                                path=None, scope=api.scope(principal), by=principal.sub)
        return 202, RepaymentFileRead.model_validate(job).model_dump(mode="json")

    outcome = await run_in_threadpool(
        api.run_idempotent, request, principal, idempotency_key, required=True,
        command_name="upload_repayment_file", payload=[source, service.digest(content)], command=accept)
    return JSONResponse(outcome.body, status_code=outcome.status_code,
                        headers={"Idempotent-Replayed": "true"} if outcome.replayed else None,
                        background=None if outcome.replayed else BackgroundTask(_run, request, outcome.body["id"]))


@router.get("/{file_id}", response_model=RepaymentFileRead,
            summary="A repayment file's job: status and counts (rows done of total, posted, duplicates, failed)",
            responses=problem_responses(404))
def get_repayment_file(request: Request, file_id: str, principal: api.Officer) -> RepaymentFileRead:
    with api.database(request).session() as session:
        return RepaymentFileRead.model_validate(service.get_file(session, file_id, _owner(principal)))


@router.get("/{file_id}/errors", response_model=Page[RepaymentFileErrorRead],
            summary="The file's report: each row not posted, by line, with the column at fault and why",
            responses=problem_responses(404, 422))
def repayment_file_errors(request: Request, file_id: str, principal: api.Officer,
                          paging: paged(100, 1000) = None) -> Page[RepaymentFileErrorRead]:
    with api.database(request).session() as session:
        service.get_file(session, file_id, _owner(principal))
        return service.errors_page(session, file_id, paging)


@router.post("/{file_id}/resume", status_code=202, response_model=RepaymentFileRead,
             summary="Continue a job that stopped part way (a crash, a restart) after its last committed chunk",
             responses=problem_responses(404))
def resume_repayment_file(request: Request, file_id: str, principal: api.Officer) -> JSONResponse:
    with api.database(request).session() as session:
        job = service.get_file(session, file_id, _owner(principal))
        body = RepaymentFileRead.model_validate(job).model_dump(mode="json")
    return JSONResponse(body, status_code=202, background=BackgroundTask(_run, request, file_id))
