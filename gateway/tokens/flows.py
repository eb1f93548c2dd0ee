"""The token endpoint's grants (RFC 6749): password, refresh_token and client_credentials. No web framework here.

Every refusal is an RFC 6749 §5.2 error: status 400 with `error` (invalid_request, invalid_grant, invalid_scope,
unsupported_grant_type, unauthorized_client), or 401 `invalid_client` with a Basic challenge, in a problem+json
body that also carries `error_description`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from sqlmodel import Session

from gateway.clients import service as clients
from gateway.clients.models import OAuthClient
from gateway.sessions import service as sessions
from gateway.tokens.models import ServerMetadata
from gateway.tokens.service import KeyRing, Subject, granted_scope, issue_access_token, user_subject
from gateway.users import service as users
from shared.auth.roles import ROLE_SCOPES, scopes_for
from shared.bounds import control_character_at
from shared.errors import Problem

GRANT_TYPES = ("password", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# The longest value each parameter may have: anything longer is malformed, not worth checking.
_MAX_LENGTHS = {"grant_type": 64, "username": 64, "password": 256, "scope": 1000, "refresh_token": 128,
                "client_id": 64, "client_secret": 256}
# Every token answer, success or error, must not be cached (RFC 6749 §5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="loancrm", charset="UTF-8"'}


def oauth_error(error: str, description: str, *, status: int = 400, title: str | None = None,
                headers: dict[str, str] | None = None, **extra: Any) -> Problem:
    return Problem(status, title or error.replace("_", " ").capitalize(), description,
                   headers={**NO_STORE, **(headers or {})},
                   extra={"error": error, "error_description": description, **extra})


def as_oauth_error(problem: Problem) -> Problem:
    """Any refusal on the way (a field check, a sign-in limit) in RFC 6749 shape, never cached."""
    extra = dict(problem.extra)
    if problem.status < 500 and problem.status != 429:
        extra.setdefault("error", "invalid_request")
        extra.setdefault("error_description", problem.detail or problem.title)
    return Problem(problem.status, problem.title, problem.detail, type_=problem.type, errors=problem.errors,
                   headers={**NO_STORE, **problem.headers}, extra=extra)


def invalid_client(description: str = "Client authentication failed.") -> Problem:
    return oauth_error("invalid_client", description, status=401, title="Invalid client", headers=_CHALLENGE)


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str
    params: dict[str, str]
    client_id: str | None
    client_secret: str | None

    @property
    def scopes(self) -> list[str]:
        return self.params.get("scope", "").split()

    def required(self, name: str) -> str:
        value = self.params.get(name)
        if value is None:
            raise oauth_error("invalid_request", f"The {self.grant_type} grant needs the parameter {name}.",
                              parameter=name)
        return value


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    """client_secret_basic (RFC 6749 §2.3.1): id and secret form-encoded, then joined by ':' in Basic."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None  # a bearer token sent along is no client authentication
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("The Basic credentials are not base64 of client_id:client_secret.") from None
    client_id, colon, secret = decoded.partition(":")
    credentials = unquote_plus(client_id), unquote_plus(secret)
    if not colon or not client_id or control_character_at(list(credentials)) is not None:
        raise invalid_client("The Basic credentials are not base64 of client_id:client_secret.")
    return credentials


def is_form(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == FORM_MEDIA_TYPE


def read_token_request(content_type: str, items: list[tuple[str, Any]], authorization: str) -> TokenRequest:
    if not is_form(content_type):
        raise oauth_error("invalid_request", f"The token request must be sent as {FORM_MEDIA_TYPE}.")
    params: dict[str, str] = {}
    for name, value in items:
        if not isinstance(value, str):
            raise oauth_error("invalid_request", f"The parameter {name} must be text.", parameter=name)
        if value == "":
            continue  # sent without a value: as if omitted (RFC 6749 §3.1)
        if name in params:
            raise oauth_error("invalid_request", f"The parameter {name} is given more than once.", parameter=name)
        if control_character_at(value) is not None:  # no name, secret or token holds one (PostgreSQL: not a NUL)
            raise oauth_error("invalid_request", f"The parameter {name} must not contain control characters.",
                              parameter=name)
        limit = _MAX_LENGTHS.get(name)
        if limit is not None and len(value) > limit:
            raise oauth_error("invalid_request", f"The parameter {name} is longer than {limit} characters.",
                              parameter=name)
        params[name] = value
    client_id, secret = params.get("client_id"), params.get("client_secret")
    basic = _basic_credentials(authorization) if authorization else None
    if basic is not None:
        if secret is not None or (client_id is not None and client_id != basic[0]):
            raise oauth_error("invalid_request", "Use one way of client authentication: Basic or form fields.")
        client_id, secret = basic
    # Sign-ins written before grant_type was checked send username and password only.
    grant_type = params.get("grant_type") or ("password" if "username" in params else None)
    if grant_type is None:
        raise oauth_error("invalid_request", "The parameter grant_type is required.", parameter="grant_type")
    if grant_type not in GRANT_TYPES:
        raise oauth_error("unsupported_grant_type", f"Grant types supported: {', '.join(GRANT_TYPES)}.",
                          title="Unsupported grant type")
    return TokenRequest(grant_type=grant_type, params=params, client_id=client_id, client_secret=secret)


def read_revocation_request(content_type: str, items: list[tuple[str, Any]]) -> str:
    """The token to revoke (RFC 7009 §2.1): form-encoded, once."""
    if not is_form(content_type):
        raise oauth_error("invalid_request", f"The revocation request must be sent as {FORM_MEDIA_TYPE}.")
    tokens = [value for name, value in items if name == "token"]
    if len(tokens) != 1 or not isinstance(tokens[0], str) or not tokens[0]:
        raise oauth_error("invalid_request", "The parameter token is required, once.", parameter="token")
    return tokens[0]


@dataclass(frozen=True)
class Issuing:
    """What signing a token needs, from the settings."""

    issuer: str
    audience: str
    ttl_seconds: int
    refresh_ttl_seconds: int
    token_lifetime_seconds: int
    keyring: KeyRing


def _answer(session: Session, subject: Subject, scope: str, issuing: Issuing,
            refresh_token: str | None = None) -> dict[str, Any]:
    token = issue_access_token(session, subject, scope=scope, issuer=issuing.issuer, audience=issuing.audience,
                               ttl_seconds=issuing.ttl_seconds, keyring=issuing.keyring)
    body: dict[str, Any] = {"access_token": token, "token_type": "bearer", "expires_in": issuing.ttl_seconds,
                            "scope": scope}
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return body


def authenticate_client(session: Session, request: TokenRequest) -> OAuthClient | None:
    """The authenticated client, None when the request names no secret (a public client), else invalid_client."""
    if request.client_secret is None:
        return None
    client = clients.authenticate_client(session, request.client_id or "", request.client_secret)
    if client is None:
        raise invalid_client()
    return client


def _public_only(session: Session, request: TokenRequest) -> None:
    """Password and refresh grants serve LoanCRM's own apps; a partner client uses client_credentials."""
    if authenticate_client(session, request) is not None:
        raise oauth_error("unauthorized_client", f"This client may not use the {request.grant_type} grant; "
                                                 "it gets tokens with client_credentials.",
                          title="Unauthorized client")


def password_grant(session: Session, request: TokenRequest, issuing: Issuing) -> dict[str, Any]:
    username, password = request.required("username"), request.required("password")
    _public_only(session, request)
    user = users.sign_in(session, username, password)
    scope = granted_scope(request.scopes, scopes_for(user.roles))
    started = sessions.start_session(session, user.username, scope, ttl_seconds=issuing.refresh_ttl_seconds)
    body = _answer(session, user_subject(user, started.family), scope, issuing, started.refresh_token)
    session.commit()
    return body


def _refused(description: str) -> Problem:
    return oauth_error("invalid_grant", description, title="Invalid grant")


def refresh_grant(session: Session, request: TokenRequest, issuing: Issuing) -> dict[str, Any]:
    value = request.required("refresh_token")
    _public_only(session, request)
    try:
        issued = sessions.rotate_refresh_token(session, value, ttl_seconds=issuing.refresh_ttl_seconds,
                                               token_lifetime_seconds=issuing.token_lifetime_seconds)
    except sessions.RefreshReused:
        session.commit()  # the family stays revoked although this request fails
        raise _refused("This refresh token was already used: every token of its sign-in is revoked; "
                       "sign in again.") from None
    except sessions.RefreshRefused:
        raise _refused("The refresh token is unknown, expired or revoked; sign in again.") from None
    user = users.get_by_username(session, issued.username)
    if user is None or not user.active or user.must_change_password:
        raise _refused("The user may not sign in any more.")
    # A refresh may narrow the scope of its sign-in, never widen it (RFC 6749 §6).
    allowed = frozenset(issued.scope.split()) & scopes_for(user.roles)
    scope = granted_scope(request.scopes, allowed) if request.scopes else " ".join(sorted(allowed))
    body = _answer(session, user_subject(user, issued.family), scope, issuing, issued.refresh_token)
    session.commit()
    return body


def client_credentials_grant(session: Session, request: TokenRequest, issuing: Issuing) -> dict[str, Any]:
    client = authenticate_client(session, request)
    if client is None:
        raise invalid_client("The client_credentials grant needs the client's id and secret "
                             "(HTTP Basic, or client_id and client_secret fields).")
    scope = granted_scope(request.scopes, frozenset(client.scopes) & scopes_for([client.role]))
    claims: dict[str, Any] = {"client_id": client.client_id}
    if client.rate_limit_per_minute is not None:
        claims["rate_limit"] = client.rate_limit_per_minute
    subject = Subject(sub=client.subject, roles=(client.role,), branch=client.branch, sid=client.session_id,
                      claims=claims)
    # No refresh token (RFC 6749 §4.4.3): the client asks again with its secret.
    return _answer(session, subject, scope, issuing)


GRANTS = {"password": password_grant, "refresh_token": refresh_grant,
          "client_credentials": client_credentials_grant}


def server_metadata(issuer: str, base_url: str) -> ServerMetadata:
    """What a standard OAuth2/OIDC client library needs to find the token endpoint and the keys."""
    return ServerMetadata(
        issuer=issuer,
        token_endpoint=f"{base_url}/auth/token",
        jwks_uri=f"{base_url}/.well-known/jwks.json",
        revocation_endpoint=f"{base_url}/auth/revoke",
        grant_types_supported=list(GRANT_TYPES),
        # "none": LoanCRM's own apps sign in with a password and refresh without a client secret.
        token_endpoint_auth_methods_supported=[*AUTH_METHODS, "none"],
        scopes_supported=sorted(set().union(*ROLE_SCOPES.values())),
        # No authorization endpoint (no browser redirect flow) and no ID tokens; OIDC discovery requires the keys.
        response_types_supported=[],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=["RS256"],
        claims_supported=["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "scope", "roles", "branch",
                          "client_id"],
    )
