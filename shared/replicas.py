"""Several replicas of one service behind one name: which one to call next, and which to leave alone for a while.

Used by the gateway's forwarding and by the typed peer clients, so both balance and fail over the same way.

- **Least in flight**, ties taken in turn (round robin): a replica stuck on slow requests gets fewer new ones, where
  plain round robin would keep queueing behind it; with the same load each gets the same share. It costs one pass
  over a handful of replicas and two counters, no lock (everything runs on the event loop's thread).
- **Down for a back-off**: a replica that refused or timed out a connection, timed out an answer or answered a
  bare 502/503 gets no traffic for `backoff` seconds (1 s at first, doubling per failed probe up to 30 s). When the
  back-off ends it is half-open: one probe (its `/health/ready`) brings it back or doubles the back-off; requests
  go on to the others meanwhile.
- **Nothing up**: the replica whose back-off ends first is tried anyway, so a service with one URL behaves as it
  did before replicas (each request tries it, the caller gets that error) and recovers without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

# Raises (anything) when the replica at this base URL is not ready to serve.
Probe = Callable[[str], Awaitable[None]]

BASE_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


class Replica:
    __slots__ = ("url", "in_flight", "served", "failures", "down_until", "backoff", "reason", "probing")

    def __init__(self, url: str) -> None:
        self.url = url
        self.in_flight = 0
        self.served = 0  # requests sent to it, for metrics
        self.failures = 0  # failures that marked it down (or kept it down), for metrics
        self.down_until = 0.0  # monotonic time its back-off ends; 0.0 while it is up
        self.backoff = BASE_BACKOFF_SECONDS
        self.reason: str | None = None
        self.probing = False


class Replicas:
    def __init__(self, service: str, urls: Sequence[str], *, probe: Probe | None = None,
                 base_backoff: float = BASE_BACKOFF_SECONDS, max_backoff: float = MAX_BACKOFF_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not urls:
            raise ValueError(f"{service}: no URL")
        self.service = service
        self.replicas = tuple(Replica(url.rstrip("/")) for url in urls)
        self._probe = probe
        self._base = base_backoff
        self._max = max_backoff
        self._clock = clock
        self._turn = 0
        self._probes: set[asyncio.Task[None]] = set()

    def pick(self, avoid: Replica | None = None) -> Replica:
        """The replica to send the next request to (not `avoid`, the one that just failed it, if another is
        left); the caller calls `release` when that request is over."""
        replicas = self.replicas
        count = len(replicas)
        start = self._turn
        self._turn = start + 1 if start + 1 < count else 0
        best = None
        now = 0.0
        for step in range(count):
            index = start + step
            replica = replicas[index - count if index >= count else index]
            if replica.down_until:
                now = now or self._clock()
                if now >= replica.down_until and not replica.probing:
                    self._half_open(replica)
                continue
            if replica is not avoid and (best is None or replica.in_flight < best.in_flight):
                best = replica
        if best is None:
            best = min((r for r in replicas if r is not avoid), key=_back_in, default=replicas[0])
            if best.down_until and avoid is not None and not avoid.down_until:
                best = avoid  # the only one up failed in a way that did not take it down: still the best bet
        best.in_flight += 1
        best.served += 1
        return best

    @staticmethod
    def release(replica: Replica) -> None:
        replica.in_flight -= 1

    def failed(self, replica: Replica, reason: str) -> None:
        """`replica` failed a request in a way that says it cannot serve: no traffic until it is probed."""
        replica.failures += 1
        replica.reason = reason
        if not replica.down_until:
            replica.backoff = self._base
            replica.down_until = self._clock() + replica.backoff

    def _half_open(self, replica: Replica) -> None:
        if self._probe is None:
            replica.down_until = 0.0  # no probe: the next request is the trial
            return
        replica.probing = True
        task = asyncio.get_running_loop().create_task(self._run_probe(replica))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _run_probe(self, replica: Replica) -> None:
        try:
            await self.check(replica)
        finally:
            replica.probing = False

    async def check(self, replica: Replica) -> bool:
        """Probe `replica` now: up again if it answers ready, else down for a doubled back-off."""
        assert self._probe is not None
        try:
            await self._probe(replica.url)
        except Exception as exc:  # noqa: BLE001 - any failure of the probe means not ready
            replica.reason = f"probe failed: {exc or type(exc).__name__}"
            replica.backoff = min(replica.backoff * 2, self._max) if replica.down_until else self._base
            replica.down_until = self._clock() + replica.backoff
            return False
        replica.down_until = 0.0
        replica.reason = None
        replica.backoff = self._base
        return True

    async def check_all(self) -> list[dict[str, Any]]:
        """Probe every replica (readiness does, so a replica back up is seen at once) and report each."""
        if self._probe is not None:
            await asyncio.gather(*(self.check(replica) for replica in self.replicas))
        return self.report()

    def report(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [{"url": r.url, "state": "probing" if r.probing else "down" if r.down_until else "up",
                 "in_flight": r.in_flight, "served": r.served, "failures": r.failures, "reason": r.reason,
                 "retry_in_seconds": round(max(r.down_until - now, 0.0), 3) if r.down_until else None}
                for r in self.replicas]

    def up(self) -> bool:
        return any(not replica.down_until for replica in self.replicas)

    async def aclose(self) -> None:
        for task in list(self._probes):
            task.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)


def _back_in(replica: Replica) -> float:
    return replica.down_until
