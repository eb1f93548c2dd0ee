"""FastAPI dependencies that put a verified `Principal` on every request."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request

from shared.audit import identify
from shared.auth.tokens import InvalidToken, KeysUnavailable, Principal, RevocationsUnavailable, TokenVerifier
from shared.errors import Problem

_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
# A route's `openapi_extra` key naming the scopes it needs (any one of them), when not its service's default.
SCOPES_KEY = "x-scopes"
ScopeDefault = Callable[[str], tuple[str, ...]]


def bearer_token(request: Request) -> str:
    return _bearer(request.headers.get("authorization", ""))


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "Unauthorized", "A bearer access token is required.", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


async def current_principal(request: Request) -> Principal:
    return await verified_principal(request.app.state.verifier, request.headers.get("authorization", ""),
                                    request.scope)


async def verified_principal(verifier: TokenVerifier, authorization: str, scope: dict[str, Any]) -> Principal:
    """The caller whose bearer token `authorization` carries, verified, and put on the request's `scope` (its
    `request.state.principal`): `current_principal` for a plain ASGI app, which has no `Request`."""
    token = _bearer(authorization)
    try:
        principal = await verifier.verify(token)
    except InvalidToken as exc:
        raise Problem(401, "Unauthorized", str(exc), headers=_CHALLENGE) from None
    except RevocationsUnavailable:
        raise Problem(503, "Service unavailable", "The gateway's revocation list cannot be fetched, so no token can "
                                                  "be trusted; retry shortly.", headers={"Retry-After": "5"}) from None
    except KeysUnavailable:
        raise Problem(503, "Service unavailable", "Signing keys cannot be fetched from the gateway.") from None
    identify(principal.sub, principal.roles)  # whom the request's writes and reads are audited as
    state = scope.setdefault("state", {})
    state["principal"] = principal
    state["principal_sub"] = principal.sub
    return principal


def require_roles(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    # Not a nested Depends(current_principal): every business router already runs that first (shared/app.py), and
    # a nested dependency costs each request another pass of FastAPI's dependency solver (~50-100 us measured).
    async def dependency(request: Request) -> Principal:
        principal = getattr(request.state, "principal", None) or await current_principal(request)
        if not principal.has_role(*roles):
            raise Problem(403, "Forbidden", f"This action needs one of the roles: {', '.join(roles)}.")
        return principal

    return dependency


def needs(*scopes: str) -> dict[str, Any]:
    """`openapi_extra` for a route whose scope is not its service's default: any one of `scopes` will do, none
    means the route needs no scope (the gateway's proxy, where each service checks its own)."""
    return {SCOPES_KEY: list(scopes)}


def service_scopes(service: str) -> ScopeDefault:
    """A service's default: `<service>:read` to read, `<service>:write` for anything else."""
    read, write = (f"{service}:read",), (f"{service}:write",)
    return lambda method: read if method in ("GET", "HEAD") else write


def needed_scopes(route: Any, default: ScopeDefault, method: str) -> tuple[str, ...]:
    """The scopes a route needs (any one of them): its `needs(...)`, else its service's default for `method`."""
    extra = getattr(route, "openapi_extra", None) or {}
    return tuple(extra[SCOPES_KEY]) if SCOPES_KEY in extra else default(method)


def scoped_principal(default: ScopeDefault) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """The verified caller, refused unless its token's scopes include one the route needs: a token's scopes
    narrow what its roles allow (the roles are checked by each route's `require_roles`)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        needed = needed_scopes(request.scope.get("route"), default, request.method)
        if needed and principal.scopes.isdisjoint(needed):
            wanted = " ".join(needed)
            raise Problem(403, "Forbidden", f"This token's scope does not allow this; it needs one of: {wanted}.",
                          headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{wanted}"'},
                          extra={"needed_scopes": list(needed)})
        return principal

    return dependency
