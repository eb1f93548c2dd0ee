"""The gateway's background webhook task: a relay and a delivery pass every LOANCRM_WEBHOOKS_POLL_SECONDS."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.webhooks.flows import Webhooks

log = logging.getLogger(__name__)


class Poller:
    def __init__(self, webhooks: Webhooks, every_seconds: float) -> None:
        self.webhooks, self.every = webhooks, every_seconds
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            # First a wait: the services may still be starting beside the gateway.
            await asyncio.sleep(self.every)
            try:
                await self.webhooks.run_once()
            except Exception:  # noqa: BLE001 - one failed pass must not end the task; the next one retries
                log.exception("webhook pass failed")

    async def start(self) -> None:
        if self.every > 0:  # 0 turns it off
            self._task = asyncio.create_task(self._loop(), name="webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.webhooks.aclose()
