"""RFC 9457 problem details for every error a service answers."""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("loancrm.errors")
# Where a proxy in front says it mounts this app (the gateway sends `/api/{service}`); anything else is ignored.
_FORWARDED_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the input at fault, e.g. `body.national_id`.")
    message: str


class ProblemDetail(BaseModel):
    type: str = Field(default="about:blank", description="URI reference identifying the problem type.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):
    """Raise anywhere to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


def field_problem(field: str, message: str, status: int = 422, title: str = "Invalid input") -> Problem:
    return Problem(status, title, f"{field}: {message}", errors=[FieldError(field=field, message=message)])


def public_path(request: Request) -> str:
    """The path as the caller addressed it: through the gateway, `/api/monitoring/loans/x`, not `/loans/x`."""
    prefix = request.headers.get("x-forwarded-prefix", "")
    return (prefix if _FORWARDED_PREFIX.fullmatch(prefix) else "") + request.url.path


# Headers some writes cannot go without, and why: documented as required, and when missing a 428 naming the
# header (the request is well formed, a precondition of the write is missing), never a 422.
PRECONDITION_HEADERS = {
    "Idempotency-Key": "This write needs an Idempotency-Key header so it can be retried safely.",
    "If-Match": "Send If-Match with the ETag of your last GET.",
}


def precondition_header(name: str, description: str) -> Any:
    """The type of a route parameter for a required precondition header (one of PRECONDITION_HEADERS)."""
    assert name in PRECONDITION_HEADERS, name
    return Annotated[str, Header(alias=name, description=description)]


def precondition_required(name: str, detail: str | None = None) -> Problem:
    return Problem(428, "Precondition required", detail or PRECONDITION_HEADERS[name],
                   errors=[FieldError(field=f"header.{name}", message="required")])


def _missing_precondition(error: dict[str, Any]) -> str | None:
    loc = error.get("loc", ())
    if error.get("type") != "missing" or len(loc) != 2 or loc[0] != "header":
        return None
    return next((name for name in PRECONDITION_HEADERS if name.lower() == str(loc[1]).lower()), None)


def problem_response(request: Request | None, problem: Problem) -> JSONResponse:
    body = ProblemDetail(
        type=problem.type,
        title=problem.title,
        status=problem.status,
        detail=problem.detail,
        instance=public_path(request) if request is not None else None,
        request_id=getattr(request.state, "request_id", None) if request is not None else None,
        errors=problem.errors,
    ).model_dump(exclude_none=True)
    body.update(problem.extra)
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=problem.headers)


_STATUS_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    428: "Precondition required",
    429: "Too many requests",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _on_problem(request: Request, exc: Problem) -> JSONResponse:
    return problem_response(request, exc)


async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI's answer to a body its JSON decoder took but could not finish (nested too deep, a number of
        # thousands of digits, bytes that are not UTF-8): bad input like any other, so a 422 naming the body.
        return problem_response(request, field_problem(
            "body", "is not JSON this service can read: nested too deep, a number too long, or not UTF-8"))
    title = _STATUS_TITLES.get(exc.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    return problem_response(request, Problem(exc.status_code, title, detail, headers=dict(exc.headers or {})))


async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    missing = [_missing_precondition(err) for err in exc.errors()]
    if missing and all(missing):
        return problem_response(request, precondition_required(missing[0]))  # type: ignore[arg-type]
    errors = [FieldError(field=_loc_to_field(err["loc"]), message=err["msg"]) for err in exc.errors()]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return problem_response(request, Problem(422, "Invalid input", detail, errors=errors))


_UNAVAILABLE = Problem(503, "Service unavailable",
                       "The database is unavailable; retry shortly (a write with the same Idempotency-Key).",
                       headers={"Retry-After": "1"})


async def _on_database_unavailable(request: Request, exc: DBAPIError) -> JSONResponse:
    if isinstance(exc, DataError):
        return await _on_unstorable(request, exc.orig)
    if not (exc.connection_invalidated or isinstance(exc, OperationalError)):
        return await _on_unexpected(request, exc)
    # Lost connection, server restarting, lock wait exhausted: a retry is safe (a write retried with its
    # Idempotency-Key replays the first answer if its commit did land).
    log.warning("database unavailable", extra={"path": request.url.path, "error": type(exc.orig).__name__})
    return problem_response(request, _UNAVAILABLE)


async def _on_unstorable(request: Request, exc: BaseException | None) -> JSONResponse:
    """A value the database refuses to hold (a NUL in a text, a number past its column): bad input, not a fault.
    The driver names neither the field nor the value, so neither does the answer."""
    reason = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else "a value out of range"
    log.info("input the database cannot store", extra={"path": request.url.path, "error": reason})
    return problem_response(request, Problem(422, "Invalid input", f"A value cannot be stored: {reason}."))


async def _on_driver_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The same, for an error from a driver used directly (a hot path that skips SQLAlchemy's execution): the
    pool cannot know its connections died, so it is emptied here."""
    database = getattr(request.app.state, "database", None)
    if database is not None:
        database.engine.dispose()
    log.warning("database unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
    return problem_response(request, _UNAVAILABLE)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The client learns only that it failed and which request to quote; the trace goes to the log.
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(request, Problem(500, "Internal error", "The request failed; quote the request id."))


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(DBAPIError, _on_database_unavailable)
    app.add_exception_handler(psycopg.OperationalError, _on_driver_unavailable)
    app.add_exception_handler(psycopg.DataError, _on_unstorable)
    app.add_exception_handler(sqlite3.OperationalError, _on_driver_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entry documenting problem+json bodies, so generated clients type errors."""
    return {
        status: {
            "model": ProblemDetail,
            "description": _STATUS_TITLES.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
        }
        for status in statuses
    }
