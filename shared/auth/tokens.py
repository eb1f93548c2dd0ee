"""Verifying access tokens against the gateway's published keys. No web framework here."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from jose import jwk, jwt
from jose.backends.base import Key
from jose.exceptions import ExpiredSignatureError, JWTClaimsError, JWTError

ACCEPTED_ALGORITHMS = ("RS256",)
# A token naming a key we do not know triggers at most one JWKS refetch per this many seconds,
# so forged `kid`s cannot turn the service into a flood of requests against the gateway.
UNKNOWN_KID_REFETCH_SECONDS = 10.0
# Verified tokens remembered (exact token string -> principal) until they expire or the key set changes: a
# client sends one token many times, and the RSA check plus claim parsing is most of what auth costs a request.
VERIFIED_CACHE_SIZE = 10_000


class InvalidToken(Exception):
    pass


class KeysUnavailable(Exception):
    """The gateway's key set could not be fetched: nothing can be verified."""


@dataclass(frozen=True)
class Principal:
    sub: str
    roles: tuple[str, ...]
    branch: str | None
    scopes: frozenset[str]
    jti: str
    expires_at: int
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


JwksSource = Callable[[], Awaitable[dict[str, Any]]]


def http_jwks_source(url: str, client: httpx.AsyncClient | None = None, timeout: float = 2.0) -> JwksSource:
    async def fetch() -> dict[str, Any]:
        owned = client or httpx.AsyncClient(timeout=timeout)
        try:
            response = await owned.get(url)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise KeysUnavailable(f"cannot fetch signing keys from {url}: {exc}") from exc
        finally:
            if client is None:
                await owned.aclose()

    return fetch


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_source: JwksSource,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._source = jwks_source
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._verified: OrderedDict[str, Principal] = OrderedDict()
        self._keys: dict[str, Key] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            jwks = await self._source()
            # Parsed once per key set: building the RSA key from its JWK costs as much as the signature check.
            keys = {
                key["kid"]: jwk.construct(key, key["alg"])
                for key in jwks.get("keys", [])
                if key.get("kid") and key.get("alg") in ACCEPTED_ALGORITHMS
            }
            if keys.keys() != self._keys.keys():
                # A key withdrawn from the set takes the tokens it signed with it.
                self._verified.clear()
            self._keys = keys
            self._fetched_at = self._clock()

    async def _key_for(self, kid: str) -> Key:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._cache_seconds
        may_refetch = self._fetched_at is None or now - self._fetched_at > UNKNOWN_KID_REFETCH_SECONDS
        if stale or (kid not in self._keys and may_refetch):
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("token signed with an unknown key")
        return key

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None and self._fresh_keys():
            if cached.expires_at > time.time():
                self._verified.move_to_end(token)
                return cached
            del self._verified[token]
        principal = await self._verify_uncached(token)
        self._verified[token] = principal
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _fresh_keys(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at <= self._cache_seconds

    async def _verify_uncached(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as exc:
            raise InvalidToken("malformed token") from exc
        # Pin the algorithm before touching the key: this refuses `alg: none` and HS256-with-the-public-key.
        if header.get("alg") not in ACCEPTED_ALGORITHMS:
            raise InvalidToken("token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token has no key id")
        key = await self._key_for(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(ACCEPTED_ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                options={"require_exp": True, "require_iat": True, "require_sub": True, "require_jti": True,
                         "require_aud": True, "require_iss": True},
            )
        except ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except JWTClaimsError as exc:
            raise InvalidToken(f"token claims rejected: {exc}") from exc
        except JWTError as exc:
            if "signature" in str(exc).lower():
                raise InvalidToken("token signature invalid") from exc
            raise InvalidToken(f"token claims rejected: {exc}") from exc
        roles = claims.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidToken("token has no roles")
        return Principal(
            sub=claims["sub"],
            roles=tuple(roles),
            branch=claims.get("branch"),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            jti=claims["jti"],
            expires_at=int(claims["exp"]),
            claims=claims,
        )
