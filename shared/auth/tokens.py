"""Verifying access tokens against the gateway's published keys. No web framework here."""

from __future__ import annotations

import asyncio
import weakref
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
# RFC 9068 access tokens are explicitly typed, so no other JWT signed with the same key (an ID token, a signed
# document) passes for one (RFC 8725 §3.11).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# A token longer than this is refused before it is decoded; the gateway's are about 1 KB.
MAX_TOKEN_BYTES = 8 * 1024
# The revocation list is refetched every poll; past this many polls without a successful fetch nothing is
# accepted, so a revocation takes effect within that many polls even while the gateway cannot be reached.
REVOCATION_STALE_POLLS = 3
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


class RevocationsUnavailable(KeysUnavailable):
    """The revocation list is too old to tell whether a token was revoked: nothing can be accepted."""


@dataclass(frozen=True)
class Principal:
    sub: str
    roles: tuple[str, ...]
    branch: str | None
    scopes: frozenset[str]
    jti: str
    expires_at: int
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # The user's token generation at the gateway (OIDC's `sid`): revoked as a whole when the user changes.
    sid: str | None = None

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


JwksSource = Callable[[], Awaitable[dict[str, Any]]]
# The gateway's revocation list: {"revoked": [{"sid": ..., "until": epoch seconds}, ...]}.
RevocationSource = Callable[[], Awaitable[dict[str, Any]]]


def _http_json_source(url: str, what: str, client: httpx.AsyncClient | None, timeout: float,
                      error: type[Exception]) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def fetch() -> dict[str, Any]:
        owned = client or httpx.AsyncClient(timeout=timeout)
        try:
            response = await owned.get(url)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise error(f"cannot fetch {what} from {url}: {exc}") from exc
        finally:
            if client is None:
                await owned.aclose()

    return fetch


def http_jwks_source(url: str, client: httpx.AsyncClient | None = None, timeout: float = 2.0) -> JwksSource:
    return _http_json_source(url, "signing keys", client, timeout, KeysUnavailable)


def http_revocation_source(url: str, client: httpx.AsyncClient | None = None,
                           timeout: float = 2.0) -> RevocationSource:
    return _http_json_source(url, "the revocation list", client, timeout, RevocationsUnavailable)


class _PerLoopLock:
    """An asyncio.Lock per event loop: a lock is bound to the loop that first waits on it, and one verifier may
    serve apps running in several loops (worker threads, test clients); within a loop it serialises refreshes."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    def get(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_source: JwksSource,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        revocation_source: RevocationSource | None = None,
        revocation_poll_seconds: float = 10.0,
        max_lifetime_seconds: int = 3600,
        leeway_seconds: int = 60,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._source = jwks_source
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._max_lifetime = max_lifetime_seconds
        self._leeway = leeway_seconds
        self._verified: OrderedDict[str, Principal] = OrderedDict()
        self._keys: dict[str, Key] = {}
        self._fetched_at: float | None = None
        self._lock = _PerLoopLock()
        self._revocation_source = revocation_source
        self._revocation_poll = revocation_poll_seconds
        self._revoked: dict[str, float] = {}  # sid -> when the last token that may carry it expires
        self._revocations_at: float | None = None
        self._revocation_retry_at = 0.0
        self._revocation_lock = _PerLoopLock()

    async def _refresh(self) -> None:
        async with self._lock.get():
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

    async def _refresh_revocations(self) -> None:
        async with self._revocation_lock.get():
            if not self._revocations_due():
                return  # another request refreshed it while this one waited
            feed = await self._revocation_source()  # type: ignore[misc]
            now = self._wall_clock()
            self._revoked = {
                str(entry["sid"]): float(entry["until"]) for entry in feed.get("revoked", [])
                if isinstance(entry, dict) and "sid" in entry and float(entry.get("until", 0)) > now
            }
            self._revocations_at = self._clock()

    def _revocations_due(self) -> bool:
        return self._revocations_at is None or self._clock() - self._revocations_at >= self._revocation_poll

    async def _check_revocations(self, principal: Principal) -> None:
        if self._revocation_source is None:
            return
        if self._revocations_due():
            now = self._clock()
            stale_after = self._revocation_poll * REVOCATION_STALE_POLLS
            too_old = self._revocations_at is None or now - self._revocations_at >= stale_after
            # One request refreshes; the others go on with the list they have while it is recent enough. After
            # a failed fetch the next try waits a little, so an unreachable gateway does not slow every request.
            if (too_old or not self._revocation_lock.get().locked()) and now >= self._revocation_retry_at:
                try:
                    await self._refresh_revocations()
                except RevocationsUnavailable:
                    self._revocation_retry_at = self._clock() + min(1.0, self._revocation_poll)
                    if too_old:
                        raise
            elif too_old:
                raise RevocationsUnavailable("the revocation list is out of date and cannot be fetched")
        if principal.sid is None:
            raise InvalidToken("token has no session id, so it could not be revoked")
        if principal.sid in self._revoked:
            raise InvalidToken("token revoked: its user was disabled or changed")

    def revocations_changed(self) -> None:
        """This process revoked something itself: the next verification fetches the list first."""
        self._revocations_at = None

    async def verify(self, token: str) -> Principal:
        principal = self._remembered(token) or await self._verify_and_remember(token)
        # Also for remembered tokens: a revocation must reach tokens this process has already seen.
        await self._check_revocations(principal)
        return principal

    def _remembered(self, token: str) -> Principal | None:
        cached = self._verified.get(token)
        if cached is not None and self._fresh_keys():
            if cached.expires_at > self._wall_clock():
                self._verified.move_to_end(token)
                return cached
            del self._verified[token]
        return None

    async def _verify_and_remember(self, token: str) -> Principal:
        principal = await self._verify_uncached(token)
        self._verified[token] = principal
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _fresh_keys(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at <= self._cache_seconds

    async def _verify_uncached(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken(f"token too large (over {MAX_TOKEN_BYTES} bytes)")
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as exc:
            raise InvalidToken("malformed token") from exc
        # Pin the algorithm before touching the key: this refuses `alg: none` and HS256-with-the-public-key.
        if header.get("alg") not in ACCEPTED_ALGORITHMS:
            raise InvalidToken("token algorithm not accepted")
        if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("token type not accepted: an access token is typed at+jwt")
        # No extension is understood here, so any critical one must be refused (RFC 7515 §4.1.11).
        if "crit" in header:
            raise InvalidToken("token has critical header parameters this service does not understand")
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
        self._check_times(claims)
        roles = claims.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidToken("token has no roles")
        # Every rule downstream compares these as text (the scope rule binds `branch` into SQL): a claim of
        # another type is refused here, not met as a 500 in a query.
        for name, kinds in (("sub", str), ("jti", str), ("branch", str | None), ("scope", str), ("sid", str)):
            if not isinstance(claims.get(name, ""), kinds):
                raise InvalidToken(f"token claims rejected: {name} must be a string")
        sid = claims.get("sid")
        return Principal(
            sub=claims["sub"],
            roles=tuple(roles),
            branch=claims.get("branch"),
            scopes=frozenset(claims.get("scope", "").split()),
            jti=claims["jti"],
            expires_at=int(claims["exp"]),
            claims=claims,
            sid=sid if isinstance(sid, str) and sid else None,
        )

    def _check_times(self, claims: dict[str, Any]) -> None:
        issued, expires = claims["iat"], claims["exp"]
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            raise InvalidToken("token claims rejected: iat and exp must be numbers")
        if issued > self._wall_clock() + self._leeway:
            raise InvalidToken("token claims rejected: issued in the future (iat)")
        if expires - issued > self._max_lifetime:
            raise InvalidToken(f"token claims rejected: lives longer than {self._max_lifetime} s (exp - iat)")
