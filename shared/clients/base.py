"""The base of every typed peer client: timeouts, retries where a retry is safe, a clear error when down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from shared.errors import PROBLEM_MEDIA_TYPE, Problem
from shared.logging import request_id_var
from shared.replicas import Replicas

# A retry is safe only when repeating the call cannot act twice (RFC 9110's idempotent methods).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRY_STATUSES = frozenset({502, 503, 504})
# A bare 502/503 (not the peer's own problem+json) takes that replica out for a while (see shared/replicas.py).
_DOWN_STATUSES = frozenset({502, 503})
_MAX_RETRY_AFTER = 1.0  # seconds a peer call waits for a key's first request before trying again


def _seconds(retry_after: str) -> float:
    try:
        return max(float(retry_after), 0.0)
    except ValueError:
        return _MAX_RETRY_AFTER


class PeerUnavailable(Problem):
    def __init__(self, service: str, reason: str) -> None:
        super().__init__(503, "Service unavailable", f"The {service} service is unavailable: {reason}.",
                         extra={"service": service})
        self.service = service


class PeerDropped(Problem):
    """The peer closed the connection after the request was sent: it may have acted on it."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(502, "Bad gateway", f"The {service} service dropped the connection ({reason}) after the "
                         "request was sent, so it may have been carried out: repeat it with the same "
                         "Idempotency-Key to get its answer.", extra={"service": service})
        self.service = service


class PeerTimeout(Problem):
    def __init__(self, service: str) -> None:
        super().__init__(504, "Gateway timeout", f"The {service} service did not answer in time.",
                         extra={"service": service})
        self.service = service


def pooled_transport() -> httpx.AsyncBaseTransport:
    # httpx's default async transport is several times slower under concurrency (see ../bench); aiohttp's
    # keeps httpx's API with a faster connection pool.
    return AiohttpTransport(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))


class ServiceClient:
    def __init__(
        self,
        service: str,
        base_url: str | Sequence[str],
        *,
        timeout: float = 2.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`base_url`: the peer's address, or its replicas' (`KernelSettings.urls`), balanced and failed over as
        the gateway does (`shared/replicas.py`); a retry goes to another replica when there is one."""
        self.service = service
        self.retries = retries
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self._client = httpx.AsyncClient(
            base_url=urls[0],
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            transport=transport or pooled_transport(),
        )
        self.replicas = Replicas(service, urls, probe=self._ready)

    async def _ready(self, url: str) -> None:
        response = await self._client.get(f"{url}/health/ready")
        if response.status_code != 200:
            raise RuntimeError(f"/health/ready answered {response.status_code}")

    async def aclose(self) -> None:
        await self.replicas.aclose()
        await self._client.aclose()

    async def every_item(self, path: str, *, token: str, params: dict[str, Any],
                         answer: Callable[[httpx.Response], Any]) -> list[Any]:
        """Every item of a list, following its pages (`next_cursor`) to the last; `answer` reads one page's body
        (raising the peer's problem)."""
        items: list[Any] = []
        cursor = None
        while True:
            response = await self.request("GET", path, token=token,
                                          params={**params, **({"cursor": cursor} if cursor else {})})
            page = answer(response)
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        request_id = request_id_var.get()
        if request_id:
            headers["X-Request-ID"] = request_id
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        retryable = method.upper() in IDEMPOTENT_METHODS or idempotency_key is not None
        attempts = 1 + (self.retries if retryable else 0)
        if not retryable and len(self.replicas.replicas) > 1:
            attempts = 2  # the second only if the first never connected: then it cannot have acted
        replica = None
        for attempt in range(attempts):
            last = attempt == attempts - 1
            replica = self.replicas.pick(avoid=replica)
            try:
                response = await self._client.request(method, replica.url + path, json=json, params=params,
                                                      headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                self.replicas.failed(replica, "connection refused")
                if last:
                    raise PeerUnavailable(self.service, "connection refused") from exc
            except httpx.TimeoutException as exc:
                self.replicas.failed(replica, "timed out")
                if last or not retryable:
                    raise PeerTimeout(self.service) from exc
            except httpx.TransportError as exc:
                self.replicas.failed(replica, type(exc).__name__)
                if last or not retryable:
                    raise PeerUnavailable(self.service, type(exc).__name__) from exc
            else:
                if response.status_code in _DOWN_STATUSES and \
                        not response.headers.get("content-type", "").startswith(PROBLEM_MEDIA_TYPE):
                    self.replicas.failed(replica, f"answered {response.status_code}")
                # 409 with Retry-After on a keyed write: the key's first request (e.g. ours, timed out) still runs.
                running = idempotency_key is not None and response.status_code == 409 and \
                    "retry-after" in response.headers
                if not (response.status_code in _RETRY_STATUSES or running) or last or not retryable:
                    return response
                if running:
                    await asyncio.sleep(min(_seconds(response.headers["retry-after"]), _MAX_RETRY_AFTER))
                    continue
            finally:
                self.replicas.release(replica)
            await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover
