import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from gateway.limits.dependencies import check_sign_in, record_failed_sign_in
from gateway.sessions import service as sessions
from gateway.tokens import flows, service
from gateway.tokens.models import JwkSet, Revocation, RevocationList, ServerMetadata, TokenError, TokenResponse
from gateway.users import service as users
from gateway.users.models import PasswordChange
from shared.app import checked_body
from shared.errors import PROBLEM_MEDIA_TYPE, Problem, problem_responses

router = APIRouter(tags=["authentication"])


async def _guarded(request: Request, who: str, attempt):  # noqa: ANN001, ANN202
    """Run a password or secret check under the sign-in limits; a wrong one counts against them."""
    await check_sign_in(request, who)
    try:
        return await run_in_threadpool(attempt)
    except Problem as problem:
        if problem.extra.get("error") in ("invalid_grant", "invalid_client") and \
                not problem.extra.get("password_change_required"):
            await record_failed_sign_in(request, who)
        raise


def _oauth_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": TokenError, "description": "An RFC 6749 error",
                     "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/TokenError"}}}}
            for status in statuses}


_TOKEN_FORM = {"requestBody": {"required": True, "content": {flows.FORM_MEDIA_TYPE: {"schema": {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": list(flows.GRANT_TYPES),
                       "description": "Defaults to password when only username and password are sent."},
        "username": {"type": "string", "maxLength": 64},
        "password": {"type": "string", "maxLength": 256, "format": "password"},
        "refresh_token": {"type": "string", "maxLength": 128},
        "scope": {"type": "string", "maxLength": 1000, "description": "Space-separated; default: all allowed."},
        "client_id": {"type": "string", "maxLength": 64},
        "client_secret": {"type": "string", "maxLength": 256, "format": "password",
                          "description": "client_secret_post; or send both in HTTP Basic (client_secret_basic)."},
    },
}}}}}


async def _grant(request: Request, token_request: flows.TokenRequest) -> dict[str, Any]:
    state = request.app.state
    settings = state.gateway_settings
    issuing = flows.Issuing(issuer=state.kernel.jwt_issuer, audience=state.kernel.jwt_audience,
                            ttl_seconds=settings.token_ttl_seconds,
                            refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
                            token_lifetime_seconds=state.kernel.token_max_lifetime_seconds, keyring=state.keyring)
    grant = flows.GRANTS[token_request.grant_type]

    def attempt() -> dict[str, Any]:
        with state.database.session() as session:
            return grant(session, token_request, issuing)

    if token_request.grant_type == "password":
        return await _guarded(request, token_request.required("username"), attempt)
    if token_request.grant_type == "client_credentials":
        return await _guarded(request, f"client:{token_request.client_id or ''}", attempt)
    try:
        return await run_in_threadpool(attempt)
    finally:
        state.verifier.revocations_changed()  # a reused refresh token revokes its family here and now


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="OAuth2 token endpoint: password, refresh_token and client_credentials grants (RFC 6749)",
    description="Form-encoded. A partner system authenticates with HTTP Basic (client_secret_basic) or the "
    "client_id and client_secret fields (client_secret_post). Answers are never cached (no-store).",
    responses={**_oauth_errors(400, 401), **problem_responses(429, 503)},
    openapi_extra=_TOKEN_FORM,
)
async def issue_token(request: Request) -> JSONResponse:
    content_type = request.headers.get("content-type", "")
    try:
        items = list((await request.form()).multi_items()) if flows.is_form(content_type) else []
        token_request = flows.read_token_request(content_type, items, request.headers.get("authorization", ""))
        body = await _grant(request, token_request)
    except Problem as problem:
        raise flows.as_oauth_error(problem) from None
    return JSONResponse(body, headers=flows.NO_STORE)


@router.post(
    "/auth/revoke",
    status_code=200,
    summary="Sign out an app (RFC 7009): revoke a refresh token, every token of its sign-in with it",
    description="Form-encoded `token` (a refresh token) and optional `token_type_hint`. Answers 200 whether or "
    "not the token was known, as RFC 7009 asks; access tokens end with their sign-in's refresh token.",
    responses={**_oauth_errors(400), **problem_responses(503)},
    openapi_extra={"requestBody": {"required": True, "content": {flows.FORM_MEDIA_TYPE: {"schema": {
        "type": "object", "required": ["token"],
        "properties": {"token": {"type": "string", "maxLength": 128},
                       "token_type_hint": {"type": "string", "enum": ["refresh_token", "access_token"]}}}}}}},
)
async def revoke_token(request: Request) -> JSONResponse:
    state = request.app.state
    content_type = request.headers.get("content-type", "")
    try:
        items = list((await request.form()).multi_items()) if flows.is_form(content_type) else []
        value = flows.read_revocation_request(content_type, items)
    except Problem as problem:
        raise flows.as_oauth_error(problem) from None

    def run() -> None:
        with state.database.session() as session:
            sessions.sign_out(session, value, token_lifetime_seconds=state.kernel.token_max_lifetime_seconds)
            session.commit()

    await run_in_threadpool(run)
    state.verifier.revocations_changed()
    return JSONResponse({}, headers=flows.NO_STORE)


def _base_url(request: Request) -> str:
    return request.app.state.gateway_settings.public_url or str(request.base_url).rstrip("/")


@router.get("/.well-known/openid-configuration", response_model=ServerMetadata,
            summary="OpenID Connect discovery: the issuer, its token endpoint and keys")
def openid_configuration(request: Request) -> ServerMetadata:
    return flows.server_metadata(request.app.state.kernel.jwt_issuer, _base_url(request))


@router.get("/.well-known/oauth-authorization-server", response_model=ServerMetadata,
            summary="OAuth 2.0 authorization server metadata (RFC 8414), the same as the OpenID configuration")
def authorization_server_metadata(request: Request) -> ServerMetadata:
    return flows.server_metadata(request.app.state.kernel.jwt_issuer, _base_url(request))


@router.post(
    "/auth/password",
    status_code=204,
    summary="Choose a new password, proving the current one (or the one-time password of a reset)",
    description="Every token the user holds stops working. Counts against the same limits as signing in.",
    responses=problem_responses(400, 422, 429),
    dependencies=[Depends(checked_body)],  # public, so not under the business routes' own body checks
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
