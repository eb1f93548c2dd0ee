"""Who a batch job calls its peers as: its own OAuth client (client-credentials grant at the gateway), with the
token renewed before it expires, so a run longer than a token's life stays authorised; or, for work a signed-in
caller started, that caller's token. A service that must see a peer's whole answer, not the caller's share of it
(the customer service's closure and erasure guards), asks as the same batch client (`ServiceIdentity`)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import httpx

from shared.clients.base import PeerUnavailable, ServiceClient
from shared.errors import Problem
from shared.settings import BatchSettings, KernelSettings, load_settings

# A token is renewed once this share of its life is left: a call made with it still has time to be checked.
RENEW_AT_REMAINING = 0.25


class Credentials(Protocol):
    async def token(self) -> str: ...

    async def aclose(self) -> None: ...


class CallerToken:
    """The token of the caller who started the work (it expires with that caller's sign-in)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    async def aclose(self) -> None:
        return None


class _GatewayTokens(ServiceClient):
    """Tokens from the gateway's token endpoint, each reused until a quarter of its life is left, then renewed;
    concurrent callers share one renewal. A subclass says which grant to ask with (`_form`)."""

    def __init__(self, gateway_url: str, who: str, *, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None, clock=time.monotonic) -> None:  # noqa: ANN001
        super().__init__("gateway", gateway_url, timeout=timeout, retries=2, transport=transport)
        self.who = who
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.issued = 0  # tokens obtained so far

    def _form(self) -> dict[str, str]:
        raise NotImplementedError

    def _took(self, body: dict) -> None:
        """What else the answer carries that the next grant needs (a rotated refresh token)."""

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                asked = self._clock()
                self._token, lifetime = await self._grant()
                self._renew_at = asked + lifetime * (1 - RENEW_AT_REMAINING)
                self.issued += 1
            return self._token

    async def _grant(self) -> tuple[str, float]:
        form = self._form()
        for attempt in range(1 + self.retries):
            try:
                response = await self._client.post("/auth/token", data=form)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise PeerUnavailable(self.service, type(exc).__name__) from exc
                await asyncio.sleep(0.05 * 2 ** attempt)
                continue
            if response.status_code != 200:
                body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
                raise Problem(502, "Bad gateway", f"the gateway refused {self.who} a token: "
                                                  f"{body.get('error_description') or response.status_code}")
            body = response.json()
            self._took(body)
            return body["access_token"], float(body["expires_in"])
        raise AssertionError("unreachable")  # pragma: no cover


class ClientCredentials(_GatewayTokens):
    """Tokens of an OAuth client (the client-credentials grant, RFC 6749 §4.4)."""

    def __init__(self, gateway_url: str, client_id: str, client_secret: str, **options: object) -> None:
        super().__init__(gateway_url, f"client {client_id!r}", **options)  # type: ignore[arg-type]
        self.client_id = client_id
        self._secret = client_secret

    def _form(self) -> dict[str, str]:
        return {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._secret}


class UserSession(_GatewayTokens):
    """A person signed in once with their password (RFC 6749 §4.3), their session kept with the refresh tokens it
    is given (§6; each use rotates it), so work they start outlives one access token. The password is dropped
    once the first token is in."""

    def __init__(self, gateway_url: str, username: str, password: str, **options: object) -> None:
        super().__init__(gateway_url, f"user {username!r}", **options)  # type: ignore[arg-type]
        self.username = username
        self._password: str | None = password
        self._refresh: str | None = None

    def _form(self) -> dict[str, str]:
        if self._refresh is not None:
            return {"grant_type": "refresh_token", "refresh_token": self._refresh}
        assert self._password is not None
        return {"grant_type": "password", "username": self.username, "password": self._password}

    def _took(self, body: dict) -> None:
        self._refresh = body.get("refresh_token") or self._refresh
        self._password = None


def batch_credentials(kernel: KernelSettings,
                      transport: httpx.AsyncBaseTransport | None = None) -> ClientCredentials | None:
    """The suite's own identity (the batch OAuth client `loancrm up` provisions), None when no secret is configured
    or provisioned."""
    batch = load_settings(BatchSettings)
    secret = batch.client_secret(kernel)
    if secret is None:
        return None
    return ClientCredentials(kernel.url("gateway"), batch.batch_client_id, secret,
                             timeout=kernel.peer_timeout_seconds, transport=transport)


class ServiceIdentity:
    """A service's own tokens (the batch client's), for a call that must not be limited to the caller's scope
    after the service has checked the caller itself. The secret is looked up at first use (`loancrm up`
    provisions it after the processes are configured); none provisioned is a 503 naming the gateway, so a guard
    asking with it refuses rather than guess."""

    def __init__(self, kernel: KernelSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._kernel = kernel
        self._transport = transport
        self._credentials: ClientCredentials | None = None

    async def token(self) -> str:
        if self._credentials is None:
            self._credentials = batch_credentials(self._kernel, self._transport)
            if self._credentials is None:
                raise PeerUnavailable("gateway", "this service has no identity of its own to ask peers with "
                                                 "(no batch client secret: LOANCRM_BATCH_CLIENT_SECRET)")
        return await self._credentials.token()

    async def aclose(self) -> None:
        if self._credentials is not None:
            await self._credentials.aclose()
