"""Structured JSON logs that carry the request id of the request being served."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def _add_request_id(_logger, _method, event_dict):  # noqa: ANN001, ANN202
    request_id = request_id_var.get()
    if request_id and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    return event_dict


_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _add_request_id,
]


def _route(level: str, last: list[Any]) -> None:
    structlog.configure(
        processors=[*_SHARED, *last],
        # A call below the level returns before any processor runs: the access log line of every request cost
        # its time stamp and context even when WARNING left it unwritten.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


def log_through_stdlib(level: str = "INFO") -> None:
    """For an app built outside a service's start-up (an embedding caller, a test): structlog's events rendered
    as JSON lines, tracebacks plain, and handed to whatever handlers the caller's logging has. Left unconfigured,
    structlog prints tracebacks with every local of every frame, personal data among them (and slowly)."""
    _route(level, [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()])


def configure_logging(service: str, level: str = "INFO") -> None:
    """A service process's logs: one JSON handler on stderr for structlog's events and the standard library's."""
    _route(level, [structlog.stdlib.ProcessorFormatter.wrap_for_formatter])
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            lambda _l, _m, d: {"service": service, **d},
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours, without the request id.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
