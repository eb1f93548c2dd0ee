"""One pure-ASGI middleware per app: request id, access log and Prometheus metrics in a single pass."""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import parse_qsl

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import Problem, field_problem, problem_response
from shared.logging import get_logger, request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# C0 controls and DEL: no id, name or route contains one, and PostgreSQL cannot even compare a text with NUL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
log = get_logger("loancrm.access")
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


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if _CONTROL.search(scope["path"]):
                await _answer(scope, receive, send_with_id, Problem(
                    404, "Not found", "No resource has a control character in its path."))
            elif (name := _nul_parameter(scope)) is not None:
                await _answer(scope, receive, send_with_id,
                              field_problem(f"query.{name}", "must not contain a NUL character"))
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered here, not re-raised: an exception escaping the app after its 500 went out makes the server
            # close the connection, and the peer's pool then hands that dead connection to the next request (a
            # 503 for another caller). Once a response has started it cannot be replaced, so that one is raised.
            if response_started:
                raise
            errors_log.exception("unhandled error", path=scope["path"])
            await _answer(scope, receive, send_with_id,
                          Problem(500, "Internal error", "The request failed; quote the request id."))
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # Label by route template, not raw path, so ids do not explode the metric's cardinality.
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(self.metrics.service, scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(self.metrics.service, scope["method"], template).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                principal=scope.get("state", {}).get("principal_sub"),
            )
            request_id_var.reset(token)


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
