"""The pure-ASGI middleware every app runs (`KernelMiddleware`): request id, access log and Prometheus metrics,
request size limits and security headers, in a single layer."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.audit import capture
from shared.errors import Problem, field_problem, problem_response
from shared.logging import get_logger, request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# C0 controls and DEL: no id, name or route contains one, and PostgreSQL cannot even compare a text with NUL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
log = get_logger("loancrm.access")
F = TypeVar("F", bound=Callable[..., Any])
errors_log = get_logger("loancrm.errors")


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loancrm_http_requests_total",
            "HTTP requests served",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loancrm_http_request_duration_seconds",
            "Time to serve an HTTP request",
            ["service", "method", "route"],
            registry=self.registry,
        )
        self.service = service
        # (method, route, status) -> its counter and histogram: `labels()` looks each up under a lock every time.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(self.service, *key),
                                              self.latency.labels(self.service, method, route))
        children[0].inc()
        children[1].observe(seconds)


MAX_AUTHORIZATION_BYTES = 8 * 1024 + 64  # a token at the verifier's size limit, plus its scheme
_BODY_LIMIT_ATTRIBUTE = "max_body_bytes"
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]
_NO_STORE = (b"cache-control", b"no-store")
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
# Set here on every answer; the same headers from the app (or a proxied service) are replaced, not repeated.
_REPLACED = frozenset({b"server", b"cache-control", b"strict-transport-security", *(k for k, _ in _SECURITY_HEADERS)})


def max_body(limit: int) -> Callable[[F], F]:
    """Let one route accept a larger (or smaller) request body than the process default."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _BODY_LIMIT_ATTRIBUTE, limit)
        return endpoint

    return mark


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body may be at most {limit} bytes on this route.")


class KernelMiddleware:
    """What every app runs around its routes, in one layer: header size limits before anything parses them, the
    request id, the body size limit, the security headers on every answer, metrics and the access log. It was two
    layers, each wrapping `send` and reading the headers again: their wrappers were a measurable part of what the
    gateway cost a forwarded request."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_header_bytes: int, max_body_bytes: int, hsts: bool,
                 cacheable_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.metrics = metrics
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.hsts = hsts
        self.cacheable_paths = cacheable_paths
        # The security headers for each (cacheable, over HTTPS) case, made once.
        self._extras = {(cacheable, https): [*_SECURITY_HEADERS, *([] if cacheable else [_NO_STORE]),
                                             *([_HSTS] if https or hsts else [])]
                        for cacheable in (False, True) for https in (False, True)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            # RFC 9110 9.3.2: HEAD answers what GET would, headers and all, without the content; the routes are
            # declared for GET alone, so HEAD was a 405.
            scope = {**scope, "method": "GET"}
        # One pass over the headers for everything this layer reads of them.
        total, authorization, credentials, incoming, forwarded = 0, 0, 0, None, b""
        for k, v in scope["headers"]:
            total += len(k) + len(v) + 4
            if k == b"authorization":
                authorization = max(authorization, len(v))
                credentials += 1
            elif k == b"x-request-id" and incoming is None:
                incoming = v.decode("latin-1")
            elif k == b"x-forwarded-proto":
                forwarded = v
        extra = self._extras[(scope["path"] in self.cacheable_paths,
                              scope.get("scheme") == "https" or forwarded.lower() == b"https")]
        if total > self.max_header_bytes or authorization > MAX_AUTHORIZATION_BYTES:
            what = "Authorization header" if authorization > MAX_AUTHORIZATION_BYTES else "request headers"
            await _refuse(send, 431, "Request header fields too large", f"The {what} are too large.", extra)
            return
        if credentials > 1:
            # One request, one caller: the gateway and a service could each pick a different one of two tokens.
            await _refuse(send, 400, "Bad request", "A request may carry one Authorization header, not several.",
                          extra, field="header.Authorization")
            return
        # 32 random hex digits, as uuid4().hex gave, without building a UUID object per request.
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        answered = [*extra, (b"x-request-id", request_id.encode())]
        token = request_id_var.set(request_id)
        actor = capture.open_request()
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_secured(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                # Set here on every answer: the same headers from the app (or a proxied service) are replaced.
                message["headers"] = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in _REPLACED]
                message["headers"] += answered
            elif head and message.get("body"):
                message = {**message, "body": b""}
            await send(message)

        try:
            if _CONTROL.search(scope["path"]):
                await _answer(scope, receive, send_secured, Problem(
                    404, "Not found", "No resource has a control character in its path."))
            elif (name := _nul_parameter(scope)) is not None:
                await _answer(scope, receive, send_secured,
                              field_problem(f"query.{name}", "must not contain a NUL character"))
            else:
                await self.app(scope, self._limited(scope, receive), send_secured)
        except Exception:
            # Answered here, not re-raised: an exception escaping the app after its 500 went out makes the server
            # close the connection, and the peer's pool then hands that dead connection to the next request (a
            # 503 for another caller). Once a response has started it cannot be replaced, so that one is raised.
            if response_started:
                raise
            errors_log.exception("unhandled error", path=scope["path"])
            await _answer(scope, receive, send_secured,
                          Problem(500, "Internal error", "The request failed; quote the request id."))
        finally:
            elapsed = time.perf_counter() - started
            # Label by route template, not raw path, so ids do not explode the metric's cardinality.
            template = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(scope["method"], template, status, elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                principal=scope["state"].get("principal_sub"),
            )
            request_id_var.reset(token)
            capture.close_request(actor)

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            # Read once routing has happened (a route reads its body), so the route's own limit is known.
            route = scope.get("route")
            limit = getattr(getattr(route, "endpoint", None), _BODY_LIMIT_ATTRIBUTE, self.max_body_bytes)
            if received == 0:
                declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_limited


async def _refuse(send: Send, status: int, title: str, detail: str, extra: list[tuple[bytes, bytes]],
                  field: str | None = None) -> None:
    problem: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if field is not None:
        problem["errors"] = [{"field": field, "message": detail}]
    body = json.dumps(problem).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), *extra]})
    await send({"type": "http.response.body", "body": body})


def _nul_parameter(scope: Scope) -> str | None:
    """The query parameter holding a NUL, if one does (PostgreSQL cannot compare a text with one)."""
    query = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "")
    return None


async def _answer(scope: Scope, receive: Receive, send: Send, problem: Problem) -> None:
    await problem_response(Request(scope), problem)(scope, receive, send)
