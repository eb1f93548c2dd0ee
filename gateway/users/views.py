from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from gateway.db import idempotency
from gateway.users import service
from gateway.users.models import AccessChange, PasswordReset, UserCreate, UserRead, UserStatus
from shared.auth.dependencies import needs, require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.errors import problem_responses
from shared.idempotency import check_key, fingerprint
from shared.pagination import Page, paged

router = APIRouter(prefix="/auth/users", tags=["users"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Reader = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.AUDITOR))]


def _read(user) -> UserRead:  # noqa: ANN001
    return UserRead.model_validate(user, from_attributes=True)


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
        return 201, _read(user).model_dump(mode="json")

    outcome = idempotency.run_once(
        request.app.state.database,
        owner=principal.sub,
        key=key,
        request_fingerprint=fingerprint("create_user", command.model_dump(mode="json", exclude={"password"})),
        command=run,
    )
    return JSONResponse(outcome.body, status_code=outcome.status_code)


@router.get("", response_model=Page[UserRead], summary="List users with their status, by username (admin, auditor)",
            openapi_extra=needs("users:admin", "audit:read"))
def list_users(
    request: Request,
    _: Reader,
    status: UserStatus | None = None,
    paging: paged(50, 200) = None,
) -> Page[UserRead]:
    with request.app.state.database.session() as session:
        return service.list_users(session, paging, lambda users: [_read(u) for u in users], status=status)


@router.get("/{username}", response_model=UserRead, summary="One user (admin, auditor)",
            responses=problem_responses(404), openapi_extra=needs("users:admin", "audit:read"))
def get_user(request: Request, username: str, _: Reader) -> UserRead:
    with request.app.state.database.session() as session:
        return _read(service.get_user(session, username))


async def _revoking(request: Request, command) -> UserRead:  # noqa: ANN001
    """Run a change that may revoke the user's tokens; this gateway applies it at once, services within a poll."""
    state = request.app.state

    def run() -> UserRead:
        with state.database.session() as session:
            result = command(session, state.kernel.token_max_lifetime_seconds)
            session.commit()
            return result

    result = await run_in_threadpool(run)
    state.verifier.revocations_changed()
    return result


@router.post("/{username}/disable", response_model=UserRead, responses=problem_responses(404, 409),
             summary="Disable a user (admin): no sign-in, and every token it holds stops working")
async def disable_user(request: Request, username: str, principal: Admin) -> UserRead:
    return await _revoking(request, lambda session, lifetime: _read(service.disable_user(
        session, username, actor=principal.sub, token_lifetime_seconds=lifetime)))


@router.post("/{username}/enable", response_model=UserRead, responses=problem_responses(404),
             summary="Enable a disabled user again (admin)")
async def enable_user(request: Request, username: str, principal: Admin) -> UserRead:
    return await _revoking(request, lambda session, _: _read(service.enable_user(
        session, username, actor=principal.sub)))


@router.patch("/{username}", response_model=UserRead, responses=problem_responses(404),
              summary="Change a user's roles and/or branch (admin); its current tokens stop working")
async def change_access(request: Request, username: str, change: AccessChange, principal: Admin) -> UserRead:
    return await _revoking(request, lambda session, lifetime: _read(service.change_access(
        session, username, change, actor=principal.sub, token_lifetime_seconds=lifetime)))


@router.post("/{username}/password-reset", response_model=PasswordReset, responses=problem_responses(404),
             summary="Reset a user's password (admin): a one-time password, to be replaced at next sign-in",
             description="Not replayable with an Idempotency-Key on purpose: the password is never stored in clear.")
async def reset_password(request: Request, username: str, principal: Admin) -> PasswordReset:
    def command(session, lifetime):  # noqa: ANN001, ANN202
        user, one_time = service.reset_password(session, username, actor=principal.sub,
                                                token_lifetime_seconds=lifetime)
        return PasswordReset(username=user.username, one_time_password=one_time)

    return await _revoking(request, command)
