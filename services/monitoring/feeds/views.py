import hashlib

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.feeds import service
from services.monitoring.feeds.models import (
    MAX_FEED_BYTES,
    MAX_FEED_ROWS,
    FeedImportRead,
    FeedKind,
    FeedRowErrorRead,
)
from shared.errors import Problem, field_problem, problem_responses
from shared.idempotency import IdempotencyKey
from shared.middleware import max_body
from shared.pagination import Page, paged

router = APIRouter(tags=["outside feeds"])


def _upload(feed: FeedKind, summary: str) -> None:
    @router.post(f"/feeds/{feed.value}/imports", status_code=201, response_model=FeedImportRead, summary=summary,
                 description=f"`file`: the CSV file (UTF-8, a header line; columns in README, at most "
                             f"{MAX_FEED_ROWS:,} rows). Each row is checked on its own: a bad row is reported with "
                             "its line and field under /feeds/imports/{id}/errors and the good ones are stored; rows "
                             "already on file are counted, not stored twice. The outside rules run on the borrowers "
                             "concerned. Idempotency-Key required: a retry returns the first report.",
                 responses=problem_responses(409, 413, 422, 428),
                 name=f"import_{feed.value}_feed")
    @max_body(MAX_FEED_BYTES + 1024 * 1024)  # the file plus its multipart framing
    async def upload(request: Request, principal: api.Analyst, idempotency_key: IdempotencyKey,
                     file: UploadFile = File(...)) -> JSONResponse:
        raw = await file.read(MAX_FEED_BYTES + 1)
        if len(raw) > MAX_FEED_BYTES:
            raise Problem(413, "Payload too large", f"A feed file is at most {MAX_FEED_BYTES // 2**20} MiB; split it.")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise field_problem("body.file", "must be UTF-8 CSV text") from None

        def run(session):  # noqa: ANN001, ANN202
            report = service.import_feed(session, feed, text, by=principal.sub, scope=api.scope(principal),
                                         as_of=business_date(session, api.settings(request)))
            return 201, report.model_dump(mode="json")

        return await run_in_threadpool(api.idempotent, request, principal, idempotency_key, required=True,
                                       command_name=f"import_{feed.value}_feed",
                                       payload=hashlib.sha256(raw).hexdigest(), command=run)


_upload(FeedKind.BUREAU, "Import credit-bureau overdue records at other lenders (risk analyst)")
_upload(FeedKind.LEGAL, "Import lawsuit and enforcement records (risk analyst)")
_upload(FeedKind.FINANCIALS, "Import business borrowers' financial statements (risk analyst)")


@router.get("/feeds/imports", response_model=Page[FeedImportRead], summary="Feed imports, latest first",
            responses=problem_responses(422))
def list_imports(request: Request, _: api.Reviewer, paging: paged() = None) -> Page[FeedImportRead]:
    with api.database(request).session() as session:
        return service.imports_page(session, paging)


@router.get("/feeds/imports/{import_id}", response_model=FeedImportRead, summary="One feed import's report",
            responses=problem_responses(404))
def get_import(request: Request, import_id: str, _: api.Reviewer) -> FeedImportRead:
    with api.database(request).session() as session:
        return FeedImportRead.model_validate(service.get_import(session, import_id))


@router.get("/feeds/imports/{import_id}/errors", response_model=Page[FeedRowErrorRead],
            summary="The rows an import refused: line, field and reason", responses=problem_responses(404, 422))
def import_errors(request: Request, import_id: str, _: api.Reviewer,
                  paging: paged(100) = None) -> Page[FeedRowErrorRead]:
    with api.database(request).session() as session:
        return service.row_errors(session, import_id, paging)
