"""Forwarding a verified request to the service that owns it, streaming both ways.

`/api/{service}/...` is the gateway's hot path, so it is a plain ASGI app (`ServiceRoutes`) ahead of FastAPI's
routing: no dependency solving, no response object per request. It runs inside the kernel's middleware (request
id, access log, metrics, header and body limits, security headers) and does what a route would: verify the token,
count the caller's rate limit, answer problems as problem+json. The forwarding client is the gateway's own
(`wire.py`) for a body in hand, aiohttp's pooled session for a streamed upload: aiohttp's client cost about a
third of the gateway's time a request, httpx's own async transport several times more (`python -m bench gateway`
measures each client side by side).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx
import yarl
from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.limits.dependencies import limit_api_calls
from gateway.proxy import balancer, wire
from gateway.settings import UpstreamClient
from shared.auth.dependencies import verified_principal
from shared.clients.base import PeerDropped, PeerTimeout, PeerUnavailable, pooled_transport
from shared.errors import Problem, problem_response
from shared.middleware import BodyTooLarge, max_body
from shared.replicas import Probe, Replicas

ROUTED_SERVICES = ("customer", "scoring", "monitoring")
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# The largest body any service route accepts (a model bundle); each service applies its routes' own limits.
PROXY_MAX_BODY_BYTES = 64 * 1024 * 1024
# Bodies up to this size are read before forwarding and sent with their length; larger ones are streamed.
_BUFFERED_BYTES = 1024 * 1024
# Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus those the gateway sets itself.
_HOP_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
     b"transfer-encoding", b"upgrade", b"host", b"x-request-id"}
)
_NOT_FORWARDED = _HOP_HEADERS | {b"content-length", b"x-forwarded-for", b"x-forwarded-prefix"}
# The gateway's own server adds `date` (and names no server): the service's would repeat them.
_NOT_RETURNED = _HOP_HEADERS | {b"date", b"server"}
_SAFE_PATH = "/%!$&'()*+,;=:@~"
_ATTEMPTS = (False, True)  # is this the last attempt


@dataclass
class Answer:
    """An upstream's answer, its body not yet read."""

    status: int
    headers: list[tuple[bytes, bytes]]
    length: int | None
    chunks: Callable[[], AsyncIterator[bytes]]
    read: Callable[[], Awaitable[bytes]]
    close: Callable[[], Awaitable[None]]


Body = bytes | AsyncIterator[bytes] | None


class AiohttpForwarder:
    def __init__(self, pools: dict[str, Replicas], *, timeout: float, connect_timeout: float) -> None:
        self.pools = pools
        # `connect` covers waiting for a pooled connection too; reading waits as long as a slow service may take.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=connect_timeout,
                                              sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the server's event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=300),
                timeout=self._timeout,
                auto_decompress=False,  # the body passes through as the service encoded it
                cookie_jar=aiohttp.DummyCookieJar(),  # one caller's cookies are never sent for another
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def send(self, service: str, method: str, target: str, headers: list[tuple[bytes, bytes]],
                   body: Body) -> Answer:
        pool = self.pools[service]
        replica = pool.pick()
        texts = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        # At most one retry, on another replica, and only when it cannot act twice (see balancer.may_retry).
        for last in _ATTEMPTS:
            try:
                response = await self._open().request(method, yarl.URL(replica.url + target, encoded=True),
                                                      headers=texts, data=body, allow_redirects=False)
            except (aiohttp.ClientError, TimeoutError) as exc:
                replica = balancer.after_failure(pool, replica, method, body, *balancer.failure(service, exc), last)
                continue
            if balancer.down_answer(pool, replica, method, body, response.status,
                                    lambda: response.headers.get("content-type", ""), last):
                response.release()
                pool.release(replica)
                replica = pool.pick(avoid=replica)
                continue
            break

        async def close() -> None:
            response.release()
            pool.release(replica)

        return Answer(response.status, [(k.lower(), v) for k, v in response.raw_headers], response.content_length,
                      response.content.iter_any, response.read, close)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class WireForwarder:
    """Forwards with the gateway's own HTTP/1.1 client (`gateway/proxy/wire.py`), balancing, taking failed
    replicas out and retrying as the aiohttp forwarder does; a streamed upload goes through aiohttp."""

    def __init__(self, pools: dict[str, Replicas], *, timeout: float, connect_timeout: float) -> None:
        self.pools = pools
        self._timeout = timeout
        self._wires = {replica.url: wire.Replica(replica.url, connect_timeout)
                       for pool in pools.values() for replica in pool.replicas}
        self._streams = AiohttpForwarder(pools, timeout=timeout, connect_timeout=connect_timeout)

    async def send(self, service: str, method: str, target: str, headers: list[tuple[bytes, bytes]],
                   body: Body) -> Answer:
        if body is not None and not isinstance(body, bytes):
            return await self._streams.send(service, method, target, headers, body)
        pool = self.pools[service]
        replica = pool.pick()
        verb = method.encode()
        for last in _ATTEMPTS:
            wired = self._wires[replica.url]
            connection = None
            try:
                connection = await wired.acquire()
                connection.send(wired.request_head(verb, target, headers, body))
                await connection.head(self._timeout)
            except (OSError, TimeoutError) as exc:  # wire.ConnectFailed and wire.Dropped among them
                if connection is not None:
                    connection.close()
                replica = balancer.after_failure(pool, replica, method, body, *_wire_failure(service, exc), last)
                continue
            if balancer.down_answer(pool, replica, method, body, connection.status,
                                    lambda: _header(connection.headers, b"content-type").decode("latin-1"), last):
                connection.close()
                pool.release(replica)
                replica = pool.pick(avoid=replica)
                continue
            break
        timeout = self._timeout

        async def read() -> bytes:
            try:
                return await connection.read(timeout)
            except (OSError, TimeoutError) as exc:
                raise _wire_failure(service, exc)[0] from exc

        async def close() -> None:
            wired.release(connection)
            pool.release(replica)

        length = _header(connection.headers, b"content-length")
        return Answer(connection.status, connection.headers, int(length) if length.isdigit() else None,
                      lambda: connection.chunks(timeout), read, close)

    async def aclose(self) -> None:
        for wired in self._wires.values():
            wired.close()
        await self._streams.aclose()


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    return next((v for k, v in headers if k == name), b"")


def _wire_failure(service: str, exc: BaseException) -> tuple[Problem, bool]:
    """As `balancer.failure` for the aiohttp client: the caller's problem, and whether the request was never sent."""
    if isinstance(exc, wire.ConnectFailed):
        return PeerUnavailable(service, str(exc)), True
    if isinstance(exc, TimeoutError):
        return PeerTimeout(service), False
    return PeerDropped(service, str(exc) or type(exc).__name__), False


class HttpxForwarder:
    """Forwarding with httpx: over the in-process transports the tests wire, and as a comparison in the bench.
    It balances and takes failed replicas out as the aiohttp forwarder does, but retries nothing."""

    def __init__(self, clients: dict[str, httpx.AsyncClient], pools: dict[str, Replicas]) -> None:
        self.clients = clients
        self.pools = pools

    async def send(self, service: str, method: str, target: str, headers: list[tuple[bytes, bytes]],
                   body: Body) -> Answer:
        client, pool = self.clients[service], self.pools[service]
        replica = pool.pick()
        # Built directly, not by the client: no cookie the client may have kept from another caller's answer.
        outgoing = httpx.Request(method, replica.url + target, headers=headers, content=body)
        try:
            response = await client.send(outgoing, stream=True)
        except httpx.TransportError as exc:
            pool.release(replica)
            problem = (PeerUnavailable(service, "connection refused")
                       if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                       else PeerTimeout(service) if isinstance(exc, httpx.TimeoutException)
                       else PeerUnavailable(service, type(exc).__name__))
            pool.failed(replica, problem.detail)
            raise problem from exc

        async def close() -> None:
            await response.aclose()
            pool.release(replica)

        length = response.headers.get("content-length")
        return Answer(response.status_code, list(response.headers.raw),
                      int(length) if length and length.isdigit() else None, response.aiter_raw, response.aread,
                      close)


class Upstreams:
    def __init__(
        self,
        urls: dict[str, Sequence[str]],
        *,
        timeout: float,
        connect_timeout: float,
        probe_timeout: float = 2.0,
        transports: dict[str, httpx.AsyncBaseTransport] | None = None,
        client: UpstreamClient = "wire",
    ) -> None:
        self.urls = {name: list(replicas) for name, replicas in urls.items()}
        timeouts = httpx.Timeout(timeout, connect=connect_timeout)
        transports = transports or {}

        def transport(name: str) -> httpx.AsyncBaseTransport:
            if name in transports:
                return transports[name]
            if client == "httpx":
                return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
            return pooled_transport()

        # httpx clients for the gateway's own calls (readiness probes, the merged OpenAPI), where speed matters
        # little; they take absolute URLs, one replica's or another's.
        self.clients = {name: httpx.AsyncClient(base_url=replicas[0], timeout=timeouts, transport=transport(name))
                        for name, replicas in self.urls.items()}

        def probe(name: str) -> Probe:
            async def ready(url: str) -> None:
                response = await self.clients[name].get(f"{url}/health/ready", timeout=probe_timeout)
                if response.status_code != 200:
                    raise RuntimeError(f"/health/ready answered {response.status_code}")

            return ready

        self.pools = {name: Replicas(name, replicas, probe=probe(name)) for name, replicas in self.urls.items()}
        self.forwarder: WireForwarder | AiohttpForwarder | HttpxForwarder
        if transports or client in ("httpx", "httpx_aiohttp"):
            self.forwarder = HttpxForwarder(self.clients, self.pools)
        else:
            forwarder = WireForwarder if client == "wire" else AiohttpForwarder
            self.forwarder = forwarder(self.pools, timeout=timeout, connect_timeout=connect_timeout)

    async def aclose(self) -> None:
        for pool in self.pools.values():
            await pool.aclose()
        for client in self.clients.values():
            await client.aclose()
        if isinstance(self.forwarder, WireForwarder | AiohttpForwarder):
            await self.forwarder.aclose()

    def client(self, service: str) -> httpx.AsyncClient:
        client = self.clients.get(service)
        if client is None:
            raise Problem(404, "Not found", f"No service named {service!r}; known: {', '.join(self.clients)}.")
        return client

    async def get(self, service: str, path: str) -> httpx.Response:
        """The gateway's own GET of `path` from a replica of `service` that is up."""
        pool = self.pools[service]
        replica = pool.pick()
        try:
            return await self.client(service).get(replica.url + path)
        finally:
            pool.release(replica)

    async def ready(self, service: str) -> None:
        """Probe every replica of `service` now; raises, naming each, when none is ready."""
        pool = self.pools[service]
        states = await pool.check_all()
        if not pool.up():
            raise RuntimeError("; ".join(f"{state['url']} {state['reason']}" for state in states))

    def report(self) -> dict[str, list[dict[str, Any]]]:
        return {name: pool.report() for name, pool in self.pools.items()}


def _upstream_target(scope: Scope) -> str:
    """The path as the client sent it, still percent-encoded, less `/api/{service}`, with its query string.
    Re-sending the decoded path made httpx refuse an id with a control character (a 500) and turned an encoded
    `/` or `?` in an id into structure."""
    raw = scope.get("raw_path") or quote(scope["path"]).encode()
    rest = raw.split(b"/", 3)[3:]
    # Anything the client left unencoded that a URL may not hold (a raw space, a non-ASCII byte) is encoded now.
    target = "/" + quote(rest[0] if rest else b"", safe=_SAFE_PATH)
    query = scope.get("query_string", b"")
    return f"{target}?{quote(query, safe=_SAFE_PATH + '?')}" if query else target


async def _body(scope: Scope, receive: Receive, refused: list[BodyTooLarge]) -> Body:
    """The request body: read whole when small and of a declared length, otherwise streamed as it arrives."""
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    chunked = any(k == b"transfer-encoding" for k, _ in scope["headers"])
    if declared in (None, b"0") and not chunked:
        return None
    if declared is not None and declared.isdigit() and int(declared) <= _BUFFERED_BYTES:
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(parts)
    # The first read checks the declared length against the route's limit before anything is sent.
    first = await receive()

    async def stream() -> AsyncIterator[bytes]:
        message = first
        try:
            while True:
                if message.get("body"):
                    yield message["body"]
                if message["type"] != "http.request" or not message.get("more_body"):
                    return
                message = await receive()
        except BodyTooLarge as exc:
            refused.append(exc)  # the forwarding client reports it as its own failure
            raise

    return stream()


@max_body(PROXY_MAX_BODY_BYTES)
async def _proxied() -> None:
    """Stands for the proxy in `scope["route"]`: the kernel's body limit and metrics read it there."""


@dataclass(frozen=True)
class _ProxyRoute:
    path: str = "/api/{service}/{path:path}"
    endpoint: Callable[[], Awaitable[None]] = _proxied


PROXY_ROUTE = _ProxyRoute()


class GatewayApp(FastAPI):
    """The gateway's app. A request under `/api/` enters the app's own middleware (the kernel's, then
    `ServiceRoutes`) directly: FastAPI's outer layers (its error page, its telemetry check, which reads the
    environment, its `max_body_size` limit) were several percent of a forwarded request's time under a profiler,
    and the kernel's middleware already answers errors and limits bodies. With OpenTelemetry configured every
    request takes the usual way, so none goes unseen."""

    _direct: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            if self._direct is None:
                self._direct = self._first_own_layer()
            if self.root_path:
                scope["root_path"] = self.root_path
            scope["app"] = self
            await self._direct(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _first_own_layer(self) -> ASGIApp:
        telemetry = getattr(self, "_native_telemetry", None)
        if telemetry is not None and telemetry.enabled():
            return super().__call__
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        outermost, layer = self.user_middleware[0].cls, self.middleware_stack
        while not isinstance(layer, outermost):  # type: ignore[arg-type]
            layer = layer.app  # type: ignore[attr-defined]
        return layer


class ServiceRoutes:
    """ASGI middleware answering `/api/{service}/...`; everything else goes on to the app's own routes."""

    def __init__(self, app: ASGIApp, *, upstreams: Upstreams) -> None:
        self.app = app
        self.upstreams = upstreams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            service, slash, _ = scope["path"][5:].partition("/")
            if slash and (service in self.upstreams.urls or not self._own_route(scope)):
                await self._forward(service, scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _own_route(scope: Scope) -> bool:
        # Only for a name that is no service: the gateway's own `/api/...` routes come first, as they always did.
        return any(route.matches(scope)[0] is Match.FULL for route in scope["app"].router.routes)

    async def _forward(self, service: str, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = PROXY_ROUTE
        state = scope["app"].state
        refused: list[BodyTooLarge] = []
        try:
            # What `current_principal` and the limit's dependency do, without a `Request` to build per request.
            authorization = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            principal = await verified_principal(state.verifier, authorization.decode("latin-1"), scope)
            await limit_api_calls(state, principal)
            if scope["method"] not in METHODS:
                raise Problem(405, "Method not allowed", headers={"Allow": ", ".join(sorted(METHODS))})
            self.upstreams.client(service)  # a 404 naming the known services
            try:
                answer = await self.upstreams.forwarder.send(
                    service, scope["method"], _upstream_target(scope), _headers(scope, service),
                    await _body(scope, receive, refused))
            except Problem:
                if refused:
                    raise refused[0] from None
                raise
        except Problem as problem:
            await _problem(scope, receive, send, problem)
            return
        except BodyTooLarge as exc:
            await _problem(scope, receive, send, Problem(413, "Payload too large", exc.detail))
            return
        try:
            headers = [(k, v) for k, v in answer.headers if k not in _NOT_RETURNED]
            if answer.length is not None and answer.length <= _BUFFERED_BYTES:
                try:
                    body = await answer.read()
                except Problem as problem:  # the service dropped or stalled before its answer was whole
                    await _problem(scope, receive, send, problem)
                    return
                await send({"type": "http.response.start", "status": answer.status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            async for chunk in answer.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await answer.close()


async def _problem(scope: Scope, receive: Receive, send: Send, problem: Problem) -> None:
    await problem_response(Request(scope, receive), problem)(scope, receive, send)


def _headers(scope: Scope, service: str) -> list[tuple[bytes, bytes]]:
    # No content-length: a buffered body gets its own from the client, a streamed one is sent chunked.
    headers = [(k, v) for k, v in scope["headers"] if k not in _NOT_FORWARDED]
    headers.append((b"x-request-id", scope["state"]["request_id"].encode()))
    # Where the service is mounted here, so the links it answers with (Location) and the `instance` of its
    # problems resolve through the gateway.
    headers.append((b"x-forwarded-prefix", f"/api/{service}".encode()))
    if scope.get("client"):
        headers.append((b"x-forwarded-for", scope["client"][0].encode()))
    return headers
