import time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool

from gateway.limits.dependencies import check_sign_in, record_failed_sign_in
from gateway.tokens import service
from gateway.tokens.models import JwkSet, Revocation, RevocationList, TokenResponse
from gateway.users import service as users
from gateway.users.models import PasswordChange
from shared.errors import Problem, problem_responses

router = APIRouter(tags=["authentication"])


async def _guarded(request: Request, username: str, attempt):  # noqa: ANN001, ANN202
    """Run a password check under the sign-in limits; a wrong password counts against them."""
    await check_sign_in(request, username)
    try:
        return await run_in_threadpool(attempt)
    except Problem as problem:
        if problem.extra.get("error") == "invalid_grant" and not problem.extra.get("password_change_required"):
            await record_failed_sign_in(request, username)
        raise


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="OAuth2 password flow: exchange a username and password for an access token",
    responses=problem_responses(400, 422, 429),
)
async def issue_token(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    grant_type: Annotated[str, Form(pattern="^password$")] = "password",
    scope: Annotated[str, Form(max_length=1000)] = "",
) -> TokenResponse:
    state = request.app.state

    def attempt() -> tuple[str, str]:
        with state.database.session() as session:
            user = users.sign_in(session, username, password)
            return service.issue_access_token(
                session,
                user,
                requested_scopes=scope.split(),
                issuer=state.kernel.jwt_issuer,
                audience=state.kernel.jwt_audience,
                ttl_seconds=state.gateway_settings.token_ttl_seconds,
                keyring=state.keyring,
            )

    token, granted = await _guarded(request, username, attempt)
    return TokenResponse(access_token=token, expires_in=state.gateway_settings.token_ttl_seconds, scope=granted)


@router.post(
    "/auth/password",
    status_code=204,
    summary="Choose a new password, proving the current one (or the one-time password of a reset)",
    description="Every token the user holds stops working. Counts against the same limits as signing in.",
    responses=problem_responses(400, 422, 429),
)
async def change_password(request: Request, command: PasswordChange) -> None:
    state = request.app.state

    def attempt() -> None:
        with state.database.session() as session:
            users.change_password(session, command, token_lifetime_seconds=state.kernel.token_max_lifetime_seconds)
            session.commit()

    await _guarded(request, command.username, attempt)
    state.verifier.revocations_changed()


@router.get("/.well-known/jwks.json", response_model=JwkSet, summary="Public keys that verify LoanCRM access tokens")
def published_keys(request: Request) -> JwkSet:
    with request.app.state.database.session() as session:
        return service.jwks(session, request.app.state.kernel.token_max_lifetime_seconds)


@router.get(
    "/auth/revocations",
    response_model=RevocationList,
    summary="Session ids whose tokens are void (polled by every service)",
    description="Each entry stays until `until`, when every token that could carry that `sid` has expired. "
    "A `sid` is random and says nothing about its user.",
)
def revocations(request: Request) -> RevocationList:
    with request.app.state.database.session() as session:
        return RevocationList(revoked=[Revocation(sid=r.sid, until=int(r.expires_at.timestamp()))
                                       for r in users.revoked_sessions(session)],
                              generated_at=int(time.time()))
