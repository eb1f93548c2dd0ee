"""Forwarding a verified request to the service that owns it, streaming both ways."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse

from shared.clients.base import PeerTimeout, PeerUnavailable, pooled_transport
from shared.errors import Problem

ROUTED_SERVICES = ("customer", "scoring", "monitoring")
# Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus those the gateway sets itself.
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "host", "content-length", "x-request-id", "x-forwarded-for"}
)


class Upstreams:
    def __init__(
        self,
        urls: dict[str, str],
        *,
        timeout: float,
        connect_timeout: float,
        transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.urls = urls
        timeouts = httpx.Timeout(timeout, connect=connect_timeout)
        transports = transports or {}
        self.clients = {
            name: httpx.AsyncClient(base_url=url, timeout=timeouts,
                                    transport=transports.get(name) or pooled_transport())
            for name, url in urls.items()
        }

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    def client(self, service: str) -> httpx.AsyncClient:
        client = self.clients.get(service)
        if client is None:
            raise Problem(404, "Not found", f"No service named {service!r}; known: {', '.join(self.clients)}.")
        return client


def _upstream_path(request: Request, path: str) -> str:
    """The path as the client sent it, still percent-encoded, less `/api/{service}`. Re-sending the decoded path
    made httpx refuse an id with a control character (a 500) and turned an encoded `/` or `?` in an id into
    structure."""
    raw = request.scope.get("raw_path")
    if raw is None:
        return "/" + quote(path)
    rest = raw.split(b"/", 3)[3:]
    # Anything the client left unencoded that a URL may not hold (a raw space, a non-ASCII byte) is encoded now.
    return "/" + quote(rest[0] if rest else b"", safe="/%!$&'()*+,;=:@~")


async def forward(
    upstreams: Upstreams, service: str, path: str, request: Request, request_id: str
) -> StreamingResponse:
    client = upstreams.client(service)
    headers = [(k, v) for k, v in request.headers.items()
               if k.lower() not in _HOP_HEADERS and k.lower() != "x-forwarded-prefix"]
    headers.append(("x-request-id", request_id))
    # Where the service is mounted here, so the links it answers with (Location) resolve through the gateway.
    headers.append(("x-forwarded-prefix", f"/api/{service}"))
    if request.client is not None:
        headers.append(("x-forwarded-for", request.client.host))
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    outgoing = client.build_request(
        request.method,
        _upstream_path(request, path),
        params=request.query_params.multi_items(),
        headers=headers,
        content=request.stream() if has_body else None,
    )
    try:
        upstream = await client.send(outgoing, stream=True)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise PeerUnavailable(service, "connection refused") from exc
    except httpx.TimeoutException as exc:
        raise PeerTimeout(service) from exc
    except httpx.TransportError as exc:
        raise PeerUnavailable(service, type(exc).__name__) from exc
    response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=response_headers,
        background=BackgroundTask(upstream.aclose),
    )
