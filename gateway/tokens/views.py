from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request

from gateway.limits.dependencies import limit_sign_in
from gateway.tokens import service
from gateway.tokens.models import JwkSet, TokenResponse
from gateway.users.service import authenticate
from shared.errors import Problem, problem_responses

router = APIRouter(tags=["authentication"])


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="OAuth2 password flow: exchange a username and password for an access token",
    responses=problem_responses(400, 422, 429),
    dependencies=[Depends(limit_sign_in)],
)
def issue_token(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    grant_type: Annotated[str, Form(pattern="^password$")] = "password",
    scope: Annotated[str, Form(max_length=1000)] = "",
) -> TokenResponse:
    state = request.app.state
    with state.database.session() as session:
        user = authenticate(session, username, password)
        if user is None:
            raise Problem(400, "Invalid credentials", "Username or password is wrong, or the user is disabled.",
                          extra={"error": "invalid_grant"})
        token, granted = service.issue_access_token(
            session,
            user,
            requested_scopes=scope.split(),
            issuer=state.kernel.jwt_issuer,
            audience=state.kernel.jwt_audience,
            ttl_seconds=state.gateway_settings.token_ttl_seconds,
            passphrase=state.passphrase,
        )
    return TokenResponse(access_token=token, expires_in=state.gateway_settings.token_ttl_seconds, scope=granted)


@router.get("/.well-known/jwks.json", response_model=JwkSet, summary="Public keys that verify LoanCRM access tokens")
def published_keys(request: Request) -> JwkSet:
    with request.app.state.database.session() as session:
        return service.jwks(session)
