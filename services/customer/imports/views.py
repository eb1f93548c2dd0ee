from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from services.customer.imports.flows import format_of, import_text
from services.customer.imports.models import ImportFormat, ImportReport
from services.customer.web import Writer, create_once, database, vault
from shared.errors import Problem, field_problem, problem_responses
from shared.middleware import max_body
from shared.idempotency import IdempotencyKey

router = APIRouter(prefix="/customers/imports", tags=["imports"])
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # larger files go through `loancrm customers import`
# 20 MB of rows can take minutes; a retry meanwhile must wait for the report rather than import alongside.
IMPORT_LEASE = timedelta(minutes=30)


@router.post("", status_code=201, response_model=ImportReport, summary="Import customers from CSV or JSON lines",
             description="Columns/keys are those of customer registration. Every row is validated; bad rows are "
                         "reported with their line and reason, good ones committed in batches. Rows already on "
                         "file (same national ID or external id) are counted in `already_present`, so a re-run "
                         "creates no duplicates. Format from `format`, else the file name (.csv or JSON lines).",
             responses=problem_responses(409, 413, 422, 428))
@max_body(MAX_UPLOAD_BYTES + 1024 * 1024)  # the file plus its multipart framing
async def import_customers(request: Request, principal: Writer, idempotency_key: IdempotencyKey,
                           file: UploadFile = File(...),
                           format: ImportFormat | None = None,  # noqa: A002 - the query parameter's public name
                           ) -> JSONResponse:
    raw = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(raw) > MAX_UPLOAD_BYTES:
        raise Problem(413, "Payload too large", "Upload at most 20 MB here; use `loancrm customers import` beyond.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise field_problem("body.file", "must be UTF-8 text") from None
    fmt = format or format_of(Path(file.filename or "upload.jsonl"))

    def run(_session: Session) -> ImportReport:
        # The import commits its own batches; the idempotency row only remembers the report.
        return import_text(database(request), vault(request), principal, text, fmt)

    return await run_in_threadpool(create_once, request, principal, idempotency_key,
                                   ("import_customers", fmt, hashlib.sha256(raw).hexdigest()), run,
                                   lease=IMPORT_LEASE)
