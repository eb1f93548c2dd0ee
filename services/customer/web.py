"""FastAPI glue every customer feature shares: roles, the PII vault, idempotent creates, ETags."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import Connection
from sqlmodel import Session

from services.customer import scoping
from shared.pii import PiiVault
from services.customer.db import idempotency
from shared.audit.grouped import GroupCommit
from shared.auth.dependencies import require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.db import Database
from shared.errors import Problem, precondition_header, precondition_required
from shared.idempotency import Outcome, answer_once

Reader = Annotated[Principal, Depends(require_roles(*scoping.READ_ROLES))]
# Read by people, and by COB's batch identity: a borrower's portrait (contact silence, re-scoring) and the consent
# re-scoring needs.
BatchReader = Annotated[Principal, Depends(require_roles(*scoping.READ_ROLES, Role.BATCH))]
Writer = Annotated[Principal, Depends(require_roles(*scoping.WRITE_ROLES))]
Manager = Annotated[Principal, Depends(require_roles(*scoping.MANAGER_ROLES))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
# Who may ask for a reveal at all; customers/service.py decides on what basis (reason or queue item).
Revealer = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.LOAN_OFFICER, Role.COLLECTOR))]
Auditor = Annotated[Principal, Depends(require_roles(*scoping.AUDIT_ROLES))]
IfMatch = precondition_header("If-Match", "The ETag from your last GET.")
OptionalIfMatch = Annotated[str | None, Header(alias="If-Match", description="The ETag from your last GET.")]

T = TypeVar("T")
# An entity tag of If-Match's list (RFC 9110 8.8.3): strong or weak, any opaque text between the quotes.
_ENTITY_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')


def database(request: Request) -> Database:
    return request.app.state.database


@contextmanager
def read_session(request: Request) -> Iterator[Connection]:
    """A bare connection for a read that makes at most one write of its own (the access-log rows of a full view).

    Each statement commits on its own (autocommit), which saves the BEGIN and COMMIT round trips a read would
    otherwise pay, and no ORM session is built (about 0.1 ms a request). Still safe: the read is a single SELECT,
    and the access-log INSERT is itself atomic and durable before the response leaves, so unmasked data is never
    returned unless its access-log row is committed. Shares the service's connection pool."""
    engine = getattr(request.app.state, "autocommit_engine", None)
    if engine is None:
        engine = request.app.state.autocommit_engine = database(request).engine.execution_options(
            isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        yield connection


def read_log(request: Request) -> GroupCommit:
    return request.app.state.read_log


def json_body(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Plain values (dicts, lists, dates, Decimals) serialised once by pydantic-core, the same way a model's
    fields would be: for responses built straight from rows, with no model to validate per item."""
    return Response(to_json(content), status_code=status_code, headers=headers, media_type="application/json")


def vault(request: Request) -> PiiVault:
    return request.app.state.pii_vault


def etag(version: int) -> str:
    return f'"{version}"'


def expected_versions(if_match: str | None, *, required: bool = True) -> tuple[int, ...] | None:
    """The versions If-Match names, any of which may be current (None: none asked for). If-Match compares
    strongly (RFC 9110 13.1.1): a weak tag never matches, and a list matches when any of its tags does."""
    # `*` matches whatever version is current (RFC 9110): it names no version read, so it guards nothing.
    if not if_match or if_match.strip() == "*":
        if required:
            raise precondition_required("If-Match", "If-Match: * names no version; send the ETag of your last GET."
                                        if if_match else None)
        return None
    tags, at = [], 0
    while at < len(if_match):
        found = _ENTITY_TAG.match(if_match, at)
        if found is None:
            raise Problem(412, "Precondition failed", "If-Match is not a list of ETags this service issued.")
        tags.append(found.groups())
        at = found.end()
    versions = tuple(sorted({int(tag) for weak, tag in tags if not weak and tag.isascii() and tag.isdigit()}))
    if not versions:
        raise Problem(412, "Precondition failed", "If-Match names no strong ETag this service issued (a weak one "
                                                  "never matches).")
    return versions


def create_once(
    request: Request,
    principal: Principal,
    key: str | None,
    payload: tuple[Any, ...],
    command: Callable[[Session], BaseModel],
    *,
    etag_of: Callable[[dict[str, Any]], str] | None = None,
    lease: timedelta | None = None,
) -> JSONResponse:
    """A create a client may retry: the same Idempotency-Key returns the first 201 instead of acting twice."""
    def tag(outcome: Outcome) -> dict[str, str]:
        return {"ETag": etag_of(outcome.body)} if etag_of is not None and outcome.status_code == 201 else {}

    return answer_once(idempotency, database(request), owner=principal.sub, key=key, required=True,
                       payload=payload, command=lambda session: (201, command(session).model_dump(mode="json")),
                       lease=lease, headers=tag)


def act_once(request: Request, principal: Principal, key: str | None, payload: tuple[Any, ...],
             command: Callable[[Session], BaseModel]) -> JSONResponse:
    """A change of state a client may retry: with an Idempotency-Key a retry gets the first answer, not a 409
    because the state already moved on."""
    return answer_once(idempotency, database(request), owner=principal.sub, key=key, required=False,
                       payload=payload, command=lambda session: (200, command(session).model_dump(mode="json")))
