"""The 360° view's peer sections: each peer that fails becomes an explicit `unavailable` marker."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict

from shared.clients.base import PeerTimeout, PeerUnavailable
from shared.errors import Problem

T = TypeVar("T")
# The overview waits for peers at most this long, whatever the kernel's general peer timeout.
OVERVIEW_TIMEOUT_SECONDS = 1.5


class Unavailable(BaseModel):
    """A peer did not answer usefully; the rest of the view still does."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "unavailable", "reason": "The scoring service is unavailable: connection refused."}]})

    status: Literal["unavailable"] = "unavailable"
    reason: str


async def or_unavailable(service: str, call: Awaitable[T]) -> T | Unavailable:
    """Down, timed out, 4xx, 5xx or nonsense all read as `unavailable` with the reason."""
    try:
        return await call
    except (PeerUnavailable, PeerTimeout) as exc:
        return Unavailable(reason=exc.detail or exc.title)
    except Problem as exc:  # a 4xx the shared client raised as is
        return Unavailable(reason=f"The {service} service answered {exc.status}: {exc.detail or exc.title}")
    except ValueError as exc:  # bad JSON or a pydantic ValidationError
        return Unavailable(reason=f"The {service} service answered in an unexpected shape: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Unavailable(reason=f"The {service} service failed: {exc or type(exc).__name__}")
