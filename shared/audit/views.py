"""`GET /audit` on every service: its audit trail, for auditors and admins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.audit.trail import AuditTrail, page_rows
from shared.auth.dependencies import needs, require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.bounds import Timestamp
from shared.errors import field_problem, problem_responses
from shared.pagination import Page, paged


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AuditRow(BaseModel):
    model_config = ConfigDict(title="AuditRow", json_schema_extra={"examples": [{
        "seq": 1042, "at": "2026-12-01T09:30:00.123456Z", "actor": "li.wei", "roles": ["loan_officer"],
        "request_id": "b3c1f0e2d4a5", "action": "update", "entity": "customers",
        "entity_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "digest_before": "9f86d0...", "digest_after": "60303a...",
        "detail": None, "prev_hash": "2c26b4...", "hash": "fcde2b..."}]})

    seq: int = Field(description="Position in the chain, from 1, without gaps.")
    at: Annotated[datetime, AfterValidator(_utc)]
    actor: str = Field(description="The signed-in caller (`sub`), or `system` for jobs and background writers.")
    roles: list[str]
    request_id: str | None = Field(description="The X-Request-Id of the request that did it.")
    action: Literal["insert", "update", "delete", "read"]
    entity: str = Field(description="The table written (or, for a read, the records read).")
    entity_id: str | None = Field(description="The record's id; null for a batch statement or a read of several.")
    digest_before: str | None = Field(description="SHA-256 of the record's columns before; null for an insert.")
    digest_after: str | None = Field(description="SHA-256 of its columns after (of a batch's rows); null for a "
                                                 "delete.")
    detail: str | None = Field(description="JSON: what a read showed (ids, full or masked), a batch's row count.")
    prev_hash: str
    hash: str = Field(description="sha256(prev_hash, seq, this row): `loancrm audit verify` recomputes it.")


Auditor = Annotated[Principal, Depends(require_roles(Role.AUDITOR, Role.ADMIN))]


def audit_router(trail: AuditTrail) -> APIRouter:
    router = APIRouter(tags=["audit"])

    @router.get("/audit", response_model=Page[AuditRow], summary="The audit trail: who wrote or read what, when",
                description="Every write and every personal-data read of this service, newest first; each row "
                            "carries the hash of the one before (auditor, admin).",
                responses=problem_responses(422), openapi_extra=needs("audit:read"))
    async def list_audit(request: Request, _: Auditor, actor: str | None = None, entity: str | None = None,
                         entity_id: str | None = None, request_id: str | None = None,
                         action: Literal["insert", "update", "delete", "read"] | None = None,
                         since: Timestamp | None = None, until: Timestamp | None = None,
                         paging: paged(100, 1000) = None) -> Page[AuditRow]:
        after = paging.after(int)
        if after is not None and after[0] <= 0:
            raise field_problem("query.cursor", "is not a cursor this service issued")
        before = after[0] if after is not None else None

        def read() -> list:
            with request.app.state.database.engine.connect() as connection:
                return page_rows(trail, connection, actor=actor, entity=entity, entity_id=entity_id,
                                 request_id=request_id, action=action, since=since, until=until, before_seq=before,
                                 limit=paging.limit)

        rows = await run_in_threadpool(read)
        return paging.page(rows, key=lambda row: [row.seq], read=lambda shown: [
            AuditRow(**{**row._mapping, "roles": [r for r in row.roles.split(",") if r]}) for row in shown])

    return router
