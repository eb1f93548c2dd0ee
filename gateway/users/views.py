from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from gateway.db import idempotency
from gateway.users import service
from gateway.users.models import UserCreate, UserRead
from shared.auth.dependencies import require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.errors import problem_responses
from shared.idempotency import check_key, fingerprint

router = APIRouter(prefix="/auth/users", tags=["users"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


@router.post("", status_code=201, response_model=UserRead, summary="Create a user (admin)",
             responses=problem_responses(409, 428))
def create_user(
    request: Request,
    command: UserCreate,
    principal: Admin,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = check_key(idempotency_key, required=False)

    def run(session):  # noqa: ANN001, ANN202
        user = service.create_user(session, command, created_by=principal.sub)
        return 201, UserRead.model_validate(user, from_attributes=True).model_dump(mode="json")

    outcome = idempotency.run_once(
        request.app.state.database,
        owner=principal.sub,
        key=key,
        request_fingerprint=fingerprint("create_user", command.model_dump(mode="json", exclude={"password"})),
        command=run,
    )
    return JSONResponse(outcome.body, status_code=outcome.status_code)


@router.get("", response_model=list[UserRead], summary="List users (admin, auditor)")
def list_users(
    request: Request, _: Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.AUDITOR))]
) -> list[UserRead]:
    with request.app.state.database.session() as session:
        return [UserRead.model_validate(u, from_attributes=True) for u in service.list_users(session)]
